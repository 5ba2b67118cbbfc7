// Deliveries: a live, paginated log filtered by endpoint, status, event type,
// date range, or found by event id or delivery id; one delivery's full story
// (payload, the headers each attempt was sent with and got back, errors in
// plain words) with copy-as-curl and retry.

import { api, apiText, qs, DELIVERY_STATUSES, typeName } from './api.js';
import { h, clear, errorBox, timeEl, fmtMs, prettyJson, codeBlock, selectField,
         copyButton, announce, toast, pad, zoneName } from './ui.js';
import { eventTypes, loadEndpoints } from './view_endpoints.js';
import { stateBadge, deliveryState, attemptWords, CLASS_HELP } from './status.js';

const PAGE = 25;

const STATUS_WORDS = {
  pending: 'Queued or retrying', delivering: 'Delivering now', delivered: 'Delivered',
  failed: 'Failed', held: 'Held (endpoint disabled)',
};

function localInputValue(date) {
  return date.getFullYear() + '-' + pad(date.getMonth() + 1) + '-' + pad(date.getDate()) + 'T' +
    pad(date.getHours()) + ':' + pad(date.getMinutes());
}

function fromInput(v) {
  if (!v) return '';
  const d = new Date(v);
  return Number.isNaN(d.getTime()) ? null : d.toISOString();
}

// "Last result" of a row: the latest attempt in words, or "—".
function lastResult(d, url) {
  if (d.last_status_code) return 'HTTP ' + d.last_status_code;
  if (d.last_error) return attemptWords({ error: d.last_error, error_class: guessClass(d.last_error) }, url);
  return '—';
}

// Lists carry the last error's text only; its class shows in the words.
function guessClass(err) {
  const e = err.toLowerCase();
  if (e.includes('blocked')) return 'blocked';
  if (e.includes('resolve') || e.includes('dns')) return 'dns';
  if (e.includes('timeout') || e.includes('timed out')) return 'timeout';
  if (e.includes('connect')) return 'connect';
  if (e.includes('tls') || e.includes('ssl') || e.includes('certificate')) return 'tls';
  if (e.includes('reset') || e.includes('closed')) return 'reset';
  if (e.includes('not http') || e.includes('malformed')) return 'protocol';
  return '';
}

