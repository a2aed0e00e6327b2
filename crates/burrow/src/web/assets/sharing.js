// burrow web UI: a tunnel's Sharing panel (issue 15). Loaded before app.js, whose helpers
// (h, api, explain, toast, copyButton, timeEl, field, clearErrors, fieldError, confirmDialog)
// it uses at call time. Keys and link URLs are shown once, right after creation, with a copy
// button; the lists never hold a secret.
'use strict';

const SHARE_DURATIONS = [
  [15, '15 minutes'], [60, '1 hour'], [120, '2 hours'], [480, '8 hours'],
  [1440, '1 day'], [4320, '3 days'], [10080, '7 days'],
];
const KEY_METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'];

/** The state badge of a key or link. */
function shareState(item) {
  if (item.revoked_at) return h('span.badge.off', { text: 'Revoked' });
  if (item.expires_at && new Date(item.expires_at) <= new Date()) return h('span.badge.off', { text: 'Expired' });
  return h('span.badge.ok', { text: 'Active' });
}

/** A box that shows a secret once, with a copy button. */
function secretOnce(label, value, what) {
  const code = h('code.secret', { text: value });
  const copy = h('button.secondary', { type: 'button', text: 'Copy' });
  copy.addEventListener('click', () => copyButton(copy, value, what));
  return h('div.secret-once', { role: 'status' },
    h('p', { text: `${label} — shown only now; copy it before leaving this page.` }), code, ' ', copy);
}

/** Methods chosen in a row of checkboxes (none checked: every method). */
function methodPicker(prefix) {
  const boxes = KEY_METHODS.map((m) => h('input', { type: 'checkbox', id: `${prefix}-m-${m}`, value: m }));
  const el = h('fieldset.methods', {}, h('legend', { text: 'Methods (none checked: all)' }),
    boxes.map((b) => h('label.inline', { for: b.id }, b, ` ${b.value}`)));
  return { el, value: () => boxes.filter((b) => b.checked).map((b) => b.value) };
}

