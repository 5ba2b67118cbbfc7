// The dashboard's shell: sign-in, the account switcher, the router, and the
// polling that keeps the open view live (every ~2 s while the tab is visible).

import { api, session, setUnauthorizedHandler, ApiError } from './api.js';
import { h, clear, errorBox, announce, id } from './ui.js';
import * as endpoints from './view_endpoints.js';
import * as endpoint from './view_endpoint.js';
import * as testView from './view_test.js';
import * as deliveries from './view_deliveries.js';
import * as charts from './view_charts.js';
import * as catalog from './view_catalog.js';
import * as receiving from './view_receiving.js';
import * as audit from './view_audit.js';
import * as operational from './view_operational.js';
import { refreshDisabled, clearBanners } from './banners.js';

const POLL_MS = 2000;

const routes = [
  { re: /^\/(?:endpoints)?$/, view: endpoints.list, title: 'Endpoints', nav: '/endpoints' },
  { re: /^\/endpoints\/new$/, view: endpoints.form, title: 'New endpoint', nav: '/endpoints' },
  { re: /^\/endpoints\/([^/]+)\/edit$/, view: endpoints.form, title: 'Edit endpoint', nav: '/endpoints' },
  { re: /^\/endpoints\/([^/]+)(?:\/(deliveries|charts|test|settings))?$/, view: endpoint.page, title: 'Endpoint', nav: '/endpoints' },
  { re: /^\/test$/, view: testView.render, title: 'Test', nav: '/test' },
  { re: /^\/deliveries$/, view: deliveries.list, title: 'Deliveries', nav: '/deliveries' },
  { re: /^\/deliveries\/([^/]+)$/, view: deliveries.detail, title: 'Delivery', nav: '/deliveries' },
  { re: /^\/charts$/, view: charts.render, title: 'Charts', nav: '/charts' },
  { re: /^\/catalog$/, view: catalog.render, title: 'Event catalog', nav: '/catalog' },
  { re: /^\/receiving$/, view: receiving.render, title: 'Receiving deliveries', nav: '/receiving' },
  { re: /^\/audit$/, view: audit.render, title: 'Audit log', nav: '/audit' },
  { re: /^\/operational$/, view: operational.render, title: 'Operational webhooks', nav: '/operational' },
];

const state = {
  current: null,    // the open view's handle {refresh, destroy}
  polling: false,   // a refresh is under way
  admin: false,
  accounts: [],
  cache: {},        // per account: event types
  renderSeq: 0,
};

const main = () => document.getElementById('main');

export function navigate(path, opts = {}) {
  if (opts.replace) history.replaceState(null, '', path);
  else history.pushState(null, '', path);
  route(true);
}

// What views get: where to draw, the route's parameters, helpers.
function context(root, params, seq) {
  return {
    root,
    params,
    query: new URLSearchParams(location.search),
    navigate,
    setQuery(q) {
      const s = q.toString();
      history.replaceState(null, '', location.pathname + (s ? '?' + s : ''));
    },
    alive: () => seq === state.renderSeq,
    cache: cacheFor(session.account()),
  };
}

function cacheFor(account) {
  const k = account || '-';
  if (!state.cache[k]) state.cache[k] = {};
  return state.cache[k];
}

async function route(moveFocus) {
  const root = main();
  if (state.current && state.current.destroy) state.current.destroy();
  state.current = null;
  state.renderSeq += 1;
  const seq = state.renderSeq;
  if (!session.key()) {
    showSignIn();
    return;
  }
  document.getElementById('top').hidden = false;
  setMenu(false);
  refreshDisabled(api);
  const path = location.pathname;
  let match = null;
  let r = null;
  for (const x of routes) {
    match = path.match(x.re);
    if (match) { r = x; break; }
  }
  for (const a of document.querySelectorAll('nav a')) {
    if (r && a.getAttribute('href') === r.nav) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  clear(root);
  if (!r) {
    document.title = 'Not found · fluxhook';
    root.appendChild(h('h1', { tabindex: '-1', text: 'Page not found' }));
    root.appendChild(h('p', {}, 'There is no dashboard page at ', h('code', { text: path }), '. ',
      h('a', { href: '/endpoints', 'data-nav': true }, 'Go to the endpoints')));
    focusHeading(root, moveFocus);
    return;
  }
  document.title = r.title + ' · fluxhook';
  try {
    const handle = await r.view(context(root, match.slice(1).map(decodeURIComponent), seq));
    if (seq !== state.renderSeq) {
      if (handle && handle.destroy) handle.destroy();
      return;
    }
    state.current = handle || null;
  } catch (e) {
    if (seq !== state.renderSeq) return;
    clear(root);
    root.appendChild(h('h1', { tabindex: '-1', text: r.title }));
    root.appendChild(errorBox(e, () => route(true)));
  }
  focusHeading(root, moveFocus);
}

function focusHeading(root, moveFocus) {
  if (!moveFocus) return;
  const h1 = root.querySelector('h1');
  if (h1) {
    h1.setAttribute('tabindex', '-1');
    h1.focus();
  }
}

async function poll() {
  if (!document.hidden && session.key()) refreshDisabled(api);
  if (document.hidden || state.polling || !state.current || !state.current.refresh) return;
  state.polling = true;
  const seq = state.renderSeq;
  try {
    await state.current.refresh();
  } catch (e) {
    // Views show their own errors; this only keeps a failed poll from escaping.
    if (seq === state.renderSeq && !(e instanceof ApiError)) console.error(e);
  } finally {
    state.polling = false;
  }
}

function showSignIn(message) {
  document.getElementById('top').hidden = true;
  document.title = 'Sign in · fluxhook';
  const root = clear(main());
  const keyId = id('key');
  const errId = id('err');
  const input = h('input', { id: keyId, name: 'key', type: 'password', autocomplete: 'off',
    spellcheck: 'false', required: true, 'aria-describedby': keyId + '-help ' + errId });
  const err = h('div', { id: errId, class: 'field-error', role: 'alert' });
  if (message) err.textContent = message;
  const button = h('button', { type: 'submit', class: 'primary' }, 'Sign in');
  const form = h('form', { class: 'signin card', novalidate: true },
    h('h1', { text: 'Sign in to fluxhook' }),
    h('p', {}, 'fluxhook delivers your WorkFlux events to your own HTTPS endpoints, signed, with retries. ' +
      'Sign in with an API key to configure endpoints, send test events and watch every delivery.'),
    h('div', { class: 'field' },
      h('label', { for: keyId, text: 'API key' }), input,
      h('p', { id: keyId + '-help', class: 'help' },
        'On its first start fluxhook creates the account acct_default and an admin key: ' +
        '$FLUXHOOK_ROOT_KEY when that is set, else a new key that it prints once and writes to ' +
        'root.key beside the database (var/root.key after make run). ' +
        'The key stays in this browser tab only and is forgotten when you close it.'),
      err),
    button);
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const key = input.value.trim();
    err.textContent = '';
    if (!key) {
      err.textContent = 'Enter an API key.';
      input.focus();
      return;
    }
    button.disabled = true;
    button.textContent = 'Signing in…';
    try {
      await api('GET', '/v1/endpoints?limit=1', undefined, { key, account: '', noAuthHandler: true });
      session.signIn(key);
      await loadAccounts();
      if (location.pathname === '/' || location.pathname === '/signin') history.replaceState(null, '', '/endpoints');
      announce('Signed in');
      route(true);
    } catch (e) {
      err.textContent = e.status === 401
        ? 'The server refused this key: ' + e.message
        : 'Could not sign in: ' + e.message;
      input.focus();
    } finally {
      button.disabled = false;
      button.textContent = 'Sign in';
    }
  });
  root.appendChild(form);
  input.focus();
}

