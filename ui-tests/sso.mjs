// Single sign-on in a real browser: headless Chromium (playwright-core) through a real OpenID
// provider (oidc-provider.mjs). Run by crates/burrow/tests/oidc_browser.rs with:
//   API      the web UI's origin (http://burrow.test:<port>; every *.burrow.test is loopback)
//   B_URL    a `require_auth` tunnel whose `/page` shows <h1>B page</h1>
//   EMAIL    who the provider signs in
//   SSO_ONLY_API  another server's origin, with password_login = false
//   CHROMIUM the browser (default /usr/bin/chromium)
// Prints one line `RESULT {...}` for the Rust side to check. Bounded waits only.
import { chromium } from 'playwright-core';

const env = (k, d) => {
  const v = process.env[k] ?? d;
  if (v === undefined) throw new Error(`missing environment variable ${k}`);
  return v;
};
const API = env('API').replace(/\/$/, '');
const B = env('B_URL').replace(/\/$/, '');
const EMAIL = env('EMAIL');

const browser = await chromium.launch({
  executablePath: env('CHROMIUM', '/usr/bin/chromium'),
  args: ['--host-resolver-rules=MAP *.burrow.test 127.0.0.1, MAP burrow.test 127.0.0.1'],
});
const result = {};
try {
  // The web UI: the SSO button, the provider, back with `#sso=`, traded for the token.
  const ui = await browser.newContext();
  const page = await ui.newPage();
  page.setDefaultTimeout(20000);
  await page.goto(`${API}/devices`);
  await page.waitForSelector('#sso-button');
  result.button = await page.textContent('#sso-button');
  result.password_form = await page.isVisible('#login-form');
  await page.click('#sso-button');
  await page.waitForFunction(
    (email) => document.querySelector('#who-email')?.textContent === email,
    EMAIL,
  );
  result.ui_email = await page.textContent('#who-email');
  result.ui_url = page.url();
  result.ui_heading = await page.textContent('main h1');
  // The same browser opens the tunnel without signing in again (the edge-login cookie).
  await page.goto(`${B}/page`);
  result.edge_same_browser = await page.textContent('h1');

  // A fresh browser opens the tunnel: the edge's form, its SSO button, the provider, back.
  const fresh = await browser.newContext();
  const tab = await fresh.newPage();
  tab.setDefaultTimeout(20000);
  await tab.goto(`${B}/page`);
  await tab.waitForSelector('#sso');
  result.edge_form_url = new URL(tab.url()).pathname;
  await Promise.all([tab.waitForURL(`${B}/page`), tab.click('#sso')]);
  result.edge_fresh_browser = await tab.textContent('h1');

  // A server with password sign-in off: the UI shows only the SSO button.
  const only = await browser.newContext();
  const login = await only.newPage();
  login.setDefaultTimeout(20000);
  await login.goto(`${env('SSO_ONLY_API')}/login`);
  await login.waitForSelector('#sso-button');
  result.sso_only_password_form = await login.isVisible('#login-form');
} catch (e) {
  result.error = String(e && e.stack ? e.stack : e);
} finally {
  await browser.close();
}
console.log(`RESULT ${JSON.stringify(result)}`);
