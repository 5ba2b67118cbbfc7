// One endpoint's page: an overview with its health, its deliveries, its
// charts, test sending and its settings (secret, enable/disable, replay,
// delete), each a tab with its own address (/endpoints/ID/deliveries, ...).

import { api, qs, heldCount, statsWindow, endpointTypes } from './api.js';
import { h, clear, errorBox, badge, timeEl, fmtMs, fmtTime, copyButton, confirm, dialog,
         toast, announce, id, pad, zoneName } from './ui.js';
import { successOf, rateText } from './view_endpoints.js';
import { stateBadge } from './status.js';
import { setBanner } from './banners.js';
import * as deliveries from './view_deliveries.js';
import * as charts from './view_charts.js';
import * as testView from './view_test.js';

const TABS = [
  { key: '', label: 'Overview' },
  { key: 'deliveries', label: 'Deliveries' },
  { key: 'charts', label: 'Charts' },
  { key: 'test', label: 'Test' },
  { key: 'settings', label: 'Settings' },
];

export async function page(ctx) {
  const epId = ctx.params[0];
  const tab = TABS.some((t) => t.key && t.key === ctx.params[1]) ? ctx.params[1] : '';
  const base = '/endpoints/' + encodeURIComponent(epId);
  let ep = await api('GET', base.replace('/endpoints/', '/v1/endpoints/'));
  const root = ctx.root;
  const head = h('div', { class: 'ep-head' });
  const body = h('div', { class: 'ep-body' });
  root.appendChild(h('p', { class: 'crumbs' }, h('a', { href: '/endpoints', 'data-nav': true }, '← All endpoints')));
  root.appendChild(head);
  root.appendChild(h('nav', { class: 'tabs', 'aria-label': 'Endpoint' }, h('ul', {}, TABS.map((t) =>
    h('li', {}, h('a', { href: base + (t.key ? '/' + t.key : ''), 'data-nav': true,
      'aria-current': t.key === tab ? 'page' : null }, t.label))))));
  root.appendChild(body);

  function drawHead() {
    clear(head).appendChild(h('div', {},
      h('h1', {}, h('span', { class: 'sr-only', text: 'Endpoint ' }), h('span', { class: 'ep-url', text: ep.url })),
      h('div', { class: 'ep-status' }, badge(ep.status),
        ep.status === 'disabled'
          ? h('span', { class: 'why' }, (ep.disabled_reason || 'disabled') + ' · since ', timeEl(ep.disabled_at)) : null,
        h('span', { class: 'held' + (heldCount(ep) > 0 ? ' held-some' : '') }, heldCount(ep) + ' held'),
        h('code', { class: 'muted', text: ep.id })),
      ep.description ? h('p', { class: 'ep-desc', text: ep.description }) : null));
    // The generic banner hook: a disabled endpoint says so above the page.
    setBanner('endpoint-disabled', ep.status === 'disabled' ? {
      tone: 'warn',
      text: 'This endpoint is disabled' + (ep.disabled_reason ? ' (' + ep.disabled_reason + ')' : '') +
        ': its deliveries are held, not dropped, until you enable it.',
      link: tab === 'settings' ? null : { href: base + '/settings', label: 'Enable it in Settings' },
    } : null);
  }
  drawHead();

  async function reloadEndpoint() {
    const fresh = await api('GET', '/v1/endpoints/' + encodeURIComponent(epId));
    if (!ctx.alive()) return;
    if (JSON.stringify(fresh) !== JSON.stringify(ep)) {
      ep = fresh;
      drawHead();
    }
  }

  // The tabs that are whole views elsewhere run here with the endpoint fixed.
  const sub = { ...ctx, root: body, embedded: true, endpoint: ep };
  let inner = null;
  if (tab === 'deliveries') inner = await deliveries.list(sub);
  else if (tab === 'charts') inner = await charts.render(sub);
  else if (tab === 'test') inner = await testView.render(sub);
  else if (tab === 'settings') inner = settings(sub, () => ep, reloadEndpoint);
  else inner = await overview(sub, () => ep);
  return {
    async refresh() {
      await reloadEndpoint().catch(() => {});
      if (inner && inner.refresh) await inner.refresh();
    },
    destroy() {
      setBanner('endpoint-disabled', null);
      if (inner && inner.destroy) inner.destroy();
    },
  };
}

