// Charts: attempts per bucket by outcome, and attempt latency p50/p95, for
// the whole account or one endpoint, over the last hour or day; beside them
// the window's deliveries (counts and the success rate, both in deliveries).
// Inline SVG, each chart with a text summary, its numbers as a table, and an
// empty state when the window holds no attempt.

import { api, qs, statsWindow } from './api.js';
import { h, s, clear, errorBox, fmtMs, selectField, pad } from './ui.js';
import { loadEndpoints, successOf, rateText } from './view_endpoints.js';

const W = 720;
const H = 240;
const M = { l: 48, r: 12, t: 12, b: 28 };
const OUTCOMES = [
  { key: 'delivered', label: 'Delivered', cls: 'c-ok' },
  { key: 'retried', label: 'Retried', cls: 'c-retry' },
  { key: 'failed', label: 'Failed', cls: 'c-fail' },
];

function hhmm(ms) {
  const d = new Date(ms);
  return pad(d.getHours()) + ':' + pad(d.getMinutes());
}

// A round top for the y axis and its step: 4 to 5 steps of 1, 2 or 5 x 10^k.
function niceScale(v) {
  if (!(v > 0)) return { max: 4, step: 1 };
  const raw = v / 4;
  const p = Math.pow(10, Math.floor(Math.log10(raw)));
  let step = 10 * p;
  for (const m of [1, 2, 5]) if (m * p >= raw) { step = m * p; break; }
  if (step < 1) step = 1;
  return { max: Math.ceil(v / step) * step, step };
}

function startMs(b) {
  return typeof b.start === 'number' ? (b.start < 1e11 ? b.start * 1000 : b.start) : new Date(b.start).getTime();
}

function axes(svg, scale, fmtY, data, bucketW) {
  const ih = H - M.t - M.b;
  const n = Math.round(scale.max / scale.step);
  for (let i = 0; i <= n; i++) {
    const v = scale.step * i;
    const y = M.t + ih - (ih * v) / scale.max;
    svg.appendChild(s('line', { x1: M.l, x2: W - M.r, y1: y, y2: y, class: 'grid' }));
    svg.appendChild(s('text', { x: M.l - 6, y: y + 4, 'text-anchor': 'end', class: 'tick', text: fmtY(v) }));
  }
  const every = Math.max(1, Math.ceil(data.length / 6));
  for (let i = 0; i < data.length; i += every) {
    const x = M.l + i * bucketW + bucketW / 2;
    svg.appendChild(s('text', { x, y: H - 8, 'text-anchor': 'middle', class: 'tick', text: hhmm(startMs(data[i])) }));
  }
}

function legend(items) {
  return h('ul', { class: 'legend', 'aria-hidden': 'true' },
    items.map((it) => h('li', {}, h('span', { class: 'swatch ' + it.cls }), it.label)));
}

function barChart(data, title) {
  const iw = W - M.l - M.r;
  const ih = H - M.t - M.b;
  const bw = data.length ? iw / data.length : iw;
  const totals = data.map((b) => OUTCOMES.reduce((a, o) => a + (b[o.key] || 0), 0));
  const scale = niceScale(Math.max(0, ...totals));
  const maxY = scale.max;
  const tid = 'c-' + Math.random().toString(36).slice(2);
  const sum = OUTCOMES.map((o) => data.reduce((a, b) => a + (b[o.key] || 0), 0));
  const desc = 'In total ' + sum[0] + ' delivered, ' + sum[1] + ' retried and ' + sum[2] + ' failed attempts; the busiest bucket had ' + Math.max(0, ...totals) + '.';
  const svg = s('svg', { viewBox: '0 0 ' + W + ' ' + H, role: 'img', 'aria-labelledby': tid + '-t ' + tid + '-d', class: 'chart' },
    s('title', { id: tid + '-t', text: title }), s('desc', { id: tid + '-d', text: desc }));
  axes(svg, scale, (v) => String(v), data, bw);
  data.forEach((b, i) => {
    let y = M.t + ih;
    for (const o of OUTCOMES) {
      const v = b[o.key] || 0;
      if (!v) continue;
      const hgt = (ih * v) / maxY;
      y -= hgt;
      svg.appendChild(s('rect', { x: M.l + i * bw + bw * 0.1, y, width: Math.max(1, bw * 0.8), height: hgt, class: o.cls },
        s('title', { text: hhmm(startMs(b)) + ' ' + o.label + ': ' + v })));
    }
  });
  return { svg, desc };
}