export async function list(ctx) {
  const root = ctx.root;
  const fixed = ctx.endpoint || null;
  // The endpoints name the rows' URLs; the rows do not wait for them.
  const epsP = fixed ? Promise.resolve([fixed]) : loadEndpoints();
  epsP.catch(() => {});
  const types = await eventTypes(ctx);
  const byId = new Map(fixed ? [[fixed.id, fixed]] : []);
  const q = ctx.query;
  const filter = {
    endpoint_id: fixed ? fixed.id : q.get('endpoint_id') || '',
    status: q.get('status') || '',
    event: q.get('event') || '',
    q: q.get('q') || '',
    since: q.get('since') || '',
    until: q.get('until') || '',
  };
  let cursors = [''];
  let next = null;
  let topIds = '';
  let lastData = null;
  let lastNotFound = null;

  function syncQuery() {
    const p = new URLSearchParams();
    for (const [k, v] of Object.entries(filter)) if (v && !(fixed && k === 'endpoint_id')) p.set(k, v);
    ctx.setQuery(p);
  }
  const onFilter = (k) => (v) => { filter[k] = v; syncQuery(); cursors = ['']; load(true); };

  const fields = [];
  const searchId = 'flt-search';
  const search = h('input', { type: 'search', id: searchId, name: 'q', spellcheck: 'false', autocomplete: 'off',
    placeholder: 'evt_… or dlv_…', 'aria-describedby': searchId + '-help' });
  search.value = filter.q;
  fields.push(h('div', { class: 'field search' }, h('label', { for: searchId, text: 'Event or delivery id' }), search,
    h('p', { class: 'help', id: searchId + '-help', text: 'Paste an event id (evt_…) or a delivery id (dlv_…) and press Enter.' })));
  if (!fixed) {
    const known = filter.endpoint_id ? [{ value: filter.endpoint_id, label: filter.endpoint_id }] : [];
    const sel = selectField('Endpoint', [{ value: '', label: 'All endpoints' }].concat(known), filter.endpoint_id,
      onFilter('endpoint_id'), { id: 'flt-endpoint' });
    fields.push(sel.el);
    epsP.then((eps) => {
      if (!ctx.alive()) return;
      for (const e of eps) byId.set(e.id, e);
      for (const o of [...sel.select.options]) if (o.value) o.remove();
      for (const e of eps) {
        const o = h('option', { value: e.id }, e.url);
        if (e.id === filter.endpoint_id) o.selected = true;
        sel.select.appendChild(o);
      }
      if (lastData) drawTable(lastData, lastNotFound);
    }).catch(() => {});
  }
  const stOpts = [{ value: '', label: 'Any status' }].concat(DELIVERY_STATUSES.map((s) => ({ value: s, label: STATUS_WORDS[s] })));
  fields.push(selectField('Status', stOpts, filter.status, onFilter('status'), { id: 'flt-status' }).el);
  const tyOpts = [{ value: '', label: 'Any event type' }].concat(types.map((t) => ({ value: typeName(t), label: typeName(t) })));
  fields.push(selectField('Event type', tyOpts, filter.event, onFilter('event'), { id: 'flt-event' }).el);
  const zone = zoneName();
  const mkDate = (key, label) => {
    const fid = 'flt-' + key;
    const input = h('input', { type: 'datetime-local', id: fid, name: key });
    if (filter[key]) input.value = localInputValue(new Date(filter[key]));
    input.addEventListener('change', () => {
      const v = fromInput(input.value);
      if (v === null) return;
      onFilter(key)(v);
    });
    fields.push(h('div', { class: 'field' }, h('label', { for: fid, text: label + ' (' + zone + ')' }), input));
    return input;
  };
  const sinceIn = mkDate('since', 'Created from');
  const untilIn = mkDate('until', 'Created before');
  const clearBtn = h('button', { type: 'button', class: 'small' }, 'Clear filters');
  clearBtn.addEventListener('click', () => {
    for (const k of Object.keys(filter)) if (!(fixed && k === 'endpoint_id')) filter[k] = '';
    search.value = '';
    sinceIn.value = '';
    untilIn.value = '';
    for (const s of root.querySelectorAll('form.filters select')) s.value = '';
    syncQuery();
    cursors = [''];
    load(true);
  });

  const form = h('form', { class: 'filters', role: 'search', 'aria-label': 'Filter deliveries' }, fields,
    h('div', { class: 'field' }, clearBtn));
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    filter.q = search.value.trim();
    syncQuery();
    cursors = [''];
    load(true);
  });

  const tableWrap = h('div', {});
  const err = h('div', {});
  const pageInfo = h('span', { class: 'muted', 'aria-live': 'polite' });
  const newer = h('button', { type: 'button' }, '← Newer');
  const older = h('button', { type: 'button' }, 'Older →');
  newer.addEventListener('click', () => { if (cursors.length > 1) { cursors.pop(); load(true); } });
  older.addEventListener('click', () => { if (next) { cursors.push(next); load(true); } });

  root.appendChild(h('div', { class: 'view-head' }, h(ctx.embedded ? 'h2' : 'h1', { text: 'Deliveries' }),
    h('span', { class: 'live muted' }, 'Live: updates every 2 seconds')));
  root.appendChild(form);
  root.appendChild(err);
  root.appendChild(tableWrap);
  root.appendChild(h('div', { class: 'pager' }, newer, pageInfo, older));
  if (!fixed) {
    root.appendChild(h('p', { class: 'help' }, 'To deliver many again, open the endpoint and use Replay in its settings.'));
  }

  async function fetchPage() {
    const term = filter.q;
    if (term && term.startsWith('dlv_')) {
      // A delivery id names one delivery: show it alone (or say it is not there).
      try {
        const d = await api('GET', '/v1/deliveries/' + encodeURIComponent(term));
        return { data: [d], next: null };
      } catch (e) {
        if (e.status === 404) return { data: [], next: null, notFound: 'No delivery with id ' + term + ' in this account.' };
        throw e;
      }
    }
    if (term && !term.startsWith('evt_')) {
      return { data: [], next: null, notFound: 'Search takes an event id (evt_…) or a delivery id (dlv_…); "' + term + '" is neither.' };
    }
    return api('GET', '/v1/deliveries' + qs({
      endpoint_id: filter.endpoint_id, status: filter.status, event: filter.event,
      event_id: term, since: filter.since, until: filter.until,
      limit: PAGE, after: cursors[cursors.length - 1],
    }));
  }

  async function load(userAction) {
    let page;
    try {
      page = await fetchPage();
    } catch (e) {
      if (!ctx.alive()) return;
      clear(err).appendChild(errorBox(e, () => load(true)));
      return;
    }
    if (!ctx.alive()) return;
    clear(err);
    const data = page && Array.isArray(page.data) ? page.data : [];
    next = page ? page.next : null;
    // Times move ("next in 8 s"): redraw every poll when something is pending.
    const ids = data.map((d) => d.id + ':' + d.status + ':' + d.attempts_made).join(',') + (page.notFound || '');
    if (!userAction && ids === topIds && !data.some((d) => d.status === 'pending')) return;
    if (!userAction && cursors.length === 1 && topIds) {
      const before = new Set(topIds.split(',').map((x) => x.split(':')[0]));
      const fresh = data.filter((d) => !before.has(d.id)).length;
      if (fresh > 0) announce(fresh + (fresh === 1 ? ' new delivery' : ' new deliveries'));
    }
    topIds = ids;
    drawTable(data, page.notFound);
    newer.disabled = cursors.length <= 1;
    older.disabled = !next;
    pageInfo.textContent = 'Page ' + cursors.length + (data.length ? ' · ' + data.length + ' shown' : '');
  }

  function drawTable(data, notFound) {
    lastData = data;
    lastNotFound = notFound;
    clear(tableWrap);
    if (data.length === 0) {
      const any = Object.entries(filter).some(([k, v]) => v && !(fixed && k === 'endpoint_id'));
      tableWrap.appendChild(h('p', { class: 'card empty', role: 'status' }, notFound ||
        (any ? 'No delivery matches these filters.'
          : 'No deliveries yet. Publish an event, or send a test event from the Test page.')));
      return;
    }
    const cols = ['Created', 'Event', fixed ? null : 'Endpoint', 'Status', 'Attempts', 'Last result'].filter(Boolean);
    const rows = data.map((d) => {
      const ep = byId.get(d.endpoint_id);
      const url = ep ? ep.url : '';
      return h('tr', { 'data-delivery': d.id, class: 'status-' + d.status },
        h('td', { 'data-label': 'Created' }, timeEl(d.created_at || d.updated_at)),
        h('th', { scope: 'row', 'data-label': 'Event' }, h('a', { href: '/deliveries/' + encodeURIComponent(d.id), 'data-nav': true,
          'aria-label': 'Delivery ' + d.id + ', ' + d.event + ', ' + deliveryState(d).text }, h('code', { text: d.event }))),
        fixed ? null : h('td', { class: 'ep-url', 'data-label': 'Endpoint' }, ep ? ep.url : d.endpoint_id),
        h('td', { 'data-label': 'Status' }, stateBadge(d)),
        h('td', { class: 'num', 'data-label': 'Attempts' }, String(d.attempts_made)),
        h('td', { 'data-label': 'Last result' }, lastResult(d, url)));
    });
    tableWrap.appendChild(h('div', { class: 'table-wrap cards-narrow', tabindex: '0', role: 'region', 'aria-label': 'Deliveries' }, h('table', { class: 'deliveries' },
      h('caption', { class: 'sr-only', text: 'Deliveries, newest first' }),
      h('thead', {}, h('tr', {}, cols.map((c) => h('th', { scope: 'col', text: c })))),
      h('tbody', {}, rows))));
  }

  await load(true);
  return { refresh: () => load(false) };
}

