// A fluxhook receiver in Node.js, no packages needed.
//
//   WEBHOOK_SECRET=whsec_... node receiver.js 9000
//
// It listens on 127.0.0.1:PORT (0 picks a free port; the first line printed,
// "listening on 127.0.0.1:N", says which). For each POST it checks both
// signatures fluxhook sends, X-Workflux-Signature and the Standard Webhooks
// webhook-signature, prints one line
//
//   delivery event=evt_... attempt=1 verified
//   delivery event=evt_... attempt=2 not verified: webhook-timestamp: ...
//
// and answers 200 when both verify, 401 when not. WEBHOOK_SECRET may hold
// several secrets separated by spaces (while you rotate: the new one and the
// old one); each signature must then verify with one of them. With a
// framework, verify the raw body bytes (e.g. express.raw({type: 'application/json'})), never JSON
// that was parsed and serialized again.
'use strict';

const crypto = require('node:crypto');
const http = require('node:http');

const TOLERANCE_SECONDS = 5 * 60; // how far webhook-timestamp may be from now

// Compares two strings in constant time (for equal lengths).
function safeEqual(a, b) {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && crypto.timingSafeEqual(x, y);
}

// X-Workflux-Signature: lowercase hex HMAC-SHA256 of the raw body, keyed with
// the whole secret string ("whsec_" included). Returns null when it matches,
// else what is wrong.
function verifyWorkflux(secret, body, signature) {
  if (!signature) return 'X-Workflux-Signature: missing';
  const expected = crypto.createHmac('sha256', secret).update(body).digest('hex');
  if (!safeEqual(expected, signature.trim().toLowerCase())) {
    return 'X-Workflux-Signature: does not match';
  }
  return null;
}

// webhook-signature (Standard Webhooks): "v1," + base64 HMAC-SHA256 of
// "webhook-id.webhook-timestamp.body", keyed with the base64-decoded part of
// the secret after "whsec_". Several space-separated signatures arrive while
// a secret rotation runs: any one matching is enough. Returns null when
// valid, else what is wrong.
function verifyStandard(secret, headers, body, nowSeconds) {
  const id = headers['webhook-id'];
  const timestamp = headers['webhook-timestamp'];
  const signatures = headers['webhook-signature'];
  if (!id || !timestamp || !signatures) {
    return 'webhook-signature: missing webhook-id, webhook-timestamp or webhook-signature';
  }
  if (!/^[0-9]+$/.test(timestamp)) return 'webhook-timestamp: not a number';
  if (Math.abs(nowSeconds - Number(timestamp)) > TOLERANCE_SECONDS) {
    return `webhook-timestamp: more than ${TOLERANCE_SECONDS} s from now`;
  }
  const key = Buffer.from(secret.slice('whsec_'.length), 'base64');
  const expected = crypto.createHmac('sha256', key)
    .update(`${id}.${timestamp}.`).update(body).digest('base64');
  for (const entry of signatures.split(' ')) {
    const comma = entry.indexOf(',');
    if (entry.slice(0, comma) === 'v1' && safeEqual(expected, entry.slice(comma + 1))) {
      return null;
    }
  }
  return 'webhook-signature: does not match';
}

// Both checks, each passing with any one of secrets. Returns null or what is
// wrong (as found with the first secret).
function verifyDelivery(secrets, headers, body) {
  const now = Math.floor(Date.now() / 1000);
  const checks = [
    (s) => verifyWorkflux(s, body, headers['x-workflux-signature']),
    (s) => verifyStandard(s, headers, body, now),
  ];
  for (const check of checks) {
    const problems = secrets.map(check);
    if (!problems.includes(null)) return problems[0];
  }
  return null;
}

function main() {
  const secrets = (process.env.WEBHOOK_SECRET || '').split(' ').filter((s) => s !== '');
  if (process.argv.length !== 3 || secrets.length === 0 ||
      !secrets.every((s) => s.startsWith('whsec_'))) {
    console.error('usage: WEBHOOK_SECRET=whsec_... node receiver.js PORT');
    process.exit(2);
  }
  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      const h = req.headers; // Node lower-cases header names
      const where = `event=${h['x-workflux-event-id'] || '-'} attempt=${h['x-workflux-attempt'] || '-'}`;
      const problem = verifyDelivery(secrets, h, body);
      if (problem) {
        console.log(`delivery ${where} not verified: ${problem}`);
        res.writeHead(401, { 'Content-Type': 'text/plain' }).end('invalid signature\n');
        return;
      }
      console.log(`delivery ${where} verified`);
      // Handle JSON.parse(body) here, or queue it and answer at once.
      res.writeHead(200, { 'Content-Type': 'text/plain' }).end('ok\n');
    });
  });
  server.listen(Number(process.argv[2]), '127.0.0.1', () => {
    console.log(`listening on 127.0.0.1:${server.address().port}`);
  });
}

main();
