// Banners above every page: a generic hook for messages that concern the
// whole dashboard (an endpoint disabled, an operational notice). Each banner
// has a key; setting a key again replaces its banner, null removes it.

import { h, clear } from './ui.js';

const shown = new Map(); // key -> element

function region() { return document.getElementById('banners'); }

// Shows (or replaces) the banner key: {tone: 'warn'|'bad'|'info', text, link: {href, label}}.
export function setBanner(key, b) {
  const box = region();
  if (!box) return;
  const old = shown.get(key);
  if (!b) {
    if (old) old.remove();
    shown.delete(key);
    return;
  }
  const el = h('div', { class: 'banner tone-' + (b.tone || 'info'), 'data-banner': key },
    h('span', { text: b.text }),
    b.link ? h('a', { href: b.link.href, 'data-nav': true }, b.link.label) : null);
  if (old) old.replaceWith(el); else box.appendChild(el);
  shown.set(key, el);
}

// Removes every banner whose key starts with prefix ('' for all).
export function clearBanners(prefix = '') {
  for (const k of [...shown.keys()]) if (k.startsWith(prefix)) setBanner(k, null);
  if (!prefix) clear(region() || document.createElement('div'));
}

// The account-wide notice of disabled endpoints: one banner per disabled
// endpoint of the signed-in account, on every page but that endpoint's own
// (which says it itself). Errors (a session without endpoints:read) leave
// the banners as they are.
export async function refreshDisabled(api) {
  let eps;
  try {
    const page = await api('GET', '/v1/endpoints?limit=500');
    eps = page && Array.isArray(page.data) ? page.data : [];
  } catch (e) {
    return;
  }
  const keep = new Set();
  for (const ep of eps) {
    const base = '/endpoints/' + encodeURIComponent(ep.id);
    if (ep.status !== 'disabled' || location.pathname.startsWith(base)) continue;
    keep.add('disabled:' + ep.id);
    setBanner('disabled:' + ep.id, {
      tone: 'warn',
      text: 'Endpoint ' + ep.url + ' is disabled' + (ep.disabled_reason ? ' (' + ep.disabled_reason + ')' : '') +
        ': ' + (ep.held || 0) + ' deliveries held.',
      link: { href: base + '/settings', label: 'Enable it' },
    });
  }
  for (const k of [...shown.keys()]) if (k.startsWith('disabled:') && !keep.has(k)) setBanner(k, null);
}
