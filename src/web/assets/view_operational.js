// Operational webhooks: the account's endpoints that receive fluxhook's own
// events about its other endpoints (/v1/operational-endpoints): list, add
// (its secret shown once here, and on demand), and delete.

import { api, listAll } from './api.js';
import { h, clear, errorBox, badge, copyButton, confirm, toast, announce, id } from './ui.js';
import { ownTypes } from './view_endpoints.js';

const BASE = '/v1/operational-endpoints';

export async function render(ctx) {
  const root = ctx.root;
  const types = await ownTypes(ctx);
  const list = h('div', {});
  const err = h('div', {});
  const secretBox = h('div', { 'aria-live': 'polite' });

  root.appendChild(h('h1', { text: 'Operational webhooks' }));
  root.appendChild(h('p', { class: 'help', text: 'These endpoints receive fluxhook\'s own events about this account\'s endpoints: ' +
    types.map((t) => t.event).join(', ') + '. They are signed and retried like any delivery; events about them are never sent.' }));

  const urlId = id('op-url');
  const descId = id('op-desc');
  const url = h('input', { id: urlId, type: 'url', required: true, placeholder: 'https://example.com/fluxhook-ops', autocomplete: 'off' });
  const desc = h('input', { id: descId, type: 'text', autocomplete: 'off' });
  const boxes = types.map((t) => {
    const cid = id('op-type');
    const cb = h('input', { type: 'checkbox', id: cid, value: t.event });
    return { cb, el: h('div', { class: 'check' }, cb, h('label', { for: cid, text: t.event + ' — ' + t.description })) };
  });
  const form = h('form', { class: 'card', 'aria-label': 'Add an operational endpoint' },
    h('h2', { text: 'Add an operational endpoint' }),
    h('div', { class: 'field' }, h('label', { for: urlId, text: 'URL' }), url),
    h('div', { class: 'field' }, h('label', { for: descId, text: 'Description' }), desc),
    h('fieldset', {}, h('legend', { text: 'Events (none checked: all of them)' }), boxes.map((b) => b.el)),
    h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'primary' }, 'Add')));
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    clear(err);
    try {
      const made = await api('POST', BASE, { url: url.value.trim(), description: desc.value,
        event_types: boxes.filter((b) => b.cb.checked).map((b) => b.cb.value) });
      form.reset();
      clear(secretBox).appendChild(h('div', { class: 'card' },
        h('p', {}, 'Its signing secret: ', h('code', { class: 'secret', text: made.secret }), ' ',
          copyButton(made.secret, 'Copy secret'))));
      announce('Operational endpoint added');
      await load();
    } catch (e) {
      err.appendChild(errorBox(e));
    }
  });
  root.appendChild(form);
  root.appendChild(secretBox);
  root.appendChild(err);
  root.appendChild(list);

  let shown = '';
  async function load(force = true) {
    const eps = await listAll(BASE);
    if (!ctx.alive()) return;
    const key = JSON.stringify(eps);
    if (!force && key === shown) return;
    shown = key;
    clear(list);
    if (eps.length === 0) {
      list.appendChild(h('p', { class: 'card empty', text: 'No operational endpoint yet.' }));
      return;
    }
    list.appendChild(h('table', { class: 'operational' },
      h('caption', { class: 'sr-only', text: 'Operational endpoints' }),
      h('thead', {}, h('tr', {}, ['URL', 'Status', 'Events', 'Description', ''].map((c) => h('th', { scope: 'col', text: c })))),
      h('tbody', {}, eps.map((ep) => {
        const del = h('button', { type: 'button', class: 'small danger' }, 'Delete');
        del.addEventListener('click', async () => {
          if (!await confirm('Delete this operational endpoint?', ep.url, 'Delete', true)) return;
          try {
            await api('DELETE', BASE + '/' + encodeURIComponent(ep.id));
            toast('Deleted');
            await load();
          } catch (e) {
            clear(err).appendChild(errorBox(e));
          }
        });
        return h('tr', { 'data-op': ep.id },
          h('th', { scope: 'row' }, h('code', { text: ep.url })),
          h('td', {}, badge(ep.status)),
          h('td', { text: ep.event_types.length ? ep.event_types.join(', ') : 'all' }),
          h('td', { text: ep.description || '—' }),
          h('td', {}, copyButton(async () => (await api('GET', BASE + '/' + encodeURIComponent(ep.id) + '/secret')).secret, 'Copy secret'), ' ', del));
      }))));
  }
  try {
    await load();
  } catch (e) {
    err.appendChild(errorBox(e, () => load()));
  }
  return { refresh: () => load(false) };
}
