// burrow web UI: the signed-in user's account (/account: password, sign out everywhere,
// personal access tokens) and the administrators' list of users (/admin/users). Loaded
// before app.js, whose helpers (h, api, explain, toast, copyButton, timeEl, field,
// clearErrors, fieldError, confirmDialog, navigate, TOKEN, EMAIL, NOTICE) it uses at call
// time, as sharing.js does. See docs/accounts.md for the API behind each control.
'use strict';

/** GET /auth/me, once per session token: who is signed in (email, is_admin). */
let meCache = null;
async function currentUser() {
  const token = sessionStorage.getItem(TOKEN);
  if (meCache && meCache.token === token) return meCache.me;
  const me = await api('GET', '/auth/me');
  meCache = { token, me };
  return me;
}

/** Shows the administrators' "Users" link in the top bar only to administrators. */
function showAdminLink() {
  const link = $('#nav-admin-users');
  currentUser().then((me) => { link.hidden = !me.is_admin; }).catch(() => { link.hidden = true; });
}

/** A secret shown once: a read-only field to copy from, and a plain warning. */
function onceField(id, label, value, what) {
  const input = h('input.mono', { type: 'text', readonly: true, spellcheck: false, 'aria-describedby': `${id}-note` });
  input.id = id;
  input.value = value;
  input.addEventListener('focus', () => input.select());
  const copy = h('button.secondary', { type: 'button', text: 'Copy' });
  copy.addEventListener('click', () => copyButton(copy, value, what));
  return h('div.secret-once', { role: 'status' },
    h('label', { for: id, text: label }),
    h('div.url', {}, input, copy),
    h('p.hint', { id: `${id}-note`, text: `Copy it now: you won't see it again. burrow keeps only its hash.` }));
}

/** A table (id, column names) around `tbody`, with an empty-state line. */
function listTable(id, columns, tbody, emptyText) {
  const empty = h('div.empty', { hidden: true, text: emptyText });
  const el = h('div.table-wrap', {}, h(`table.cards#${id}`, {},
    h('thead', {}, h('tr', {}, columns.map((c) => h('th', { scope: 'col', text: c })))), tbody), empty);
  return { el, fill(rows) { tbody.replaceChildren(...rows); empty.hidden = rows.length > 0; } };
}

// ---------- /account ----------

