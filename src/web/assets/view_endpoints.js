// Endpoints: the list (status, the last day's success rate, held count; each
// links to its endpoint page) and the create/edit form.

import { api, listAll, endpointTypes, heldCount, statsWindow, typeName } from './api.js';
import { h, clear, errorBox, badge, fmtRate, toast } from './ui.js';

async function catalogTypes(ctx) {
  if (!ctx.cache.types) {
    const res = await api('GET', '/v1/event-types');
    ctx.cache.types = res && Array.isArray(res.data) ? res.data : (Array.isArray(res) ? res : []);
  }
  return ctx.cache.types;
}

// The producers' types; ownTypes: fluxhook's own, for operational endpoints.
export async function eventTypes(ctx) {
  return (await catalogTypes(ctx)).filter((t) => t.source !== 'fluxhook');
}

export async function ownTypes(ctx) {
  return (await catalogTypes(ctx)).filter((t) => t.source === 'fluxhook');
}

export async function loadEndpoints() {
  return listAll('/v1/endpoints');
}

async function loadStats(eps) {
  const out = {};
  await Promise.all(eps.slice(0, 50).map(async (ep) => {
    try {
      out[ep.id] = await api('GET', '/v1/endpoints/' + encodeURIComponent(ep.id) + '/stats');
    } catch (e) {
      out[ep.id] = { error: e };
    }
  }));
  return out;
}

function gettingStarted() {
  return h('section', { class: 'card empty', 'aria-labelledby': 'gs-title' },
    h('h2', { id: 'gs-title', text: 'No endpoints yet' }),
    h('p', {}, 'An endpoint is a URL of yours that receives a signed HTTP POST for every event ' +
      'it subscribes to. To get going:'),
    h('ol', {},
      h('li', {}, 'Run a receiver: your own HTTPS service, or for a first look ',
        h('code', { text: 'fluxhook listen --port 9000' }),
        ', which prints each delivery and checks its signature. fluxhook delivers only to public ' +
        'https:// URLs unless the server runs with ', h('code', { text: '--allow-http --allow-networks 127.0.0.0/8' }),
        ' (for a receiver on this machine).'),
      h('li', {}, h('a', { href: '/endpoints/new', 'data-nav': true }, 'Create an endpoint'),
        ' with its URL and the event types it wants.'),
      h('li', {}, 'Send it a sample event from the ', h('a', { href: '/test', 'data-nav': true }, 'Test'),
        ' page and watch the delivery arrive.'),
      h('li', {}, 'Verify signatures in your receiver: the ',
        h('a', { href: '/receiving#verify', 'data-nav': true }, 'receiving guide'), ' shows how, in eight languages.')),
    h('p', {}, h('a', { href: '/endpoints/new', class: 'button primary', 'data-nav': true }, 'Create your first endpoint')));
}

export async function list(ctx) {
  const root = ctx.root;
  const status = h('div', { class: 'view-error' });
  const listEl = h('div', { id: 'endpoint-list' });
  root.appendChild(h('div', { class: 'view-head' },
    h('h1', { text: 'Endpoints' }),
    h('a', { href: '/endpoints/new', class: 'button primary', 'data-nav': true }, 'New endpoint')));
  root.appendChild(status);
  root.appendChild(listEl);
  let drawn = '';

  async function load(first) {
    let eps;
    try {
      eps = await loadEndpoints();
    } catch (e) {
      if (first) throw e;
      clear(status).appendChild(errorBox(e));
      return;
    }
    clear(status);
    if (!ctx.alive()) return;
    // Rows at once; each endpoint's statistics fill in when they come
    // (counting a day of a busy endpoint's deliveries takes the store a while).
    draw(eps, stats);
    const later = loadStats(eps).then((fresh) => {
      if (!ctx.alive()) return;
      stats = fresh;
      draw(eps, stats);
    });
    if (!first) await later;
  }

  let stats = {};
  function draw(eps, st) {
    if (eps.length === 0) {
      if (!listEl.querySelector('.empty')) clear(listEl).appendChild(gettingStarted());
      drawn = '';
      return;
    }
    const sig = JSON.stringify([eps, st]);
    if (sig === drawn) return;
    drawn = sig;
    clear(listEl).appendChild(h('div', { class: 'table-wrap cards-narrow', tabindex: '0', role: 'region', 'aria-label': 'Endpoints' }, h('table', { class: 'endpoints' },
      h('caption', { class: 'sr-only', text: 'Endpoints, oldest first' }),
      h('thead', {}, h('tr', {}, ['Endpoint', 'Status', 'Success rate (24 h)', 'Deliveries (24 h)', 'Held']
        .map((c) => h('th', { scope: 'col', text: c })))),
      h('tbody', {}, eps.map((ep) => row(ep, st[ep.id]))))));
  }

  await load(true);
  return { refresh: () => load(false) };
}

