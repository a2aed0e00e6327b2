// Browser tests of burrow's web UI: headless Chromium (Debian's /usr/bin/chromium) driven by
// playwright-core. Run by crates/burrow/tests/web_ui.rs, which starts a real server and a
// local HTTP service and passes them in the environment:
//   BURROW_URL            the server, e.g. http://localhost:PORT
//   BURROW_ADMIN_EMAIL / BURROW_ADMIN_PASSWORD
//   BURROW_BIN            the burrow binary (the agent is enrolled and run with it)
//   SERVICE_PORT          the local service the tunnel exposes (answers SERVICE_TEXT)
//   SERVICE_TEXT          text of the local service's page
//   EXPIRED_TOKEN         a JWT of the admin signed with the server's key, already expired
//   AGENT_DIR             where the agent keeps its identity
//   SCREENSHOT_DIR        where screenshots go
//   CHROMIUM              the browser (default /usr/bin/chromium)
// Every wait is a bounded poll; nothing sleeps for a fixed time.
import { chromium } from 'playwright-core';
import { spawn } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import path from 'node:path';

const env = (k, d) => {
  const v = process.env[k] ?? d;
  if (v === undefined) throw new Error(`missing environment variable ${k}`);
  return v;
};
const URL_ = env('BURROW_URL').replace(/\/$/, '');
const EMAIL = env('BURROW_ADMIN_EMAIL');
const PASSWORD = env('BURROW_ADMIN_PASSWORD');
const BIN = env('BURROW_BIN');
const SERVICE_PORT = env('SERVICE_PORT');
const SERVICE_TEXT = env('SERVICE_TEXT');
const EXPIRED_TOKEN = env('EXPIRED_TOKEN');
const AGENT_DIR = env('AGENT_DIR');
const SHOTS = env('SCREENSHOT_DIR');
const CHROMIUM = env('CHROMIUM', '/usr/bin/chromium');
const DSN = 'ROBOT-UI-1';

mkdirSync(SHOTS, { recursive: true });

let passed = 0;
const children = [];
const problems = []; // JavaScript errors and CSP violations seen in any page

function step(name) {
  passed += 1;
  console.log(`ok ${passed} - ${name}`);
}

function check(cond, msg) {
  if (!cond) throw new Error(`check failed: ${msg}`);
}

