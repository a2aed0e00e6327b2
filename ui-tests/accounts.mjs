// Accounts in a real browser (issue 20): headless Chromium (Debian's /usr/bin/chromium)
// driven by playwright-core. Run by crates/burrow/tests/web_accounts.rs, which starts a real
// server and passes in the environment:
//   BURROW_URL                          the server, e.g. http://localhost:PORT
//   BURROW_ADMIN_EMAIL / BURROW_ADMIN_PASSWORD
//   NEW_EMAIL / NEW_PASSWORD            who is invited, and the password they sign up with
//   EXISTING_EMAIL / EXISTING_PASSWORD  a user who has an account already (invited too)
//   CHANGED_PASSWORD / RESET_PASSWORD   their password after changing it / after an admin reset
//   SCREENSHOT_DIR / CHROMIUM
// At each checkpoint this prints `CHECK <name> <json>` and waits for the Rust side to answer
// `ok` on stdin once it has checked the server's state through the API (roles, tokens,
// logins). Every wait is bounded; nothing sleeps for a fixed time.
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
const NEW = env('NEW_EMAIL');
const NEW_PASSWORD = env('NEW_PASSWORD');
const EXISTING = env('EXISTING_EMAIL');
const EXISTING_PASSWORD = env('EXISTING_PASSWORD');
const CHANGED = env('CHANGED_PASSWORD');
const RESET = env('RESET_PASSWORD');
const SHOTS = env('SCREENSHOT_DIR');
const CHROMIUM = env('CHROMIUM', '/usr/bin/chromium');

mkdirSync(SHOTS, { recursive: true });

let passed = 0;
const problems = []; // JavaScript errors and CSP violations seen in any page
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

const text = async (page, sel) => (await page.locator(sel).textContent({ timeout: 1000 })) || '';
const shot = (page, name) => page.screenshot({ path: path.join(SHOTS, `${name}.png`), fullPage: true });

function watch(page) {
  page.on('pageerror', (e) => problems.push(`page error on ${page.url()}: ${e.message}`));
  page.on('console', (m) => {
    if (m.type() === 'error' && /Content Security Policy|Uncaught/i.test(m.text())) problems.push(`console on ${page.url()}: ${m.text()}`);
  });
}

async function signIn(page, email, password) {
  await page.goto(`${URL_}/`);
  await page.waitForURL(/\/login$/);
  await page.getByLabel('Email').fill(email);
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.waitForURL(/\/reverse-tunnels$/);
}

async function main() {
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  const pages = [];
  const open = async () => {
    const ctx = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    ctx.setDefaultTimeout(20000);
    const p = await ctx.newPage();
    watch(p);
    pages.push(p);
    return p;
  };
  try {
    await scenario(open);
  } catch (e) {
    for (const [i, p] of pages.entries()) await shot(p, `accounts-failure-${i}`).catch(() => {});
    throw e;
  } finally {
    await browser.close();
  }
}

