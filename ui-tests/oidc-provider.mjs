// A real OpenID provider for burrow's single sign-on tests: panva's oidc-provider (certified),
// on an ephemeral port of 127.0.0.1, over plain HTTP (allowed outside NODE_ENV=production).
// Run by crates/burrow/tests/oidc.rs:
//   - prints `ISSUER http://127.0.0.1:<port>` once listening;
//   - `POST /__test/setup {"client_id","client_secret","redirect_uri"}` registers burrow's
//     client (its redirect URI is known only once burrow listens) and starts the provider;
//   - `POST /__test/account {"account": "verified"|"newcomer"|"unverified"|"outsider"}` picks who the
//     next login signs in as: the login step is automatic (no form), the rest — authorization
//     endpoint, PKCE, code, token endpoint, signed ID token with nonce — is the real thing.
import http from 'node:http';
import Provider from 'oidc-provider';

const ACCOUNTS = {
  verified: { email: 'sso-user@example.com', email_verified: true },
  newcomer: { email: 'newcomer@example.com', email_verified: true },
  unverified: { email: 'unverified@example.com', email_verified: false },
  outsider: { email: 'someone@elsewhere.test', email_verified: true },
};

let nextAccount = 'verified';
let provider = null;
let issuer = '';

function readJson(req) {
  return new Promise((resolve, reject) => {
    let body = '';
    req.on('data', (c) => {
      body += c;
    });
    req.on('end', () => {
      try {
        resolve(JSON.parse(body || '{}'));
      } catch (e) {
        reject(e);
      }
    });
    req.on('error', reject);
  });
}

function reply(res, status, text) {
  res.statusCode = status;
  res.setHeader('content-type', 'text/plain');
  res.end(text);
}

function setup({ client_id, client_secret, redirect_uri }) {
  const p = new Provider(issuer, {
    clients: [
      {
        client_id,
        client_secret,
        redirect_uris: [redirect_uri],
        response_types: ['code'],
        grant_types: ['authorization_code'],
        token_endpoint_auth_method: 'client_secret_basic',
      },
    ],
    async findAccount(ctx, id) {
      const account = ACCOUNTS[id];
      if (!account) return undefined;
      return { accountId: id, claims: async () => ({ sub: id, ...account }) };
    },
    claims: { openid: ['sub'], email: ['email', 'email_verified'] },
    // The scope's claims go into the ID token itself (burrow reads no userinfo).
    conformIdTokenClaims: false,
    features: { devInteractions: { enabled: false } },
    interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
    pkce: { required: () => true },
    cookies: { keys: ['burrow-oidc-test-cookie-key'] },
    // Consent is implied: every scope and claim asked for is granted.
    async loadExistingGrant(ctx) {
      const grantId =
        ctx.oidc.result?.consent?.grantId || ctx.oidc.session.grantIdFor(ctx.oidc.client.clientId);
      if (grantId) return ctx.oidc.provider.Grant.find(grantId);
      const grant = new ctx.oidc.provider.Grant({
        clientId: ctx.oidc.client.clientId,
        accountId: ctx.oidc.session.accountId,
      });
      grant.addOIDCScope('openid email');
      grant.addOIDCClaims(['email', 'email_verified']);
      await grant.save();
      return grant;
    },
  });
  p.on('server_error', (ctx, err) => console.error('provider server_error', err));
  return p;
}

/** The login step: signs in as the chosen account at once. */
async function interaction(req, res) {
  try {
    const details = await provider.interactionDetails(req, res);
    let result;
    if (details.prompt.name === 'login') {
      result = { login: { accountId: nextAccount } };
    } else {
      const grant = new provider.Grant({
        accountId: details.session.accountId,
        clientId: details.params.client_id,
      });
      grant.addOIDCScope('openid email');
      result = { consent: { grantId: await grant.save() } };
    }
    await provider.interactionFinished(req, res, result, { mergeWithLastSubmission: false });
  } catch (e) {
    console.error('interaction failed', e);
    reply(res, 500, String(e));
  }
}

const server = http.createServer(async (req, res) => {
  try {
    if (req.method === 'POST' && req.url === '/__test/setup') {
      provider = setup(await readJson(req));
      return reply(res, 204, '');
    }
    if (req.method === 'POST' && req.url === '/__test/account') {
      const { account } = await readJson(req);
      if (!ACCOUNTS[account]) return reply(res, 400, `no account ${account}`);
      nextAccount = account;
      return reply(res, 204, '');
    }
    if (!provider) return reply(res, 503, 'POST /__test/setup first');
    if (req.url.startsWith('/interaction/')) return interaction(req, res);
    return provider.callback()(req, res);
  } catch (e) {
    console.error('request failed', e);
    return reply(res, 500, String(e));
  }
});

server.listen(0, '127.0.0.1', () => {
  issuer = `http://127.0.0.1:${server.address().port}`;
  console.log(`ISSUER ${issuer}`);
});
for (const sig of ['SIGTERM', 'SIGINT']) process.on(sig, () => process.exit(0));