function lineChart(data, title) {
  const iw = W - M.l - M.r;
  const ih = H - M.t - M.b;
  const bw = data.length ? iw / data.length : iw;
  const vals = data.flatMap((b) => [b.p50_ms, b.p95_ms]).filter((v) => typeof v === 'number' && v >= 0);
  const scale = niceScale(Math.max(0, ...vals));
  const maxY = scale.max;
  const tid = 'c-' + Math.random().toString(36).slice(2);
  const desc = vals.length
    ? 'Highest p95 ' + fmtMs(Math.max(...data.map((b) => (b.p95_ms >= 0 ? b.p95_ms : 0)))) + '.'
    : 'No attempt in this window.';
  const svg = s('svg', { viewBox: '0 0 ' + W + ' ' + H, role: 'img', 'aria-labelledby': tid + '-t ' + tid + '-d', class: 'chart' },
    s('title', { id: tid + '-t', text: title }), s('desc', { id: tid + '-d', text: desc }));
  axes(svg, scale, (v) => fmtMs(v), data, bw);
  for (const [key, cls] of [['p50_ms', 'l-p50'], ['p95_ms', 'l-p95']]) {
    let d = '';
    let pen = false;
    data.forEach((b, i) => {
      const v = b[key];
      if (typeof v !== 'number' || v < 0) { pen = false; return; }
      const x = M.l + i * bw + bw / 2;
      const y = M.t + ih - (ih * v) / maxY;
      d += (pen ? 'L' : 'M') + x.toFixed(1) + ' ' + y.toFixed(1) + ' ';
      pen = true;
      svg.appendChild(s('circle', { cx: x, cy: y, r: 2.5, class: cls },
        s('title', { text: hhmm(startMs(b)) + ' ' + key.replace('_ms', '') + ': ' + fmtMs(v) })));
    });
    if (d) svg.appendChild(s('path', { d, class: cls + ' line' }));
  }
  return { svg, desc };
}

function dataTable(data) {
  const rows = data.filter((b) => b.delivered || b.failed || b.retried);
  return h('details', { class: 'data' }, h('summary', {}, 'Show the numbers (' + rows.length + ' non-empty buckets)'),
    h('div', { class: 'table-wrap', tabindex: '0', role: 'region', 'aria-label': 'The numbers per bucket' }, h('table', {},
      h('thead', {}, h('tr', {}, ['Start', 'Delivered', 'Retried', 'Failed', 'p50', 'p95'].map((c) => h('th', { scope: 'col', text: c })))),
      h('tbody', {}, rows.map((b) => h('tr', {},
        h('td', { text: hhmm(startMs(b)) }), h('td', { class: 'num', text: String(b.delivered || 0) }),
        h('td', { class: 'num', text: String(b.retried || 0) }), h('td', { class: 'num', text: String(b.failed || 0) }),
        h('td', { class: 'num', text: fmtMs(b.p50_ms >= 0 ? b.p50_ms : null) }),
        h('td', { class: 'num', text: fmtMs(b.p95_ms >= 0 ? b.p95_ms : null) })))))));
}

