// The event catalog: each type with its fields and sample, and receiver
// snippets that verify both signatures.

import { typeName, typeFields, typeSample } from './api.js';
import { h, prettyJson, codeBlock, copyButton } from './ui.js';
import { eventTypes } from './view_endpoints.js';

// The WorkFlux guide's own check of X-Workflux-Signature, as the guide gives it.
const GUIDE_PYTHON = `import hmac
import hashlib
def verify_webhook_signature(payload, signature, secret):
    expected_signature = hmac.new(
        secret.encode(),
        payload.encode(),
        hashlib.sha256
    ).hexdigest()
    return hmac.compare_digest(expected_signature, signature)
# In your webhook handler:
signature = request.headers.get('X-Workflux-Signature')
if not verify_webhook_signature(request.body, signature, WEBHOOK_SECRET):
    return Response('Invalid signature', status=401)
`;

// The Standard Webhooks headers (webhook-id, webhook-timestamp,
// webhook-signature), checked with the Python standard library.
const STANDARD_PYTHON = `import base64
import hashlib
import hmac
import time

def verify_webhook_standard(body: bytes, headers, secret: str, tolerance=300):
    """body: the raw request body; headers: a case-insensitive mapping."""
    msg_id = headers["webhook-id"]
    timestamp = headers["webhook-timestamp"]
    if abs(time.time() - int(timestamp)) > tolerance:
        return False  # too old or from the future: maybe a replay
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = msg_id.encode() + b"." + timestamp.encode() + b"." + body
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    # During a secret rotation several signatures are sent, space-separated.
    for item in headers["webhook-signature"].split(" "):
        version, _, signature = item.partition(",")
        if version == "v1" and hmac.compare_digest(signature, expected):
            return True
    return False
`;

function snippet(title, text, note) {
  const hid = 'sn-' + title.replace(/[^a-z0-9]/gi, '-').toLowerCase();
  return h('section', { class: 'card snippet', 'aria-labelledby': hid },
    h('div', { class: 'card-head' }, h('h3', { id: hid, text: title }), copyButton(text, 'Copy code')),
    note ? h('p', { class: 'help', text: note }) : null,
    codeBlock(text, title));
}

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
  root.appendChild(h('h2', { text: 'Verify signatures in your receiver' }));
  root.appendChild(h('div', { class: 'snippets' },
    snippet('X-Workflux-Signature (the guide\'s Python)', GUIDE_PYTHON,
      'payload is the raw request body as text, exactly as received: do not parse and re-serialize it first.'),
    snippet('webhook-signature (Standard Webhooks, Python)', STANDARD_PYTHON,
      'Uses webhook-id, webhook-timestamp and webhook-signature; the key is the base64 part of the secret after whsec_.')));
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
  if (location.hash) {
    const el = document.getElementById(decodeURIComponent(location.hash.slice(1)));
    if (el) setTimeout(() => { el.scrollIntoView(); }, 0);
  }
  return null;
}