function accountPage(main) {
  const email = h('p.sub#account-email');
  const pageError = h('p.form-error#page-error', { role: 'alert' });

  // Change password: the API answers a fresh session; every other session is signed out.
  const current = h('input', { type: 'password', autocomplete: 'current-password', 'data-field': 'current_password' });
  const next = h('input', { type: 'password', autocomplete: 'new-password', 'data-field': 'new_password' });
  const again = h('input', { type: 'password', autocomplete: 'new-password', 'data-field': 'new_password_again' });
  const pwSubmit = h('button', { type: 'submit', text: 'Change password' });
  const pwForm = h('form#password-form', { novalidate: true },
    field('pw-current', 'Current password', current),
    field('pw-new', 'New password', next, 'At least 8 characters.'),
    field('pw-again', 'New password again', again),
    h('p.form-error#password-error', { role: 'alert' }),
    pwSubmit);
  pwForm.addEventListener('submit', async (e) => {
    e.preventDefault();
    clearErrors(pwForm);
    if (!current.value) return fieldError(pwForm, 'current_password', 'Enter your current password.');
    if (next.value !== again.value) return fieldError(pwForm, 'new_password_again', 'The two new passwords differ.');
    pwSubmit.disabled = true;
    try {
      const r = await api('POST', '/auth/password', { current_password: current.value, new_password: next.value });
      sessionStorage.setItem(TOKEN, r.access_token);
      meCache = null;
      pwForm.reset();
      toast('Password changed; your other sessions are signed out');
      $('#password-done').textContent = 'Password changed. Every other session and edge login was signed out.';
    } catch (err) {
      // 403 is the API's "the current password is wrong": said at that field.
      fieldError(pwForm, err.status === 403 ? 'current_password' : err.field || null, explain(err));
    } finally { pwSubmit.disabled = false; }
  });

  const logoutAll = h('button.danger#logout-all', { type: 'button', text: 'Sign out everywhere' });
  const logoutError = h('p.error', { role: 'alert' });
  logoutAll.addEventListener('click', async () => {
    logoutError.textContent = '';
    const ok = await confirmDialog({
      title: 'Sign out everywhere?',
      body: 'Every session of your account ends, this one included. Personal access tokens keep working (revoke them below).',
      confirm: 'Sign out everywhere',
    });
    if (!ok) { logoutAll.focus(); return; }
    try {
      await api('POST', '/auth/logout-all');
      sessionStorage.removeItem(TOKEN);
      sessionStorage.removeItem(EMAIL);
      sessionStorage.setItem(NOTICE, 'You are signed out everywhere.');
      navigate('/login', true);
    } catch (err) { logoutError.textContent = explain(err); }
  });

  // Personal access tokens.
  const tokenName = h('input', { type: 'text', autocomplete: 'off', 'data-field': 'name' });
  const scope = h('select', { 'data-field': 'scope' },
    h('option', { value: 'read', text: 'read: GET requests only' }),
    h('option', { value: 'full', text: 'full: everything you may do' }));
  const days = h('input', { type: 'number', min: 1, max: 365, value: '90', inputmode: 'numeric', 'data-field': 'expires_in_days' });
  const tokenForm = h('form#token-form', { novalidate: true },
    h('div.inline-form', {},
      field('tok-name', 'Name', tokenName, 'What uses it, e.g. "laptop CLI".'),
      field('tok-scope', 'Scope', scope),
      field('tok-days', 'Expires after (days)', days, '1-365.'),
      h('button', { type: 'submit', text: 'Create token' })),
    h('p.form-error#token-error', { role: 'alert' }));
  const shown = h('div#token-shown');
  const tokens = listTable('tokens', ['Name', 'Scope', 'Created', 'Expires', 'Last used', ''], h('tbody'),
    'No personal access tokens. Create one for the CLI or a script.');
  tokenForm.addEventListener('submit', async (e) => {
    e.preventDefault();
    clearErrors(tokenForm);
    const body = { name: tokenName.value, scope: scope.value };
    if (days.value.trim() !== '') body.expires_in_days = Number(days.value);
    try {
      const t = await api('POST', '/auth/tokens', body);
      shown.replaceChildren(onceField('token-secret', `Token "${t.name}"`, t.token, 'the token'));
      tokenName.value = '';
      await refreshTokens();
    } catch (err) { fieldError(tokenForm, err.status === 422 ? err.field : null, explain(err)); }
  });

  function tokenRow(t) {
    const err = h('p.error', { role: 'alert' });
    const revoke = h('button.small.danger', { type: 'button', text: 'Revoke', 'aria-label': `Revoke token ${t.name}` });
    revoke.addEventListener('click', async () => {
      err.textContent = '';
      const ok = await confirmDialog({
        title: `Revoke token "${t.name}"?`,
        body: 'Whatever uses it is refused at once. This cannot be undone.',
        confirm: 'Revoke token',
      });
      if (!ok) { revoke.focus(); return; }
      try {
        await api('DELETE', `/auth/tokens/${t.id}`);
        toast(`Revoked ${t.name}`);
        await refreshTokens();
      } catch (e) { err.textContent = explain(e); }
    });
    return h('tr', { 'data-name': t.name },
      h('td', { 'data-label': 'Name' }, h('strong', { text: t.name })),
      h('td', { 'data-label': 'Scope', text: t.scope }),
      h('td', { 'data-label': 'Created' }, timeEl(t.created_at)),
      h('td', { 'data-label': 'Expires' }, timeEl(t.expires_at, 'never')),
      h('td', { 'data-label': 'Last used' }, timeEl(t.last_used_at, 'never')),
      h('td', { 'data-label': 'Actions' }, revoke, err));
  }

  async function refreshTokens() {
    const list = await api('GET', '/auth/tokens');
    tokens.fill((Array.isArray(list) ? list : list.items || []).map(tokenRow));
  }

  main.append(
    h('div.page-head', {}, h('div', {}, h('h1', { text: 'Your account' }), email)),
    pageError,
    h('div.grid2', {},
      h('section.card', { 'aria-labelledby': 'pw-title' }, h('h2#pw-title.flush', { text: 'Change password' }),
        h('p.notice.ok#password-done', { role: 'status' }), pwForm),
      h('section.card', { 'aria-labelledby': 'sessions-title' }, h('h2#sessions-title.flush', { text: 'Sessions' }),
        h('p', { text: 'Signed in on another computer, or lost one? End every session of your account at once.' }),
        logoutAll, logoutError)),
    h('section', { 'aria-labelledby': 'tokens-title' },
      h('h2#tokens-title', { text: 'Personal access tokens' }),
      h('p.sub', { text: 'For the CLI and scripts: send one as "Authorization: Bearer bpat_…". A read token may only read.' }),
      shown, tokens.el,
      h('section.card', { 'aria-labelledby': 'new-token-title' }, h('h3#new-token-title.flush', { text: 'New token' }), tokenForm)));

  currentUser().then((me) => { email.textContent = `Signed in as ${me.email}`; })
    .catch((e) => { pageError.textContent = explain(e); });
  refreshTokens().catch((e) => { pageError.textContent = `Could not load your tokens: ${explain(e)}`; });
  return { stop() {} };
}

