// The tunnel detail page's traffic charts in headless Chromium (run by
// crates/burrow/tests/web_charts.rs, which starts a server, sends real traffic through a
// tunnel and passes):
//   BURROW_URL, BURROW_ADMIN_EMAIL, BURROW_ADMIN_PASSWORD
//   TUNNEL_PATH      the detail page's path, /reverse-tunnels/DSN/ID
//   EXPECT_REQUESTS  the requests the server saw through the tunnel
//   EXPECT_ERRORS    of which 4xx and 5xx
//   SCREENSHOT_DIR, CHROMIUM
// Fails on any JavaScript error, console error or CSP violation. Bounded polls, no sleeps.
import { chromium } from 'playwright-core';
import { mkdirSync } from 'node:fs';
import path from 'node:path';

const env = (k, d) => {
  const v = process.env[k] ?? d;
  if (v === undefined) throw new Error(`missing environment variable ${k}`);
  return v;
};
const URL_ = env('BURROW_URL').replace(/\/$/, '');
const SHOTS = env('SCREENSHOT_DIR');
const REQUESTS = Number(env('EXPECT_REQUESTS'));
const ERRORS = Number(env('EXPECT_ERRORS'));
mkdirSync(SHOTS, { recursive: true });

const problems = [];
let passed = 0;
const step = (name) => { passed += 1; console.log(`ok ${passed} - ${name}`); };
const check = (cond, msg) => { if (!cond) throw new Error(`check failed: ${msg}`); };

async function until(what, fn, ms = 30000) {
  const deadline = Date.now() + ms;
  let last;
  for (;;) {
    try { last = await fn(); if (last) return last; } catch (e) { last = e; }
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for: ${what} (last: ${last})`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

/** Non-background pixels drawn on the chart's canvas (uPlot draws the series there). */
const inked = (page, id) => page.evaluate((sel) => {
  const c = document.querySelector(`${sel} canvas`);
  if (!c || !c.width) return 0;
  const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
  let n = 0;
  for (let i = 3; i < d.length; i += 4) if (d[i] > 0) n += 1;
  return n;
}, `#${id}`);

async function main() {
  const browser = await chromium.launch({
    executablePath: env('CHROMIUM', '/usr/bin/chromium'),
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking'],
  });
  const page = await (await browser.newContext({ viewport: { width: 1280, height: 1000 } })).newPage();
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  // The one expected failed request is the 422 of the bad limit below.
  page.on('console', (m) => {
    if (m.type() === 'error' && !/status of 422/.test(m.text())) problems.push(`console error: ${m.text()}`);
  });
  try {
    await page.goto(`${URL_}/login`);
    await page.getByLabel('Email').fill(env('BURROW_ADMIN_EMAIL'));
    await page.getByLabel('Password').fill(env('BURROW_ADMIN_PASSWORD'));
    await page.keyboard.press('Enter');
    await page.waitForURL(/\/reverse-tunnels$/);
    step('signs in');

    await page.goto(`${URL_}${env('TUNNEL_PATH')}`);
    await until('traffic summary', async () => (await page.locator('#traffic-requests').textContent()) === `${REQUESTS} requests`);
    check((await page.locator('#traffic-errors').textContent()) === `${ERRORS} errors`, 'the error count');
    step(`the summary says ${REQUESTS} requests, ${ERRORS} errors`);

    for (const id of ['chart-requests', 'chart-errors', 'chart-bytes', 'chart-latency']) {
      await until(`${id} drawn`, async () => (await inked(page, id)) > 200);
    }
    step('four charts are drawn from the analytics');

    await page.getByRole('button', { name: 'Last day' }).click();
    await until('day range', async () => (await page.getByRole('button', { name: 'Last day' }).getAttribute('aria-pressed')) === 'true');
    await until('day chart redrawn', async () => (await inked(page, 'chart-requests')) > 200);
    check((await page.locator('#traffic-requests').textContent()) === `${REQUESTS} requests`, 'the day holds the same requests');
    await page.getByRole('button', { name: 'Last hour' }).click();
    await until('hour chart redrawn', async () => (await inked(page, 'chart-requests')) > 200);
    step('switches between the last hour and the last day');

    await page.getByLabel('Requests per second').fill('0');
    await page.getByRole('button', { name: 'Save limits' }).click();
    await until('422 shown', async () => (await page.locator('#limits-error').textContent()).includes('requests_per_second'));
    step('a bad limit shows the API\'s 422');

    await page.getByLabel('Requests per second').fill('50');
    await page.getByRole('button', { name: 'Save limits' }).click();
    await until('saved', async () => (await page.locator('#limits-error').textContent()) === '' && (await page.locator('#toast').textContent()).includes('Limits saved'));
    step('limits are saved');

    await page.locator('#traffic').scrollIntoViewIfNeeded();
    await page.screenshot({ path: path.join(SHOTS, 'traffic-charts.png'), fullPage: true });
    check(problems.length === 0, `no page problems: ${problems.join('; ')}`);
    step('no JavaScript or console errors');
  } catch (e) {
    await page.screenshot({ path: path.join(SHOTS, 'traffic-charts-failure.png'), fullPage: true }).catch(() => {});
    throw e;
  } finally {
    await browser.close();
  }
}

main().then(() => {
  console.log(`charts: ${passed} passed, 0 failed`);
}, (e) => {
  console.error(`not ok - ${e.stack || e}`);
  if (problems.length) console.error(`page problems:\n${problems.join('\n')}`);
  console.log(`charts: ${passed} passed, 1 failed`);
  process.exit(1);
});
