// Endpoints: the list (status, held count, last hour's success rate and p95,
// secret, enable/disable, delete) and the create/edit form.

import { api, listAll, endpointTypes, heldCount, statsWindow, typeName } from './api.js';
import { h, clear, errorBox, badge, timeEl, fmtMs, fmtRate, fmtTime, copyButton, confirm, dialog,
         toast, announce, id } from './ui.js';

export async function eventTypes(ctx) {
  if (!ctx.cache.types) {
    const res = await api('GET', '/v1/event-types');
    ctx.cache.types = res && Array.isArray(res.data) ? res.data : (Array.isArray(res) ? res : []);
  }
  return ctx.cache.types;
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
      h('li', {}, 'Verify signatures in your receiver with the snippets of the ',
        h('a', { href: '/catalog', 'data-nav': true }, 'event catalog'), '.')),
    h('p', {}, h('a', { href: '/endpoints/new', class: 'button primary', 'data-nav': true }, 'Create your first endpoint')));
}

export async function list(ctx) {
  const root = ctx.root;
  const status = h('div', { class: 'view-error' });
  const listEl = h('div', { class: 'cards', id: 'endpoint-list' });
  const cards = new Map();
  root.appendChild(h('div', { class: 'view-head' },
    h('h1', { text: 'Endpoints' }),
    h('a', { href: '/endpoints/new', class: 'button primary', 'data-nav': true }, 'New endpoint')));
  root.appendChild(status);
  root.appendChild(listEl);

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
    const stats = await loadStats(eps);
    if (!ctx.alive()) return;
    if (eps.length === 0) {
      if (!listEl.querySelector('.empty')) clear(listEl).appendChild(gettingStarted());
      cards.clear();
      return;
    }
    const empty = listEl.querySelector('.empty');
    if (empty) empty.remove();
    const seen = new Set();
    for (const ep of eps) {
      seen.add(ep.id);
      let c = cards.get(ep.id);
      if (!c) {
        c = card(ep, ctx, () => load(false));
        cards.set(ep.id, c);
        listEl.appendChild(c.el);
      }
      c.update(ep, stats[ep.id]);
    }
    for (const [k, c] of cards) {
      if (!seen.has(k)) { c.el.remove(); cards.delete(k); }
    }
  }

  await load(true);
  return { refresh: () => load(false) };
}