// One endpoint's row: its URL links to its page, where everything else is.
function row(ep, st) {
  const w = st && !st.error ? statsWindow(st, '24h') : null;
  const h24 = w ? successOf(w) : null;
  const held = heldCount(ep);
  const q = encodeURIComponent(ep.id);
  return h('tr', { 'data-endpoint': ep.id },
    h('th', { scope: 'row', 'data-label': 'Endpoint' },
      h('a', { href: '/endpoints/' + q, 'data-nav': true, class: 'ep-url' }, ep.url),
      ep.description ? h('span', { class: 'muted ep-desc' }, ep.description) : null),
    h('td', { 'data-label': 'Status' }, badge(ep.status),
      ep.status === 'disabled' && ep.disabled_reason ? h('span', { class: 'why' }, ' ', ep.disabled_reason) : null),
    h('td', { 'data-label': 'Success rate (24 h)', class: 'success-rate' }, h24 ? rateText(h24) : '—'),
    h('td', { 'data-label': 'Deliveries (24 h)', class: 'num' }, h24 ? String(h24.total) : '—'),
    h('td', { 'data-label': 'Held', class: 'num' },
      h('span', { class: 'held' + (held > 0 ? ' held-some' : '') }, held + ' held')));
}

// The success rate, defined once: of the window's deliveries that ended
// (delivered or failed), the share delivered. {rate, delivered, ended, total}.
export function successOf(w) {
  const by = w.by_status || {};
  const delivered = by.delivered || 0;
  const ended = delivered + (by.failed || 0);
  let total = 0;
  for (const v of Object.values(by)) total += typeof v === 'number' ? v : 0;
  return { rate: ended > 0 ? delivered / ended : null, delivered, ended, total };
}

// "20% (1 of 5)", the rate beside the counts it comes from.
export function rateText(s) {
  if (s.rate === null) return 'no ended delivery';
  return fmtRate(s.rate) + ' (' + s.delivered + ' of ' + s.ended + ')';
}

// --- the create/edit form ---

const FIELD_OF = { url: 'url', description: 'description', event_types: 'event_types',
                   secret: 'secret', enabled: 'enabled' };

