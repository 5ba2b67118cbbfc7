// Deliveries: a live, paginated, filterable list; one delivery's full story
// (payload, headers sent, every attempt); retry and replay.

import { api, qs, DELIVERY_STATUSES, typeName } from './api.js';
import { h, clear, errorBox, badge, timeEl, fmtMs, prettyJson, codeBlock, selectField,
         announce, toast, id, pad } from './ui.js';
import { eventTypes, loadEndpoints } from './view_endpoints.js';

const PAGE = 25;

// An attempt's error_class (present only when no HTTP answer came), in words.
const ERROR_CLASSES = {
  dns: 'DNS: the host name did not resolve (retried)',
  connect: 'Connect: no connection to the receiver (retried)',
  tls: 'TLS: the handshake or the certificate failed (retried)',
  timeout: 'Timeout: connected, but no answer in time (retried)',
  protocol: 'Protocol: the answer was not valid HTTP (retried)',
  reset: 'Reset: the connection broke before an answer (retried)',
  blocked: 'Blocked: the address rules refused the target (not retried)',
};

function errorClassEl(a) {
  if (!a.error_class) return null;
  return h('span', { class: 'error-class', 'data-error-class': a.error_class,
    title: ERROR_CLASSES[a.error_class] || a.error_class }, a.error_class);
}

function lastResult(d) {
  if (d.last_status_code) return 'HTTP ' + d.last_status_code;
  if (d.last_error) return d.last_error;
  return '—';
}

function localInputValue(date) {
  return date.getFullYear() + '-' + pad(date.getMonth() + 1) + '-' + pad(date.getDate()) + 'T' +
    pad(date.getHours()) + ':' + pad(date.getMinutes());
}

