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
import http from 'node:http';

/** GET `url` on loopback (names under burrow.test resolve there), redirects not followed. */
function rawGet(url, cookie) {
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host: '127.0.0.1',
        port: u.port,
        path: u.pathname + u.search,
        headers: { host: u.host, cookie, accept: 'text/html' },
        timeout: 10000,
      },
      (res) => {
        res.resume();
        res.on('end', () => resolve({ status: res.statusCode, headers: res.headers }));
      },
    );
    req.on('error', reject);
    req.on('timeout', () => req.destroy(new Error(`timeout: ${url}`)));
    req.end();
  });
}

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
  // The sign-in form has the web UI's look: its accent on the button, the mark in the heading.
  result.login_look = await page.evaluate(() => ({
    button: getComputedStyle(document.querySelector('button[type=submit]')).backgroundColor,
    mark: Boolean(document.querySelector('h1 svg')),
  }));
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

  // Item 5, login CSRF: an attacker signs in in their own browser, keeps the callback link
  // (code) instead of following it, and gets the victim's browser to open it. The code is
  // bound to the attacker's state cookie: the victim is not signed in.
  const attacker = await browser.newContext();
  const apage = await attacker.newPage();
  apage.setDefaultTimeout(15000);
  await apage.goto(`${B}/page`);
  await apage.waitForSelector('input[name=password]');
  await apage.fill('input[name=email]', EMAIL);
  await apage.fill('input[name=password]', PASSWORD);
  await Promise.all([apage.waitForURL(`${B}/page`), apage.click('button[type=submit]')]);
  // Signed in on the API host; now a fresh login to B, stopped before the callback (plain
  // HTTP from here, with the attacker's cookies: the link is what they would send around).
  const jar = await attacker.cookies();
  const cookieFor = (url) =>
    jar
      .filter((c) => new URL(url).hostname === c.domain.replace(/^\./, ''))
      .map((c) => `${c.name}=${c.value}`)
      .join('; ');
  const toAuthorize = await rawGet(`${B}/page`, '');
  const authorize = toAuthorize.headers.location;
  const toCallback = await rawGet(authorize, cookieFor(authorize));
  const link = toCallback.headers.location;
  result.csrf_link = Boolean(link && link.includes('/__burrow/callback?code='));
  const victim = await browser.newContext();
  const vpage = await victim.newPage();
  vpage.setDefaultTimeout(15000);
  await vpage.goto(`${B}/page`); // the victim's browser has its own login state
  const answer = await vpage.goto(link);
  result.csrf_status = answer.status();
  await vpage.goto(`${B}/page`);
  result.csrf_victim_signed_in = new URL(vpage.url()).host === new URL(B).host;
} finally {
  await browser.close();
}
console.log(`RESULT ${JSON.stringify(result)}`);
