// The audit log: who changed what, and when (GET /v1/audit-log), newest
// first, filterable by action and object, paginated and live.

import { api, qs } from './api.js';
import { h, clear, errorBox, timeEl, selectField } from './ui.js';

const PAGE = 25;

// The actions the API records, in words.
const ACTIONS = {
  'endpoint.created': 'Endpoint created',
  'endpoint.updated': 'Endpoint changed',
  'endpoint.deleted': 'Endpoint deleted',
  'endpoint.enabled': 'Endpoint enabled',
  'endpoint.disabled': 'Endpoint disabled',
  'endpoint.secret_revealed': 'Secret revealed',
  'endpoint.secret_rotated': 'Secret rotated',
  'endpoint.replayed': 'Deliveries replayed',
  'delivery.retried': 'Delivery retried',
  'account.created': 'Account created',
  'api_key.created': 'API key created',
  'api_key.rotated': 'API key rotated',
  'api_key.deleted': 'API key deleted',
  'oauth_client.created': 'OAuth client created',
  'oauth_client.deleted': 'OAuth client deleted',
  'portal_link.issued': 'Portal link issued',
};

// The changed fields as "name: value" pairs (details never hold secrets).
function detailsText(d) {
  if (!d || typeof d !== 'object') return '—';
  const parts = Object.entries(d).map(([k, v]) =>
    k + ': ' + (v === null ? '—' : typeof v === 'object' ? JSON.stringify(v) : String(v)));
  return parts.length ? parts.join(', ') : '—';
}

export async function render(ctx) {
  const root = ctx.root;
  const q = ctx.query;
  const filter = { action: q.get('action') || '', target: q.get('target') || '' };
  let cursors = [''];
  let next = null;
  let shown = '';

  const acOpts = [{ value: '', label: 'Any change' }].concat(
    Object.entries(ACTIONS).map(([value, label]) => ({ value, label })));
  const setFilter = (k, v) => {
    filter[k] = v;
    const p = new URLSearchParams();
    for (const [fk, fv] of Object.entries(filter)) if (fv) p.set(fk, fv);
    ctx.setQuery(p);
    cursors = [''];
    load(true);
  };
  const fAc = selectField('Change', acOpts, filter.action, (v) => setFilter('action', v), { id: 'audit-action' });
  const target = h('input', { id: 'audit-target', type: 'search', value: filter.target,
    placeholder: 'ep_…, key_…, dlv_…', autocomplete: 'off' });
  target.addEventListener('change', () => setFilter('target', target.value.trim()));

  const tableWrap = h('div', { class: 'table-wrap', tabindex: '0', role: 'region', 'aria-label': 'Audit log entries' });
  const err = h('div', {});
  const pageInfo = h('span', { class: 'muted', 'aria-live': 'polite' });
  const newer = h('button', { type: 'button' }, '← Newer');
  const older = h('button', { type: 'button' }, 'Older →');
  newer.addEventListener('click', () => { if (cursors.length > 1) { cursors.pop(); load(true); } });
  older.addEventListener('click', () => { if (next) { cursors.push(next); load(true); } });

  root.appendChild(h('div', { class: 'view-head' }, h('h1', { text: 'Audit log' }),
    h('span', { class: 'live muted' }, 'Live: updates every 2 seconds')));
  root.appendChild(h('p', { class: 'help', text: 'Every change made to this account through the API or this dashboard, with the credential that made it. Secrets are never recorded.' }));
  root.appendChild(h('form', { class: 'filters', 'aria-label': 'Filter the audit log', onsubmit: (e) => e.preventDefault() },
    fAc.el, h('div', { class: 'field' }, h('label', { for: 'audit-target', text: 'Object id' }), target)));
  root.appendChild(err);
  root.appendChild(tableWrap);
  root.appendChild(h('div', { class: 'pager' }, newer, pageInfo, older));

  async function load(userAction) {
    let page;
    try {
      page = await api('GET', '/v1/audit-log' + qs({ action: filter.action, target: filter.target,
        limit: PAGE, after: cursors[cursors.length - 1] }));
    } catch (e) {
      if (!ctx.alive()) return;
      clear(err).appendChild(errorBox(e, () => load(true)));
      return;
    }
    if (!ctx.alive()) return;
    clear(err);
    const data = page && Array.isArray(page.data) ? page.data : [];
    next = page ? page.next : null;
    const ids = data.map((e) => e.id).join(',');
    if (!userAction && ids === shown) return;
    shown = ids;
    draw(data);
    newer.disabled = cursors.length <= 1;
    older.disabled = !next;
    pageInfo.textContent = 'Page ' + cursors.length + (data.length ? ' · ' + data.length + ' shown' : '');
  }

  function draw(data) {
    clear(tableWrap);
    if (data.length === 0) {
      tableWrap.appendChild(h('p', { class: 'card empty' }, filter.action || filter.target
        ? 'No change matches these filters.' : 'No changes recorded yet.'));
      return;
    }
    tableWrap.appendChild(h('table', { class: 'audit' },
      h('caption', { class: 'sr-only', text: 'Changes, newest first' }),
      h('thead', {}, h('tr', {}, ['When', 'Change', 'Object', 'By', 'Details']
        .map((c) => h('th', { scope: 'col', text: c })))),
      h('tbody', {}, data.map((e) => h('tr', { 'data-audit': e.id, 'data-action': e.action },
        h('td', {}, timeEl(e.created_at)),
        h('th', { scope: 'row', text: ACTIONS[e.action] || e.action }),
        h('td', {}, e.target ? h('code', { text: e.target }) : '—'),
        h('td', {}, h('code', { text: e.actor })),
        h('td', { class: 'details', text: detailsText(e.details) }))))));
  }

  await load(true);
  return { refresh: () => load(false) };
}