export async function list(ctx) {
  const root = ctx.root;
  const [types, eps] = await Promise.all([eventTypes(ctx), loadEndpoints()]);
  const byId = new Map(eps.map((e) => [e.id, e]));
  const q = ctx.query;
  const filter = {
    endpoint_id: q.get('endpoint_id') || '',
    status: q.get('status') || '',
    event: q.get('event') || '',
  };
  let cursors = [''];          // cursor of each page seen; the last is the current page
  let next = null;
  let topIds = '';

  const epOpts = [{ value: '', label: 'All endpoints' }].concat(eps.map((e) => ({ value: e.id, label: e.url })));
  const stOpts = [{ value: '', label: 'Any status' }].concat(DELIVERY_STATUSES.map((s) => ({ value: s, label: s })));
  const tyOpts = [{ value: '', label: 'Any event type' }].concat(types.map((t) => ({ value: typeName(t), label: typeName(t) })));
  const onFilter = (k) => (v) => {
    filter[k] = v;
    const p = new URLSearchParams();
    for (const [fk, fv] of Object.entries(filter)) if (fv) p.set(fk, fv);
    ctx.setQuery(p);
    cursors = [''];
    load(true);
  };
  const fEp = selectField('Endpoint', epOpts, filter.endpoint_id, onFilter('endpoint_id'), { id: 'flt-endpoint' });
  const fSt = selectField('Status', stOpts, filter.status, onFilter('status'), { id: 'flt-status' });
  const fTy = selectField('Event type', tyOpts, filter.event, onFilter('event'), { id: 'flt-event' });

  const tableWrap = h('div', { class: 'table-wrap' });
  const err = h('div', {});
  const pageInfo = h('span', { class: 'muted', 'aria-live': 'polite' });
  const newer = h('button', { type: 'button' }, '← Newer');
  const older = h('button', { type: 'button' }, 'Older →');
  newer.addEventListener('click', () => { if (cursors.length > 1) { cursors.pop(); load(true); } });
  older.addEventListener('click', () => { if (next) { cursors.push(next); load(true); } });

  root.appendChild(h('div', { class: 'view-head' }, h('h1', { text: 'Deliveries' }),
    h('span', { class: 'live muted' }, 'Live: updates every 2 seconds')));
  root.appendChild(h('form', { class: 'filters', 'aria-label': 'Filter deliveries', onsubmit: (e) => e.preventDefault() },
    fEp.el, fSt.el, fTy.el));
  root.appendChild(err);
  root.appendChild(tableWrap);
  root.appendChild(h('div', { class: 'pager' }, newer, pageInfo, older));
  root.appendChild(replayPanel(eps, filter.endpoint_id));

  async function load(userAction) {
    let page;
    try {
      page = await api('GET', '/v1/deliveries' + qs({
        endpoint_id: filter.endpoint_id, status: filter.status, event: filter.event,
        limit: PAGE, after: cursors[cursors.length - 1],
      }));
    } catch (e) {
      if (!ctx.alive()) return;
      clear(err).appendChild(errorBox(e, () => load(true)));
      return;
    }
    if (!ctx.alive()) return;
    clear(err);
    let data = page && Array.isArray(page.data) ? page.data : [];
    // Older servers may ignore the event filter: apply it here too.
    if (filter.event) data = data.filter((d) => d.event === filter.event);
    next = page ? page.next : null;
    const ids = data.map((d) => d.id + ':' + d.status + ':' + d.attempts_made).join(',');
    if (!userAction && ids === topIds) return;
    if (!userAction && cursors.length === 1 && topIds) {
      const before = new Set(topIds.split(',').map((x) => x.split(':')[0]));
      const fresh = data.filter((d) => !before.has(d.id)).length;
      if (fresh > 0) announce(fresh + (fresh === 1 ? ' new delivery' : ' new deliveries'));
    }
    topIds = ids;
    drawTable(data);
    newer.disabled = cursors.length <= 1;
    older.disabled = !next;
    pageInfo.textContent = 'Page ' + cursors.length + (data.length ? ' · ' + data.length + ' shown' : '');
  }

  function drawTable(data) {
    clear(tableWrap);
    if (data.length === 0) {
      tableWrap.appendChild(h('p', { class: 'card empty' },
        filter.endpoint_id || filter.status || filter.event
          ? 'No delivery matches these filters.'
          : 'No deliveries yet. Publish an event, or send a test event from the Test page.'));
      return;
    }
    const rows = data.map((d) => {
      const ep = byId.get(d.endpoint_id);
      return h('tr', { 'data-delivery': d.id, class: 'status-' + d.status },
        h('td', {}, timeEl(d.created_at || d.updated_at)),
        h('th', { scope: 'row' }, h('a', { href: '/deliveries/' + encodeURIComponent(d.id), 'data-nav': true,
          'aria-label': 'Delivery ' + d.id + ', ' + d.event + ', ' + d.status }, h('code', { text: d.event }))),
        h('td', { class: 'ep-url' }, ep ? ep.url : d.endpoint_id),
        h('td', {}, badge(d.status)),
        h('td', { class: 'num' }, String(d.attempts_made)),
        h('td', {}, lastResult(d)),
        h('td', {}, d.status === 'pending' ? timeEl(d.next_attempt_at) : '—'));
    });
    tableWrap.appendChild(h('table', { class: 'deliveries' },
      h('caption', { class: 'sr-only', text: 'Deliveries, newest first' }),
      h('thead', {}, h('tr', {},
        ['Created', 'Event', 'Endpoint', 'Status', 'Attempts', 'Last result', 'Next attempt']
          .map((c) => h('th', { scope: 'col', text: c })))),
      h('tbody', {}, rows)));
  }

  await load(true);
  return { refresh: () => load(false) };
}

function replayPanel(eps, chosen) {
  const epSel = selectField('Endpoint', eps.map((e) => ({ value: e.id, label: e.url })), chosen || (eps[0] && eps[0].id),
    null, { id: 'replay-endpoint' });
  const sinceId = id('since');
  const since = h('input', { type: 'datetime-local', id: sinceId, required: true });
  since.value = localInputValue(new Date(Date.now() - 3600 * 1000));
  const stSel = selectField('Deliveries to replay', [
    { value: 'failed', label: 'Failed ones' },
    { value: '', label: 'All of them' },
  ], 'failed', null, { id: 'replay-status' });
  const out = h('div', { 'aria-live': 'polite' });
  const go = h('button', { type: 'submit', class: 'primary' }, 'Replay');
  const form = h('form', { class: 'form' },
    h('p', { class: 'help', text: 'Deliver again every matching delivery of one endpoint since a time of your choosing, for example after fixing a receiver.' }),
    h('div', { class: 'row' }, epSel.el,
      h('div', { class: 'field' }, h('label', { for: sinceId, text: 'Since (your local time)' }), since),
      stSel.el),
    out, h('div', { class: 'actions' }, go));
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    clear(out);
    if (!epSel.select.value) {
      out.appendChild(h('p', { class: 'field-error', text: 'Create an endpoint first.' }));
      return;
    }
    const t = new Date(since.value);
    if (Number.isNaN(t.getTime())) {
      out.appendChild(h('p', { class: 'field-error', text: 'Enter a date and time.' }));
      since.focus();
      return;
    }
    go.disabled = true;
    try {
      const body = { since: t.toISOString() };
      if (stSel.select.value) body.status = stSel.select.value;
      const r = await api('POST', '/v1/endpoints/' + encodeURIComponent(epSel.select.value) + '/replay', body);
      const n = r ? (r.replayed ?? r.count ?? r.deliveries ?? (Array.isArray(r.data) ? r.data.length : null)) : null;
      const msg = n === null ? 'Replay started.' : 'Replaying ' + n + (n === 1 ? ' delivery.' : ' deliveries.');
      out.appendChild(h('p', { class: 'ok', text: msg }));
      toast(msg);
    } catch (e) {
      out.appendChild(errorBox(e));
    } finally {
      go.disabled = false;
    }
  });
  return h('details', { class: 'card replay' }, h('summary', {}, 'Replay deliveries of an endpoint'), form);
}

