// "Receiving fluxhook deliveries": the guide for the developer of the
// application that receives webhooks, the dashboard's copy of
// docs/receiving.md (what counts as success, retries, disabling, ordering,
// deduplication, replay, signatures and timestamps). Static: no API calls.

import { h, codeBlock, copyButton, showHash } from './ui.js';

const SCHEDULE = [
  ['1', 'at once'],
  ['2', '1 minute after attempt 1 failed'],
  ['3', '5 minutes after attempt 2 failed'],
  ['4', '15 minutes after attempt 3 failed'],
  ['5', '1 hour after attempt 4 failed'],
];

const HEADERS = [
  ['X-Workflux-Event', 'the event type, such as conversation.started'],
  ['X-Workflux-Event-Id', 'the event id, the same as the body\'s id: the key for deduplication'],
  ['X-Workflux-Delivery', 'the delivery id (dlv_…): one per event and endpoint, the same on every attempt'],
  ['X-Workflux-Attempt', '1 for the first attempt, then 2, 3, …; it keeps counting across retries and replays'],
  ['X-Workflux-Signature', 'hex HMAC-SHA256 of the body, keyed with the whole secret'],
  ['webhook-id', 'the event id again (Standard Webhooks)'],
  ['webhook-timestamp', 'when this attempt was signed, in Unix seconds'],
  ['webhook-signature', 'v1,<base64>; two of them, space-separated, while a secret rotation runs'],
];

const WORKED = [
  ['12:00:00', 'Attempt 1 arrives. Your handler inserts the event id into processed_events, does the work and commits, but a slow disk holds the answer for 16 s.'],
  ['12:00:15', 'The 15 s limit passes: attempt 1 is recorded as a timeout; attempt 2 is due at 12:01:15.'],
  ['12:01:15', 'Attempt 2 arrives with X-Workflux-Attempt: 2 and the same X-Workflux-Event-Id. The insert finds the id, so the handler does nothing and answers 200.'],
  ['12:01:15', 'The delivery is delivered, with 2 attempts; the work was done once.'],
];

const DEDUP_SQL = `CREATE TABLE processed_events (event_id TEXT PRIMARY KEY, received_at TIMESTAMP);

BEGIN;
INSERT INTO processed_events (event_id, received_at) VALUES ($1, now())
    ON CONFLICT (event_id) DO NOTHING;       -- SQLite: INSERT OR IGNORE
-- 0 rows inserted: a duplicate; COMMIT and answer 200
-- 1 row inserted: do the work here, then COMMIT and answer 200
COMMIT;
`;

const EXAMPLES = [
  ['Python 3', 'examples/receivers/python/receiver.py', 'python3 receiver.py PORT'],
  ['Node.js', 'examples/receivers/node/receiver.js', 'node receiver.js PORT'],
  ['Go', 'examples/receivers/go/receiver.go', 'go build -o receiver receiver.go && ./receiver PORT'],
  ['Ruby', 'examples/receivers/ruby/receiver.rb', 'ruby receiver.rb PORT'],
  ['PHP', 'examples/receivers/php/receiver.php', 'php -S 127.0.0.1:PORT receiver.php'],
  ['Java 11+', 'examples/receivers/java/Receiver.java', 'javac -d out Receiver.java && java -cp out Receiver PORT'],
  ['C#', 'examples/receivers/csharp/Receiver.cs', 'mcs Receiver.cs && mono Receiver.exe PORT'],
  ['C', 'examples/receivers/c/receiver.c', 'cc receiver.c $(pkg-config --cflags --libs fluxhook-verify)'],
];

const LIBRARIES = [
  ['Python', 'standardwebhooks (PyPI)'],
  ['JavaScript / TypeScript', 'standardwebhooks (npm)'],
  ['Go', 'the libraries/go package of the standard-webhooks/standard-webhooks repository'],
  ['Ruby', 'standardwebhooks (RubyGems)'],
  ['PHP', 'standard-webhooks/standard-webhooks (Composer)'],
  ['Java', 'com.standardwebhooks:standardwebhooks (Maven)'],
  ['C#', 'StandardWebhooks (NuGet)'],
];

const code = (text) => h('code', { text });

// A section with an h2 whose id the table of contents links to.
function section(key, title, ...children) {
  return h('section', { class: 'card guide', id: key, 'aria-labelledby': key + '-h', tabindex: '-1' },
    h('h2', { id: key + '-h', text: title }), children);
}

