// The tunnel detail page's traffic section: charts of requests, errors, bytes and latency
// over the last hour / day / week (uPlot, from GET .../analytics), and the tunnel's limits
// form (PUT .../reverse-tunnels/{id}). Loaded before app.js, which calls
// burrowTraffic.section(...) with its own helpers.
'use strict';

window.burrowTraffic = (() => {
  const RANGES = [
    { key: 'hour', label: 'Last hour', seconds: 3600, step: 60 },
    { key: 'day', label: 'Last day', seconds: 86400, step: 600 },
    { key: 'week', label: 'Last week', seconds: 604800, step: 3600 },
  ];
  const COLORS = { a: '#2563eb', b: '#dc2626', c: '#16a34a', d: '#9333ea' };

  function fmtBytes(n) {
    if (n == null) return '';
    const units = ['B', 'KB', 'MB', 'GB', 'TB'];
    let i = 0;
    while (Math.abs(n) >= 1000 && i < units.length - 1) { n /= 1000; i += 1; }
    return `${Math.round(n * 10) / 10} ${units[i]}`;
  }

  /** One chart: `series` are [label, color, point => value]; `fmt` formats the y axis. */
  function chart(el, title, series, fmt) {
    let plot = null;
    return {
      draw(points) {
        const data = [points.map((p) => Date.parse(p.t) / 1000), ...series.map(([, , get]) => points.map(get))];
        if (plot) { plot.setData(data); return; }
        const width = Math.max(280, Math.floor(el.clientWidth || 600));
        plot = new uPlot({
          title,
          width,
          height: 180,
          series: [{}, ...series.map(([label, stroke]) => ({ label, stroke, width: 2, points: { show: false } }))],
          axes: [{}, { values: (u, vals) => vals.map(fmt || ((v) => String(v))), size: 70 }],
          legend: { live: false },
        }, data, el);
      },
      destroy() { if (plot) plot.destroy(); plot = null; },
    };
  }

  function section({ path, api, h, explain, toast }) {
    let range = RANGES[0];
    const summary = h('p.sub#traffic-summary');
    const error = h('p.error#traffic-error', { role: 'alert' });
    const box = (id) => h(`div.chart#${id}`);
    const els = { requests: box('chart-requests'), errors: box('chart-errors'), bytes: box('chart-bytes'), latency: box('chart-latency') };
    const charts = {
      requests: chart(els.requests, 'Requests', [['requests', COLORS.a, (p) => p.requests]]),
      errors: chart(els.errors, 'Errors', [['4xx', COLORS.d, (p) => p.status_4xx], ['5xx', COLORS.b, (p) => p.status_5xx]]),
      bytes: chart(els.bytes, 'Bytes', [['in', COLORS.c, (p) => p.bytes_in], ['out', COLORS.a, (p) => p.bytes_out]], fmtBytes),
      latency: chart(els.latency, 'Latency p95 (ms)', [
        ['edge', COLORS.c, (p) => p.latency_ms.edge.p95],
        ['tunnel', COLORS.d, (p) => p.latency_ms.tunnel.p95],
        ['device', COLORS.a, (p) => p.latency_ms.device.p95]]),
    };
    const buttons = RANGES.map((r) => h('button.secondary', {
      type: 'button', text: r.label, 'data-range': r.key, 'aria-pressed': String(r === range),
      onclick: () => {
        range = r;
        buttons.forEach((b) => b.setAttribute('aria-pressed', String(b.dataset.range === r.key)));
        Object.values(charts).forEach((c) => c.destroy());
        refresh().catch((e) => { error.textContent = explain(e); });
      },
    }));

    async function refresh() {
      const to = new Date();
      const from = new Date(to.getTime() - range.seconds * 1000);
      const q = `from=${encodeURIComponent(from.toISOString())}&to=${encodeURIComponent(to.toISOString())}&step=${range.step}`;
      const a = await api('GET', `${path}/analytics?${q}`);
      const t = a.totals;
      summary.replaceChildren(
        h('span#traffic-requests', { text: `${t.requests} requests` }), ' · ',
        h('span#traffic-errors', { text: `${t.status_4xx + t.status_5xx} errors` }), ' · ',
        `${fmtBytes(t.bytes_in)} in, ${fmtBytes(t.bytes_out)} out · `,
        `${t.distinct_clients} client${t.distinct_clients === 1 ? '' : 's'} at most per ${range.step >= 3600 ? 'hour' : 'minute'}`);
      error.textContent = '';
      Object.values(charts).forEach((c) => c.draw(a.points));
    }

    const limits = limitsForm({ path, api, h, explain, toast });
    const el = h('section.card#traffic', { 'aria-labelledby': 'traffic-title' },
      h('div.page-head', {}, h('h2#traffic-title.flush', { text: 'Traffic' }), h('div.ranges', { role: 'group', 'aria-label': 'Range' }, ...buttons)),
      summary, error,
      h('div.charts', {}, els.requests, els.errors, els.bytes, els.latency));
    return { el, limits: limits.el, refresh: async (t) => { limits.show(t); await refresh(); } };
  }

  /** The tunnel's limits, editable; empty fields mean no limit. */
  function limitsForm({ path, api, h, explain, toast }) {
    const num = (field, attrs) => h('input', { type: 'number', min: 1, inputmode: 'numeric', 'data-field': field, ...attrs });
    const rps = num('rate_limit.requests_per_second');
    const burst = num('rate_limit.burst');
    const per = h('select', { 'data-field': 'rate_limit.per' },
      h('option', { value: 'tunnel', text: 'the whole tunnel' }), h('option', { value: 'client_ip', text: 'each client address' }));
    const bps = num('bandwidth_limit.bytes_per_second', { min: 1024 });
    const conns = num('max_connections_per_client');
    const save = h('button', { type: 'submit', text: 'Save limits' });
    const error = h('p.form-error#limits-error', { role: 'alert' });
    const row = (id, label, control, hint) => h('div.field', {}, h('label', { for: id, text: label }), Object.assign(control, { id }), hint ? h('p.hint', { text: hint }) : null);
    const form = h('form.card#limits-form', { novalidate: true, 'aria-labelledby': 'limits-title' },
      h('h2#limits-title.flush', { text: 'Limits' }),
      h('div.row2', {}, row('l-rps', 'Requests per second', rps, 'Over it: 429, never reaching the device.'), row('l-burst', 'Burst', burst, 'Default: the rate.')),
      row('l-per', 'Counted for', per),
      h('div.row2', {}, row('l-bps', 'Bandwidth (bytes/s, each direction)', bps, 'Shaped, not dropped.'), row('l-conns', 'Open requests per client', conns)),
      error, h('div.actions', {}, save));
    let shown = false;
    form.addEventListener('submit', async (e) => {
      e.preventDefault();
      error.textContent = '';
      const n = (i) => (i.value.trim() === '' ? null : Number(i.value));
      const body = {
        rate_limit: n(rps) === null ? null : { requests_per_second: n(rps), ...(n(burst) === null ? {} : { burst: n(burst) }), per: per.value },
        bandwidth_limit: n(bps) === null ? null : { bytes_per_second: n(bps) },
        max_connections_per_client: n(conns),
      };
      save.disabled = true;
      try {
        const t = await api('PUT', path, body);
        shown = false;
        show(t);
        toast('Limits saved');
      } catch (err) { error.textContent = explain(err); } finally { save.disabled = false; }
    });
    // Filled once from the tunnel (later polls do not overwrite what is being typed).
    function show(t) {
      if (shown) return;
      shown = true;
      const r = t.rate_limit;
      rps.value = r ? r.requests_per_second : '';
      burst.value = r ? r.burst : '';
      per.value = r ? r.per : 'tunnel';
      bps.value = t.bandwidth_limit ? t.bandwidth_limit.bytes_per_second : '';
      conns.value = t.max_connections_per_client ?? '';
    }
    return { el: form, show };
  }

  return { section };
})();