// --- one delivery ---

// The headers of an attempt: those the server lists for the delivery, plus
// the per-attempt ones and the signatures (which depend on the secret).
function headersSent(d, attempt) {
  const ts = attempt && attempt.at ? String(Math.floor(new Date(attempt.at).getTime() / 1000)) : '(Unix time of the attempt)';
  let base;
  if (d.headers && typeof d.headers === 'object') {
    base = Array.isArray(d.headers) ? d.headers.map((x) => [x.name, x.value]) : Object.entries(d.headers);
  } else {
    base = [
      ['Content-Type', 'application/json'],
      ['X-Workflux-Event', d.event],
      ['X-Workflux-Event-Id', d.event_id],
      ['X-Workflux-Delivery', d.id],
      ['webhook-id', d.event_id],
    ];
  }
  const have = new Set(base.map(([k]) => k.toLowerCase()));
  const extra = [
    ['X-Workflux-Attempt', attempt ? String(attempt.n) : '1, 2, …'],
    ['webhook-timestamp', ts],
    ['X-Workflux-Signature', '(hex HMAC-SHA256 of the body, keyed with the endpoint\'s secret)'],
    ['webhook-signature', '(v1, then base64 HMAC-SHA256 of webhook-id.webhook-timestamp.body)'],
  ].filter(([k]) => !have.has(k.toLowerCase()));
  return base.concat(extra);
}