export async function form(ctx) {
  const root = ctx.root;
  const editId = ctx.params[0] || null;
  const [types, ep] = await Promise.all([
    eventTypes(ctx),
    editId ? api('GET', '/v1/endpoints/' + encodeURIComponent(editId)) : Promise.resolve(null),
  ]);
  const chosen = new Set(ep ? endpointTypes(ep) : []);
  const fields = {};
  const errs = {};
  function field(name, label, input, help) {
    const fid = input.id;
    errs[name] = h('div', { class: 'field-error', id: fid + '-err' });
    input.setAttribute('aria-describedby', (help ? fid + '-help ' : '') + fid + '-err');
    fields[name] = input;
    return h('div', { class: 'field' },
      h('label', { for: fid, text: label }), input,
      help ? h('p', { class: 'help', id: fid + '-help', text: help }) : null,
      errs[name]);
  }
  const url = h('input', { id: 'ep-url', name: 'url', type: 'text', inputmode: 'url', autocomplete: 'url',
    spellcheck: 'false', required: true, placeholder: 'https://example.com/webhooks/workflux' });
  url.value = ep ? ep.url : '';
  const desc = h('input', { id: 'ep-desc', name: 'description', type: 'text', maxlength: '500' });
  desc.value = ep ? ep.description || '' : '';
  const boxes = types.map((t) => {
    const n = typeName(t);
    const cid = 'type-' + n.replace(/[^a-z0-9]/gi, '-');
    const cb = h('input', { type: 'checkbox', id: cid, name: 'event_types', value: n });
    cb.checked = chosen.has(n);
    return h('label', { class: 'check', for: cid }, cb,
      h('span', {}, h('code', { text: n }),
        t.description ? h('span', { class: 'muted type-desc', text: t.description }) : null));
  });
  errs.event_types = h('div', { class: 'field-error', id: 'ep-types-err' });
  const typesSet = h('fieldset', { class: 'types', 'aria-describedby': 'ep-types-help ep-types-err' },
    h('legend', { text: 'Event types' }),
    h('p', { class: 'help', id: 'ep-types-help',
      text: 'Leave every box empty to receive all event types, including ones added later.' }),
    h('div', { class: 'checks' }, boxes),
    errs.event_types);
  const enabled = h('input', { type: 'checkbox', id: 'ep-enabled', name: 'enabled', checked: true });
  errs.enabled = h('div', { class: 'field-error' });
  const summary = h('div', { class: 'form-error', role: 'alert' });
  const submit = h('button', { type: 'submit', class: 'primary' }, ep ? 'Save changes' : 'Create endpoint');
  const f = h('form', { class: 'card form', novalidate: true },
    summary,
    field('url', 'URL', url, 'Where fluxhook POSTs each event. https:// only, unless the server runs with --allow-http.'),
    field('description', 'Description (optional)', desc, null),
    typesSet,
    ep ? null : h('div', { class: 'field' }, h('label', { class: 'check', for: 'ep-enabled' }, enabled, ' Start delivering at once (enabled)'), errs.enabled),
    h('div', { class: 'actions' }, submit,
      h('a', { href: ep ? '/endpoints/' + encodeURIComponent(ep.id) + '/settings' : '/endpoints', class: 'button', 'data-nav': true }, 'Cancel')));
  root.appendChild(h('h1', { text: ep ? 'Edit endpoint' : 'New endpoint' }));
  if (ep) root.appendChild(h('p', { class: 'muted' }, 'Endpoint ', h('code', { text: ep.id })));
  root.appendChild(f);

  f.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    clear(summary);
    for (const k of Object.keys(errs)) clear(errs[k]);
    for (const k of Object.keys(fields)) fields[k].removeAttribute('aria-invalid');
    const body = {
      url: url.value.trim(),
      description: desc.value,
      event_types: [...f.querySelectorAll('input[name=event_types]:checked')].map((x) => x.value),
    };
    if (!ep) body.enabled = enabled.checked;
    submit.disabled = true;
    try {
      if (ep) {
        await api('PATCH', '/v1/endpoints/' + encodeURIComponent(ep.id), body);
        toast('Endpoint saved');
      } else {
        const made = await api('POST', '/v1/endpoints', body);
        toast('Endpoint created: send it a test event');
        if (made && made.id) {
          ctx.navigate('/endpoints/' + encodeURIComponent(made.id) + '/test');
          return;
        }
      }
      ctx.navigate(ep ? '/endpoints/' + encodeURIComponent(ep.id) + '/settings' : '/endpoints');
    } catch (e) {
      showErrors(e);
    } finally {
      submit.disabled = false;
    }
  });

  function showErrors(e) {
    let placed = false;
    let firstBad = null;
    for (const fe of e.fields || []) {
      const top = String(fe.path || '').split(/[.[]/)[0];
      const name = FIELD_OF[top];
      if (name && errs[name]) {
        errs[name].appendChild(h('p', { text: fe.problem || e.message }));
        if (fields[name]) fields[name].setAttribute('aria-invalid', 'true');
        firstBad = firstBad || fields[name] || typesSet.querySelector('input');
        placed = true;
      }
    }
    if (!placed && /\burl\b/i.test(e.message) && e.status === 400) {
      errs.url.appendChild(h('p', { text: e.message }));
      url.setAttribute('aria-invalid', 'true');
      firstBad = url;
      placed = true;
    }
    summary.appendChild(errorBox(e));
    (firstBad || url).focus();
  }

  url.focus();
  return null;
}
