// Small DOM helpers. Everything is built with createElement and textContent,
// never innerHTML, so no server string can become markup.

export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') el.className = v;
    else if (k === 'text') el.textContent = v;
    else if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (v === true) el.setAttribute(k, '');
    else el.setAttribute(k, String(v));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c === undefined || c === null || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else if (c instanceof Node) el.appendChild(c);
    else el.appendChild(document.createTextNode(String(c)));
  }
}

// SVG elements for the charts.
export function s(tag, attrs, ...children) {
  const el = document.createElementNS('http://www.w3.org/2000/svg', tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null) continue;
    if (k === 'text') el.textContent = v;
    else el.setAttribute(k, String(v));
  }
  for (const c of children) if (c) el.appendChild(c);
  return el;
}

export function clear(el) { while (el.firstChild) el.removeChild(el.firstChild); return el; }

let uid = 0;
export function id(prefix) { uid += 1; return (prefix || 'f') + '-' + uid; }

// Says msg to screen readers through the page's polite live region.
export function announce(msg) {
  const el = document.getElementById('announce');
  if (!el) return;
  el.textContent = '';
  setTimeout(() => { el.textContent = msg; }, 50);
}

let toastTimer = null;
export function toast(msg) {
  const el = document.getElementById('toast');
  if (!el) return;
  el.textContent = msg;
  el.hidden = false;
  announce(msg);
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => { el.hidden = true; }, 4000);
}

// A box with the server's error message (role=alert so it is read at once).
export function errorBox(err, retry) {
  const status = err && err.status ? ' (HTTP ' + err.status + (err.type ? ', ' + err.type : '') + ')' : '';
  return h('div', { class: 'error', role: 'alert' },
    h('strong', { text: 'Error: ' }), (err && err.message) || String(err), status,
    retry ? h('button', { type: 'button', class: 'small', onclick: retry }, 'Try again') : null,
    err && err.fields && err.fields.length
      ? h('ul', {}, err.fields.map((f) => h('li', {}, h('code', { text: f.path }), ': ', f.problem)))
      : null);
}

export function pad(n) { return String(n).padStart(2, '0'); }

// The browser's time zone as a short name ("CET", "GMT+2"), for labels.
export function zoneName(d = new Date()) {
  try {
    const p = new Intl.DateTimeFormat(undefined, { timeZoneName: 'short' }).formatToParts(d)
      .find((x) => x.type === 'timeZoneName');
    if (p) return p.value;
  } catch (e) { /* below */ }
  const off = -d.getTimezoneOffset();
  return 'UTC' + (off >= 0 ? '+' : '-') + pad(Math.floor(Math.abs(off) / 60)) + ':' + pad(Math.abs(off) % 60);
}

// "2026-11-28 10:31:05 CET" in local time with its zone, or "—".
export function fmtTime(v) {
  if (!v) return '—';
  const d = new Date(v);
  if (Number.isNaN(d.getTime())) return String(v);
  return d.getFullYear() + '-' + pad(d.getMonth() + 1) + '-' + pad(d.getDate()) + ' ' +
    pad(d.getHours()) + ':' + pad(d.getMinutes()) + ':' + pad(d.getSeconds()) + ' ' + zoneName(d);
}

// "2026-11-28 09:31:05.123 UTC": what a hover shows beside the local time.
export function fmtUtc(v) {
  const d = new Date(v);
  if (Number.isNaN(d.getTime())) return String(v);
  return d.toISOString().replace('T', ' ').replace('Z', ' UTC');
}

// A local time with its zone; the UTC time on hover (title) and for machines (datetime).
export function timeEl(v) {
  if (!v) return h('span', { text: '—' });
  return h('time', { datetime: String(v), title: fmtUtc(v) }, fmtTime(v));
}

// "in 8 s", "in 3 min", "now", "5 min ago": a short distance from now.
export function fromNow(v, now = Date.now()) {
  const ms = new Date(v).getTime() - now;
  if (Number.isNaN(ms)) return '';
  const a = Math.abs(ms);
  let t;
  if (a < 1000) return 'now';
  if (a < 60000) t = Math.round(a / 1000) + ' s';
  else if (a < 3600000) t = Math.round(a / 60000) + ' min';
  else if (a < 86400000) t = Math.round(a / 3600000) + ' h';
  else t = Math.round(a / 86400000) + ' d';
  return ms > 0 ? 'in ' + t : t + ' ago';
}

