// A tunnel's Domains panel in a real browser: headless Chromium (Debian's /usr/bin/chromium)
// driven by playwright-core. Run by crates/burrow/tests/web_domains.rs, which starts a real
// server with a device and a tunnel and passes in the environment:
//   BURROW_URL                          the server, e.g. http://localhost:PORT
//   BURROW_ADMIN_EMAIL / BURROW_ADMIN_PASSWORD
//   TUNNEL_PAGE                         the tunnel's page, e.g. /reverse-tunnels/DSN/ID
//   HOSTNAME_TO_ADD                     the custom hostname to add
//   SCREENSHOT_DIR / CHROMIUM
// At each checkpoint this prints `CHECK <name> <json>` and waits for the Rust side to answer
// `ok` on stdin once it has checked the server's state through the API. No domain becomes
// active here (no DNS records exist): the page must show whatever status the API gives.
// Every wait is bounded.
import { chromium } from 'playwright-core';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import readline from 'node:readline';

const env = (k, d) => {
  const v = process.env[k] ?? d;
  if (v === undefined) throw new Error(`missing environment variable ${k}`);
  return v;
};
const URL_ = env('BURROW_URL').replace(/\/$/, '');
const ADMIN = env('BURROW_ADMIN_EMAIL');
const ADMIN_PASSWORD = env('BURROW_ADMIN_PASSWORD');
const PAGE = env('TUNNEL_PAGE');
const HOST = env('HOSTNAME_TO_ADD');
const SHOTS = env('SCREENSHOT_DIR');
const CHROMIUM = env('CHROMIUM', '/usr/bin/chromium');
// The panel's refresh period (DOMAIN_POLL_MS in domains.js).
const POLL_MS = 3000;

mkdirSync(SHOTS, { recursive: true });

let passed = 0;
const problems = []; // JavaScript errors and CSP violations seen in the page
const replies = readline.createInterface({ input: process.stdin })[Symbol.asyncIterator]();

function step(name) {
  passed += 1;
  console.log(`ok ${passed} - ${name}`);
}

function check(cond, msg) {
  if (!cond) throw new Error(`check failed: ${msg}`);
}

/** Hands over to the Rust side, which checks the server through the API and answers "ok". */
async function checkpoint(name, data = {}) {
  console.log(`CHECK ${name} ${JSON.stringify(data)}`);
  const { value, done } = await replies.next();
  check(!done && value.trim() === 'ok', `the Rust side answered checkpoint ${name} with ${done ? 'EOF' : value}`);
  step(`checkpoint ${name}: the API agrees`);
}

/** Polls `fn` (every 250 ms) until it answers truthy, for at most `ms`. */
async function until(what, fn, ms = 20000) {
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

const text = async (page, sel) => ((await page.locator(sel).textContent({ timeout: 1000 })) || '').trim();
const shot = (page, name) => page.screenshot({ path: path.join(SHOTS, `${name}.png`), fullPage: true });

/** The API's list of the tunnel's domains, fetched from the page with its own session. */
async function apiDomains(page) {
  const m = /^\/reverse-tunnels\/([^/]+)\/(\d+)$/.exec(PAGE);
  const apiPath = `/api/v1/reverse-tunnels/devices/${m[1]}/reverse-tunnels/${m[2]}/domains`;
  return page.evaluate(async (p) => {
    const r = await fetch(p, { headers: { authorization: `Bearer ${sessionStorage.getItem('burrow.token')}` } });
    return r.json();
  }, apiPath);
}

async function main() {
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  let page;
  try {
    const ctx = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    ctx.setDefaultTimeout(20000);
    // localhost is a secure context: the copy buttons use the Clipboard API.
    await ctx.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: URL_ });
    page = await ctx.newPage();
    page.on('pageerror', (e) => problems.push(`page error on ${page.url()}: ${e.message}`));
    page.on('console', (m) => {
      if (m.type() === 'error' && /Content Security Policy|Uncaught/i.test(m.text())) problems.push(`console: ${m.text()}`);
    });
    await scenario(page);
  } catch (e) {
    if (page) await shot(page, 'domains-failure').catch(() => {});
    throw e;
  } finally {
    await browser.close();
  }
}