async function scenario(open) {
  // --- 1. The admin creates a project and invites a viewer; the link is shown once. ---
  const admin = await open();
  await signIn(admin, ADMIN, ADMIN_PASSWORD);
  await until('the Users link for an administrator', () => admin.locator('#nav-admin-users').isVisible());
  await admin.getByRole('link', { name: 'Projects' }).click();
  await admin.waitForURL(/\/projects$/);
  await admin.getByLabel('New project name').fill('Fleet');
  await admin.getByRole('button', { name: 'Create project' }).click();
  const projectRow = admin.locator('#projects tr[data-name="Fleet"]');
  await projectRow.waitFor();
  await until('the creator listed as owner', async () => (await projectRow.textContent()).includes('owner'));
  await projectRow.getByRole('link', { name: 'Members of Fleet' }).click();
  await admin.waitForURL(/\/projects\/\d+\/members$/);
  const projectId = Number(/\/projects\/(\d+)\/members$/.exec(admin.url())[1]);
  await until('the admin listed as owner', async () =>
    (await admin.locator(`#members tr[data-email="${ADMIN}"] select`).inputValue({ timeout: 1000 })) === 'owner');
  check((await text(admin, '#members-role')).includes('Your role: owner'), 'the page says the caller is owner');
  step('the admin creates a project and sees its members page as owner');

  await admin.getByLabel('Email', { exact: true }).fill(ADMIN);
  await admin.getByLabel('Role', { exact: true }).selectOption('member');
  await admin.getByRole('button', { name: 'Invite' }).click();
  await until('the 409 for inviting a member', async () => (await text(admin, '#invite-email-error')).startsWith('Conflict'));
  check(await admin.locator('#invite-link').count() === 0, 'no link for a refused invitation');
  step('inviting an existing member shows the API’s 409 next to the email');

  await admin.getByLabel('Email', { exact: true }).fill(NEW);
  await admin.getByLabel('Role', { exact: true }).selectOption('viewer');
  await admin.getByRole('button', { name: 'Invite' }).click();
  const acceptUrl = await until('the invitation link', async () => {
    const v = await admin.locator('#invite-link').inputValue({ timeout: 1000 });
    return v.includes('/invite#token=') ? v : null;
  });
  check((await text(admin, '#invite-shown')).includes('you won\'t see it again'), 'the link is said to be shown once');
  const pendingRow = admin.locator(`#invitations tr[data-email="${NEW}"]`);
  await pendingRow.waitFor();
  check((await pendingRow.textContent()).includes('viewer'), 'the pending invitation is for a viewer');
  check(!(await text(admin, '#invitations')).includes(acceptUrl.split('#token=')[1]), 'the pending list holds no token');
  await shot(admin, 'accounts-members');
  step('inviting a viewer shows the accept link once and lists the invitation as pending');
  await checkpoint('invited', { project_id: projectId, accept_url: acceptUrl });

  // --- 2. The invited person opens the link in a fresh browser and signs up. ---
  const invited = await open();
  await invited.goto(acceptUrl);
  await until('what the invitation is for', async () => {
    const t = await text(invited, '#invite-facts');
    return t.includes('Fleet') && t.includes(NEW) && t.includes('viewer');
  });
  check(!invited.url().includes('token'), `the token left the address bar (${invited.url()})`);
  await shot(invited, 'accounts-invite');
  await invited.getByLabel('Password', { exact: true }).fill(NEW_PASSWORD);
  await invited.getByLabel('Password again').fill(`${NEW_PASSWORD}-typo`);
  await invited.getByRole('button', { name: 'Create account and join' }).click();
  await until('the mismatch message', async () => (await text(invited, '#signup-again-error')).includes('differ'));
  await invited.getByLabel('Password again').fill(NEW_PASSWORD);
  await invited.getByRole('button', { name: 'Create account and join' }).click();
  await invited.waitForURL(new RegExp(`/projects/${projectId}/members$`));
  await until('the viewer role', async () => (await text(invited, '#members-role')).includes('Your role: viewer'));
  check((await text(invited, '#who-email')) === NEW, 'signed in as the invited address');
  check(await invited.evaluate(() => !!sessionStorage.getItem('burrow.token') && !sessionStorage.getItem('burrow.invite')),
    'the session token is kept, the invitation token dropped');
  check(await invited.locator('#members select').evaluateAll((els) => els.length === 2 && els.every((e) => e.disabled)),
    'a viewer cannot change roles');
  check(await invited.locator('#invitations-section').isHidden(), 'a viewer sees no invitation form');
  check(await invited.locator('#nav-admin-users').isHidden(), 'no Users link for someone who is not an administrator');
  step('signing up through the link lands signed in on the project, as a viewer');
  await checkpoint('signed_up', { project_id: projectId });

  await invited.goto(acceptUrl);
  await until('the used-link message', async () => (await text(invited, '#invite-error')).includes('expired or was already used'));
  step('the link is single use: opening it again says so');

  // --- Someone with an account: signs in from the link, comes back to it, accepts. ---
  await admin.getByLabel('Email', { exact: true }).fill(EXISTING);
  await admin.getByLabel('Role', { exact: true }).selectOption('member');
  await admin.getByRole('button', { name: 'Invite' }).click();
  const secondUrl = await until('the second invitation link', async () => {
    const v = await admin.locator('#invite-link').inputValue({ timeout: 1000 });
    return v.includes('/invite#token=') && v !== acceptUrl ? v : null;
  });
  const existing = await open();
  await existing.goto(secondUrl);
  await existing.getByRole('button', { name: 'Sign in to accept' }).click();
  await existing.waitForURL(/\/login$/);
  await existing.getByLabel('Email').fill(EXISTING);
  await existing.getByLabel('Password').fill(EXISTING_PASSWORD);
  await existing.getByRole('button', { name: 'Sign in' }).click();
  await existing.waitForURL(/\/invite$/);
  await existing.getByRole('button', { name: 'Accept and join Fleet' }).click();
  await existing.waitForURL(new RegExp(`/projects/${projectId}/members$`));
  await until('the member role', async () => (await text(existing, '#members-role')).includes('Your role: member'));
  step('an existing user signs in from the link, comes back to it and accepts');
  await checkpoint('accepted', { project_id: projectId });

  // They sign out everywhere from their account page: this session ends too.
  const session = await existing.evaluate(() => sessionStorage.getItem('burrow.token'));
  await existing.getByRole('link', { name: 'Account' }).click();
  await existing.waitForURL(/\/account$/);
  await existing.getByRole('button', { name: 'Sign out everywhere' }).click();
  await existing.getByRole('dialog', { name: 'Sign out everywhere?' }).getByRole('button', { name: 'Sign out everywhere' }).click();
  await existing.waitForURL(/\/login$/);
  await until('the signed-out notice', async () => (await text(existing, '#login-notice')).includes('signed out everywhere'));
  check(await existing.evaluate(() => sessionStorage.getItem('burrow.token') === null), 'the session token is dropped');
  step('“Sign out everywhere” ends the session and returns to the login page');
  await checkpoint('signed_out_everywhere', { token: session });

  // The owner promotes them, then removes them; a second invitation is withdrawn.
  await admin.reload();
  const existingRow = admin.locator(`#members tr[data-email="${EXISTING}"]`);
  await existingRow.getByLabel(`Role of ${EXISTING}`).selectOption('admin');
  await until('the new role', async () => (await existingRow.getAttribute('data-role', { timeout: 1000 })) === 'admin');
  step('the owner changes a member’s role with the select');
  await checkpoint('promoted', { project_id: projectId });
  await existingRow.getByRole('button', { name: `Remove ${EXISTING}` }).click();
  await admin.getByRole('dialog', { name: `Remove ${EXISTING}?` }).getByRole('button', { name: 'Remove member' }).click();
  await until('the member gone', async () => (await existingRow.count()) === 0);
  await admin.getByLabel('Email', { exact: true }).fill('later@example.com');
  await admin.getByRole('button', { name: 'Invite' }).click();
  const laterRow = admin.locator('#invitations tr[data-email="later@example.com"]');
  await laterRow.waitFor();
  await laterRow.getByRole('button', { name: 'Withdraw the invitation of later@example.com' }).click();
  await until('the invitation withdrawn', async () => (await laterRow.count()) === 0);
  step('the owner removes a member and withdraws an invitation');
  await checkpoint('removed_and_withdrawn', { project_id: projectId });

  // --- 3. Personal access tokens: shown once, listed, revoked. ---
  await invited.getByRole('link', { name: 'Account' }).click();
  await invited.waitForURL(/\/account$/);
  await until('the account email', async () => (await text(invited, '#account-email')).includes(NEW));
  await invited.locator('#tok-name').fill('ci');
  await invited.locator('#tok-scope').selectOption('read');
  await invited.locator('#tok-days').fill('30');
  await invited.getByRole('button', { name: 'Create token' }).click();
  const token = await until('the new token', async () => {
    const v = await invited.locator('#token-secret').inputValue({ timeout: 1000 });
    return v.startsWith('bpat_') ? v : null;
  });
  const tokenRow = invited.locator('#tokens tr[data-name="ci"]');
  await tokenRow.waitFor();
  check((await tokenRow.textContent()).includes('read'), 'the token is listed with its scope');
  check(!(await text(invited, '#tokens')).includes(token), 'the list holds no secret');
  await shot(invited, 'accounts-token');
  step('creating a token shows it once');
  await checkpoint('token_created', { token });

  await invited.reload();
  await tokenRow.waitFor();
  check(await invited.locator('#token-secret').count() === 0, 'after a reload the token is not shown');
  check(!(await invited.content()).includes(token), 'after a reload the token is nowhere in the page');
  await tokenRow.getByRole('button', { name: 'Revoke token ci' }).click();
  const revokeDialog = invited.getByRole('dialog', { name: 'Revoke token "ci"?' });
  await revokeDialog.getByRole('button', { name: 'Revoke token' }).click();
  await until('the token gone from the list', async () => (await tokenRow.count()) === 0);
  step('after a reload the token is gone from the page; revoking removes it from the list');
  await checkpoint('token_revoked', { token });

  // --- 4. Change the password. ---
  const before = await invited.evaluate(() => sessionStorage.getItem('burrow.token'));
  await invited.locator('#pw-current').fill('not-my-password');
  await invited.locator('#pw-new').fill(CHANGED);
  await invited.locator('#pw-again').fill(CHANGED);
  await invited.getByRole('button', { name: 'Change password' }).click();
  await until('the wrong-password message', async () => (await text(invited, '#pw-current-error')).includes('the current password is wrong'));
  check(invited.url().endsWith('/account'), 'a wrong current password keeps the user on the page');
  await invited.locator('#pw-current').fill(NEW_PASSWORD);
  await invited.locator('#pw-new').fill(CHANGED);
  await invited.locator('#pw-again').fill(CHANGED);
  await invited.getByRole('button', { name: 'Change password' }).click();
  await until('the password changed', async () => (await text(invited, '#password-done')).includes('Password changed'));
  const after = await invited.evaluate(() => sessionStorage.getItem('burrow.token'));
  check(after && after !== before, 'the page keeps the fresh session the API answered');
  await invited.reload();
  await until('still signed in', async () => (await text(invited, '#account-email')).includes(NEW));
  check(invited.url().endsWith('/account'), 'the fresh session works after a reload');
  step('a wrong current password is refused on the page; the right one changes it and keeps the user signed in');
  await checkpoint('password_changed');

  // --- 5. The administrator disables, enables, resets and deletes the account. ---
  await admin.getByRole('link', { name: 'Users' }).click();
  await admin.waitForURL(/\/admin\/users$/);
  const userRow = admin.locator(`#users tr[data-email="${NEW}"]`);
  await until('the new user listed as active', async () => (await userRow.textContent({ timeout: 1000 })).includes('Active'));
  check(await admin.getByRole('button', { name: `Disable ${ADMIN}` }).isDisabled(), 'an administrator cannot disable themself');
  await userRow.getByRole('button', { name: `Disable ${NEW}` }).click();
  await until('disabled', async () => (await userRow.textContent()).includes('Disabled'));
  await shot(admin, 'accounts-users');
  step('the administrator disables the new user');
  await checkpoint('disabled');

  await invited.reload();
  await invited.waitForURL(/\/login$/);
  step('the disabled user’s open session ends at once');

  await userRow.getByRole('button', { name: `Enable ${NEW}` }).click();
  await until('enabled', async () => (await userRow.textContent()).includes('Active'));
  await userRow.getByRole('button', { name: `Reset password of ${NEW}` }).click();
  const resetDialog = admin.locator('#reset-dialog');
  await resetDialog.getByLabel('New password').fill(RESET);
  await resetDialog.getByRole('button', { name: 'Set password' }).click();
  await resetDialog.waitFor({ state: 'detached' });
  step('the administrator enables the user again and resets their password');
  await checkpoint('reset');

  await userRow.getByRole('button', { name: `Delete ${NEW}` }).click();
  await admin.getByRole('dialog', { name: `Delete ${NEW}?` }).getByRole('button', { name: 'Delete user' }).click();
  await until('the user gone', async () => (await userRow.count()) === 0);
  step('the administrator deletes the user after a confirmation');
  await checkpoint('deleted');

  check(problems.length === 0, `no JavaScript errors or CSP violations:\n${problems.join('\n')}`);
  step('no JavaScript errors or CSP violations in any page');
}

try {
  await main();
  console.log(`accounts: ${passed} passed, 0 failed`);
} catch (e) {
  console.error(`not ok - ${e.stack || e}`);
  if (problems.length) console.error(`page problems:\n${problems.join('\n')}`);
  console.log(`accounts: ${passed} passed, 1 failed`);
  process.exitCode = 1;
} finally {
  replies.return?.();
  process.stdin.destroy();
}