// A table in a wrapper that scrolls sideways on a narrow screen; the wrapper
// takes focus so that the keyboard can scroll it too.
function table(caption, head, rows, rowHeader = true) {
  return h('div', { class: 'table-wrap', tabindex: '0', role: 'region', 'aria-label': caption }, h('table', {},
    h('caption', { class: 'sr-only', text: caption }),
    h('thead', {}, h('tr', {}, head.map((c) => h('th', { scope: 'col', text: c })))),
    h('tbody', {}, rows.map((r) => h('tr', {}, r.map((cell, i) => (i === 0 && rowHeader
      ? h('th', { scope: 'row' }, cell)
      : h('td', {}, cell))))))));
}

function list(items) {
  return h('ul', {}, items.map((x) => h('li', {}, x)));
}

const SECTIONS = [
  ['success', 'What counts as success', () => [
    list([
      [h('strong', { text: 'Any 2xx status is success.' }), ' The status line decides: your body is not read for meaning, and a 200 whose body then stalls is still a success.'],
      [h('strong', { text: 'The time limit is 15 seconds' }), ' for the whole attempt (connecting, sending, your status line and headers), of which 5 s to connect (the server\'s defaults; --attempt-timeout changes the first). Without an answer in time the attempt is a timeout and is retried. Store the event, answer 200, then do slow work from a queue.'],
      [h('strong', { text: 'Retried: ' }), '408, 429, 500, 502, 503, 504, and every transport failure (name not resolving, connection refused or reset, TLS failure, an answer that is not HTTP, the time limit).'],
      [h('strong', { text: 'Failed at once, never retried: ' }), 'every other status, 3xx included (redirects are never followed), 400, 401, 403, 404, 410, 422. Answer 503 when you are only temporarily unable.'],
      'At most 64 KiB of your answer is read and its first 4 KiB kept in the delivery log, where the endpoint\'s owner sees it: a short sentence saying why you refused helps them.',
    ]),
  ]],
  ['schedule', 'Retry schedule', () => [
    table('Retry schedule', ['Attempt', 'Sent'], SCHEDULE),
    h('p', {}, 'The last attempt comes about 1 h 21 min after the first. A Retry-After header on a 429 or 503 that asks for longer than the next delay is honoured, up to 1 hour. A server may run with another schedule (--retry-schedule).'),
  ]],
  ['disabled', 'Disabled endpoints and held deliveries', () => [
    h('p', {}, 'When the last attempt of a delivery fails with a retryable outcome, that delivery ends failed and the endpoint is disabled, with the reason and the time ("5 consecutive failed attempts; last: HTTP 503"). An endpoint can also be disabled by hand.'),
    h('p', {}, 'A disabled endpoint receives nothing and loses nothing: its pending deliveries, and those of events published meanwhile, wait as held. Enabling it sends them again at once, each with a new round of the schedule; enabling with "skip held" ends them as failed instead. A delivery that failed without retry (a 404, say) does not disable the endpoint.'),
  ]],
  ['order', 'Order is not guaranteed', () => [
    h('p', {}, 'Deliveries to one endpoint run concurrently (up to 64 at a time), a retried delivery arrives after later events, and a replay sends old events again: conversation.completed may arrive before its conversation.started. Compare the event\'s timestamp with what you have stored instead of relying on arrival order.'),
  ]],
  ['idempotency', 'Duplicates and idempotency', () => [
    h('p', {}, 'Delivery is at least once: the same event can arrive again when your answer was lost or late, when fluxhook restarts during an attempt, and whenever someone retries or replays a delivery. Every copy carries the same ', code('X-Workflux-Event-Id'), '. Verify the signature; then, in one database transaction, insert the event id into a table with a unique key and do the work only if the insert added a row; commit, and answer 200, to duplicates too.'),
    h('h3', { text: 'A worked example' }),
    table('A duplicate handled once', ['Time', 'What happens'], WORKED),
    h('div', { class: 'card-head' }, h('h3', { text: 'In SQL' }), copyButton(DEDUP_SQL, 'Copy SQL')),
    codeBlock(DEDUP_SQL, 'deduplication in SQL'),
    h('p', {}, 'If several of your endpoints receive the same event type into one database, key on X-Workflux-Delivery (one per event and endpoint) instead.'),
  ]],
  ['replay', 'Replay and manual retry', () => [
    h('p', {}, 'A delivery can be sent again from its page (Retry), and an endpoint\'s deliveries of a time range, optionally only the delivered or only the failed ones, with Replay. A delivery sent again keeps its event id, delivery id and body, starts a new round of the schedule and is signed again with a fresh webhook-timestamp and the endpoint\'s current secret. So it passes the timestamp check however old the event is, and your deduplication sees it as a duplicate: to process an event again on purpose, delete its id from your table first.'),
  ]],
  ['verify', 'Verifying signatures', () => [
    h('p', {}, 'Both signatures are computed over the raw body bytes as received: verify before parsing the JSON. Compare in constant time, never with ==. The endpoint\'s secret is whsec_ followed by base64; the endpoint\'s page shows it.'),
    table('Request headers', ['Header', 'Value'], HEADERS.map(([k, v]) => [code(k), v])),
    list([
      [code('X-Workflux-Signature'), ': the lowercase hex HMAC-SHA256 of the body, keyed with the whole secret string as UTF-8, whsec_ included. It has no timestamp.'],
      [code('webhook-signature'), ' (Standard Webhooks): v1, followed by the base64 HMAC-SHA256 of webhook-id, a dot, webhook-timestamp, a dot and the body, keyed with the bytes the base64 after whsec_ decodes to. Several may be listed, space-separated: the request is genuine when any v1 one matches.'],
    ]),
    h('h3', { text: 'Timestamp tolerance' }),
    h('p', {}, 'webhook-timestamp is the time of this attempt: reject a request more than 5 minutes away from your clock, in either direction, so that a captured request replayed later fails. Never use the body\'s timestamp for this: it is the event\'s time, hours old on a retry and days old on a replay.'),
    h('h3', { text: 'Rotating a secret without refusing a delivery' }),
    h('ol', {},
      h('li', {}, 'Make the new secret: ', code('echo whsec_$(openssl rand -base64 24)'), '.'),
      h('li', {}, 'Give your receiver both secrets and accept a signature made with either.'),
      h('li', {}, 'Rotate the endpoint to it: POST /v1/endpoints/{id}/secret/rotate with {"secret": "whsec_…"}. For the grace period (24 h by default) webhook-signature carries the new and the old secret\'s signatures; X-Workflux-Signature uses the new secret at once.'),
      h('li', {}, 'After the grace period, remove the old secret from your receiver.')),
  ]],
  ['examples', 'Examples in eight languages', () => [
    h('p', {}, 'The fluxhook sources hold a complete receiver per language, each checking both signatures and the timestamp and answering 200 or 401; each is run against real deliveries by fluxhook\'s tests. Start one with WEBHOOK_SECRET set to the endpoint\'s secret.'),
    table('Example receivers', ['Language', 'File', 'Run with'], EXAMPLES.map(([l, f, r]) => [l, code(f), code(r)])),
  ]],
  ['libraries', 'Standard Webhooks libraries', () => [
    h('p', {}, 'webhook-id, webhook-timestamp and webhook-signature follow the Standard Webhooks specification, so its libraries verify fluxhook deliveries as they are, timestamp included. Give them the endpoint\'s secret. They do not check X-Workflux-Signature.'),
    table('Standard Webhooks libraries', ['Language', 'Library'], LIBRARIES),
  ]],
  ['testing', 'Testing your receiver', () => [
    list([
      [h('a', { href: '/test', 'data-nav': true }, 'Test'), ' (or ', code('fluxhook endpoints test ID --event TYPE'), ') sends an event type\'s sample to one endpoint as a real, signed, logged delivery.'],
      [code('fluxhook listen --secret whsec_…'), ' prints each delivery it receives and whether both signatures verify.'],
      [code('fluxhook verify --secret whsec_… --signature HEX body.json'), ' checks a body you saved.'],
    ]),
  ]],
];

export async function render(ctx) {
  const root = ctx.root;
  root.appendChild(h('h1', { text: 'Receiving fluxhook deliveries' }));
  root.appendChild(h('p', {}, 'For the developer of the application that receives the webhooks: how to answer, what happens when it cannot, and how to check that a request came from fluxhook. Each delivery is one HTTP POST whose body is ',
    code('{"id", "event", "timestamp", "data"}'), ', byte for byte the same on every attempt.'));
  root.appendChild(h('nav', { 'aria-label': 'Sections of the guide', class: 'toc' },
    h('ul', {}, SECTIONS.map(([key, title]) => h('li', {}, h('a', { href: '#' + key }, title))))));
  for (const [key, title, body] of SECTIONS) root.appendChild(section(key, title, body()));
  showHash();
  return null;
}
