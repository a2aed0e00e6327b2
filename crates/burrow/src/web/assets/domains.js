// burrow web UI: a tunnel's Domains panel (custom hostnames, docs/custom-domains.md). Loaded
// before app.js, whose helpers (h, api, explain, toast, copyButton, timeEl, field,
// clearErrors, fieldError, confirmDialog) it uses at call time, as sharing.js does. The
// records to publish are not secrets: they are shown after adding and again on request.
// While a domain is on its way (not active, not failed) the panel refreshes itself every few
// seconds, until the page is left or DOMAIN_POLL_LIMIT_MS has passed since the last action.
'use strict';

const DOMAIN_POLL_MS = 3000;
// DNS can take hours to propagate: the panel stops asking after a while; "Check now" (or
// opening the page again) starts it over.
const DOMAIN_POLL_LIMIT_MS = 10 * 60 * 1000;
const DOMAIN_SETTLED = new Set(['active', 'failed']);
const DOMAIN_STATUS = {
  pending_verification: ['warn', 'Pending verification'],
  verified: ['warn', 'Verified'],
  issuing: ['warn', 'Issuing certificate'],
  active: ['ok', 'Active'],
  failed: ['bad', 'Failed'],
};

/** The status badge of a domain (unknown statuses are shown as they come). */
function domainBadge(d) {
  const [cls, label] = DOMAIN_STATUS[d.status] || ['off', d.status];
  return h(`span.badge.${cls}.domain-status`, { text: label, 'data-status': d.status });
}

/** The certificate cell: its expiry when burrow holds one. */
function domainCertificate(c) {
  if (!c || !c.not_after) return h('span', { text: 'None yet' });
  const prefix = c.status === 'expired' ? 'Expired ' : 'Valid until ';
  return h(`span.cert-${c.status}`, {}, prefix, timeEl(c.not_after));
}

/** One record to publish: type, name and value, each copyable. */
function dnsRecordRow(id, rec, arrow) {
  const copy = (value, what) => {
    const b = h('button.secondary.small', { type: 'button', text: 'Copy', 'aria-label': `Copy ${what}` });
    b.addEventListener('click', () => copyButton(b, value, what));
    return b;
  };
  return h(`div.dns-record#${id}`, {},
    h('span.badge.off', { text: rec.type }),
    h('code.record-name', { text: rec.name }), copy(rec.name, `the ${rec.type} name`),
    h('span.record-sep', { text: arrow }),
    h('code.record-value', { text: rec.value }), copy(rec.value, `the ${rec.type} value`));
}

/** The records the owner publishes for domain `d`, with what to do next. */
function dnsRecords(d) {
  return h('div.records-box', { role: 'status', 'data-hostname': d.hostname },
    h('p', {}, h('strong', { text: `Publish these DNS records for ${d.hostname}` }),
      ', then press “Check now”. Keep the TXT record: it is checked again later.'),
    d.converted_from_unicode
      ? h('p.notice.domain-converted', { text: `The name you entered was converted to its ASCII (punycode) form, ${d.hostname}: publish the records under this name.` })
      : null,
    dnsRecordRow('record-txt', d.verification, '='),
    dnsRecordRow('record-cname', d.target, '→'),
    h('p.hint', { text: 'Instead of the CNAME you may publish A/AAAA records with the addresses of the tunnel’s host (e.g. at a zone apex).' }));
}

