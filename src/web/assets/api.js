// The REST API of CONTRACT §4, and the session (key and account) it is
// called with. The key lives in sessionStorage only: never a cookie, never a
// URL, gone when the tab closes.

const KEY = 'fluxhook.key';
const ACCOUNT = 'fluxhook.account';
const PORTAL = 'fluxhook.portal';

export const session = {
  key() { return sessionStorage.getItem(KEY) || ''; },
  account() { return sessionStorage.getItem(ACCOUNT) || ''; },
  signIn(key) {
    sessionStorage.setItem(KEY, key);
    sessionStorage.removeItem(ACCOUNT);
    sessionStorage.removeItem(PORTAL);
  },
  setAccount(id) {
    if (id) sessionStorage.setItem(ACCOUNT, id); else sessionStorage.removeItem(ACCOUNT);
  },
  signOut() {
    sessionStorage.removeItem(KEY);
    sessionStorage.removeItem(ACCOUNT);
    sessionStorage.removeItem(PORTAL);
  },
  // A portal session ({account_id, scopes, expires_at}), or null for a key.
  portal() {
    try { return JSON.parse(sessionStorage.getItem(PORTAL) || 'null'); } catch (e) { return null; }
  },
  // Whether the session may use scope (a key may try anything; the server decides).
  allows(scope) {
    const p = session.portal();
    return !p || (Array.isArray(p.scopes) && p.scopes.includes(scope));
  },
};

// An answer other than 2xx, in the server's words.
export class ApiError extends Error {
  constructor(status, type, message, fields) {
    super(message);
    this.status = status;
    this.type = type;
    this.fields = Array.isArray(fields) ? fields : [];
  }
}

let onUnauthorized = null;
export function setUnauthorizedHandler(fn) { onUnauthorized = fn; }

// Calls the API. Returns the parsed JSON body (or null for an empty one);
// throws ApiError carrying the server's message for anything else.
export async function api(method, path, body, opts = {}) {
  const headers = { Accept: 'application/json' };
  const key = opts.key !== undefined ? opts.key : session.key();
  if (key) headers.Authorization = 'Bearer ' + key;
  const account = opts.account !== undefined ? opts.account : session.account();
  if (account) headers['X-Workflux-Account'] = account;
  let payload;
  if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    payload = JSON.stringify(body);
  }
  let res;
  try {
    res = await fetch(path, { method, headers, body: payload, cache: 'no-store',
                              credentials: 'omit', referrerPolicy: 'no-referrer' });
  } catch (e) {
    throw new ApiError(0, 'network', 'Cannot reach the fluxhook server (' + e.message + '). Is it still running?');
  }
  const text = await res.text();
  let json = null;
  if (text) {
    try { json = JSON.parse(text); } catch (e) { json = null; }
  }
  if (res.ok) return json;
  const err = json && json.error ? json.error : null;
  const message = err && err.message ? err.message
    : (res.status + ' ' + (res.statusText || 'error') + (text && !json ? ': ' + text.slice(0, 200) : ''));
  const e = new ApiError(res.status, err && err.type ? err.type : 'http_' + res.status, message,
                         err && err.fields);
  if (res.status === 401 && onUnauthorized && !opts.noAuthHandler) onUnauthorized(e);
  throw e;
}

export function qs(params) {
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v !== undefined && v !== null && v !== '') p.set(k, String(v));
  }
  const s = p.toString();
  return s ? '?' + s : '';
}

// Every page of a list (bounded), for small collections such as endpoints.
export async function listAll(path, params = {}, maxPages = 20) {
  let out = [];
  let after = '';
  for (let i = 0; i < maxPages; i++) {
    const page = await api('GET', path + qs({ ...params, limit: 100, after }));
    const data = page && Array.isArray(page.data) ? page.data : [];
    out = out.concat(data);
    if (!page || !page.next) break;
    after = page.next;
  }
  return out;
}

// --- shapes that the dashboard reads defensively ---

export function typeName(t) {
  return typeof t === 'string' ? t : (t.name || t.event || t.type || t.id || '');
}

function constraintText(c) {
  if (!c) return '';
  if (typeof c === 'string') return c;
  const parts = [];
  if (Array.isArray(c.values)) parts.push('one of: ' + c.values.join(', '));
  if (c.min !== undefined && c.max !== undefined) parts.push('from ' + c.min + ' to ' + c.max);
  else if (c.min !== undefined) parts.push('at least ' + c.min);
  else if (c.max !== undefined) parts.push('at most ' + c.max);
  if (c.nullable) parts.push('may be null');
  for (const [k, v] of Object.entries(c)) {
    if (!['values', 'min', 'max', 'nullable'].includes(k)) parts.push(k + ': ' + (typeof v === 'string' ? v : JSON.stringify(v)));
  }
  return parts.join('; ');
}

