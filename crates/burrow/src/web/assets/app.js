// burrow web UI. Vanilla JS, no build step: the server embeds this file as it is.
// The page talks to the REST API (/api/v1) with the user's JWT, kept in sessionStorage (per
// tab, gone when the tab closes) and sent as a bearer token; never in a URL or a cookie.
// Every DOM node is built with textContent, never innerHTML, so API data cannot inject markup.
'use strict';

const TOKEN = 'burrow.token';
const EMAIL = 'burrow.email';
const NOTICE = 'burrow.notice';
const NEXT = 'burrow.next';
const DEVICE = 'burrow.device';
const POLL_MS = 3000;

// ---------- small helpers ----------

/** h('tag.class#id', {attrs}, ...children): a DOM element. */
function h(spec, attrs, ...children) {
  const m = /^([a-z0-9]+)((?:[.#][\w-]+)*)$/i.exec(spec);
  const el = document.createElement(m ? m[1] : spec);
  if (m && m[2]) {
    for (const part of m[2].match(/[.#][\w-]+/g)) {
      if (part[0] === '.') el.classList.add(part.slice(1));
      else el.id = part.slice(1);
    }
  }
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k === 'text') el.textContent = v;
    else if (k in el && typeof v !== 'string') el[k] = v;
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

const $ = (sel, root = document) => root.querySelector(sel);

function toast(msg) {
  const t = $('#toast');
  t.textContent = msg;
  t.classList.add('show');
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => t.classList.remove('show'), 2500);
}

function fmtTime(iso) {
  if (!iso) return null;
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  return d.toLocaleString();
}

function ago(iso) {
  if (!iso) return '';
  const s = Math.round((Date.now() - new Date(iso).getTime()) / 1000);
  if (s < 0) {
    const f = -s;
    if (f < 3600) return `in ${Math.max(1, Math.round(f / 60))} min`;
    if (f < 172800) return `in ${Math.round(f / 3600)} h`;
    return `in ${Math.round(f / 86400)} days`;
  }
  if (s < 10) return 'just now';
  if (s < 90) return `${s} s ago`;
  if (s < 5400) return `${Math.round(s / 60)} min ago`;
  if (s < 172800) return `${Math.round(s / 3600)} h ago`;
  return `${Math.round(s / 86400)} days ago`;
}

/** A <time> element: the local date and time, and how long ago (or until). */
function timeEl(iso, fallback) {
  if (!iso) return h('span', { text: fallback || '—' });
  return h('time', { datetime: iso, title: iso, text: `${fmtTime(iso)} (${ago(iso)})` });
}

/** The public URL a browser opens: the edge serves tunnel hosts on the UI's own port. */
function publicUrl(host) {
  return `${location.protocol}//${host}${location.port ? ':' + location.port : ''}/`;
}

async function copyText(text) {
  try {
    if (navigator.clipboard && window.isSecureContext) {
      await navigator.clipboard.writeText(text);
      return true;
    }
  } catch (_) { /* fall back below */ }
  // Plain-HTTP origins other than localhost have no Clipboard API.
  const ta = h('textarea', { readonly: true, 'aria-hidden': 'true' });
  ta.value = text;
  ta.style.position = 'fixed';
  ta.style.opacity = '0';
  document.body.append(ta);
  ta.select();
  let ok = false;
  try { ok = document.execCommand('copy'); } catch (_) { ok = false; }
  ta.remove();
  return ok;
}

async function copyButton(btn, text, what) {
  const ok = await copyText(text);
  const label = btn.dataset.label || btn.textContent;
  btn.dataset.label = label;
  btn.textContent = ok ? 'Copied' : 'Copy failed';
  toast(ok ? `Copied ${what}` : `Could not copy; select the text and copy it by hand`);
  setTimeout(() => { btn.textContent = label; }, 1500);
}

// ---------- API ----------

class ApiError extends Error {
  constructor(status, body) {
    super((body && body.detail) || `HTTP ${status}`);
    this.status = status;
    this.field = body && body.field;
    this.code = body && body.code;
  }
}

/** The error in words, for people. */
function explain(e) {
  if (!(e instanceof ApiError)) return `Something went wrong: ${e.message}`;
  switch (e.status) {
    case 0: return e.message;
    case 401: return 'Your session has expired. Sign in again.';
    case 403: return `Not allowed: ${e.message}.`;
    case 404: return `Not found: ${e.message}. It may have been deleted.`;
    case 409: return `Conflict: ${e.message}.`;
    // The API names the field first ("local_port must be 1-65535"): keep its words as they are.
    case 422: return `${e.message}.`;
    default:
      if (e.status >= 500) return `The server could not do this (HTTP ${e.status}: ${e.message}). Try again.`;
      return `${capitalize(e.message)} (HTTP ${e.status}).`;
  }
}

function capitalize(s) {
  return s ? s[0].toUpperCase() + s.slice(1) : s;
}

async function api(method, path, body) {
  const headers = { accept: 'application/json' };
  const token = sessionStorage.getItem(TOKEN);
  if (token) headers.authorization = `Bearer ${token}`;
  if (body !== undefined) headers['content-type'] = 'application/json';
  let resp;
  try {
    resp = await fetch(`/api/v1${path}`, {
      method, headers, body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (e) {
    throw new ApiError(0, { detail: `Cannot reach the burrow server (${e.message}). Check your connection.` });
  }
  let data = null;
  try { data = await resp.json(); } catch (_) { data = null; }
  if (resp.status === 401 && path !== '/auth/login') {
    sessionExpired();
    throw new ApiError(401, data);
  }
  if (!resp.ok) throw new ApiError(resp.status, data || { detail: resp.statusText });
  return data;
}

function sessionExpired() {
  if (!sessionStorage.getItem(TOKEN)) return;
  sessionStorage.removeItem(TOKEN);
  sessionStorage.setItem(NOTICE, 'Your session has expired. Sign in again to continue.');
  sessionStorage.setItem(NEXT, location.pathname + location.search);
  navigate('/login', true);
}

// ---------- field errors ----------

/** Shows `msg` next to the control `name` of `form` (or in the form's general error). */
function fieldError(form, name, msg) {
  const input = name && form.querySelector(`[data-field="${name}"]`);
  if (input) {
    const err = form.querySelector(`#${input.id}-error`);
    input.setAttribute('aria-invalid', 'true');
    err.textContent = msg;
    input.focus();
    return;
  }
  const general = form.querySelector('.form-error');
  general.textContent = msg;
}

function clearErrors(form) {
  for (const el of form.querySelectorAll('[aria-invalid]')) el.removeAttribute('aria-invalid');
  for (const el of form.querySelectorAll('.error, .form-error')) el.textContent = '';
}

/** A labelled control with its hint and error slot, wired with aria-describedby. */
function field(id, label, control, hint) {
  control.id = id;
  const describedBy = [`${id}-error`];
  const parts = [h('label', { for: id, text: label }), control];
  if (hint) {
    parts.push(h('p.hint', { id: `${id}-hint`, text: hint }));
    describedBy.unshift(`${id}-hint`);
  }
  parts.push(h('p.error', { id: `${id}-error`, role: 'alert' }));
  control.setAttribute('aria-describedby', describedBy.join(' '));
  return h('div.field', {}, parts);
}

// ---------- dialogs ----------

function confirmDialog({ title, body, confirm }) {
  return new Promise((resolve) => {
    const dlg = h('dialog', { 'aria-labelledby': 'confirm-title' },
      h('div.dialog-body', {},
        h('h2#confirm-title', { text: title }),
        h('p', { text: body }),
        h('div.actions', {},
          h('button.secondary', { type: 'button', value: 'cancel', text: 'Cancel', onclick: () => dlg.close('cancel') }),
          h('button.danger.solid', { type: 'button', value: 'ok', text: confirm, onclick: () => dlg.close('ok') }))));
    dlg.addEventListener('close', () => { dlg.remove(); resolve(dlg.returnValue === 'ok'); });
    document.body.append(dlg);
    dlg.showModal();
    // The safe choice has focus: Enter does not delete.
    dlg.querySelector('button.secondary').focus();
  });
}

// ---------- routing ----------

let page = null; // the current page's cleanup

function navigate(path, replace) {
  history[replace ? 'replaceState' : 'pushState']({}, '', path);
  render();
}

document.addEventListener('click', (e) => {
  const a = e.target.closest('a[href^="/"]');
  if (!a || a.target || e.ctrlKey || e.metaKey || e.shiftKey || e.button !== 0) return;
  const url = new URL(a.href);
  if (url.origin !== location.origin || url.pathname.startsWith('/api/')) return;
  e.preventDefault();
  navigate(url.pathname + url.search);
});
window.addEventListener('popstate', render);

function render() {
  if (page) page.stop();
  page = null;
  for (const d of document.querySelectorAll('dialog')) d.remove();
  const main = $('#main');
  main.replaceChildren();
  const path = location.pathname;
  const token = sessionStorage.getItem(TOKEN);
  if (!token) {
    // An invitation link is opened before an account exists: it needs no sign-in.
    if (path === '/invite') {
      $('#top').hidden = true;
      page = invitePage(main);
      return;
    }
    if (path !== '/login') {
      sessionStorage.setItem(NEXT, path + location.search);
      history.replaceState({}, '', '/login');
    }
    $('#top').hidden = true;
    page = loginPage(main);
    return;
  }
  if (path === '/login') {
    history.replaceState({}, '', '/reverse-tunnels');
  }
  $('#top').hidden = false;
  $('#who-email').textContent = sessionStorage.getItem(EMAIL) || '';
  showAdminLink();
  const detail = /^\/reverse-tunnels\/([^/]+)\/(\d+)$/.exec(location.pathname);
  const members = /^\/projects\/(\d+)\/members$/.exec(location.pathname);
  let nav;
  if (location.pathname === '/account') {
    nav = 'account';
    page = accountPage(main);
  } else if (location.pathname === '/admin/users') {
    nav = 'users';
    page = adminUsersPage(main);
  } else if (location.pathname === '/projects') {
    nav = 'projects';
    page = projectsPage(main);
  } else if (members) {
    nav = 'projects';
    page = membersPage(main, members[1]);
  } else if (location.pathname === '/invite') {
    nav = null;
    page = invitePage(main);
  } else if (location.pathname === '/devices') {
    nav = 'devices';
    page = devicesPage(main);
  } else if (location.pathname === '/traffic') {
    nav = 'traffic';
    page = window.burrowOverview.page(main, { api, h, explain, poller, pollMs: 10000 });
  } else if (detail) {
    nav = 'tunnels';
    page = detailPage(main, decodeURIComponent(detail[1]), detail[2]);
  } else {
    nav = 'tunnels';
    if (location.pathname !== '/reverse-tunnels') history.replaceState({}, '', '/reverse-tunnels');
    page = tunnelsPage(main);
  }
  for (const a of document.querySelectorAll('[data-nav]')) {
    if (a.dataset.nav === nav) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  const title = main.querySelector('h1');
  document.title = title ? `${title.textContent} · burrow` : 'burrow';
}

/** Runs `fn` now and every `ms` while the page lives; errors go to `onError`. */
function poller(fn, ms, onError) {
  let stopped = false;
  let timer = null;
  const tick = async () => {
    if (stopped) return;
    try {
      await fn();
      onError(null);
    } catch (e) {
      if (!stopped && !(e instanceof ApiError && e.status === 401)) onError(e);
    }
    if (!stopped) timer = setTimeout(tick, ms);
  };
  tick();
  return { stop() { stopped = true; clearTimeout(timer); } };
}

$('#logout').addEventListener('click', () => {
  sessionStorage.removeItem(TOKEN);
  sessionStorage.removeItem(EMAIL);
  sessionStorage.setItem(NOTICE, 'You are signed out.');
  navigate('/login');
});

// ---------- login ----------

function loginPage(main) {
  const notice = sessionStorage.getItem(NOTICE) || '';
  sessionStorage.removeItem(NOTICE);
  const email = h('input', { type: 'email', autocomplete: 'username', 'data-field': 'email' });
  const password = h('input', { type: 'password', autocomplete: 'current-password', 'data-field': 'password' });
  const button = h('button', { type: 'submit', text: 'Sign in' });
  const form = h('form#login-form', { novalidate: true },
    field('login-email', 'Email', email),
    field('login-password', 'Password', password),
    h('p.form-error#login-error', { role: 'alert' }),
    button);
  const sso = h('p.sso#sso-login', { hidden: true });
  main.append(h('div.login.card', {},
    h('h1', {}, h('img', { src: '/ui/icon.svg', alt: '', width: 28, height: 28 }), 'Sign in to burrow'),
    h('p.notice#login-notice', { role: 'status', text: notice }),
    sso,
    form));
  showSignInOptions(sso, form);
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    clearErrors(form);
    if (!email.value.trim()) return fieldError(form, 'email', 'Enter your email address.');
    if (!password.value) return fieldError(form, 'password', 'Enter your password.');
    button.disabled = true;
    try {
      const r = await api('POST', '/auth/login', { email: email.value, password: password.value });
      sessionStorage.setItem(TOKEN, r.access_token);
      sessionStorage.setItem(EMAIL, email.value.trim().toLowerCase());
      navigate(afterSignIn(), true);
    } catch (err) {
      button.disabled = false;
      const msg = err.status === 401 ? 'Wrong email or password.' : explain(err);
      fieldError(form, err.status === 422 ? err.field : null, msg);
    }
  });
  email.focus();
  return { stop() {} };
}

// ---------- reverse tunnels ----------

function deviceBanner(d) {
  if (!d) return null;
  const who = `${d.name} (${d.dsn})`;
  let cls;
  let text;
  if (d.revoked) {
    cls = 'revoked';
    text = `${who} is revoked: its agent is refused until it enrolls again with a new token (Devices page). Tunnels are kept but carry no traffic.`;
  } else if (d.online) {
    cls = 'online';
    text = `${who} is online (agent last seen ${ago(d.last_seen_at)}). Changes you make here reach it within seconds; no restart needed.`;
  } else if (!d.enrolled) {
    cls = 'offline';
    text = `${who} has not enrolled yet. Run its enrollment command on the device (Devices page); tunnels you create now start working within seconds of its agent connecting.`;
  } else {
    cls = 'offline';
    text = `${who} is offline (agent last seen ${d.last_seen_at ? ago(d.last_seen_at) : 'never'}). Changes are saved now and reach the device within seconds of its agent reconnecting.`;
  }
  return h(`div.banner.${cls}#device-banner`, { role: 'status', 'data-online': String(!!d.online) },
    h(`span.badge.${d.online ? 'ok' : d.revoked ? 'bad' : 'warn'}`, { text: d.online ? 'Online' : d.revoked ? 'Revoked' : 'Offline' }),
    h('p', { text }));
}

function tunnelsPage(main) {
  const params = new URLSearchParams(location.search);
  let devices = [];
  let dsn = params.get('device') || sessionStorage.getItem(DEVICE) || '';
  const busy = new Set(); // tunnel ids with a change in flight: polling leaves their rows alone
  const rows = new Map(); // id -> { tr, json }

  const select = h('select', { 'data-field': 'device' });
  const newButton = h('button#new-tunnel', { type: 'button', text: 'New tunnel', disabled: true });
  const bannerSlot = h('div');
  const pageError = h('p.form-error#page-error', { role: 'alert' });
  const tbody = h('tbody');
  const empty = h('div.empty#tunnels-empty', { hidden: true });
  const table = h('table.cards#tunnels', {},
    h('caption.visually-hidden', { text: 'Reverse tunnels of the selected device' }),
    h('thead', {}, h('tr', {}, ['Name', 'Public URL', 'Target', 'Enabled', 'Usage', 'Status', 'Actions'].map((c) => h('th', { scope: 'col', text: c })))),
    tbody);
  main.append(
    h('div.page-head', {},
      h('div', {}, h('h1', { text: 'Reverse Tunnels' }),
        h('p.sub', { text: 'Public URLs for the services on your devices.' })),
      h('div.inline-form', {}, field('device-select', 'Device', select), newButton)),
    bannerSlot, pageError, h('div.table-wrap', {}, table, empty));

  select.addEventListener('change', () => {
    dsn = select.value;
    sessionStorage.setItem(DEVICE, dsn);
    history.replaceState({}, '', `/reverse-tunnels?device=${encodeURIComponent(dsn)}`);
    tbody.replaceChildren();
    rows.clear();
    refresh().catch((e) => { pageError.textContent = explain(e); });
  });
  newButton.addEventListener('click', () => openCreate());

  const current = () => devices.find((d) => d.dsn === dsn);
  const base = () => `/reverse-tunnels/devices/${encodeURIComponent(dsn)}/reverse-tunnels`;

  async function refresh() {
    devices = await api('GET', '/devices');
    if (!devices.some((d) => d.dsn === dsn)) dsn = devices.length ? devices[0].dsn : '';
    // Rebuild the options only when the list changed, so an open selector is not disturbed.
    const key = devices.map((d) => `${d.dsn}\u0000${d.name}`).join('\u0001');
    if (select.dataset.key !== key) {
      select.replaceChildren(...devices.map((d) => h('option', { value: d.dsn, text: `${d.name} (${d.dsn})` })));
      select.dataset.key = key;
    }
    select.value = dsn;
    select.disabled = devices.length === 0;
    newButton.disabled = !dsn;
    if (!dsn) {
      bannerSlot.replaceChildren();
      tbody.replaceChildren();
      rows.clear();
      empty.hidden = false;
      empty.replaceChildren('No devices yet. ', h('a', { href: '/devices', text: 'Register a device' }), ' first, then create its tunnels here.');
      return;
    }
    bannerSlot.replaceChildren(deviceBanner(current()));
    const list = await api('GET', base());
    renderRows(list.items);
  }

  function renderRows(items) {
    const seen = new Set();
    let prev = null;
    for (const t of items) {
      seen.add(t.id);
      const json = JSON.stringify(t);
      let r = rows.get(t.id);
      if (!r || (r.json !== json && !busy.has(t.id))) {
        const tr = row(t);
        if (r) {
          // Keep keyboard focus on the same control across a refresh.
          const focused = r.tr.contains(document.activeElement) && document.activeElement.dataset.role;
          r.tr.replaceWith(tr);
          if (focused) { const el = tr.querySelector(`[data-role="${focused}"]`); if (el) el.focus(); }
        }
        r = { tr, json };
        rows.set(t.id, r);
      }
      if (prev ? prev.nextSibling !== r.tr : tbody.firstChild !== r.tr) {
        if (prev) prev.after(r.tr); else tbody.prepend(r.tr);
      }
      prev = r.tr;
    }
    for (const [id, r] of rows) {
      if (!seen.has(id)) { r.tr.remove(); rows.delete(id); }
    }
    empty.hidden = items.length > 0;
    if (!items.length) empty.textContent = 'No tunnels on this device yet. Use “New tunnel” to give one of its services a public URL.';
  }

  function row(t) {
    const url = publicUrl(t.public_url);
    const err = h('p.error', { role: 'alert', 'data-role': 'row-error' });
    const toggle = h('input', { type: 'checkbox', role: 'switch', checked: t.is_enabled, 'data-role': 'toggle', 'aria-label': `Enabled: ${t.name}` });
    const copy = h('button.small.secondary', { type: 'button', text: 'Copy', 'data-role': 'copy', 'aria-label': `Copy public URL of ${t.name}` });
    const del = h('button.small.danger', { type: 'button', text: 'Delete', 'data-role': 'delete', 'aria-label': `Delete ${t.name}` });
    copy.addEventListener('click', () => copyButton(copy, url, url));
    toggle.addEventListener('change', async () => {
      err.textContent = '';
      busy.add(t.id);
      toggle.disabled = true;
      try {
        await api('PUT', `${base()}/${t.id}`, { is_enabled: toggle.checked });
        toast(`${t.name} ${toggle.checked ? 'enabled' : 'disabled'}`);
      } catch (e) {
        toggle.checked = !toggle.checked;
        err.textContent = explain(e);
      } finally {
        busy.delete(t.id);
        toggle.disabled = false;
      }
      refresh().catch(() => {});
    });
    del.addEventListener('click', async () => {
      err.textContent = '';
      const ok = await confirmDialog({
        title: `Delete ${t.name}?`,
        body: `${url} stops working at once and the device closes the tunnel. This cannot be undone.`,
        confirm: 'Delete tunnel',
      });
      if (!ok) { del.focus(); return; }
      busy.add(t.id);
      try {
        await api('DELETE', `${base()}/${t.id}`);
        toast(`Deleted ${t.name}`);
        busy.delete(t.id);
        await refresh();
        newButton.focus();
      } catch (e) {
        busy.delete(t.id);
        err.textContent = explain(e);
      }
    });
    let status;
    if (!t.is_enabled) status = h('span.badge.off', { text: 'Disabled' });
    else if (t.agent_connected) status = h('span.badge.ok', { text: 'Agent connected' });
    else status = h('span.badge.warn', { text: 'Agent not connected' });
    return h('tr', { 'data-id': t.id, 'data-name': t.name },
      h('td', { 'data-label': 'Name' }, h('strong', { text: t.name }), t.description ? h('p.sub', { text: t.description }) : null),
      h('td', { 'data-label': 'Public URL' }, h('div.url', {},
        h('a', { href: url, target: '_blank', rel: 'noopener', 'data-role': 'open', text: url }), copy)),
      h('td', { 'data-label': 'Target' }, h('code', { text: `${t.protocol}://localhost:${t.local_port}` })),
      h('td', { 'data-label': 'Enabled' }, h('label.switch', {}, toggle, h('span', { text: t.is_enabled ? 'On' : 'Off' }))),
      h('td', { 'data-label': 'Usage' },
        h('span', { 'data-role': 'requests', 'data-count': t.total_requests, text: `${t.total_requests} ${t.total_requests === 1 ? 'request' : 'requests'}` }),
        h('p.sub', {}, t.last_accessed_at ? ['last ', timeEl(t.last_accessed_at)] : 'never accessed')),
      h('td', { 'data-label': 'Status' }, status,
        h('p.sub', {}, t.expires_at ? ['expires ', timeEl(t.expires_at)] : (t.is_enabled ? 'no broker tunnel open' : ''))),
      h('td', { 'data-label': 'Actions' }, h('div.url', {},
        h('a.button.secondary.small', { href: `/reverse-tunnels/${encodeURIComponent(dsn)}/${t.id}`, 'data-role': 'details', text: 'Details', 'aria-label': `Details of ${t.name}` }),
        del), err));
  }

  async function openCreate() {
    const d = current();
    if (!d) return;
    const name = h('input', { type: 'text', 'data-field': 'name', autocomplete: 'off' });
    const description = h('textarea', { 'data-field': 'description' });
    const port = h('input', { type: 'number', min: 1, max: 65535, value: '8080', 'data-field': 'local_port', inputmode: 'numeric' });
    const protocol = h('select', { 'data-field': 'protocol' }, ['http', 'https', 'ws', 'wss'].map((p) => h('option', { value: p, text: p })));
    const requireAuth = h('input', { type: 'checkbox', checked: true, 'data-field': 'require_auth' });
    const subdomain = h('input', { type: 'text', 'data-field': 'subdomain', autocomplete: 'off', spellcheck: false });
    const users = h('div.users', {}, h('p.hint', { text: 'Loading the project’s members…' }));
    const usersBox = h('fieldset#t-users', { 'data-field': 'allowed_user_ids', tabindex: -1, 'aria-describedby': 't-users-hint t-users-error' },
      h('legend', { text: 'Allowed users' }),
      h('p.hint#t-users-hint', { text: 'Only these members of the device’s project may open the URL. None ticked: every member may.' }),
      users, h('p.error#t-users-error', { role: 'alert' }));
    const submit = h('button', { type: 'submit', text: 'Create tunnel' });
    const form = h('form#create-form', { novalidate: true },
      h('h2#create-title', { text: `New tunnel on ${d.name}` }),
      field('t-name', 'Name', name),
      field('t-description', 'Description', description),
      h('div.row2', {},
        field('t-port', 'Local port', port, 'The service’s port on the device.'),
        field('t-protocol', 'Protocol', protocol)),
      h('div.field', {}, h('label.check', {}, requireAuth, 'Require authentication'),
        h('p.hint', { text: 'Visitors sign in with their burrow account. Off: anyone with the URL can open it.' })),
      usersBox,
      field('t-subdomain', 'Subdomain (optional)', subdomain, 'A DNS label of your choice; left empty, one is chosen for you.'),
      h('p.form-error#create-error', { role: 'alert' }),
      h('div.actions', {},
        h('button.secondary', { type: 'button', text: 'Cancel', onclick: () => dlg.close() }), submit));
    const dlg = h('dialog#create-dialog', { 'aria-labelledby': 'create-title' }, form);
    dlg.addEventListener('close', () => { dlg.remove(); newButton.focus(); });
    document.body.append(dlg);
    dlg.showModal();
    name.focus();
    requireAuth.addEventListener('change', () => { usersBox.disabled = !requireAuth.checked; });

    api('GET', `/projects/${d.project_id}/members`).then((members) => {
      users.replaceChildren(...members.map((m) => h('label.check', {},
        h('input', { type: 'checkbox', value: String(m.user_id), 'data-user': m.user_id }), `${m.email} (${m.role})`)));
    }).catch((e) => { users.replaceChildren(h('p.error', { text: `Could not load the members: ${explain(e)}` })); });

    form.addEventListener('submit', async (e) => {
      e.preventDefault();
      clearErrors(form);
      const body = {
        name: name.value,
        description: description.value.trim() ? description.value : null,
        protocol: protocol.value,
        require_auth: requireAuth.checked,
        allowed_user_ids: requireAuth.checked ? [...users.querySelectorAll('input:checked')].map((c) => Number(c.value)) : [],
      };
      // Sent as typed (an empty box means the default, 8080): the API judges the value.
      if (port.value.trim() !== '') body.local_port = Number(port.value);
      else if (port.validity.badInput) return fieldError(form, 'local_port', 'Local port must be a whole number from 1 to 65535.');
      if (subdomain.value.trim()) body.subdomain = subdomain.value.trim();
      submit.disabled = true;
      try {
        const t = await api('POST', base(), body);
        dlg.close();
        toast(`Created ${t.name}: ${publicUrl(t.public_url)}`);
        await refresh();
      } catch (err) {
        if (err.status === 422 && err.field === 'allowed_user_ids') {
          $('#t-users-error').textContent = explain(err);
          usersBox.focus();
        } else {
          // A taken subdomain is a conflict about that field: say it there.
          const f = err.status === 422 ? err.field : (err.status === 409 && body.subdomain ? 'subdomain' : null);
          fieldError(form, f, explain(err));
        }
      } finally {
        submit.disabled = false;
      }
    });
  }

  return poller(refresh, POLL_MS, (e) => { pageError.textContent = e ? `Could not refresh: ${explain(e)}` : ''; });
}

// ---------- devices ----------

function devicesPage(main) {
  let projects = [];
  const project = h('select', { 'data-field': 'project' });
  const projectName = h('input', { type: 'text', 'data-field': 'project_name', autocomplete: 'off' });
  const projectNameField = field('d-project-name', 'New project name', projectName);
  const dsn = h('input', { type: 'text', 'data-field': 'dsn', autocomplete: 'off', spellcheck: false });
  const name = h('input', { type: 'text', 'data-field': 'name', autocomplete: 'off' });
  const submit = h('button#register', { type: 'submit', text: 'Register device' });
  const form = h('form#register-form', { novalidate: true },
    h('div.inline-form', {},
      field('d-project', 'Project', project),
      projectNameField,
      field('d-dsn', 'Device serial number (DSN)', dsn, 'Letters, digits, “-” and “_”.'),
      field('d-name', 'Name', name),
      submit),
    h('p.form-error#register-error', { role: 'alert' }));
  const enrollSlot = h('div');
  const pageError = h('p.form-error#page-error', { role: 'alert' });
  const tbody = h('tbody');
  const empty = h('div.empty', { hidden: true, text: 'No devices yet. Register one above.' });
  main.append(
    h('div.page-head', {}, h('div', {}, h('h1', { text: 'Devices' }),
      h('p.sub', { text: 'Register a device, run its enrollment command on it once, and its agent keeps its tunnels running.' }))),
    enrollSlot,
    h('section.card', { 'aria-labelledby': 'register-title' }, h('h2#register-title.flush', { text: 'Register a device' }), form),
    h('h2', { text: 'Your devices' }),
    pageError,
    h('div.table-wrap', {}, h('table.cards#devices', {},
      h('caption.visually-hidden', { text: 'Devices' }),
      h('thead', {}, h('tr', {}, ['Device', 'Project', 'Status', 'Last seen', 'Actions'].map((c) => h('th', { scope: 'col', text: c })))),
      tbody), empty));

  project.addEventListener('change', () => { projectNameField.hidden = project.value !== 'new'; });

  function showEnrollment(d) {
    const command = `${d.enrollment_command}\nburrow-agent run --dir /etc/burrow-agent`;
    const code = h('code#enroll-command', { text: command });
    const copy = h('button#copy-enroll', { type: 'button', text: 'Copy command' });
    copy.addEventListener('click', () => copyButton(copy, command, 'the enrollment command'));
    const panel = h('section.card.enroll#enroll-panel', { 'aria-labelledby': 'enroll-title', tabindex: -1 },
      h('h2#enroll-title.flush', { text: `Enroll ${d.name} (${d.dsn})` }),
      h('p', { text: 'Run this on the device. The token in it works once, within 24 hours, and is shown only now: burrow keeps only its hash.' }),
      h('pre', {}, code),
      h('div.actions.start', {}, copy,
        h('button.secondary', { type: 'button', text: 'Done', onclick: () => { enrollSlot.replaceChildren(); dsn.focus(); } })));
    enrollSlot.replaceChildren(panel);
    panel.focus();
  }

  async function refresh() {
    const [ps, ds] = await Promise.all([api('GET', '/projects'), api('GET', '/devices')]);
    projects = ps;
    const key = ps.map((p) => `${p.id}:${p.name}`).join(',');
    if (project.dataset.key !== key) {
      const keep = project.value;
      project.replaceChildren(...ps.map((p) => h('option', { value: String(p.id), text: p.name })),
        h('option', { value: 'new', text: 'New project…' }));
      project.dataset.key = key;
      project.value = ps.some((p) => String(p.id) === keep) ? keep : (ps.length ? String(ps[0].id) : 'new');
      projectNameField.hidden = project.value !== 'new';
    }
    const names = new Map(projects.map((p) => [p.id, p.name]));
    const focused = tbody.contains(document.activeElement) ? document.activeElement.dataset.key : null;
    tbody.replaceChildren(...ds.map((d) => deviceRow(d, names.get(d.project_id) || `#${d.project_id}`)));
    if (focused) { const el = tbody.querySelector(`[data-key="${CSS.escape(focused)}"]`); if (el) el.focus(); }
    empty.hidden = ds.length > 0;
  }

  function deviceRow(d, projectLabel) {
    const err = h('p.error', { role: 'alert' });
    let status;
    if (d.revoked) status = h('span.badge.bad', { text: 'Revoked' });
    else if (d.online) status = h('span.badge.ok', { text: 'Online' });
    else if (!d.enrolled) status = h('span.badge.warn', { text: 'Not enrolled' });
    else status = h('span.badge.off', { text: 'Offline' });
    const reenroll = h('button.small.secondary', { type: 'button', text: 'New enrollment token', 'data-key': `reenroll:${d.dsn}`, 'aria-label': `New enrollment token for ${d.dsn}` });
    reenroll.addEventListener('click', async () => {
      err.textContent = '';
      try { showEnrollment({ ...(await api('POST', `/devices/${encodeURIComponent(d.dsn)}/enrollment`)), name: d.name }); } catch (e) { err.textContent = explain(e); }
    });
    const revoke = h('button.small.danger', { type: 'button', text: 'Revoke', disabled: d.revoked, 'data-key': `revoke:${d.dsn}`, 'aria-label': `Revoke ${d.dsn}` });
    revoke.addEventListener('click', async () => {
      err.textContent = '';
      const ok = await confirmDialog({
        title: `Revoke ${d.name}?`,
        body: `The agent of ${d.dsn} is refused at once and its tunnels carry no traffic until it enrolls again with a new token.`,
        confirm: 'Revoke device',
      });
      if (!ok) { revoke.focus(); return; }
      try {
        await api('POST', `/devices/${encodeURIComponent(d.dsn)}/revoke`);
        toast(`Revoked ${d.dsn}`);
        await refresh();
      } catch (e) { err.textContent = explain(e); }
    });
    return h('tr', { 'data-dsn': d.dsn },
      h('td', { 'data-label': 'Device' }, h('strong', { text: d.name }), h('p.sub.mono', { text: d.dsn })),
      h('td', { 'data-label': 'Project', text: projectLabel }),
      h('td', { 'data-label': 'Status' }, status),
      h('td', { 'data-label': 'Last seen' }, timeEl(d.last_seen_at, 'never')),
      h('td', { 'data-label': 'Actions' }, h('div.url', {},
        h('a.button.small.secondary', { href: `/reverse-tunnels?device=${encodeURIComponent(d.dsn)}`, text: 'Tunnels', 'data-key': `tunnels:${d.dsn}`, 'aria-label': `Tunnels of ${d.dsn}` }),
        reenroll, revoke), err));
  }

  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    clearErrors(form);
    submit.disabled = true;
    try {
      let pid = project.value;
      if (pid === 'new') {
        try {
          const p = await api('POST', '/projects', { name: projectName.value });
          pid = String(p.id);
        } catch (err) {
          if (err.status === 422) return fieldError(form, 'project_name', explain(err));
          throw err;
        }
        project.dataset.key = '';
        await refresh();
        project.value = pid;
        projectNameField.hidden = true;
      }
      const d = await api('POST', `/projects/${pid}/devices`, { dsn: dsn.value.trim(), name: name.value });
      showEnrollment(d);
      dsn.value = '';
      name.value = '';
      await refresh();
    } catch (err) {
      // A taken DSN (409) is about the DSN field: say it there.
      const f = err.status === 422 ? err.field : (err.status === 409 ? 'dsn' : null);
      fieldError(form, f, explain(err));
    } finally {
      submit.disabled = false;
    }
  });

  return poller(refresh, POLL_MS, (e) => { pageError.textContent = e ? `Could not refresh: ${explain(e)}` : ''; });
}

// ---------- tunnel detail ----------

function detailPage(main, dsn, id) {
  const path = `/reverse-tunnels/devices/${encodeURIComponent(dsn)}/reverse-tunnels/${id}`;
  const title = h('h1', { text: 'Tunnel' });
  const urlLine = h('p.sub');
  const pageError = h('p.form-error#page-error', { role: 'alert' });
  const info = h('dl.facts#tunnel-facts');
  const life = h('dl.facts#lifecycle');
  const logBody = h('tbody');
  const logEmpty = h('div.empty', { hidden: true, text: 'No requests yet. Requests through the public URL appear here within seconds.' });
  const rotate = h('button.secondary', { type: 'button', text: 'Rotate now' });
  const actionError = h('p.error', { role: 'alert' });
  const sharing = sharingPanel(path, dsn);
  sharing.refresh().catch((e) => { pageError.textContent = `Could not load sharing: ${explain(e)}`; });
  const domains = domainsPanel(path);
  domains.refresh();
  const traffic = window.burrowTraffic.section({ path, api, h, explain, toast });
  main.append(
    h('p', {}, h('a', { href: `/reverse-tunnels?device=${encodeURIComponent(dsn)}`, text: '← Reverse Tunnels' })),
    h('div.page-head', {}, h('div', {}, title, urlLine), h('div', {}, rotate, actionError)),
    pageError,
    h('div.grid2', {},
      h('section.card', { 'aria-labelledby': 'facts-title' }, h('h2#facts-title.flush', { text: 'Tunnel' }), info),
      h('section.card', { 'aria-labelledby': 'life-title' }, h('h2#life-title.flush', { text: 'Lifecycle' }), life)),
    sharing.el,
    domains.el,
    traffic.el,
    traffic.limits,
    h('h2#log-title', { text: 'Access log' }),
    h('div.table-wrap', {}, h('table.cards#access-log', { 'aria-labelledby': 'log-title' },
      h('thead', {}, h('tr', {}, ['Time', 'Request', 'Status', 'Client', 'User', 'Bytes in / out', 'Duration'].map((c) => h('th', { scope: 'col', text: c })))),
      logBody), logEmpty));

  rotate.addEventListener('click', async () => {
    actionError.textContent = '';
    rotate.disabled = true;
    try {
      await api('POST', `${path}/rotate`);
      toast('Rotated: a new broker tunnel and tokens; the agent moves over within seconds');
      await refresh();
    } catch (e) { actionError.textContent = explain(e); } finally { rotate.disabled = false; }
  });

  const facts = (dl, pairs) => dl.replaceChildren(...pairs.flatMap(([k, v]) => [h('dt', { text: k }), h('dd', {}, v)]));
  const conn = (c) => (c ? [h(`span.badge.${c.status === 'CONNECTED' ? 'ok' : 'off'}`, { text: c.status === 'CONNECTED' ? 'Connected' : 'Disconnected' }),
    c.last_updated_at ? [' since ', timeEl(c.last_updated_at)] : null] : '—');

  async function refresh() {
    const [t, d, log] = await Promise.all([api('GET', path), api('GET', `${path}/describe`), api('GET', `${path}/access-log?limit=100`)]);
    title.textContent = t.name;
    document.title = `${t.name} · burrow`;
    const url = publicUrl(t.public_url);
    urlLine.replaceChildren(h('a', { href: url, target: '_blank', rel: 'noopener', text: url }), t.description ? ` — ${t.description}` : '');
    rotate.disabled = !t.is_enabled;
    facts(info, [
      ['Target', h('code', { text: `${t.protocol}://localhost:${t.local_port}` })],
      ['Enabled', t.is_enabled ? 'Yes' : 'No'],
      ['Authentication', t.require_auth ? (t.allowed_user_ids.length ? `Required; only users ${t.allowed_user_ids.join(', ')}` : 'Required (any project member)') : 'None: public'],
      ['Requests', h('span#detail-requests', { text: String(t.total_requests) })],
      ['Last accessed', timeEl(t.last_accessed_at, 'never')],
      ['Created', timeEl(t.created_at)],
    ]);
    await traffic.refresh(t);
    const b = d.tunnel;
    facts(life, [
      ['State', h('span#lifecycle-state', {}, !t.is_enabled ? h('span.badge.off', { text: 'Disabled' })
        : b ? h(`span.badge.${b.status === 'OPEN' ? 'ok' : 'warn'}`, { text: b.status }) : h('span.badge.warn', { text: 'No broker tunnel' }))],
      ['Broker tunnel', b ? h('code', { text: b.tunnel_id }) : '—'],
      ['Agent (destination)', b ? conn(b.destination_connection_state) : '—'],
      ['Edge (source)', b ? conn(b.source_connection_state) : '—'],
      ['Services', b && b.services ? b.services.join(', ') : '—'],
      ['Expires', timeEl(d.expires_at, '—')],
      ['Device', [h(`span.badge.${d.device.online ? 'ok' : 'warn'}`, { text: d.device.online ? 'Online' : 'Offline' }),
        ' last seen ', timeEl(d.device.last_seen_at, 'never')]],
    ]);
    logBody.replaceChildren(...log.items.map((e) => h('tr', {},
      h('td', { 'data-label': 'Time' }, timeEl(e.at)),
      h('td', { 'data-label': 'Request' }, h('code', { text: `${e.method} ${e.path}` })),
      h('td', { 'data-label': 'Status' }, h(`span.badge.${e.status < 400 ? 'ok' : e.status < 500 ? 'warn' : 'bad'}`, { text: String(e.status) })),
      h('td', { 'data-label': 'Client', text: e.client_ip || '—', title: e.user_agent || '' }),
      h('td', { 'data-label': 'User', text: e.user_id === null ? 'anonymous' : `user ${e.user_id}` }),
      h('td', { 'data-label': 'Bytes in / out', text: `${e.bytes_in} / ${e.bytes_out}` }),
      h('td', { 'data-label': 'Duration', text: `${e.duration_ms} ms` }))));
    logEmpty.hidden = log.items.length > 0;
  }

  const polling = poller(refresh, POLL_MS, (e) => { pageError.textContent = e ? `Could not refresh: ${explain(e)}` : ''; });
  // Leaving the page ends the domains panel's own refreshes too.
  return { stop() { polling.stop(); domains.stop(); } };
}


// ---------- single sign-on ----------

/** Where a sign-in lands: the saved NEXT (a local path), else the tunnel list. */
function afterSignIn() {
  const next = sessionStorage.getItem(NEXT);
  sessionStorage.removeItem(NEXT);
  return next && next.startsWith('/') && !next.startsWith('//') && next !== '/login' ? next : '/reverse-tunnels';
}

/** Shows the SSO button and hides the password form, as the server's sign-in options say. */
async function showSignInOptions(sso, form) {
  let options;
  try {
    options = await api('GET', '/auth/config');
  } catch (_) {
    return; // The password form stays; its own errors explain an unreachable server.
  }
  if (options.oidc && options.oidc.enabled) {
    // A tunnel host's login (`?next=/edge/authorize?...`) continues there after the provider.
    const asked = new URLSearchParams(location.search).get('next') || '';
    const next = asked.startsWith('/edge/authorize?') ? asked : (sessionStorage.getItem(NEXT) || '/');
    sso.replaceChildren(h('a.button#sso-button', {
      href: `/api/v1/auth/oidc/start?next=${encodeURIComponent(next)}`, text: options.oidc.label,
    }));
    sso.hidden = false;
  }
  if (options.password_login === false) form.hidden = true;
}

/** The callback sent this tab back with `#sso=<one-time code>`: trade it for the token. */
async function finishSingleSignOn() {
  const m = /^#sso=([A-Za-z0-9_-]+)$/.exec(location.hash);
  if (!m) return;
  // The code leaves the address bar (and history) before anything else happens.
  history.replaceState({}, '', location.pathname + location.search);
  try {
    const r = await api('POST', '/auth/oidc/exchange', { code: m[1] });
    sessionStorage.setItem(TOKEN, r.access_token);
    const me = await api('GET', '/auth/me');
    sessionStorage.setItem(EMAIL, me.email);
    history.replaceState({}, '', afterSignIn());
  } catch (err) {
    sessionStorage.removeItem(TOKEN);
    sessionStorage.setItem(NOTICE, `Single sign-on failed: ${explain(err)}`);
  }
}

finishSingleSignOn().finally(render);