export async function detail(ctx) {
  const root = ctx.root;
  const dlvId = ctx.params[0];
  const path = '/v1/deliveries/' + encodeURIComponent(dlvId);
  let d = await api('GET', path);
  const [ev, ep] = await Promise.all([
    api('GET', '/v1/events/' + encodeURIComponent(d.event_id)).catch((e) => ({ error: e })),
    api('GET', '/v1/endpoints/' + encodeURIComponent(d.endpoint_id)).catch(() => null),
  ]);
  const summary = h('dl', { class: 'summary' });
  const attemptsEl = h('div', { id: 'attempts' });
  const headersEl = h('div', {});
  const err = h('div', {});
  const retry = h('button', { type: 'button', class: 'primary' }, 'Retry now');
  retry.addEventListener('click', async () => {
    clear(err);
    retry.disabled = true;
    try {
      await api('POST', path + '/retry', {});
      toast('Retry queued');
      announce('Retry queued');
      await refresh();
    } catch (e) {
      err.appendChild(errorBox(e));
    } finally {
      retry.disabled = false;
    }
  });

  root.appendChild(h('p', { class: 'crumbs' }, h('a', { href: '/deliveries', 'data-nav': true }, '← All deliveries')));
  root.appendChild(h('h1', {}, 'Delivery ', h('code', { text: d.id })));
  root.appendChild(h('section', { class: 'card', 'aria-label': 'Summary' }, summary, err, h('div', { class: 'actions' }, retry)));
  let payloadBox;
  if (ev && !ev.error) {
    const envelope = { id: ev.id, event: ev.event, timestamp: ev.timestamp, data: ev.data };
    payloadBox = h('div', {}, codeBlock(prettyJson(envelope), 'payload'));
  } else {
    payloadBox = errorBox(ev.error);
  }
  root.appendChild(h('section', { class: 'card', 'aria-labelledby': 'h-payload' },
    h('h2', { id: 'h-payload', text: 'Payload' }),
    h('p', { class: 'help', text: 'The event envelope, pretty-printed. Every attempt sends the same bytes.' }),
    payloadBox));
  root.appendChild(h('section', { class: 'card', 'aria-labelledby': 'h-headers' },
    h('h2', { id: 'h-headers', text: 'Headers sent' }), headersEl));
  root.appendChild(h('section', { class: 'card', 'aria-labelledby': 'h-attempts' },
    h('h2', { id: 'h-attempts', text: 'Attempts' }), attemptsEl));

  let drawn = '';
  function draw() {
    const sig = JSON.stringify(d);
    if (sig === drawn) return;
    drawn = sig;
    const attempts = Array.isArray(d.attempts) ? d.attempts : [];
    clear(summary);
    const item = (k, ...v) => [h('dt', { text: k }), h('dd', {}, ...v)];
    summary.append(
      ...item('Status', badge(d.status)),
      ...item('Event', h('a', { href: '/catalog#' + d.event, 'data-nav': true }, h('code', { text: d.event })), ' ', h('code', { class: 'muted', text: d.event_id })),
      ...item('Endpoint', h('a', { href: '/deliveries?endpoint_id=' + encodeURIComponent(d.endpoint_id), 'data-nav': true },
        ep ? ep.url : d.endpoint_id)),
      ...item('Attempts made', String(d.attempts_made)),
      ...(d.last_error ? item('Last error', h('span', { class: 'attempt-error', text: d.last_error })) : []),
      ...item('Next attempt', d.status === 'pending' ? timeEl(d.next_attempt_at) : '—'),
      ...item('Created', timeEl(d.created_at)));
    const last = attempts.length ? attempts[attempts.length - 1] : null;
    clear(headersEl);
    if (!last) headersEl.appendChild(h('p', { class: 'help', text: 'Nothing was sent yet: these are the headers each attempt will carry.' }));
    headersEl.appendChild(h('div', { class: 'table-wrap' }, h('table', { class: 'headers' },
      h('caption', { class: 'sr-only', text: 'Request headers' }),
      h('thead', {}, h('tr', {}, h('th', { scope: 'col', text: 'Header' }), h('th', { scope: 'col', text: 'Value' + (last ? ' (attempt ' + last.n + ')' : '') }))),
      h('tbody', {}, headersSent(d, last).map(([k, v]) => h('tr', {}, h('th', { scope: 'row' }, h('code', { text: k })), h('td', {}, h('code', { text: String(v) }))))))));
    clear(attemptsEl);
    if (attempts.length === 0) {
      attemptsEl.appendChild(h('p', { class: 'muted', text: d.status === 'held'
        ? 'No attempt yet: the endpoint is disabled, so this delivery is held until it is enabled.'
        : d.status === 'failed' ? 'No attempt was made' + (d.last_error ? ': ' + d.last_error + '.' : '.')
          : 'No attempt yet.' }));
      return;
    }
    attemptsEl.appendChild(h('ol', { class: 'attempts' }, attempts.map((a) => {
      const ok = a.status_code >= 200 && a.status_code < 300;
      return h('li', { class: 'attempt ' + (ok ? 'att-ok' : 'att-bad'), 'data-attempt': String(a.n) },
        h('div', { class: 'attempt-head' },
          h('strong', { text: 'Attempt ' + a.n }),
          timeEl(a.at),
          a.status_code ? h('span', { class: 'code ' + (ok ? 'code-ok' : 'code-bad') }, 'HTTP ' + a.status_code)
            : h('span', { class: 'code code-bad' }, 'no response'),
          errorClassEl(a),
          h('span', { class: 'muted' }, fmtMs(a.duration_ms))),
        a.error ? h('p', { class: 'attempt-error' }, h('strong', { text: 'Error: ' }), a.error) : null,
        a.response_body
          ? h('details', {}, h('summary', {}, 'Response body (' + a.response_body.length + ' characters kept)'),
            codeBlock(prettyJson(a.response_body), 'response body of attempt ' + a.n))
          : h('p', { class: 'muted', text: 'Empty response body.' }));
    })));
  }

  const pollErr = h('div', {});
  root.insertBefore(pollErr, root.children[2] || null);
  async function refresh() {
    const before = d.status;
    try {
      d = await api('GET', path);
    } catch (e) {
      if (ctx.alive()) clear(pollErr).appendChild(errorBox(e));
      return;
    }
    if (!ctx.alive()) return;
    clear(pollErr);
    if (before !== d.status) announce('Delivery ' + d.status);
    draw();
  }
  draw();
  // Keep refreshing even when final: a retry or replay reopens a delivery.
  return { refresh };
}