export function fmtMs(v) {
  if (v === null || v === undefined) return '—';
  if (v >= 10000) return (v / 1000).toFixed(1) + ' s';
  return Math.round(v) + ' ms';
}

export function fmtRate(r) {
  if (r === null || r === undefined) return '—';
  return (r * 100).toFixed(r === 1 || r === 0 ? 0 : 1) + '%';
}

const STATUS_LABEL = {
  enabled: 'Enabled', disabled: 'Disabled', pending: 'Pending', delivering: 'Delivering',
  delivered: 'Delivered', failed: 'Failed', held: 'Held',
};

export function badge(status) {
  return h('span', { class: 'badge badge-' + status }, STATUS_LABEL[status] || status);
}

// Copies text, with a fallback for pages that are not a secure context.
export async function copyText(text) {
  try {
    if (navigator.clipboard && window.isSecureContext) {
      await navigator.clipboard.writeText(text);
      return true;
    }
  } catch (e) { /* fall back below */ }
  const ta = h('textarea', { class: 'sr-only', 'aria-hidden': 'true' });
  ta.value = text;
  document.body.appendChild(ta);
  ta.select();
  let ok = false;
  try { ok = document.execCommand('copy'); } catch (e) { ok = false; }
  ta.remove();
  return ok;
}

export function copyButton(getText, label) {
  const b = h('button', { type: 'button', class: 'small' }, label || 'Copy');
  b.addEventListener('click', async () => {
    const ok = await copyText(typeof getText === 'function' ? await getText() : getText);
    const msg = ok ? 'Copied to the clipboard' : 'Could not copy: select the text and copy it by hand';
    toast(msg);
    announce(msg);
  });
  return b;
}

// A modal dialog; resolves with the value of the button pressed, or null.
// body is a node; buttons [{label, value, cls}]. Focus returns to where it was.
export function dialog(title, body, buttons) {
  return new Promise((resolve) => {
    const back = document.activeElement;
    const titleId = id('dlg');
    const dlg = h('dialog', { 'aria-labelledby': titleId, class: 'dialog' });
    const form = h('form', { method: 'dialog' },
      h('h2', { id: titleId, text: title }), body,
      h('div', { class: 'actions' }, buttons.map((b) =>
        h('button', { type: 'submit', value: b.value, class: b.cls || '' }, b.label))));
    dlg.appendChild(form);
    document.body.appendChild(dlg);
    dlg.addEventListener('close', () => {
      const v = dlg.returnValue;
      dlg.remove();
      if (back && back.focus) back.focus();
      resolve(v && v !== 'cancel' ? v : null);
    });
    dlg.showModal();
    const first = form.querySelector('input, select, textarea') ||
      form.querySelector('button:not(.danger):not(.primary)') || form.querySelector('button');
    if (first) first.focus();
  });
}

export function confirm(title, message, okLabel, danger) {
  return dialog(title, h('p', { text: message }), [
    { label: 'Cancel', value: 'cancel' },
    { label: okLabel, value: 'ok', cls: danger ? 'danger' : 'primary' },
  ]).then((v) => v === 'ok');
}

export function prettyJson(v) {
  if (typeof v === 'string') {
    try { return JSON.stringify(JSON.parse(v), null, 2); } catch (e) { return v; }
  }
  return JSON.stringify(v, null, 2);
}

// After a view is drawn: brings the element the URL's #fragment names into
// view and gives it the focus (after the view's heading took it).
export function showHash() {
  if (!location.hash) return;
  const el = document.getElementById(decodeURIComponent(location.hash.slice(1)));
  if (el) setTimeout(() => { el.focus(); el.scrollIntoView(); }, 0);
}

export function codeBlock(text, label) {
  const pre = h('pre', { class: 'code', tabindex: '0', 'aria-label': label || 'code' }, h('code', { text }));
  return pre;
}

// A <select> with a label, for filters and pickers.
export function selectField(label, options, value, onchange, attrs = {}) {
  const fid = attrs.id || id('sel');
  const sel = h('select', { id: fid, name: attrs.name });
  for (const o of options) {
    const opt = h('option', { value: o.value }, o.label);
    if (String(o.value) === String(value)) opt.selected = true;
    sel.appendChild(opt);
  }
  if (onchange) sel.addEventListener('change', () => onchange(sel.value));
  return { el: h('div', { class: 'field' }, h('label', { for: fid, text: label }), sel), select: sel };
}