export async function render(ctx) {
  const root = ctx.root;
  const fixed = ctx.endpoint || null;
  const eps = fixed ? [fixed] : await loadEndpoints();
  let endpoint = fixed ? fixed.id : ctx.query.get('endpoint_id') || '';
  let win = ctx.query.get('window') === '24h' ? '24h' : '1h';
  const sync = () => {
    const p = new URLSearchParams();
    if (endpoint && !fixed) p.set('endpoint_id', endpoint);
    if (win !== '1h') p.set('window', win);
    ctx.setQuery(p);
  };
  const epSel = selectField('Scope', [{ value: '', label: 'Whole account' }].concat(eps.map((e) => ({ value: e.id, label: e.url }))),
    endpoint, (v) => { endpoint = v; sync(); load(true); }, { id: 'chart-scope' });
  const winName = 'win-' + Math.random().toString(36).slice(2);
  const radios = ['1h', '24h'].map((w) => {
    const r = h('input', { type: 'radio', name: winName, value: w, id: winName + w, checked: w === win });
    r.addEventListener('change', () => { if (r.checked) { win = w; sync(); load(true); } });
    return h('label', { class: 'radio', for: winName + w }, r, w === '1h' ? ' Last hour' : ' Last day');
  });
  const tiles = h('div', { class: 'tiles', 'aria-live': 'polite' });
  const charts = h('div', { class: 'charts' });
  const err = h('div', {});
  root.appendChild(h('div', { class: 'view-head' }, h(ctx.embedded ? 'h2' : 'h1', { text: 'Charts' }), h('span', { class: 'live muted' }, 'Live: updates every 2 seconds')));
  root.appendChild(h('form', { class: 'filters', 'aria-label': 'Chart options', onsubmit: (e) => e.preventDefault() },
    fixed ? null : epSel.el, h('fieldset', { class: 'inline' }, h('legend', { text: 'Window' }), radios)));
  root.appendChild(err);
  root.appendChild(tiles);
  root.appendChild(charts);

  let drawn = '';
  let lastStats = null;
  // The charts draw as soon as the series comes; the tiles fill in when the
  // statistics do (counting a day of deliveries takes the store a while).
  async function load(force) {
    if (force) lastStats = null;
    const statsP = endpoint ? api('GET', '/v1/endpoints/' + encodeURIComponent(endpoint) + '/stats')
      : api('GET', '/v1/stats');
    let series;
    try {
      series = await api('GET', '/v1/stats/series' + qs({ endpoint_id: endpoint, window: win }));
    } catch (e) {
      statsP.catch(() => {});
      if (!ctx.alive()) return;
      clear(err).appendChild(errorBox(e, () => load(true)));
      return;
    }
    if (!ctx.alive()) return;
    clear(err);
    draw(series, lastStats, force);
    const later = statsP.then((st) => {
      if (!ctx.alive()) return;
      lastStats = st;
      draw(series, st, false);
    }).catch((e) => {
      if (ctx.alive()) clear(err).appendChild(errorBox(e, () => load(true)));
    });
    if (!force) await later;
  }

  function draw(series, stats, force) {
    const sig = JSON.stringify([series, stats, endpoint, win]);
    if (!force && sig === drawn) return;
    drawn = sig;
    const data = series && Array.isArray(series.data) ? series.data : [];
    const w = statsWindow(stats, win);
    const by = (w && w.by_status) || {};
    const tile = (label, value, cls) => h('div', { class: 'tile ' + (cls || '') }, h('span', { class: 'tile-label', text: label }), h('strong', { text: value }));
    const sr = w ? successOf(w) : { rate: null };
    const period = win === '1h' ? 'last hour' : 'last day';
    clear(tiles).append(
      h('h2', { class: 'tiles-title', text: 'Deliveries created in the ' + period }),
      tile('Success rate (deliveries)', sr.rate === null ? '—' : rateText(sr), 'rate'),
      tile('Delivered', String(by.delivered ?? 0), 'ok'),
      tile('Failed', String(by.failed ?? 0), 'bad'),
      tile('In progress', String((by.pending ?? 0) + (by.delivering ?? 0))),
      tile('Held', String(by.held ?? 0)),
      h('h2', { class: 'tiles-title', text: 'Attempts in the ' + period }),
      tile('Attempts', String(w && w.attempts !== null ? w.attempts : 0)),
      tile('p50 latency', w ? fmtMs(w.p50) : '—'),
      tile('p95 latency', w ? fmtMs(w.p95) : '—'),
      tile('p99 latency', w ? fmtMs(w.p99) : '—'));
    const scope = endpoint ? (eps.find((e) => e.id === endpoint) || { url: endpoint }).url : 'whole account';
    const bs = series && series.bucket_seconds;
    const per = bs === 60 ? 'minute' : bs === 3600 ? 'hour' : bs ? (bs >= 60 ? bs / 60 + ' minutes' : bs + ' seconds') : 'bucket';
    const bars = barChart(data, 'Attempts per ' + per + ' by outcome, ' + period + ', ' + scope);
    const lines = lineChart(data, 'Attempt latency p50 and p95, ' + period + ', ' + scope);
    const none = !data.some((b) => b.delivered || b.failed || b.retried);
    const empty = (what) => h('p', { class: 'chart-empty', role: 'status' },
      'No attempt in the ' + period + (endpoint ? ' for this endpoint' : '') + ', so no ' + what + ' to draw. ' +
      'Send a test event and it shows up here within seconds.');
    clear(charts).append(
      h('section', { class: 'card chart-card', 'aria-labelledby': 'h-out' },
        h('h2', { id: 'h-out', text: 'Attempts per ' + per + ' by outcome' }),
        h('p', { class: 'help', text: 'Each attempt counts once: a delivery retried three times counts three attempts. ' +
          'Delivered: answered 2xx; retried: failed and rescheduled; failed: failed for good.' }),
        none ? empty('attempts') : h('div', {}, legend(OUTCOMES), h('div', { class: 'chart-box' }, bars.svg), h('p', { class: 'help', text: bars.desc }), dataTable(data))),
      h('section', { class: 'card chart-card', 'aria-labelledby': 'h-lat' },
        h('h2', { id: 'h-lat', text: 'Attempt latency' }),
        none ? empty('latency') : h('div', {}, legend([{ label: 'p50', cls: 'l-p50' }, { label: 'p95', cls: 'l-p95' }]),
          h('div', { class: 'chart-box' }, lines.svg), h('p', { class: 'help', text: lines.desc }))));
  }
  await load(true);
  return { refresh: () => load(false) };
}