/** Polls `fn` (every 250 ms) until it answers truthy, for at most `ms`. */
async function until(what, fn, ms = 30000) {
  const deadline = Date.now() + ms;
  let last;
  for (;;) {
    try {
      last = await fn();
      if (last) return last;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for: ${what} (last: ${last})`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

async function shot(page, name) {
  await page.screenshot({ path: path.join(SHOTS, `${name}.png`), fullPage: true });
}

function run(args, extraEnv) {
  return new Promise((resolve, reject) => {
    const child = spawn(BIN, args, { env: { ...process.env, ...extraEnv }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d) => { out += d; });
    child.stderr.on('data', (d) => { out += d; });
    child.on('error', reject);
    child.on('exit', (code) => (code === 0 ? resolve(out) : reject(new Error(`burrow ${args[0]} ${args[1]} exited ${code}: ${out}`))));
  });
}

function watch(page) {
  page.on('pageerror', (e) => problems.push(`page error on ${page.url()}: ${e.message}`));
  page.on('console', (m) => {
    if (m.type() === 'error' && /Content Security Policy|Uncaught/i.test(m.text())) problems.push(`console on ${page.url()}: ${m.text()}`);
  });
}

const rowOf = (page, name) => page.locator(`#tunnels tbody tr[data-name="${name}"]`);
const clipboard = (page) => page.evaluate(() => navigator.clipboard.readText());

async function main() {
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  const context = await browser.newContext({ viewport: { width: 1280, height: 860 } });
  await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: URL_ });
  context.setDefaultTimeout(20000);
  const page = await context.newPage();
  watch(page);
  try {
    await scenario(context, page);
  } catch (e) {
    await shot(page, 'failure').catch(() => {});
    throw e;
  } finally {
    await browser.close();
  }
}

async function scenario(context, page) {
  // --- Login: a wrong password is said in words; the keyboard alone signs in. ---
  await page.goto(`${URL_}/`);
  await page.waitForURL(/\/login$/);
  await page.getByLabel('Email').waitFor();
  await shot(page, 'login');
  check(await page.locator('#top').isHidden(), 'no navigation bar before signing in');
  await page.getByLabel('Email').fill(EMAIL);
  await page.getByLabel('Password').fill('not-the-password');
  await page.keyboard.press('Enter');
  await until('wrong password message', async () => (await page.locator('#login-error').textContent()).includes('Wrong email or password'));
  step('a wrong password answers "Wrong email or password"');

  await page.getByLabel('Email').focus();
  await page.keyboard.press('Tab');
  check(await page.evaluate(() => document.activeElement.id === 'login-password'), 'Tab moves from email to password');
  await page.keyboard.type(PASSWORD);
  await page.keyboard.press('Enter');
  await page.waitForURL(/\/reverse-tunnels$/);
  await page.getByRole('heading', { name: 'Reverse Tunnels' }).waitFor();
  await until('empty state', async () => (await page.locator('#tunnels-empty').textContent()).includes('No devices yet'));
  check(await page.evaluate(() => !!sessionStorage.getItem('burrow.token')), 'the JWT is kept in sessionStorage');
  check(!page.url().includes('token'), 'no token in the URL');
  step('signs in with the keyboard; the token lives in sessionStorage only');

  // --- Devices: register, enrollment command shown once and copied; conflict and validation. ---
  await page.getByRole('link', { name: 'Devices' }).click();
  await page.waitForURL(/\/devices$/);
  await page.getByLabel('New project name').fill('Robots');
  await page.getByLabel('Device serial number (DSN)').fill('bad dsn!');
  await page.getByLabel('Name', { exact: true }).fill('Robot 1');
  await page.getByRole('button', { name: 'Register device' }).click();
  await until('dsn validation error', async () => (await page.locator('#d-dsn-error').textContent()).includes('dsn must be 1-64 characters'));
  check(await page.getByLabel('Device serial number (DSN)').getAttribute('aria-invalid') === 'true', 'the DSN field is marked invalid');
  step('a 422 from the API is shown next to the DSN field');

  await page.getByLabel('Device serial number (DSN)').fill(DSN);
  await page.getByRole('button', { name: 'Register device' }).click();
  const command = await until('enrollment command', async () => {
    const t = await page.locator('#enroll-command').textContent({ timeout: 1000 });
    return t && t.includes('burrow-agent enroll') ? t : null;
  });
  check(await page.locator('#d-dsn').getAttribute('aria-invalid') === null, 'the DSN error is cleared');
  await page.getByRole('button', { name: 'Copy command' }).click();
  await until('command on the clipboard', async () => (await clipboard(page)) === command);
  await shot(page, 'devices-enroll');
  step('registers a device; its enrollment command is shown and copied');

  await page.getByLabel('Device serial number (DSN)').fill(DSN);
  await page.getByLabel('Name', { exact: true }).fill('Robot 1 again');
  await page.getByRole('button', { name: 'Register device' }).click();
  await until('conflict message', async () => {
    const t = await page.locator('#d-dsn-error').textContent();
    return t.includes('Conflict') && t.includes('a device with this dsn exists');
  });
  await shot(page, 'devices-conflict');
  step('a 409 (DSN taken) is shown next to the DSN field');

  // --- The agent: enrolled with the command the UI showed, then run. ---
  // `burrow agent` is the same program as the standalone `burrow-agent` the page names.
  const token = /BURROW_ENROLLMENT_TOKEN='([^']+)'/.exec(command)?.[1];
  const server = /--server (\S+)/.exec(command)?.[1];
  const pin = /--ca-sha256 ([0-9a-f]{64})\b/.exec(command)?.[1];
  check(token && pin && server && new URL(server).port === new URL(URL_).port,
    `the command names the token, this server and the CA fingerprint: ${command}`);
  await run(['agent', 'enroll', '--server', server, '--ca-sha256', pin, '--dir', AGENT_DIR], { BURROW_ENROLLMENT_TOKEN: token });
  const agent = spawn(BIN, ['agent', 'run', '--dir', AGENT_DIR], { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, RUST_LOG: 'warn' } });
  children.push(agent);
  let agentLog = '';
  agent.stderr.on('data', (d) => { agentLog += d; });
  agent.on('exit', (code) => { if (code !== null && code !== 0) problems.push(`agent exited ${code}: ${agentLog}`); });

  await page.getByRole('button', { name: 'Done' }).click();
  check(await page.locator('#enroll-command').count() === 0, 'the enrollment command is gone after Done');
  const deviceRow = page.locator(`#devices tr[data-dsn="${DSN}"]`);
  await until('device online', async () => (await deviceRow.textContent()).includes('Online'));
  check(!(await deviceRow.textContent()).includes('never'), 'last seen is shown');
  await shot(page, 'devices');
  step('the enrolled agent shows as online, with its last contact');

  // --- Reverse tunnels: the banner, the create dialog and its errors. ---
  await page.getByRole('link', { name: `Tunnels of ${DSN}` }).click();
  await page.waitForURL(/\/reverse-tunnels\?device=/);
  await until('online banner', async () => {
    const t = await page.locator('#device-banner').textContent();
    return t.includes('is online') && t.includes('within seconds');
  });
  step('the banner says the device is online and changes reach it within seconds');

  await page.getByRole('button', { name: 'New tunnel' }).click();
  const dialog = page.locator('#create-dialog');
  await dialog.waitFor();
  check(await dialog.getByLabel('Local port').inputValue() === '8080', 'local port defaults to 8080');
  check(await dialog.getByLabel('Require authentication').isChecked(), 'authentication is required by default');
  check((await dialog.getByLabel('Protocol').locator('option').allTextContents()).join(',') === 'http,https,ws,wss', 'protocols');
  await until('members listed', async () => (await dialog.locator('fieldset').textContent()).includes(EMAIL));
  await dialog.getByLabel('Name', { exact: true }).fill('Dashboard');
  await dialog.getByLabel('Description').fill('Robot control interface');
  await dialog.getByLabel('Local port').fill('70000');
  await dialog.getByRole('button', { name: 'Create tunnel' }).click();
  await until('port validation error', async () => (await page.locator('#t-port-error').textContent()).includes('must be 1-65535'));
  check(await dialog.getByLabel('Local port').getAttribute('aria-invalid') === 'true', 'the port field is marked invalid');
  check(await page.evaluate(() => document.activeElement.id === 't-port'), 'focus moves to the field in error');
  await shot(page, 'create-validation');
  step('a 422 (local_port) is shown next to the port field, which gets focus');

  await dialog.getByLabel('Local port').fill(SERVICE_PORT);
  await dialog.getByRole('button', { name: 'Create tunnel' }).click();
  await dialog.waitFor({ state: 'detached' });
  const row = rowOf(page, 'Dashboard');
  await row.waitFor();
  check((await row.textContent()).includes(`http://localhost:${SERVICE_PORT}`), 'target protocol://localhost:port');
  step('creates a tunnel through the dialog');

  // A taken subdomain: the API's 409, said next to the subdomain field.
  const publicHref = await row.locator('[data-role="open"]').getAttribute('href');
  const label = new URL(publicHref).hostname.split('.')[0];
  await page.getByRole('button', { name: 'New tunnel' }).click();
  await dialog.getByLabel('Name', { exact: true }).fill('Second');
  await dialog.getByLabel('Local port').fill(SERVICE_PORT);
  await dialog.getByLabel('Subdomain (optional)').fill(label);
  await dialog.getByRole('button', { name: 'Create tunnel' }).click();
  await until('subdomain conflict', async () => (await page.locator('#t-subdomain-error').textContent()).includes('Conflict: this subdomain is already taken'));
  await shot(page, 'create-conflict');
  await page.keyboard.press('Escape');
  await dialog.waitFor({ state: 'detached' });
  check(await rowOf(page, 'Second').count() === 0, 'nothing created on conflict');
  step('a 409 (subdomain taken) is shown next to the subdomain field; Escape closes the dialog');

  await until('agent connected', async () => (await row.textContent()).includes('Agent connected'));
  check((await row.textContent()).includes('expires'), 'expiry shown');
  check((await row.locator('[data-role="requests"]').getAttribute('data-count')) === '0', 'no requests yet');
  await shot(page, 'tunnels');
  step('the tunnel shows its agent connected and its expiry');

  // --- Copy the public URL. ---
  await row.getByRole('button', { name: 'Copy public URL of Dashboard' }).click();
  await until('URL on the clipboard', async () => (await clipboard(page)) === publicHref);
  check(publicHref.startsWith('http://') && publicHref.includes('.localhost:'), `public URL ${publicHref}`);
  step(`copies the public URL ${publicHref}`);

  // --- Toggle off and on. ---
  const toggle = row.getByRole('switch', { name: 'Enabled: Dashboard' });
  check(await toggle.isChecked(), 'enabled at first');
  await toggle.click();
  await until('disabled', async () => (await row.textContent()).includes('Disabled') && !(await toggle.isChecked()));
  await shot(page, 'tunnels-disabled');
  await toggle.focus();
  await page.keyboard.press('Space');
  await until('enabled and connected again', async () => (await toggle.isChecked()) && (await row.textContent()).includes('Agent connected'));
  step('toggles the tunnel off and on (the agent reconnects within seconds)');

  // --- Open the public URL: the edge asks to sign in, then the local service's page. ---
  const [pub] = await Promise.all([context.waitForEvent('page'), row.locator('[data-role="open"]').click()]);
  watch(pub);
  await pub.waitForLoadState();
  if (await pub.locator('input[name="password"]').count()) {
    await pub.locator('input[name="email"]').fill(EMAIL);
    await pub.locator('input[name="password"]').fill(PASSWORD);
    await Promise.all([pub.waitForNavigation(), pub.locator('button[type="submit"]').click()]);
  }
  await until('the local service page', async () => (await pub.textContent('body')).includes(SERVICE_TEXT));
  check(new URL(pub.url()).hostname === new URL(publicHref).hostname, `served at the public host (${pub.url()})`);
  await shot(pub, 'public-url');
  await pub.reload();
  await until('the local service page again', async () => (await pub.textContent('body')).includes(SERVICE_TEXT));
  await pub.close();
  step('the public URL shows the local service through the real agent');

  // --- The count rises without a reload (counters are flushed every 5 s; the page polls). ---
  const requests = row.locator('[data-role="requests"]');
  await until('request count >= 2', async () => Number(await requests.getAttribute('data-count')) >= 2, 30000);
  check((await row.textContent()).includes('last '), 'last accessed shown');
  step(`the request count rose to ${await requests.getAttribute('data-count')} without a reload`);

  // Phone-sized: the same page, readable as cards.
  await page.setViewportSize({ width: 390, height: 844 });
  await shot(page, 'tunnels-phone');
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  check(overflow <= 0, `no horizontal scrolling on a phone (overflow ${overflow}px)`);
  await page.setViewportSize({ width: 1280, height: 860 });
  step('readable on a phone: no horizontal scrolling');

  // --- The tunnel's detail view: lifecycle and access log. ---
  await row.getByRole('link', { name: 'Details of Dashboard' }).click();
  await page.waitForURL(/\/reverse-tunnels\/ROBOT-UI-1\/\d+$/);
  await until('lifecycle OPEN', async () => (await page.locator('#lifecycle-state').textContent()) === 'OPEN');
  check((await page.locator('#lifecycle').textContent()).includes('Connected'), 'agent connected in lifecycle');
  await until('access log rows', async () => (await page.locator('#access-log tbody tr').count()) >= 2);
  check((await page.locator('#access-log tbody').textContent()).includes('GET /'), 'access log shows GET /');
  await shot(page, 'tunnel-detail');
  step('the detail view shows the lifecycle state and the access log');

  // --- Sharing: an API key and a share link, each shown once; revoke; IP rules; audit. ---
  await page.fill('#key-name', 'monitoring');
  await page.getByRole('button', { name: 'Create API key' }).click();
  await until('key shown once', async () => ((await page.locator('#sharing-secret code').textContent().catch(() => '')) || '').startsWith('bk_'));
  const key = await page.locator('#sharing-secret code').textContent();
  await until('key listed', async () => (await page.locator('#api-keys tbody tr').count()) === 1);
  check(!(await page.locator('#api-keys tbody').textContent()).includes(key), 'the key is not in the list');
  await page.getByRole('button', { name: 'Create share link' }).click();
  await until('link shown once', async () => ((await page.locator('#sharing-secret code').textContent()) || '').includes('/__burrow/share/bs_'));
  await until('link listed', async () => (await page.locator('#share-links tbody tr').count()) === 1);
  await shot(page, 'tunnel-sharing');
  await page.locator('#api-keys tbody tr').getByRole('button', { name: /^Revoke key/ }).click();
  const revokeDlg = page.getByRole('dialog', { name: 'Revoke API key?' });
  await revokeDlg.waitFor();
  await revokeDlg.getByRole('button', { name: 'Revoke' }).click();
  await until('key revoked', async () => (await page.locator('#api-keys tbody').textContent()).includes('Revoked'));
  await page.fill('#ip-deny', 'not-a-cidr');
  await page.getByRole('button', { name: 'Save IP rules' }).click();
  await until('CIDR error', async () => ((await page.locator('#ip-deny-error').textContent()) || '').includes('CIDR'));
  await page.fill('#ip-deny', '203.0.113.0/24');
  await page.getByRole('button', { name: 'Save IP rules' }).click();
  await until('rules saved', async () => ((await page.locator('#ip-deny-error').textContent()) || '') === '');
  await until('audit log', async () => (await page.locator('#sharing-audit-table tbody tr').count()) >= 4);
  check((await page.locator('#sharing-audit-table tbody').textContent()).includes('api_key.revoke'), 'audit shows the revoke');
  step('the Sharing panel creates a key and a link (each shown once), revokes, saves IP rules and shows the audit log');

  // --- Delete, with a confirmation. ---
  await page.getByRole('link', { name: '← Reverse Tunnels' }).click();
  await rowOf(page, 'Dashboard').waitFor();
  await rowOf(page, 'Dashboard').getByRole('button', { name: 'Delete Dashboard' }).click();
  const confirm = page.getByRole('dialog', { name: 'Delete Dashboard?' });
  await confirm.waitFor();
  await shot(page, 'delete-confirm');
  await confirm.getByRole('button', { name: 'Cancel' }).click();
  check(await rowOf(page, 'Dashboard').count() === 1, 'Cancel keeps the tunnel');
  await rowOf(page, 'Dashboard').getByRole('button', { name: 'Delete Dashboard' }).click();
  await confirm.getByRole('button', { name: 'Delete tunnel' }).click();
  await until('row gone', async () => (await rowOf(page, 'Dashboard').count()) === 0);
  await until('empty state', async () => (await page.locator('#tunnels-empty').isVisible()));
  // In the browser (Node's resolver does not know *.localhost); the edge may cache a route briefly.
  const probe = await context.newPage();
  watch(probe);
  await until('public URL gone', async () => (await probe.goto(publicHref)).status() === 404);
  await probe.close();
  step('deletes the tunnel after confirmation; its URL answers 404');

  // --- An expired session: back to the login page, with a message, then back where we were. ---
  await page.getByRole('link', { name: 'Devices' }).click();
  await page.waitForURL(/\/devices$/);
  await page.evaluate((t) => sessionStorage.setItem('burrow.token', t), EXPIRED_TOKEN);
  await page.reload();
  await page.waitForURL(/\/login$/);
  await until('expired notice', async () => (await page.locator('#login-notice').textContent()).includes('Your session has expired'));
  check(await page.evaluate(() => sessionStorage.getItem('burrow.token') === null), 'the expired token is dropped');
  check(await page.locator('#top').isHidden(), 'no navigation bar on the login page');
  await shot(page, 'login-expired');
  await page.getByLabel('Email').fill(EMAIL);
  await page.getByLabel('Password').fill(PASSWORD);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.waitForURL(/\/devices$/);
  step('an expired session (401) goes back to the login page with a message, then back to the page');

  // --- Revoke the device, with a confirmation. ---
  await page.getByRole('button', { name: `Revoke ${DSN}` }).click();
  await page.getByRole('dialog', { name: 'Revoke Robot 1?' }).getByRole('button', { name: 'Revoke device' }).click();
  await until('revoked', async () => (await page.locator(`#devices tr[data-dsn="${DSN}"]`).textContent()).includes('Revoked'));
  await shot(page, 'devices-revoked');
  step('revokes the device after confirmation');

  // --- Log out. ---
  await page.getByRole('button', { name: 'Log out' }).click();
  await page.waitForURL(/\/login$/);
  await until('signed out notice', async () => (await page.locator('#login-notice').textContent()).includes('signed out'));
  check(await page.evaluate(() => sessionStorage.getItem('burrow.token') === null), 'token dropped on logout');
  await page.goto(`${URL_}/reverse-tunnels`);
  await page.waitForURL(/\/login$/);
  step('logs out; pages then ask to sign in');

  check(problems.length === 0, `no JavaScript errors or CSP violations:\n${problems.join('\n')}`);
  step('no JavaScript errors or CSP violations in any page');
}

try {
  await main();
  console.log(`ui-tests: ${passed} passed, 0 failed`);
} catch (e) {
  console.error(`not ok - ${e.stack || e}`);
  if (problems.length) console.error(`page problems:\n${problems.join('\n')}`);
  console.log(`ui-tests: ${passed} passed, 1 failed`);
  process.exitCode = 1;
} finally {
  for (const c of children) c.kill('SIGTERM');
}