// Admin keys may list accounts and act for any of them.
async function loadAccounts() {
  state.admin = false;
  state.accounts = [];
  try {
    const page = await api('GET', '/v1/accounts?limit=100', undefined, { account: '', noAuthHandler: true });
    state.admin = true;
    state.accounts = page && Array.isArray(page.data) ? page.data : [];
  } catch (e) {
    state.admin = false;
  }
  drawAccountBox();
}

function drawAccountBox() {
  const box = clear(document.getElementById('account-box'));
  if (!state.admin || state.accounts.length === 0) {
    box.appendChild(h('span', { class: 'muted', text: session.account() || '' }));
    return;
  }
  const sid = id('acct');
  const sel = h('select', { id: sid });
  const current = session.account();
  sel.appendChild(h('option', { value: '' }, "This key's own account"));
  for (const a of state.accounts) {
    const opt = h('option', { value: a.id }, a.name ? a.name + ' (' + a.id + ')' : a.id);
    if (a.id === current) opt.selected = true;
    sel.appendChild(opt);
  }
  sel.addEventListener('change', () => {
    session.setAccount(sel.value);
    announce('Acting for account ' + (sel.value || 'of this key'));
    route(false);
  });
  box.appendChild(h('label', { for: sid, text: 'Account' }));
  box.appendChild(sel);
}

function onClick(ev) {
  if (ev.defaultPrevented || ev.button !== 0 || ev.metaKey || ev.ctrlKey || ev.shiftKey || ev.altKey) return;
  const a = ev.target.closest('a');
  if (!a || a.target || a.hasAttribute('download')) return;
  const href = a.getAttribute('href');
  if (!href || !href.startsWith('/') || href.startsWith('//') || href.startsWith('/v1/') ||
      href === '/openapi.json' || href === '/metrics' || href === '/healthz') return;
  ev.preventDefault();
  if (href !== location.pathname + location.search) navigate(href);
  else route(true);
}

// Below 700 px the main navigation folds behind a Menu button.
function setMenu(open) {
  const btn = document.getElementById('menu');
  if (!btn) return;
  btn.setAttribute('aria-expanded', open ? 'true' : 'false');
  document.getElementById('top').classList.toggle('menu-open', open);
}

function start() {
  document.getElementById('menu').addEventListener('click', (ev) => {
    setMenu(ev.currentTarget.getAttribute('aria-expanded') !== 'true');
  });
  setUnauthorizedHandler((e) => {
    session.signOut();
    showSignIn('Your key is no longer accepted: ' + e.message);
  });
  document.addEventListener('click', onClick);
  window.addEventListener('popstate', () => route(true));
  document.getElementById('sign-out').addEventListener('click', () => {
    session.signOut();
    clearBanners('disabled:');
    state.cache = {};
    history.replaceState(null, '', '/');
    announce('Signed out');
    route(true);
  });
  document.addEventListener('visibilitychange', () => { if (!document.hidden) poll(); });
  window.addEventListener('unhandledrejection', (ev) => showFatal(ev.reason));
  window.addEventListener('error', (ev) => showFatal(ev.error || ev.message));
  setInterval(poll, POLL_MS);
  const boot = document.getElementById('boot');
  if (boot) boot.remove();
  if (session.key()) {
    // The account switcher fills in beside the first view, not before it.
    loadAccounts();
    route(false);
  } else {
    route(false);
  }
}

// Never a blank page: anything unexpected shows up as a message.
function showFatal(err) {
  const root = main();
  if (!root || root.querySelector('.fatal')) return;
  const box = errorBox(err instanceof Error ? err : new Error(String(err)));
  box.classList.add('fatal');
  root.prepend(box);
}

start();