// --- overview: health and the latest deliveries ---

async function overview(ctx, getEp) {
  const root = ctx.root;
  const tiles = h('div', { class: 'tiles', id: 'ep-health' });
  const recent = h('div', { id: 'ep-recent' });
  const err = h('div', {});
  const enc = encodeURIComponent(getEp().id);
  root.append(
    h('section', { 'aria-labelledby': 'h-health' }, h('h2', { id: 'h-health', text: 'Health, last 24 hours' }),
      err, tiles,
      h('p', { class: 'help' }, 'Success rate: of the deliveries created in the last 24 hours that ended, the share delivered ' +
        '(delivered ÷ (delivered + failed)). Deliveries still pending or held are not counted yet. ' +
        'Latency is per attempt.')),
    h('section', { 'aria-labelledby': 'h-recent' },
      h('div', { class: 'card-head' }, h('h2', { id: 'h-recent', text: 'Latest deliveries' }),
        h('a', { href: '/endpoints/' + enc + '/deliveries', 'data-nav': true }, 'All deliveries of this endpoint')),
      recent));
  let drawn = '';
  async function load() {
    let st;
    let page;
    try {
      [st, page] = await Promise.all([
        api('GET', '/v1/endpoints/' + enc + '/stats'),
        api('GET', '/v1/deliveries' + qs({ endpoint_id: getEp().id, limit: 5 })),
      ]);
    } catch (e) {
      if (ctx.alive()) clear(err).appendChild(errorBox(e));
      return;
    }
    if (!ctx.alive()) return;
    clear(err);
    const sig = JSON.stringify([st, page, getEp().status]);
    if (sig === drawn) return;
    drawn = sig;
    const w = statsWindow(st, '24h');
    const s = w ? successOf(w) : { rate: null, delivered: 0, ended: 0, total: 0 };
    const by = (w && w.by_status) || {};
    const tile = (label, value, cls) => h('div', { class: 'tile ' + (cls || '') },
      h('span', { class: 'tile-label', text: label }), h('strong', { text: value }));
    clear(tiles).append(
      tile('Success rate (deliveries)', s.rate === null ? '—' : rateText(s), 'rate'),
      tile('Delivered', String(by.delivered || 0), 'ok'),
      tile('Failed', String(by.failed || 0), 'bad'),
      tile('In progress', String((by.pending || 0) + (by.delivering || 0))),
      tile('Held', String(by.held || 0)),
      tile('Attempts', w && w.attempts !== null ? String(w.attempts) : '0'),
      tile('p95 latency (attempts)', w ? fmtMs(w.p95) : '—'));
    const data = page && Array.isArray(page.data) ? page.data : [];
    clear(recent);
    if (data.length === 0) {
      recent.appendChild(h('p', { class: 'card empty' }, 'No delivery yet. ',
        h('a', { href: '/endpoints/' + enc + '/test', 'data-nav': true }, 'Send a test event'), ' to see one here.'));
      return;
    }
    recent.appendChild(h('ul', { class: 'recent' }, data.map((d) => h('li', { 'data-delivery': d.id },
      h('a', { href: '/deliveries/' + encodeURIComponent(d.id), 'data-nav': true }, h('code', { text: d.event })),
      ' ', stateBadge(d), ' ', timeEl(d.created_at)))));
  }
  await load();
  return { refresh: load };
}

// --- settings: events, secret, enable/disable, replay, delete ---