// ---------- /admin/users ----------

function adminUsersPage(main) {
  const pageError = h('p.form-error#page-error', { role: 'alert' });
  const users = listTable('users', ['Email', 'Administrator', 'State', 'Created', 'Actions'], h('tbody'), 'No users.');
  main.append(
    h('div.page-head', {}, h('div', {}, h('h1', { text: 'Users' }),
      h('p.sub', { text: 'Every account on this server. A disabled user cannot sign in; their sessions and tokens stop at once.' }))),
    pageError, users.el);

  async function act(err, fn, done) {
    err.textContent = '';
    try {
      await fn();
      if (done) toast(done);
      await refresh();
    } catch (e) { err.textContent = explain(e); }
  }

  function resetDialog(u, err) {
    const pw = h('input', { type: 'password', autocomplete: 'new-password', 'data-field': 'new_password' });
    const submit = h('button', { type: 'submit', text: 'Set password' });
    const form = h('form#reset-form', { novalidate: true },
      h('h2#reset-title', { text: `New password for ${u.email}` }),
      field('reset-password', 'New password', pw, 'At least 8 characters. Their sessions are signed out; pass it on to them.'),
      h('p.form-error', { role: 'alert' }),
      h('div.actions', {}, h('button.secondary', { type: 'button', text: 'Cancel', onclick: () => dlg.close() }), submit));
    const dlg = h('dialog#reset-dialog', { 'aria-labelledby': 'reset-title' }, form);
    dlg.addEventListener('close', () => dlg.remove());
    form.addEventListener('submit', async (e) => {
      e.preventDefault();
      clearErrors(form);
      submit.disabled = true;
      try {
        await api('POST', `/users/${u.id}/password`, { new_password: pw.value });
        dlg.close();
        toast(`Password of ${u.email} reset`);
        err.textContent = '';
      } catch (x) { fieldError(form, x.status === 422 ? x.field : null, explain(x)); } finally { submit.disabled = false; }
    });
    document.body.append(dlg);
    dlg.showModal();
    pw.focus();
  }

  function userRow(u, me) {
    const err = h('p.error', { role: 'alert' });
    const self = u.id === me.id;
    const toggle = h(`button.small.${u.disabled ? 'secondary' : 'danger'}`, {
      type: 'button', text: u.disabled ? 'Enable' : 'Disable', disabled: self,
      title: self ? 'You cannot disable yourself' : undefined,
      'aria-label': `${u.disabled ? 'Enable' : 'Disable'} ${u.email}`,
      onclick: () => act(err, () => api('PATCH', `/users/${u.id}`, { disabled: !u.disabled }),
        `${u.email} ${u.disabled ? 'enabled' : 'disabled'}`),
    });
    const reset = h('button.small.secondary', { type: 'button', text: 'Reset password', 'aria-label': `Reset password of ${u.email}`, onclick: () => resetDialog(u, err) });
    const del = h('button.small.danger', {
      type: 'button', text: 'Delete', disabled: self, 'aria-label': `Delete ${u.email}`,
      onclick: async () => {
        const ok = await confirmDialog({
          title: `Delete ${u.email}?`,
          body: 'The account, its memberships and its tokens are deleted. This cannot be undone.',
          confirm: 'Delete user',
        });
        if (!ok) { del.focus(); return; }
        await act(err, () => api('DELETE', `/users/${u.id}`), `Deleted ${u.email}`);
      },
    });
    return h('tr', { 'data-email': u.email },
      h('td', { 'data-label': 'Email' }, h('strong', { text: u.email }), self ? h('p.sub', { text: 'you' }) : null),
      h('td', { 'data-label': 'Administrator', text: u.is_admin ? 'Yes' : 'No' }),
      h('td', { 'data-label': 'State' }, u.disabled ? h('span.badge.bad', { text: 'Disabled' }) : h('span.badge.ok', { text: 'Active' })),
      h('td', { 'data-label': 'Created' }, timeEl(u.created_at)),
      h('td', { 'data-label': 'Actions' }, h('div.url', {}, toggle, reset, del), err));
  }

  async function refresh() {
    const [me, list] = await Promise.all([currentUser(), api('GET', '/users')]);
    users.fill((Array.isArray(list) ? list : list.items || []).map((u) => userRow(u, me)));
  }

  refresh().catch((e) => { pageError.textContent = explain(e); });
  return { stop() {} };
}