function domainsPanel(path) {
  const body = h('tbody');
  const empty = h('div.empty', { text: 'No custom domains. Add one of yours below.' });
  const shown = h('div#domain-records');
  const panelError = h('p.form-error#domains-error', { role: 'alert' });
  let stopped = false;
  let timer = null;
  let pollUntil = Date.now() + DOMAIN_POLL_LIMIT_MS;
  let items = [];

  const hostname = h('input', { type: 'text', 'data-field': 'hostname', required: true, maxlength: 253, autocomplete: 'off', spellcheck: false });
  const submit = h('button', { type: 'submit', text: 'Add domain' });
  const form = h('form#domain-form', { novalidate: true },
    h('div.inline-form', {},
      field('domain-hostname', 'Hostname', hostname, 'A name in a zone of yours, e.g. robot7.example.com (no wildcard, no IP address)'),
      submit),
    h('p.form-error', { role: 'alert' }));

  /** Shows domain `d`'s records (or clears them when `d` is null). */
  function showRecords(d) {
    shown.replaceChildren(...(d ? [dnsRecords(d)] : []));
  }

  function schedule() {
    clearTimeout(timer);
    timer = null;
    if (stopped || Date.now() > pollUntil) return;
    if (items.some((d) => !DOMAIN_SETTLED.has(d.status))) {
      timer = setTimeout(() => { refresh().catch(showError); }, DOMAIN_POLL_MS);
    }
  }

  function showError(e) {
    if (stopped) return;
    panelError.textContent = `Could not refresh the domains: ${explain(e)}`;
    schedule();
  }

  /** An action by the user: the panel watches again for a while. */
  function touched() {
    pollUntil = Date.now() + DOMAIN_POLL_LIMIT_MS;
  }

  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    clearErrors(form);
    if (!hostname.value.trim()) return fieldError(form, 'hostname', 'Enter a hostname.');
    submit.disabled = true;
    try {
      const d = await api('POST', `${path}/domains`, { hostname: hostname.value.trim() });
      touched();
      form.reset();
      await refresh();
      // After refresh: the creation answer alone says whether the name was converted.
      showRecords(d);
      toast(`Added ${d.hostname}: publish its DNS records`);
    } catch (err) {
      // A refused name (422) or a taken one (409) is about the hostname: say it there.
      const f = err.status === 422 || err.status === 409 ? (err.field || 'hostname') : null;
      fieldError(form, f, explain(err));
    } finally {
      submit.disabled = false;
    }
  });

  async function checkNow(d, button) {
    panelError.textContent = '';
    button.disabled = true;
    try {
      await api('POST', `${path}/domains/${d.id}/check`);
      touched();
      toast(`Checking ${d.hostname} now`);
      await refresh();
    } catch (err) {
      panelError.textContent = explain(err);
      button.disabled = false;
    }
  }

  async function remove(d) {
    const ok = await confirmDialog({
      title: `Remove ${d.hostname}?`,
      body: `burrow stops serving ${d.hostname} at once and deletes its certificate. Your DNS records stay until you remove them.`,
      confirm: 'Remove domain',
    });
    if (!ok) return;
    panelError.textContent = '';
    try {
      await api('DELETE', `${path}/domains/${d.id}`);
      toast(`Removed ${d.hostname}`);
      await refresh();
    } catch (err) { panelError.textContent = explain(err); }
  }

  function row(d) {
    const check = h('button.small.secondary', {
      type: 'button', text: 'Check now', 'aria-label': `Check ${d.hostname} now`, 'data-key': `check:${d.id}`,
    });
    check.addEventListener('click', () => checkNow(d, check));
    const records = h('button.small.secondary', {
      type: 'button', text: 'DNS records', 'aria-label': `DNS records of ${d.hostname}`, 'data-key': `records:${d.id}`,
      onclick: () => showRecords(d),
    });
    const del = h('button.small.danger', {
      type: 'button', text: 'Remove', 'aria-label': `Remove ${d.hostname}`, 'data-key': `remove:${d.id}`,
      onclick: () => remove(d),
    });
    const name = d.status === 'active'
      ? h('a', { href: d.url, target: '_blank', rel: 'noopener', text: d.hostname })
      : h('span', { text: d.hostname });
    return h('tr', { 'data-hostname': d.hostname, 'data-id': String(d.id) },
      h('td', { 'data-label': 'Hostname' }, h('strong', {}, name)),
      h('td', { 'data-label': 'Status' }, domainBadge(d)),
      h('td.domain-reason', { 'data-label': 'Reason', text: d.status_reason || '—' }),
      h('td', { 'data-label': 'Certificate' }, domainCertificate(d.certificate)),
      h('td', { 'data-label': 'Last checked' }, timeEl(d.checked_at, 'not yet')),
      h('td', { 'data-label': 'Actions' }, h('div.url', {}, records, check, del)));
  }

  async function refresh() {
    const list = await api('GET', `${path}/domains`);
    if (stopped) return;
    items = list.items;
    panelError.textContent = '';
    // Rows are rebuilt: keep the focus on the same button of the same domain.
    const focused = body.contains(document.activeElement) ? document.activeElement.dataset.key : null;
    body.replaceChildren(...items.map(row));
    if (focused) {
      const el = body.querySelector(`[data-key="${CSS.escape(focused)}"]`);
      if (el) el.focus();
    }
    empty.hidden = items.length > 0;
    // Records of a removed domain are no longer worth publishing.
    const box = shown.firstElementChild;
    if (box && !items.some((d) => d.hostname === box.dataset.hostname)) showRecords(null);
    schedule();
  }

  const el = h('section.card#domains', { 'aria-labelledby': 'domains-title' },
    h('h2#domains-title.flush', { text: 'Domains' }),
    h('p.hint', { text: 'Serve this tunnel under hostnames of your own too. burrow checks the DNS records below, then obtains a certificate; the hostname is served once it is active.' }),
    panelError,
    h('div.table-wrap', {}, h('table.cards#domains-table', {},
      h('thead', {}, h('tr', {}, ['Hostname', 'Status', 'Reason', 'Certificate', 'Last checked', ''].map((c) => h('th', { scope: 'col', text: c })))),
      body), empty),
    shown,
    h('h3', { text: 'Add a domain' }),
    form);
  return {
    el,
    refresh: () => refresh().catch(showError),
    stop() { stopped = true; clearTimeout(timer); },
  };
}