function settings(ctx, getEp, reload) {
  const root = ctx.root;
  const ep = () => getEp();
  const path = () => '/v1/endpoints/' + encodeURIComponent(ep().id);
  const errEl = h('div', { class: 'card-error' });

  // Subscription and description: edited on the form.
  const typesEl = h('div', { class: 'ep-types' });
  function drawTypes() {
    const types = endpointTypes(ep());
    clear(typesEl).appendChild(h('span', { class: 'label', text: 'Events' }));
    if (types.length === 0) typesEl.appendChild(h('span', { class: 'chip' }, 'all event types'));
    for (const t of types) typesEl.appendChild(h('span', { class: 'chip' }, t));
  }
  drawTypes();

  // The signing secret: hidden until revealed.
  const secretValue = h('code', { class: 'secret', 'aria-label': 'signing secret, hidden', text: 'whsec_••••••••••••••••' });
  let secret = null;
  const reveal = h('button', { type: 'button', class: 'small', 'aria-pressed': 'false' }, 'Reveal');
  const prevNote = h('p', { class: 'help prev-secret', hidden: true });
  function showPrevious(r) {
    const prev = r && r.previous;
    prevNote.hidden = !(prev && prev.expires_at);
    prevNote.textContent = prevNote.hidden ? ''
      : 'The previous secret also signs webhook-signature until ' + fmtTime(prev.expires_at) + '.';
  }
  async function fetchSecret() {
    const r = await api('GET', path() + '/secret');
    showPrevious(r);
    return (r && (r.secret || r.current)) || '';
  }
  function showSecret(v) {
    secret = v;
    secretValue.textContent = v === null ? 'whsec_••••••••••••••••' : v;
    secretValue.setAttribute('aria-label', v === null ? 'signing secret, hidden' : 'signing secret');
    reveal.textContent = v === null ? 'Reveal' : 'Hide';
    reveal.setAttribute('aria-pressed', v === null ? 'false' : 'true');
  }
  reveal.addEventListener('click', async () => {
    clear(errEl);
    if (secret !== null) { showSecret(null); return; }
    try { showSecret(await fetchSecret()); } catch (e) { errEl.appendChild(errorBox(e)); }
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
      const r = await api('POST', path() + '/secret/rotate', { grace_seconds: Number(sel.value) });
      if (r && r.secret) showPrevious(r);
      showSecret((r && (r.secret || r.current)) || await fetchSecret());
      toast('Secret rotated');
      announce('Secret rotated; the new secret is shown');
    } catch (e) {
      errEl.appendChild(errorBox(e));
    }
  });

  // Enable (resume or skip the held deliveries) or disable.
  const toggle = h('button', { type: 'button' });
  function drawToggle() {
    toggle.textContent = ep().status === 'disabled' ? 'Enable…' : 'Disable…';
    toggle.className = ep().status === 'disabled' ? 'primary' : '';
  }
  drawToggle();
  toggle.addEventListener('click', async () => {
    clear(errEl);
    try {
      if (ep().status === 'disabled') {
        const held = heldCount(ep());
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
        await api('POST', path() + '/enable', { skip_held: skip });
        toast('Endpoint enabled');
        announce('Endpoint enabled' + (held > 0 ? (skip ? ', held deliveries skipped' : ', held deliveries resumed') : ''));
      } else {
        const ok = await confirm('Disable this endpoint?',
          'While it is disabled, its deliveries are held (never dropped) until you enable it again.',
          'Disable', true);
        if (!ok) return;
        await api('POST', path() + '/disable', {});
        toast('Endpoint disabled');
        announce('Endpoint disabled');
      }
      await reload();
      drawToggle();
    } catch (e) {
      errEl.appendChild(errorBox(e));
    }
  });

  const del = h('button', { type: 'button', class: 'danger' }, 'Delete…');
  del.addEventListener('click', async () => {
    clear(errEl);
    const ok = await confirm('Delete this endpoint?',
      'Delete ' + ep().url + '? Its pending and held deliveries end as failed. This cannot be undone.',
      'Delete endpoint', true);
    if (!ok) return;
    try {
      await api('DELETE', path());
      toast('Endpoint deleted');
      ctx.navigate('/endpoints');
    } catch (e) {
      errEl.appendChild(errorBox(e));
    }
  });

  const enc = encodeURIComponent(ep().id);
  root.append(
    errEl,
    h('section', { class: 'card', 'aria-labelledby': 'h-sub' },
      h('div', { class: 'card-head' }, h('h2', { id: 'h-sub', text: 'Subscription' }),
        h('a', { href: '/endpoints/' + enc + '/edit', class: 'button', 'data-nav': true }, 'Edit URL and events')),
      typesEl),
    h('section', { class: 'card', 'aria-labelledby': 'h-secret' },
      h('h2', { id: 'h-secret', text: 'Signing secret' }),
      h('div', { class: 'secret-row' }, secretValue, reveal, copy, rotate), prevNote),
    h('section', { class: 'card', 'aria-labelledby': 'h-state' },
      h('h2', { id: 'h-state', text: 'Delivering' }),
      h('p', { class: 'help', text: 'A disabled endpoint holds its deliveries; enabling it resumes or skips them.' }),
      h('div', { class: 'actions' }, toggle)),
    replayPanel(ctx, ep),
    h('section', { class: 'card danger-zone', 'aria-labelledby': 'h-del' },
      h('h2', { id: 'h-del', text: 'Delete' }),
      h('div', { class: 'actions' }, del)));
  return { refresh: async () => { drawTypes(); drawToggle(); } };
}

