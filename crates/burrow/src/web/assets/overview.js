// The project traffic overview (/traffic?project=ID): the busiest tunnels and devices of a
// project and who used which device (per user × device), over the last hour / day / week,
// from GET /api/v1/projects/{id}/traffic. Loaded before app.js, which calls
// burrowOverview.page(...) with its own helpers.
'use strict';

window.burrowOverview = (() => {
  const RANGES = [
    { key: 'hour', label: 'Last hour', seconds: 3600 },
    { key: 'day', label: 'Last day', seconds: 86400 },
    { key: 'week', label: 'Last week', seconds: 604800 },
  ];
  const WHO = { user: 'user', key: 'API key', share: 'share link', anonymous: 'anonymous' };

  function fmtBytes(n) {
    const units = ['B', 'KB', 'MB', 'GB', 'TB'];
    let i = 0;
    while (Math.abs(n) >= 1000 && i < units.length - 1) { n /= 1000; i += 1; }
    return `${Math.round(n * 10) / 10} ${units[i]}`;
  }

  /** A table with caption-like heading `title`, columns and an empty-state line. */
  function table(h, id, title, columns, emptyText) {
    const tbody = h('tbody');
    const empty = h('div.empty', { hidden: true, text: emptyText });
    const el = h('section', { 'aria-labelledby': `${id}-title` },
      h(`h2#${id}-title`, { text: title }),
      h('div.table-wrap', {}, h(`table.cards#${id}`, { 'aria-labelledby': `${id}-title` },
        h('thead', {}, h('tr', {}, columns.map((c) => h('th', { scope: 'col', text: c })))),
        tbody), empty));
    return {
      el,
      fill(rows) {
        tbody.replaceChildren(...rows.map((cells) => h('tr', {},
          cells.map(([label, v]) => h('td', { 'data-label': label }, v)))));
        empty.hidden = rows.length > 0;
      },
    };
  }

  function page(main, { api, h, explain, poller, pollMs }) {
    const params = new URLSearchParams(location.search);
    let range = RANGES[1];
    let projectId = params.get('project') || '';
    const select = h('select#overview-project', { 'data-field': 'project' });
    const summary = h('p.sub#overview-summary');
    const pageError = h('p.form-error#page-error', { role: 'alert' });
    const buttons = RANGES.map((r) => h('button.secondary', {
      type: 'button', text: r.label, 'data-range': r.key, 'aria-pressed': String(r === range),
      onclick: () => {
        range = r;
        buttons.forEach((b) => b.setAttribute('aria-pressed', String(b.dataset.range === r.key)));
        refresh().catch((e) => { pageError.textContent = explain(e); });
      },
    }));
    const traffic = (r) => [
      ['Requests', String(r.requests)],
      ['Errors', String(r.errors)],
      ['Bytes in / out', `${fmtBytes(r.bytes_in)} / ${fmtBytes(r.bytes_out)}`],
    ];
    const tunnels = table(h, 'overview-tunnels', 'Busiest tunnels',
      ['Tunnel', 'Device', 'Requests', 'Errors', 'Bytes in / out'], 'No traffic through this project’s tunnels in this range.');
    const devices = table(h, 'overview-devices', 'Busiest devices',
      ['Device', 'Requests', 'Errors', 'Bytes in / out'], 'No traffic to this project’s devices in this range.');
    const users = table(h, 'overview-users', 'Usage per user and device',
      ['Who', 'Device', 'Requests', 'Errors', 'Bytes in / out'], 'Nobody used this project’s devices in this range.');
    main.append(
      h('div.page-head', {}, h('div', {}, h('h1', { text: 'Traffic' }), summary),
        h('div.ranges', { role: 'group', 'aria-label': 'Range' }, ...buttons)),
      h('div.field', {}, h('label', { for: 'overview-project', text: 'Project' }), select),
      pageError, tunnels.el, devices.el, users.el);
    select.addEventListener('change', () => {
      projectId = select.value;
      history.replaceState({}, '', `/traffic?project=${encodeURIComponent(projectId)}`);
      refresh().catch((e) => { pageError.textContent = explain(e); });
    });

    async function refresh() {
      const [ps, ds] = await Promise.all([api('GET', '/projects'), api('GET', '/devices')]);
      if (select.dataset.key !== ps.map((p) => p.id).join(',')) {
        select.replaceChildren(...ps.map((p) => h('option', { value: String(p.id), text: p.name })));
        select.dataset.key = ps.map((p) => p.id).join(',');
      }
      if (!ps.some((p) => String(p.id) === projectId)) projectId = ps.length ? String(ps[0].id) : '';
      select.value = projectId;
      if (!projectId) {
        summary.textContent = 'No project yet.';
        [tunnels, devices, users].forEach((t) => t.fill([]));
        return;
      }
      const dsn = new Map(ds.map((d) => [d.id, d.dsn]));
      const device = (id) => dsn.get(id) || `device ${id}`;
      const to = new Date();
      const from = new Date(to.getTime() - range.seconds * 1000);
      const q = `from=${encodeURIComponent(from.toISOString())}&to=${encodeURIComponent(to.toISOString())}`;
      const o = await api('GET', `/projects/${encodeURIComponent(projectId)}/traffic?${q}`);
      const total = o.devices.reduce((n, d) => n + d.requests, 0);
      summary.replaceChildren(h('span#overview-requests', { text: `${total} requests` }),
        ` to ${o.devices.length} device${o.devices.length === 1 ? '' : 's'}, ${range.label.toLowerCase()}`);
      tunnels.fill(o.tunnels.map((t) => [
        ['Tunnel', h('a', { href: `/reverse-tunnels/${encodeURIComponent(t.dsn)}/${t.id}`, text: t.name })],
        ['Device', t.dsn], ...traffic(t)]));
      devices.fill(o.devices.map((d) => [['Device', d.dsn], ...traffic(d)]));
      users.fill(o.users.map((u) => [
        ['Who', u.principal === 'anonymous' ? 'anonymous' : `${u.name || `#${u.principal_id}`} (${WHO[u.principal] || u.principal})`],
        ['Device', device(u.device_id)], ...traffic(u)]));
    }

    return poller(refresh, pollMs, (e) => { pageError.textContent = e ? `Could not refresh: ${explain(e)}` : ''; });
  }

  return { page };
})();
