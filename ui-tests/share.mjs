// Share links in a real browser (issue 15): headless Chromium (Debian's /usr/bin/chromium)
// driven by playwright-core. Run by crates/burrow/tests/share_links.rs, which starts a real
// server with base_domain `burrow.test` (every name of it resolved to loopback here) and two
// `require_auth` tunnels:
//   B_URL        the shared tunnel: `/` a page, `/ws` a WebSocket echo
//   A_URL        another tunnel of the same project (the link must not open it)
//   LINK_URL     a share link of B (no max_uses)
//   ONCE_URL     a share link of B with max_uses 1
//   EXPIRED_URL  a share link of B that has expired
//   REVOKE_URL / TOKEN   DELETE it (with `Authorization: Bearer TOKEN`) to revoke LINK_URL
// Prints one JSON line `RESULT {...}` for the Rust side to check. Bounded waits only.
import { chromium } from 'playwright-core';

const env = (k, d) => {
  const v = process.env[k] ?? d;
  if (v === undefined) throw new Error(`missing environment variable ${k}`);
  return v;
};
const A = env('A_URL').replace(/\/$/, '');
const B = env('B_URL').replace(/\/$/, '');
const LINK = env('LINK_URL');
const ONCE = env('ONCE_URL');
const EXPIRED = env('EXPIRED_URL');
const REVOKE = env('REVOKE_URL');
const TOKEN = env('TOKEN');
const CHROMIUM = env('CHROMIUM', '/usr/bin/chromium');

const browser = await chromium.launch({
  executablePath: CHROMIUM,
  args: ['--host-resolver-rules=MAP *.burrow.test 127.0.0.1, MAP burrow.test 127.0.0.1'],
});
const result = {};
try {
  // A visitor without an account opens the link: B's page, at B's own address.
  const visitor = await browser.newContext();
  const page = await visitor.newPage();
  page.setDefaultTimeout(15000);
  const opened = await page.goto(LINK);
  result.opened_status = opened.status();
  result.opened_url = page.url();
  result.opened_text = await page.textContent('h1');
  // The session is a host-only, HttpOnly cookie: scripts on the page cannot read it.
  result.document_cookie = await page.evaluate(() => document.cookie);

  // A WebSocket from the shared page, kept open.
  result.ws = await page.evaluate(
    (url) =>
      new Promise((resolve) => {
        const ws = new WebSocket(url);
        window.__ws = ws;
        window.__closedAt = null;
        ws.onclose = () => {
          window.__closedAt = Date.now();
        };
        const t = setTimeout(() => resolve('timeout'), 10000);
        ws.onopen = () => ws.send('ping');
        ws.onmessage = (m) => {
          clearTimeout(t);
          resolve(m.data === 'ping' ? 'echo' : `unexpected ${m.data}`);
        };
        ws.onerror = () => {
          clearTimeout(t);
          resolve('error');
        };
      }),
    `${B.replace(/^http/, 'ws')}/ws`,
  );

  // The link opens nothing else: another tunnel sends the visitor to sign in.
  const other = await visitor.newPage();
  other.setDefaultTimeout(15000);
  await other.goto(`${A}/`);
  result.other_tunnel_host = new URL(other.url()).host;
  result.other_tunnel_text = await other.textContent('body');
  await other.close();

  // Revoke (as the API would be called by the owner): the open WebSocket is closed within
  // 5 s, and a reload is refused.
  const revokedAt = Date.now();
  const del = await fetch(REVOKE, { method: 'DELETE', headers: { authorization: `Bearer ${TOKEN}` } });
  result.revoke_status = del.status;
  const closed = await page
    .waitForFunction(() => window.__closedAt !== null, null, { timeout: 10000, polling: 50 })
    .then(() => true)
    .catch(() => false);
  result.ws_closed = closed;
  if (closed) {
    result.ws_closed_ms = (await page.evaluate(() => window.__closedAt)) - revokedAt;
  }
  const reload = await page.reload();
  result.reload_status = reload.status();
  result.reload_text = await page.textContent('body');

  // max_uses 1 counts visitors, not requests: the first browser gets in (twice), a second
  // browser does not.
  const first = await browser.newContext();
  const p1 = await first.newPage();
  p1.setDefaultTimeout(15000);
  result.once_first = (await p1.goto(ONCE)).status();
  result.once_first_again = (await p1.goto(ONCE)).status();
  const second = await browser.newContext();
  const p2 = await second.newPage();
  p2.setDefaultTimeout(15000);
  result.once_second = (await p2.goto(ONCE)).status();
  result.once_second_text = await p2.textContent('body');

  // An expired link: a clear page, not the device and not a login form.
  const late = await browser.newContext();
  const p3 = await late.newPage();
  p3.setDefaultTimeout(15000);
  const expired = await p3.goto(EXPIRED);
  result.expired_status = expired.status();
  result.expired_text = await p3.textContent('body');
} finally {
  await browser.close();
}
console.log(`RESULT ${JSON.stringify(result)}`);