function localInputValue(date) {
  return date.getFullYear() + '-' + pad(date.getMonth() + 1) + '-' + pad(date.getDate()) + 'T' +
    pad(date.getHours()) + ':' + pad(date.getMinutes());
}

// What a replay with body would take, counted by the server (a dry run:
// nothing changes). {n, ids}.
async function replayPreview(epId, body) {
  const r = await api('POST', '/v1/endpoints/' + encodeURIComponent(epId) + '/replay',
    Object.assign({ dry_run: true }, body));
  return { n: r && typeof r.would_replay === 'number' ? r.would_replay : 0, ids: (r && r.ids) || [] };
}

// Replay: choose a start time and which outcomes, see how many that is, confirm.
function replayPanel(ctx, ep) {
  const sinceId = id('since');
  const since = h('input', { type: 'datetime-local', id: sinceId, required: true });
  since.value = localInputValue(new Date(Date.now() - 3600 * 1000));
  const stId = id('rst');
  const st = h('select', { id: stId },
    h('option', { value: 'failed' }, 'Failed ones'),
    h('option', { value: '' }, 'Delivered and failed ones'));
  const out = h('div', { 'aria-live': 'polite', id: 'replay-out' });
  const go = h('button', { type: 'submit', class: 'primary' }, 'Replay…');
  const form = h('form', { class: 'form', id: 'replay-form' },
    h('p', { class: 'help', text: 'Deliver again the deliveries of this endpoint created since a time of your choosing, for example after fixing a receiver. You see how many first, and confirm.' }),
    h('div', { class: 'row' },
      h('div', { class: 'field' }, h('label', { for: sinceId, text: 'Created since (' + zoneName() + ')' }), since),
      h('div', { class: 'field' }, h('label', { for: stId, text: 'Deliveries to replay' }), st)),
    out, h('div', { class: 'actions' }, go));
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    clear(out);
    const t = new Date(since.value);
    if (Number.isNaN(t.getTime())) {
      out.appendChild(h('p', { class: 'field-error', text: 'Enter a date and time.' }));
      since.focus();
      return;
    }
    go.disabled = true;
    try {
      const body = { since: t.toISOString() };
      if (st.value) body.status = st.value;
      const c = await replayPreview(ep().id, body);
      if (c.n === 0) {
        out.appendChild(h('p', { class: 'ok', text: 'Nothing to replay: no ' + (st.value ? 'failed ' : 'ended ') +
          'delivery of this endpoint was created since ' + fmtTime(t) + '.' }));
        return;
      }
      const what = c.n + ' ' + (c.n === 1 ? 'delivery' : 'deliveries');
      const ok = await confirm('Replay ' + what + '?',
        'Deliver again ' + what + ' (' + (st.value ? 'failed' : 'delivered and failed') + ') of ' + ep().url +
        ' created since ' + fmtTime(t) + '. Each is sent again with fresh signatures and a new round of retries.',
        'Replay ' + what, false);
      if (!ok) {
        out.appendChild(h('p', { class: 'muted', text: 'Replay cancelled; nothing was sent.' }));
        return;
      }
      const r = await api('POST', '/v1/endpoints/' + encodeURIComponent(ep().id) + '/replay', body);
      const n = r && typeof r.replayed === 'number' ? r.replayed : null;
      const msg = n === null ? 'Replay started.' : 'Replaying ' + n + (n === 1 ? ' delivery.' : ' deliveries.');
      out.appendChild(h('p', { class: 'ok', text: msg }));
      toast(msg);
    } catch (e) {
      out.appendChild(errorBox(e));
    } finally {
      go.disabled = false;
    }
  });
  return h('section', { class: 'card replay', 'aria-labelledby': 'h-replay' },
    h('h2', { id: 'h-replay', text: 'Replay deliveries' }), form);
}