// --- one delivery ---

// The envelope exactly as stored and sent: the event's JSON as the API
// answers it is the stored envelope with created_at (and deliveries) added.
function rawEnvelope(text) {
  const i = text.lastIndexOf(',"created_at":');
  return i > 0 ? text.slice(0, i) + '}' : text;
}

// A shell word in single quotes.
function sq(s) { return "'" + String(s).replace(/'/g, "'\\''") + "'"; }

// A curl command that sends what the attempt sent: its headers (signatures
// included: they verify only within the receiver's timestamp tolerance) and the body.
export function curlFor(url, headers, body) {
  const lines = ['curl -X POST ' + sq(url)];
  for (const x of headers) {
    if (x.name.toLowerCase() === 'content-length') continue;
    lines.push('  -H ' + sq(x.name + ': ' + x.value));
  }
  lines.push('  --data-binary ' + sq(body));
  return lines.join(' \\\n');
}

function headerTable(list, caption) {
  return h('div', { class: 'table-wrap', tabindex: '0', role: 'region', 'aria-label': caption }, h('table', { class: 'headers' },
    h('caption', { class: 'sr-only', text: caption }),
    h('thead', {}, h('tr', {}, h('th', { scope: 'col', text: 'Header' }), h('th', { scope: 'col', text: 'Value' }))),
    h('tbody', {}, list.map((x) => h('tr', {}, h('th', { scope: 'row' }, h('code', { text: x.name })),
      h('td', {}, h('code', { class: 'hv', text: x.value })))))));
}

export async function detail(ctx) {
  const root = ctx.root;
  const dlvId = ctx.params[0];
  const path = '/v1/deliveries/' + encodeURIComponent(dlvId);
  let d = await api('GET', path);
  const [evText, ep] = await Promise.all([
    apiText('GET', '/v1/events/' + encodeURIComponent(d.event_id)).catch((e) => ({ error: e })),
    api('GET', '/v1/endpoints/' + encodeURIComponent(d.endpoint_id)).catch(() => null),
  ]);
  const payload = typeof evText === 'string' ? rawEnvelope(evText) : null;
  const url = ep ? ep.url : '';
  const summary = h('dl', { class: 'summary' });
  const stateEl = h('p', { class: 'state-line', 'aria-live': 'polite' });
  const attemptsEl = h('div', { id: 'attempts' });
  const err = h('div', {});
  const retry = h('button', { type: 'button', class: 'primary' }, 'Retry now');
  retry.addEventListener('click', async () => {
    clear(err);
    retry.disabled = true;
    try {
      await api('POST', path + '/retry', {});
      toast('Retry queued');
      await refresh();
    } catch (e) {
      err.appendChild(errorBox(e));
    } finally {
      retry.disabled = false;
    }
  });

  root.appendChild(h('p', { class: 'crumbs' },
    h('a', { href: '/deliveries', 'data-nav': true }, '← All deliveries'),
    ep ? [' · ', h('a', { href: '/endpoints/' + encodeURIComponent(ep.id) + '/deliveries', 'data-nav': true }, 'This endpoint\'s deliveries')] : null));
  root.appendChild(h('h1', {}, 'Delivery ', h('code', { text: d.id })));
  root.appendChild(h('section', { class: 'card', 'aria-label': 'Summary' }, stateEl, summary, err,
    h('div', { class: 'actions' }, retry)));

  const payloadActions = h('div', { class: 'actions' });
  let payloadBox;
  if (payload !== null) {
    payloadActions.append(copyButton(payload, 'Copy payload'));
    payloadBox = codeBlock(prettyJson(payload), 'payload');
  } else {
    payloadBox = errorBox(evText.error);
  }
  root.appendChild(h('section', { class: 'card', 'aria-labelledby': 'h-payload' },
    h('div', { class: 'card-head' }, h('h2', { id: 'h-payload', text: 'Payload' }), payloadActions),
    h('p', { class: 'help', text: 'The event envelope, pretty-printed here. Every attempt sends the same bytes; Copy payload copies them exactly.' }),
    payloadBox));
  root.appendChild(h('section', { class: 'card', 'aria-labelledby': 'h-attempts' },
    h('h2', { id: 'h-attempts', text: 'Attempts' }), attemptsEl));

  let drawn = '';
  function draw() {
    const s = deliveryState(d);
    stateEl.textContent = '';
    stateEl.append(stateBadge(d));
    const attempts = Array.isArray(d.attempts) ? d.attempts : [];
    const sig = JSON.stringify(d) + (d.status === 'pending' ? s.text : '');
    if (sig === drawn) return;
    drawn = sig;
    clear(summary);
    const item = (k, ...v) => [h('dt', { text: k }), h('dd', {}, ...v)];
    summary.append(
      ...item('Event', h('a', { href: '/catalog#' + d.event, 'data-nav': true }, h('code', { text: d.event })), ' ',
        h('code', { class: 'muted', text: d.event_id })),
      ...item('Endpoint', ep ? h('a', { href: '/endpoints/' + encodeURIComponent(d.endpoint_id), 'data-nav': true }, url)
        : h('code', { text: d.endpoint_id })),
      ...item('Attempts made', String(d.attempts_made)),
      ...item('Next attempt', d.status === 'pending' && d.next_attempt_at ? timeEl(d.next_attempt_at) : '—'),
      ...item('Created', timeEl(d.created_at)));
    clear(attemptsEl);
    if (attempts.length === 0) {
      attemptsEl.appendChild(h('p', { class: 'muted', text: d.status === 'held'
        ? 'No attempt yet: the endpoint is disabled, so this delivery is held until it is enabled.'
        : d.status === 'failed' ? 'No attempt was made' + (d.last_error ? ': ' + d.last_error + '.' : '.')
          : 'No attempt yet.' }));
      return;
    }
    attemptsEl.appendChild(h('ol', { class: 'attempts' }, attempts.slice().reverse().map((a) => attemptEl(a))));
  }

  function attemptEl(a) {
    const ok = a.status_code >= 200 && a.status_code < 300;
    const words = attemptWords(a, url);
    const sent = Array.isArray(a.request_headers) ? a.request_headers : null;
    const got = Array.isArray(a.response_headers) ? a.response_headers : null;
    const curlBtn = sent && payload !== null
      ? copyButton(() => curlFor(url, sent, payload), 'Copy as curl') : null;
    return h('li', { class: 'attempt ' + (ok ? 'att-ok' : 'att-bad'), 'data-attempt': String(a.n) },
      h('div', { class: 'attempt-head' },
        h('strong', { text: 'Attempt ' + a.n }),
        timeEl(a.at),
        h('span', { class: 'code ' + (ok ? 'code-ok' : 'code-bad'), 'data-words': '' }, words),
        a.error_class ? h('span', { class: 'error-class', 'data-error-class': a.error_class, title: CLASS_HELP[a.error_class] || a.error_class }, a.error_class) : null,
        h('span', { class: 'muted' }, fmtMs(a.duration_ms)),
        curlBtn),
      a.error ? h('details', { class: 'raw' }, h('summary', {}, 'Technical detail'),
        h('p', {}, h('code', { class: 'attempt-error', text: a.error })),
        a.error_class && CLASS_HELP[a.error_class] ? h('p', { class: 'help', text: CLASS_HELP[a.error_class] }) : null) : null,
      sent ? h('details', { class: 'sent-headers' }, h('summary', {}, 'Request headers sent (' + sent.length + ', signatures included)'),
        headerTable(sent, 'Request headers of attempt ' + a.n)) : h('p', { class: 'muted', text: 'This attempt was recorded before fluxhook kept the headers sent.' }),
      got && got.length ? h('details', { class: 'got-headers' }, h('summary', {}, 'Response headers (' + got.length + ')'),
        headerTable(got, 'Response headers of attempt ' + a.n)) : null,
      a.response_body
        ? h('details', { class: 'got-body' }, h('summary', {}, 'Response body (' + a.response_body.length + ' characters kept)'),
          codeBlock(prettyJson(a.response_body), 'response body of attempt ' + a.n))
        : (a.status_code ? h('p', { class: 'muted', text: 'Empty response body.' }) : null));
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
    if (before !== d.status) announce(deliveryState(d).text);
    draw();
  }
  draw();
  return { refresh };
}