// The fields of a catalog entry as [{name, type, required, note}].
export function typeFields(t) {
  const f = t && t.fields;
  const norm = (x, req) => typeof x === 'string'
    ? { name: x, type: '', required: req, note: '' }
    : { name: x.name || x.path || x.field || '', type: x.type || '',
        required: x.required !== undefined ? !!x.required : req,
        // The type text already spells out ranges and choices; say them only when it is bare.
        note: x.description || x.note || (x.type ? '' : constraintText(x.constraint || x.constraints)) };
  if (Array.isArray(f)) return f.map((x) => norm(x, false));
  if (f && typeof f === 'object') {
    const out = [];
    if (Array.isArray(f.required) || Array.isArray(f.optional)) {
      (f.required || []).forEach((x) => out.push(norm(x, true)));
      (f.optional || []).forEach((x) => out.push(norm(x, false)));
      return out;
    }
    for (const [name, v] of Object.entries(f)) {
      if (typeof v === 'string') out.push({ name, type: v, required: false, note: '' });
      else out.push({ ...norm(v, false), name });
    }
    return out;
  }
  return [];
}

export function typeSample(t) {
  if (!t) return null;
  return t.sample !== undefined ? t.sample : (t.example !== undefined ? t.example : null);
}

// Endpoint event_types as an array ([] means every type).
export function endpointTypes(ep) {
  const v = ep.event_types;
  if (Array.isArray(v)) return v;
  if (typeof v === 'string' && v) return v.split(',');
  return [];
}

export function heldCount(ep) {
  const v = ep.held !== undefined ? ep.held : (ep.held_count !== undefined ? ep.held_count : ep.held_deliveries);
  return typeof v === 'number' ? v : 0;
}

// One window ("1h" or "24h") of a stats answer, normalised to
// {success_rate (0..1 or null), p50, p95, p99, attempts, by_status{}}.
export function statsWindow(stats, win) {
  if (!stats) return null;
  const names = win === '1h' ? ['hour', 'last_hour', '1h', 'last_1h']
    : ['day', 'last_day', '24h', 'last_24h'];
  let w = null;
  for (const n of names) {
    if (stats[n]) { w = stats[n]; break; }
    if (stats.windows && stats.windows[n]) { w = stats.windows[n]; break; }
  }
  if (!w) return null;
  const lat = w.latency_ms || w.latency || {};
  const pick = (...xs) => { for (const x of xs) if (typeof x === 'number') return x; return null; };
  let rate = pick(w.success_rate, w.successRate);
  if (rate !== null && rate > 1) rate = rate / 100;
  const by = w.by_status || w.counts || w.deliveries || {};
  const p = (v) => (v === null || v < 0 ? null : v);
  return {
    success_rate: rate,
    p50: p(pick(w.p50_ms, lat.p50, lat.p50_ms)),
    p95: p(pick(w.p95_ms, lat.p95, lat.p95_ms)),
    p99: p(pick(w.p99_ms, lat.p99, lat.p99_ms)),
    attempts: pick(w.attempts, w.attempts_total),
    by_status: typeof by === 'object' ? by : {},
  };
}

export const DELIVERY_STATUSES = ['pending', 'delivering', 'delivered', 'failed', 'held'];
export const FINAL = new Set(['delivered', 'failed']);

// --- portal links ---

// The pages a portal session sees only with these scopes.
const PORTAL_PAGES = {
  '/endpoints': 'endpoints:read', '/test': 'endpoints:write', '/deliveries': 'deliveries:read',
  '/charts': 'deliveries:read', '/catalog': 'events:read',
};

// Hides the navigation to pages the portal session's scopes do not allow.
function portalTrimNav() {
  for (const [href, scope] of Object.entries(PORTAL_PAGES)) {
    if (session.allows(scope)) continue;
    for (const a of document.querySelectorAll('header nav a[href="' + href + '"]')) {
      (a.closest('li') || a).hidden = true;
    }
  }
}

// A portal link (/#portal=fhl_...) signs in as a portal session: its one-time
// token leaves the address bar at once and is exchanged for a session limited
// to one account and some scopes; only that session is kept, in this tab.
async function portalSignIn() {
  const m = /^#portal=(fhl_[A-Za-z0-9_-]+)$/.exec(location.hash);
  if (!m) return;
  history.replaceState(null, '', location.pathname + location.search);
  session.signOut();
  let message = '';
  try {
    const res = await fetch('/v1/portal-sessions', {
      method: 'POST', headers: { 'Content-Type': 'application/json', Accept: 'application/json' },
      body: JSON.stringify({ token: m[1] }), cache: 'no-store', credentials: 'omit',
      referrerPolicy: 'no-referrer' });
    const json = await res.json().catch(() => null);
    if (res.ok && json && json.access_token) {
      sessionStorage.setItem(KEY, json.access_token);
      sessionStorage.setItem(ACCOUNT, json.account_id);
      sessionStorage.setItem(PORTAL, JSON.stringify({
        account_id: json.account_id, scopes: json.scopes, expires_at: json.expires_at }));
      return;
    }
    message = json && json.error && json.error.message ? json.error.message : 'status ' + res.status;
  } catch (e) {
    message = e.message;
  }
  const box = document.createElement('p');
  box.className = 'error';
  box.setAttribute('role', 'alert');
  box.id = 'portal-error';
  box.textContent = 'This portal link did not sign you in: ' + message;
  document.body.prepend(box);
}

await portalSignIn();
portalTrimNav();
