// The event catalog: each type with its fields and sample. How a receiver
// verifies them is the receiving guide's (view_receiving.js), linked here.

import { typeName, typeFields, typeSample } from './api.js';
import { h, prettyJson, codeBlock, copyButton, showHash } from './ui.js';
import { eventTypes } from './view_endpoints.js';

export async function render(ctx) {
  const root = ctx.root;
  const types = await eventTypes(ctx);
  root.appendChild(h('h1', { text: 'Event catalog' }));
  root.appendChild(h('p', {}, 'Every delivery is an HTTP POST whose body is the envelope ',
    h('code', { text: '{"id", "event", "timestamp", "data"}' }),
    '. Unknown extra fields may appear in data: accept them. Deduplicate on X-Workflux-Event-Id.'));
  const toc = h('nav', { 'aria-label': 'Event types', class: 'toc' },
    h('ul', {}, types.map((t) => h('li', {}, h('a', { href: '#' + typeName(t) }, typeName(t))))));
  root.appendChild(toc);
  root.appendChild(h('p', { class: 'card verify-link' }, 'To check that a delivery came from fluxhook, verify its signatures: ',
    h('a', { href: '/receiving#verify', 'data-nav': true }, 'how to verify both signatures'),
    ', with ', h('a', { href: '/receiving#examples', 'data-nav': true }, 'complete receivers in eight languages'),
    ' and the Standard Webhooks libraries, in the receiving guide.'));
  root.appendChild(h('h2', { text: 'Event types' }));
  for (const t of types) {
    const name = typeName(t);
    const fields = typeFields(t);
    const sample = typeSample(t);
    root.appendChild(h('section', { class: 'card event-type', id: name, 'aria-labelledby': 'et-' + name, tabindex: '-1' },
      h('div', { class: 'card-head' }, h('h3', { id: 'et-' + name }, h('code', { text: name })),
        h('a', { href: '/test?event=' + encodeURIComponent(name), class: 'button small', 'data-nav': true }, 'Send a test')),
      t.description ? h('p', { text: t.description }) : null,
      fields.length ? h('div', { class: 'table-wrap', tabindex: '0', role: 'region', 'aria-label': 'Fields of ' + name }, h('table', { class: 'fields' },
        h('caption', { class: 'sr-only', text: 'Fields of ' + name }),
        h('thead', {}, h('tr', {}, ['Field', 'Type', 'Required'].concat(fields.some((f) => f.note) ? ['Notes'] : [])
          .map((c) => h('th', { scope: 'col', text: c })))),
        h('tbody', {}, fields.map((f) => h('tr', {},
          h('th', { scope: 'row' }, h('code', { text: 'data.' + f.name })),
          h('td', { text: typeof f.type === 'string' ? f.type : JSON.stringify(f.type) }),
          h('td', { text: f.required ? 'required' : 'optional' }),
          fields.some((x) => x.note) ? h('td', { text: typeof f.note === 'string' ? f.note : JSON.stringify(f.note) }) : null))))) : null,
      sample !== null ? h('div', {}, h('div', { class: 'card-head' }, h('h4', { text: 'Sample' }),
        copyButton(prettyJson(sample), 'Copy sample')), codeBlock(prettyJson(sample), 'sample of ' + name)) : null));
  }
  showHash();
  return null;
}
