// The tunnel detail page's traffic charts in headless Chromium (run by
// crates/burrow/tests/web_charts.rs, which starts a server, sends real traffic through a
// tunnel and passes):
//   BURROW_URL, BURROW_ADMIN_EMAIL, BURROW_ADMIN_PASSWORD
//   TUNNEL_PATH      the detail page's path, /reverse-tunnels/DSN/ID
//   EXPECT_REQUESTS  the requests the server saw through the tunnel
//   EXPECT_ERRORS    of which 4xx and 5xx
//   PROJECT_ID       the device's project; a second tunnel of the device (login required)
//   EXPECT_USER_REQUESTS  requests the admin sent through that second tunnel
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
const PROJECT = env('PROJECT_ID');
const USER_REQUESTS = Number(env('EXPECT_USER_REQUESTS'));
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

    // The project overview: reached from the navigation, real counts in every table.
    await page.getByRole('link', { name: 'Traffic', exact: true }).click();
    await page.waitForURL(/\/traffic/);
    await page.getByLabel('Project').selectOption(PROJECT);
    const total = REQUESTS + USER_REQUESTS;
    await until('overview summary', async () => (await page.locator('#overview-requests').textContent()) === `${total} requests`);
    const cells = (id) => page.locator(`#${id} tbody tr`).evaluateAll((rows) => rows.map((r) => [...r.cells].map((c) => c.textContent)));
    const tunnels = await cells('overview-tunnels');
    check(tunnels.length === 2, `two tunnels: ${JSON.stringify(tunnels)}`);
    check(tunnels[0][1] === 'CHART1' && tunnels[0][2] === String(REQUESTS) && tunnels[0][3] === String(ERRORS), `the busiest tunnel: ${JSON.stringify(tunnels[0])}`);
    check(tunnels[1][0] === 'private' && tunnels[1][2] === String(USER_REQUESTS) && tunnels[1][3] === '0', `the private tunnel, by name: ${JSON.stringify(tunnels[1])}`);
    const devices = await cells('overview-devices');
    check(devices.length === 1 && devices[0][0] === 'CHART1' && devices[0][1] === String(total), `the device: ${JSON.stringify(devices)}`);
    step(`the overview lists the busiest tunnels and devices (${total} requests)`);
    const users = await cells('overview-users');
    const admin = users.find((u) => u[0].includes(env('BURROW_ADMIN_EMAIL')));
    check(admin && admin[0].includes('(user)') && admin[1] === 'CHART1' && admin[2] === String(USER_REQUESTS), `the admin's usage: ${JSON.stringify(users)}`);
    const anon = users.find((u) => u[0] === 'anonymous');
    check(anon && anon[2] === String(REQUESTS) && anon[3] === String(ERRORS), `anonymous usage: ${JSON.stringify(users)}`);
    step('the usage per user and device shows the admin and the anonymous clients');
    await page.getByRole('link', { name: tunnels[0][0], exact: true }).click();
    await until('back on the tunnel page', async () => (await page.locator('#traffic-requests').textContent()) === `${REQUESTS} requests`);
    step('a tunnel of the overview links to its detail page');
    await page.goto(`${URL_}/traffic?project=${PROJECT}`);
    await until('overview again', async () => (await page.locator('#overview-requests').textContent()) === `${total} requests`);
    await page.screenshot({ path: path.join(SHOTS, 'traffic-overview.png'), fullPage: true });
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