function card(ep0, ctx, reload) {
  let ep = ep0;
  const hid = id('ep');
  const statusEl = h('div', { class: 'ep-status' });
  const statsEl = h('div', { class: 'ep-stats' });
  const typesEl = h('div', { class: 'ep-types' });
  const descEl = h('p', { class: 'ep-desc' });
  const urlEl = h('span', { class: 'ep-url' });
  const toggle = h('button', { type: 'button' });
  const secretValue = h('code', { class: 'secret', 'aria-label': 'signing secret, hidden', text: 'whsec_••••••••••••••••' });
  let secret = null;
  const reveal = h('button', { type: 'button', class: 'small', 'aria-pressed': 'false' }, 'Reveal');
  const errEl = h('div', { class: 'card-error' });

  const prevNote = h('p', { class: 'help prev-secret', hidden: true });
  // During a rotation's grace period the old secret still signs webhook-signature.
  function showPrevious(r) {
    const prev = r && r.previous;
    prevNote.hidden = !(prev && prev.expires_at);
    prevNote.textContent = prevNote.hidden ? ''
      : 'The previous secret also signs webhook-signature until ' + fmtTime(prev.expires_at) + '.';
  }
  async function fetchSecret() {
    const r = await api('GET', '/v1/endpoints/' + encodeURIComponent(ep.id) + '/secret');
    showPrevious(r);
    return (r && (r.secret || r.current || (r.data && r.data.secret))) || '';
  }
  reveal.addEventListener('click', async () => {
    clear(errEl);
    if (secret !== null) {
      secret = null;
      secretValue.textContent = 'whsec_••••••••••••••••';
      secretValue.setAttribute('aria-label', 'signing secret, hidden');
      reveal.textContent = 'Reveal';
      reveal.setAttribute('aria-pressed', 'false');
      return;
    }
    try {
      secret = await fetchSecret();
      secretValue.textContent = secret;
      secretValue.setAttribute('aria-label', 'signing secret');
      reveal.textContent = 'Hide';
      reveal.setAttribute('aria-pressed', 'true');
    } catch (e) {
      errEl.appendChild(errorBox(e));
    }
  });
  const copy = copyButton(async () => secret || fetchSecret(), 'Copy secret');
  const rotate = h('button', { type: 'button', class: 'small' }, 'Rotate…');
  rotate.addEventListener('click', async () => {
    clear(errEl);
    const gid = id('grace');
    const sel = h('select', { id: gid },
      h('option', { value: '0' }, 'Stop at once'),
      h('option', { value: '3600' }, '1 hour'),
      h('option', { value: '86400', selected: true }, '24 hours'),
      h('option', { value: '604800' }, '7 days'));
    const body = h('div', {},
      h('p', {}, 'A new secret signs every delivery from now on. During the grace period the old ' +
        'secret also signs webhook-signature, so receivers can switch without losing events. ' +
        'X-Workflux-Signature uses the new secret at once.'),
      h('div', { class: 'field' }, h('label', { for: gid, text: 'Keep the old secret valid for' }), sel));
    const v = await dialog('Rotate the signing secret?', body,
      [{ label: 'Cancel', value: 'cancel' }, { label: 'Rotate secret', value: 'ok', cls: 'primary' }]);
    if (v !== 'ok') return;
    try {
      const r = await api('POST', '/v1/endpoints/' + encodeURIComponent(ep.id) + '/secret/rotate',
        { grace_seconds: Number(sel.value) });
      secret = (r && (r.secret || r.current)) || await fetchSecret();
      if (r && r.secret) showPrevious(r);
      secretValue.textContent = secret;
      secretValue.setAttribute('aria-label', 'signing secret');
      reveal.textContent = 'Hide';
      reveal.setAttribute('aria-pressed', 'true');
      toast('Secret rotated');
      announce('Secret rotated; the new secret is shown');
    } catch (e) {
      errEl.appendChild(errorBox(e));
    }
  });

  toggle.addEventListener('click', async () => {
    clear(errEl);
    const path = '/v1/endpoints/' + encodeURIComponent(ep.id);
    try {
      if (ep.status === 'disabled') {
        const held = heldCount(ep);
        let skip = false;
        if (held > 0) {
          const name = id('held');
          const body = h('fieldset', {},
            h('legend', { text: 'This endpoint holds ' + held + ' ' + (held === 1 ? 'delivery' : 'deliveries') + '.' }),
            h('label', { class: 'radio' }, h('input', { type: 'radio', name, value: 'resume', checked: true }),
              ' Resume: deliver the held deliveries now'),
            h('label', { class: 'radio' }, h('input', { type: 'radio', name, value: 'skip' }),
              ' Skip: leave them undelivered and deliver only new events'));
          const v = await dialog('Enable this endpoint?', body,
            [{ label: 'Cancel', value: 'cancel' }, { label: 'Enable', value: 'ok', cls: 'primary' }]);
          if (v !== 'ok') return;
          skip = body.querySelector('input[value=skip]').checked;
        }
        await api('POST', path + '/enable', { skip_held: skip });
        toast('Endpoint enabled');
        announce('Endpoint enabled' + (held > 0 ? (skip ? ', held deliveries skipped' : ', held deliveries resumed') : ''));
      } else {
        const ok = await confirm('Disable this endpoint?',
          'While it is disabled, its deliveries are held (never dropped) until you enable it again.',
          'Disable', true);
        if (!ok) return;
        await api('POST', path + '/disable', {});
        toast('Endpoint disabled');
        announce('Endpoint disabled');
      }
      await reload();
    } catch (e) {
      errEl.appendChild(errorBox(e));
    }
  });

  const del = h('button', { type: 'button', class: 'danger' }, 'Delete…');
  del.addEventListener('click', async () => {
    clear(errEl);
    const ok = await confirm('Delete this endpoint?',
      'Delete ' + ep.url + '? Its pending and held deliveries end as failed. This cannot be undone.',
      'Delete endpoint', true);
    if (!ok) return;
    try {
      await api('DELETE', '/v1/endpoints/' + encodeURIComponent(ep.id));
      toast('Endpoint deleted');
      announce('Endpoint deleted');
      await reload();
      const first = document.querySelector('#endpoint-list a, .view-head a');
      if (first) first.focus();
    } catch (e) {
      errEl.appendChild(errorBox(e));
    }
  });

  const q = encodeURIComponent(ep.id);
  const el = h('article', { class: 'card endpoint', 'aria-labelledby': hid, 'data-endpoint': ep.id },
    h('div', { class: 'card-head' },
      h('h2', { id: hid }, urlEl),
      statusEl),
    descEl,
    typesEl,
    statsEl,
    h('div', { class: 'secret-row' },
      h('span', { class: 'label', text: 'Signing secret' }), secretValue, reveal, copy, rotate),
    prevNote,
    errEl,
    h('div', { class: 'actions' },
      h('a', { href: '/endpoints/' + q + '/edit', class: 'button', 'data-nav': true }, 'Edit'),
      h('a', { href: '/test?endpoint=' + q, class: 'button', 'data-nav': true }, 'Send test'),
      h('a', { href: '/deliveries?endpoint_id=' + q, class: 'button', 'data-nav': true }, 'Deliveries'),
      h('a', { href: '/charts?endpoint_id=' + q, class: 'button', 'data-nav': true }, 'Charts'),
      toggle, del));

  function update(e, st) {
    ep = e;
    urlEl.textContent = ep.url;
    descEl.textContent = ep.description || '';
    descEl.hidden = !ep.description;
    const types = endpointTypes(ep);
    clear(typesEl).appendChild(h('span', { class: 'label', text: 'Events' }));
    if (types.length === 0) typesEl.appendChild(h('span', { class: 'chip' }, 'all event types'));
    for (const t of types) typesEl.appendChild(h('span', { class: 'chip' }, t));
    const held = heldCount(ep);
    clear(statusEl).appendChild(badge(ep.status));
    if (ep.status === 'disabled') {
      statusEl.appendChild(h('span', { class: 'why' },
        ep.disabled_reason ? ep.disabled_reason : 'disabled', ' · since ', timeEl(ep.disabled_at)));
    }
    statusEl.appendChild(h('span', { class: 'held' + (held > 0 ? ' held-some' : '') },
      held + ' held'));
    toggle.textContent = ep.status === 'disabled' ? 'Enable…' : 'Disable…';
    toggle.className = ep.status === 'disabled' ? 'primary' : '';
    clear(statsEl);
    if (st && st.error) {
      statsEl.appendChild(h('span', { class: 'muted' }, 'Stats unavailable: ' + st.error.message));
    } else {
      const w = statsWindow(st, '1h');
      statsEl.append(
        h('span', { class: 'label', text: 'Last hour' }),
        h('span', { class: 'stat' }, 'success ', h('strong', { class: 'success-rate' }, w ? fmtRate(w.success_rate) : '—')),
        h('span', { class: 'stat' }, 'p95 ', h('strong', { class: 'p95' }, w ? fmtMs(w.p95) : '—')),
        w && w.attempts !== null ? h('span', { class: 'stat' }, h('strong', {}, String(w.attempts)), ' attempts') : null);
    }
  }

  return { el, update };
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
      h('a', { href: '/endpoints', class: 'button', 'data-nav': true }, 'Cancel')));
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
        await api('POST', '/v1/endpoints', body);
        toast('Endpoint created: send it a test event from the Test page');
      }
      ctx.navigate('/endpoints');
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