function sharingPanel(path, dsn) {
  const keysBody = h('tbody');
  const linksBody = h('tbody');
  const shown = h('div#sharing-secret');
  const panelError = h('p.form-error#sharing-error', { role: 'alert' });
  const auditSection = h('section#sharing-audit', { hidden: true });
  const auditBody = h('tbody');

  // --- API keys ---
  const keyName = h('input', { 'data-field': 'name', required: true, maxlength: 100, autocomplete: 'off' });
  const keyExpiry = h('input', { type: 'datetime-local', 'data-field': 'expires_at' });
  const keyMethods = methodPicker('key');
  const keyForm = h('form#key-form', { novalidate: true },
    field('key-name', 'Name', keyName, 'What uses it, e.g. "monitoring"'),
    field('key-expiry', 'Expires (optional)', keyExpiry),
    keyMethods.el,
    h('p.form-error', { role: 'alert' }),
    h('button', { type: 'submit', text: 'Create API key' }));
  keyForm.addEventListener('submit', async (e) => {
    e.preventDefault();
    clearErrors(keyForm);
    const body = { name: keyName.value, methods: keyMethods.value() };
    if (keyExpiry.value) body.expires_at = new Date(keyExpiry.value).toISOString();
    try {
      const k = await api('POST', `${path}/api-keys`, body);
      shown.replaceChildren(secretOnce(`API key "${k.name}"`, k.key, 'the API key'));
      keyForm.reset();
      await refresh();
    } catch (err) { fieldError(keyForm, err.field, explain(err)); }
  });

  // --- share links ---
  const linkDuration = h('select', { 'data-field': 'expires_in_minutes' },
    SHARE_DURATIONS.map(([m, label]) => h('option', { value: String(m), text: label, selected: m === 120 })));
  const linkUses = h('input', { type: 'number', min: 1, 'data-field': 'max_uses', placeholder: 'no limit' });
  const linkNote = h('input', { 'data-field': 'note', maxlength: 500 });
  const linkMethods = methodPicker('link');
  const linkForm = h('form#link-form', { novalidate: true },
    field('link-duration', 'Valid for', linkDuration),
    field('link-uses', 'Visitors (optional)', linkUses, 'How many different browsers may open it'),
    field('link-note', 'Note (optional)', linkNote, 'Who it is for'),
    linkMethods.el,
    h('p.form-error', { role: 'alert' }),
    h('button', { type: 'submit', text: 'Create share link' }));
  linkForm.addEventListener('submit', async (e) => {
    e.preventDefault();
    clearErrors(linkForm);
    const body = { expires_in_minutes: Number(linkDuration.value), methods: linkMethods.value() };
    if (linkUses.value) body.max_uses = Number(linkUses.value);
    if (linkNote.value) body.note = linkNote.value;
    try {
      const l = await api('POST', `${path}/share-links`, body);
      shown.replaceChildren(secretOnce('Share link', l.url, 'the share link'));
      linkForm.reset();
      await refresh();
    } catch (err) { fieldError(linkForm, err.field, explain(err)); }
  });

  // --- IP rules ---
  const allow = h('textarea', { 'data-field': 'ip_allow', rows: 3, placeholder: '10.0.0.0/8' });
  const deny = h('textarea', { 'data-field': 'ip_deny', rows: 3, placeholder: '203.0.113.0/24' });
  const rulesForm = h('form#ip-rules-form', { novalidate: true },
    field('ip-allow', 'Allow only (one CIDR per line; empty: anyone)', allow),
    field('ip-deny', 'Deny (wins over allow)', deny),
    h('p.form-error', { role: 'alert' }),
    h('button', { type: 'submit', text: 'Save IP rules' }));
  const lines = (ta) => ta.value.split(/[\s,]+/).map((s) => s.trim()).filter(Boolean);
  rulesForm.addEventListener('submit', async (e) => {
    e.preventDefault();
    clearErrors(rulesForm);
    try {
      const t = await api('PUT', path, { ip_allow: lines(allow), ip_deny: lines(deny) });
      allow.value = t.ip_allow.join('\n');
      deny.value = t.ip_deny.join('\n');
      toast('IP rules saved; they apply within seconds');
      await refresh();
    } catch (err) { fieldError(rulesForm, err.field, explain(err)); }
  });

  async function revoke(kind, item, url) {
    const what = kind === 'key' ? `the API key "${item.name}"` : 'this share link';
    const ok = await confirmDialog({
      title: `Revoke ${kind === 'key' ? 'API key' : 'share link'}?`,
      body: `Revoking ${what} ends its access at once, open connections included.`,
      confirm: 'Revoke',
    });
    if (!ok) return;
    try {
      await api('DELETE', url);
      toast('Revoked');
      await refresh();
    } catch (err) { panelError.textContent = explain(err); }
  }

  const revokeButton = (kind, item, url) => (item.revoked_at ? '' : h('button.danger', {
    type: 'button', text: 'Revoke', 'aria-label': `Revoke ${kind} ${item.prefix}`,
    onclick: () => revoke(kind, item, url),
  }));

  async function refresh() {
    panelError.textContent = '';
    const [keys, links] = await Promise.all([api('GET', `${path}/api-keys`), api('GET', `${path}/share-links`)]);
    keysBody.replaceChildren(...keys.items.map((k) => h('tr', {},
      h('td', { 'data-label': 'Name', text: k.name }),
      h('td', { 'data-label': 'Key' }, h('code', { text: `${k.prefix}…` })),
      h('td', { 'data-label': 'Methods', text: k.methods.length ? k.methods.join(', ') : 'all' }),
      h('td', { 'data-label': 'Last used' }, timeEl(k.last_used_at, 'never')),
      h('td', { 'data-label': 'Expires' }, timeEl(k.expires_at, 'never')),
      h('td', { 'data-label': 'State' }, shareState(k)),
      h('td', {}, revokeButton('key', k, `${path}/api-keys/${k.id}`)))));
    linksBody.replaceChildren(...links.items.map((l) => h('tr', {},
      h('td', { 'data-label': 'Note', text: l.note || '—' }),
      h('td', { 'data-label': 'Link' }, h('code', { text: `${l.prefix}…` })),
      h('td', { 'data-label': 'Visitors', text: l.max_uses ? `${l.uses} / ${l.max_uses}` : String(l.uses) }),
      h('td', { 'data-label': 'Expires' }, timeEl(l.expires_at)),
      h('td', { 'data-label': 'State' }, shareState(l)),
      h('td', {}, revokeButton('link', l, `${path}/share-links/${l.id}`)))));
    const t = await api('GET', path);
    if (document.activeElement !== allow && document.activeElement !== deny) {
      allow.value = t.ip_allow.join('\n');
      deny.value = t.ip_deny.join('\n');
    }
    try {
      const d = await api('GET', `/devices/${encodeURIComponent(dsn)}`);
      const log = await api('GET', `/projects/${d.project_id}/sharing-audit?limit=50`);
      auditBody.replaceChildren(...log.items.map((e) => h('tr', {},
        h('td', { 'data-label': 'Time' }, timeEl(e.at)),
        h('td', { 'data-label': 'Who', text: e.actor_email || '—' }),
        h('td', { 'data-label': 'What' }, h('code', { text: e.action })),
        h('td', { 'data-label': 'Detail', text: e.detail || '' }))));
      auditSection.hidden = false;
    } catch (_) {
      // Not an owner or administrator of the project: no audit log to show.
      auditSection.hidden = true;
    }
  }

  const table = (id, cols, body) => h('div.table-wrap', {}, h(`table.cards#${id}`, {},
    h('thead', {}, h('tr', {}, cols.map((c) => h('th', { scope: 'col', text: c })))), body));
  auditSection.append(h('h3', { text: 'Audit log' }),
    table('sharing-audit-table', ['Time', 'Who', 'What', 'Detail'], auditBody));
  const el = h('section.card#sharing', { 'aria-labelledby': 'sharing-title' },
    h('h2#sharing-title.flush', { text: 'Sharing' }),
    panelError, shown,
    h('h3', { text: 'API keys' }),
    h('p.hint', { text: 'Machines send a key as "Authorization: Bearer <key>" or "X-Burrow-Key: <key>"; it opens this tunnel only.' }),
    table('api-keys', ['Name', 'Key', 'Methods', 'Last used', 'Expires', 'State', ''], keysBody), keyForm,
    h('h3', { text: 'Share links' }),
    h('p.hint', { text: 'Anyone with the link can use this tunnel, without an account, until it expires or is revoked.' }),
    table('share-links', ['Note', 'Link', 'Visitors', 'Expires', 'State', ''], linksBody), linkForm,
    h('h3', { text: 'IP rules' }), rulesForm,
    auditSection);
  return { el, refresh };
}
