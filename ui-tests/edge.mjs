// Edge hardening in a real browser (issue 19, items 2, 3 and 5): headless Chromium (Debian's
// /usr/bin/chromium) driven by playwright-core. Run by crates/burrow/tests/edge_browser.rs,
// which starts a real server with base_domain `burrow.test` (every name of it resolved to
// loopback here) and two devices behind real tunnels:
//   A_URL    a public tunnel: an attacker's page; `/set` sets `planted=1; Domain=burrow.test`
//   B_URL    a `require_auth` tunnel: `/page`, `/cookies` (the Cookie header it got),
//            `/ws` (WebSocket echo), `POST /submit` (counted by the Rust side)
//   EMAIL / PASSWORD   a member allowed on B
//   CHROMIUM the browser (default /usr/bin/chromium)
// Prints one JSON line `RESULT {...}` for the Rust side to check. Bounded waits only.
import { chromium } from 'playwright-core';

const env = (k, d) => {
  const v = process.env[k] ?? d;
  if (v === undefined) throw new Error(`missing environment variable ${k}`);
  return v;
};
const A = env('A_URL').replace(/\/$/, '');
const B = env('B_URL').replace(/\/$/, '');
const EMAIL = env('EMAIL');
const PASSWORD = env('PASSWORD');
const CHROMIUM = env('CHROMIUM', '/usr/bin/chromium');

const browser = await chromium.launch({
  executablePath: CHROMIUM,
  args: ['--host-resolver-rules=MAP *.burrow.test 127.0.0.1, MAP burrow.test 127.0.0.1'],
});
const result = {};
try {
  const context = await browser.newContext();
  const page = await context.newPage();
  page.setDefaultTimeout(15000);

  // Item 5: the whole login handoff in the browser — tunnel B sends it to the API host with a
  // state cookie, the built-in form signs in, the code comes back bound to that state.
  await page.goto(`${B}/page`);
  await page.waitForSelector('input[name=password]');
  await page.fill('input[name=email]', EMAIL);
  await page.fill('input[name=password]', PASSWORD);
  await Promise.all([page.waitForURL(`${B}/page`), page.click('button[type=submit]')]);
  result.logged_in = (await page.textContent('h1')) === 'B page';

  // B's own page opens a WebSocket to B with its cookie (the legitimate case).
  result.own_ws = await page.evaluate(
    (url) =>
      new Promise((resolve) => {
        const ws = new WebSocket(url);
        const t = setTimeout(() => resolve('timeout'), 10000);
        ws.onopen = () => {
          clearTimeout(t);
          ws.close();
          resolve('open');
        };
        ws.onerror = () => {
          clearTimeout(t);
          resolve('error');
        };
      }),
    `${B.replace(/^http/, 'ws')}/ws`,
  );

  // Item 3: A's device sets a cookie for the whole domain; it must stay on A.
  await page.goto(`${A}/set`);
  await page.goto(`${A}/`);
  result.a_cookies = await page.evaluate(() => document.cookie);
  await page.goto(`${B}/cookies`);
  result.b_saw_cookie = await page.textContent('pre');

  // Item 2: A's page (same site as B) tries B's cookie on a WebSocket and on a form post.
  await page.goto(`${A}/`);
  result.cross_ws = await page.evaluate(
    (url) =>
      new Promise((resolve) => {
        const ws = new WebSocket(url);
        const t = setTimeout(() => resolve('timeout'), 10000);
        ws.onopen = () => {
          clearTimeout(t);
          ws.close();
          resolve('open');
        };
        ws.onerror = () => {
          clearTimeout(t);
          resolve('error');
        };
      }),
    `${B.replace(/^http/, 'ws')}/ws`,
  );
  result.cross_post = await page.evaluate(async (url) => {
    try {
      await fetch(url, {
        method: 'POST',
        mode: 'no-cors',
        credentials: 'include',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: 'transfer=all',
      });
      return 'sent';
    } catch (e) {
      return `error: ${e}`;
    }
  }, `${B}/submit`);
} finally {
  await browser.close();
}
console.log(`RESULT ${JSON.stringify(result)}`);