async function scenario(page) {
  // The panel's own refreshes, counted (GET .../domains).
  let listCalls = 0;
  page.on('request', (r) => {
    if (r.method() === 'GET' && /\/domains$/.test(new URL(r.url()).pathname)) listCalls += 1;
  });

  await page.goto(`${URL_}/`);
  await page.waitForURL(/\/login$/);
  await page.getByLabel('Email').fill(ADMIN);
  await page.getByLabel('Password').fill(ADMIN_PASSWORD);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.waitForURL(/\/reverse-tunnels$/);
  await page.goto(`${URL_}${PAGE}`);
  const panel = page.locator('#domains');
  await panel.getByRole('heading', { name: 'Domains' }).waitFor();
  await until('the empty list', async () => (await text(page, '#domains .empty')).includes('No custom domains'));
  step('the tunnel page has a Domains panel, empty');

  // --- add: the records to publish, exactly as the API has them ---
  await page.locator('#domain-hostname').fill(HOST);
  await panel.getByRole('button', { name: 'Add domain' }).click();
  const box = page.locator('#domain-records .records-box');
  await box.waitFor();
  const shown = {
    hostname: HOST,
    txt_type: await text(page, '#record-txt .badge'),
    txt_name: await text(page, '#record-txt .record-name'),
    txt_value: await text(page, '#record-txt .record-value'),
    cname_type: await text(page, '#record-cname .badge'),
    cname_name: await text(page, '#record-cname .record-name'),
    cname_value: await text(page, '#record-cname .record-value'),
  };
  check(shown.txt_type === 'TXT' && shown.cname_type === 'CNAME', `record types: ${JSON.stringify(shown)}`);
  check(await page.locator('#domain-hostname').inputValue() === '', 'the form is cleared after adding');
  check(await page.locator('#domain-records .domain-converted').count() === 0, 'no punycode note for an ASCII name');
  const [api] = (await apiDomains(page)).items;
  check(api && api.verification.value === shown.txt_value && api.target.value === shown.cname_value,
    `the page shows the API's records: ${JSON.stringify(shown)} vs ${JSON.stringify(api)}`);
  await shot(page, 'domains-added');
  step('adding a domain shows its TXT and CNAME records');
  await checkpoint('added', shown);

  // The copy buttons copy exactly the value.
  await page.locator('#record-txt').getByRole('button', { name: 'Copy the TXT value' }).click();
  const copied = await page.evaluate(() => navigator.clipboard.readText());
  check(copied === shown.txt_value, `copied ${copied}`);
  await page.locator('#record-cname').getByRole('button', { name: 'Copy the CNAME value' }).click();
  check(await page.evaluate(() => navigator.clipboard.readText()) === shown.cname_value, 'CNAME value copied');
  step('the copy buttons copy the record values');

  // The row: the status badge and reason the API gives (kept up to date by the panel).
  const row = page.locator(`#domains-table tr[data-hostname="${HOST}"]`);
  await row.waitFor();
  let agreed;
  await until('the row shows the API’s status and reason', async () => {
    const [d] = (await apiDomains(page)).items;
    const status = await row.locator('.domain-status').getAttribute('data-status', { timeout: 1000 });
    const reason = (await row.locator('.domain-reason').textContent({ timeout: 1000 })).trim();
    agreed = { status, reason, api_status: d.status, api_reason: d.status_reason };
    return status === d.status && reason === (d.status_reason || '—');
  });
  check(!['active', 'failed'].includes(agreed.status), `no DNS records: not settled (${agreed.status})`);
  const badge = await text(page, `#domains-table tr[data-hostname="${HOST}"] .domain-status`);
  check(badge.length > 0, 'the badge has a label');
  step(`the row shows status ${agreed.status} (“${badge}”) and its reason, as the API says`);

  // Pending: the panel refreshes by itself.
  const before = listCalls;
  await until('two refreshes of the panel by itself', async () => listCalls >= before + 2, 4 * POLL_MS);
  step('while a domain is pending, the panel refreshes every few seconds');

  // --- refusals, in the API's words, next to the field ---
  await page.locator('#domain-hostname').fill('*.x.com');
  await panel.getByRole('button', { name: 'Add domain' }).click();
  await until('the 422 message', async () => (await text(page, '#domain-hostname-error')).includes('wildcards are not supported'));
  check(await page.locator('#domain-hostname').getAttribute('aria-invalid') === 'true', 'the field is marked invalid');
  await page.locator('#domain-hostname').fill(HOST);
  await panel.getByRole('button', { name: 'Add domain' }).click();
  await until('the 409 message', async () => (await text(page, '#domain-hostname-error')).includes(`${HOST} is already in use`));
  await shot(page, 'domains-refused');
  check((await apiDomains(page)).total === 1, 'nothing was added by the refused attempts');
  step('a wildcard (422) and a taken name (409) are refused with the API’s message');

  // --- check now ---
  await row.getByRole('button', { name: `Check ${HOST} now` }).click();
  await until('the toast', async () => (await text(page, '#toast')).includes(`Checking ${HOST} now`));
  step('“Check now” asks the server to check at once');
  await checkpoint('checked', { hostname: HOST });

  // --- remove, after a confirmation ---
  await row.getByRole('button', { name: `Remove ${HOST}` }).click();
  const dialog = page.getByRole('dialog', { name: `Remove ${HOST}?` });
  await dialog.getByRole('button', { name: 'Cancel' }).click();
  await dialog.waitFor({ state: 'detached' });
  check(await row.count() === 1, 'cancel keeps the domain');
  await row.getByRole('button', { name: `Remove ${HOST}` }).click();
  await dialog.getByRole('button', { name: 'Remove domain' }).click();
  await until('the row gone', async () => (await row.count()) === 0);
  await until('the records box gone', async () => (await box.count()) === 0);
  check((await text(page, '#domains .empty')).includes('No custom domains'), 'the list is empty again');
  check((await apiDomains(page)).total === 0, 'the API lists no domain');
  step('removing asks first, then the domain is gone from the list');
  await checkpoint('removed', { hostname: HOST });

  // Leaving the page ends the panel's refreshes: with a pending domain again, none follow.
  await page.locator('#domain-hostname').fill(`again.${HOST}`);
  await panel.getByRole('button', { name: 'Add domain' }).click();
  await page.locator(`#domains-table tr[data-hostname="again.${HOST}"]`).waitFor();
  await page.getByRole('link', { name: '← Reverse Tunnels' }).click();
  await page.waitForURL(/\/reverse-tunnels(\?.*)?$/);
  const left = listCalls;
  // Absence can only be watched for a while: longer than one refresh period.
  await page.waitForTimeout(POLL_MS + 1500);
  check(listCalls === left, `no refresh after leaving the page (${listCalls - left} seen)`);
  step('leaving the tunnel page stops the panel’s refreshes');

  check(problems.length === 0, `no JavaScript errors or CSP violations:\n${problems.join('\n')}`);
  step('no JavaScript errors or CSP violations');
}

try {
  await main();
  console.log(`domains: ${passed} passed, 0 failed`);
} catch (e) {
  console.error(`not ok - ${e.stack || e}`);
  if (problems.length) console.error(`page problems:\n${problems.join('\n')}`);
  console.log(`domains: ${passed} passed, 1 failed`);
  process.exitCode = 1;
} finally {
  replies.return?.();
  process.stdin.destroy();
}
