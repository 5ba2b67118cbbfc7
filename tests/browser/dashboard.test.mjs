// The dashboard in real headless Chromium (Debian's chromium, driven by
// playwright-core) against the real fluxhook binary and a real receiver.
//
//   cd tests/browser && node dashboard.test.mjs
//
// $FLUXHOOK_BIN picks the binary (default ../../build/fluxhook). Prints one
// line per test, then exactly one summary line `browser: N passed, M failed`,
// and exits non-zero on any failure. Screenshots go to
// tests/artifacts/screenshots/.

import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(HERE, '..', '..');
const BIN = path.resolve(HERE, process.env.FLUXHOOK_BIN || path.join(ROOT, 'build', 'fluxhook'));
const SHOTS = path.join(ROOT, 'tests', 'artifacts', 'screenshots');
const START_TIMEOUT_MS = 60000;
const TEST_TIMEOUT_MS = 30000;
const AXE_SOURCE = fs.readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');
const WIDE = { width: 1280, height: 900 };
const NARROW = { width: 375, height: 760 };

// --- the server under test ---

class Server {
  constructor() {
    this.dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fluxhook-browser-'));
    this.rootKey = 'fhk_' + crypto.randomBytes(32).toString('base64url');
    this.log = '';
    this.url = null;
    this.proc = null;
    this.exit = null;
  }

  start() {
    const args = ['serve', '--listen', '127.0.0.1:0', '--db', 'sqlite:' + path.join(this.dir, 'db'),
      '--allow-http', '--allow-networks', '127.0.0.0/8',
      '--retry-schedule', '0ms,200ms,200ms,200ms,200ms'];
    const env = {};
    for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('FLUXHOOK_')) env[k] = v;
    env.FLUXHOOK_ROOT_KEY = this.rootKey;
    env.ASAN_OPTIONS = env.ASAN_OPTIONS || 'detect_leaks=1:abort_on_error=0';
    env.UBSAN_OPTIONS = env.UBSAN_OPTIONS || 'print_stacktrace=1:halt_on_error=1';
    this.proc = spawn(BIN, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    this.exited = new Promise((resolve) => {
      this.proc.on('exit', (code, signal) => { this.exit = { code, signal }; resolve(this.exit); });
      this.proc.on('error', (e) => { this.log += '\n[spawn error] ' + e.message + '\n'; this.exit = { code: -1 }; resolve(this.exit); });
    });
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('no "serve: listening" line within ' + START_TIMEOUT_MS + ' ms:\n' + this.log.slice(-3000))), START_TIMEOUT_MS);
      const onData = (chunk) => {
        this.log += chunk.toString();
        const m = this.log.match(/serve: listening url=(http:\/\/127\.0\.0\.1:\d+)/);
        if (m && !this.url) {
          this.url = m[1];
          clearTimeout(timer);
          resolve();
        }
      };
      this.proc.stdout.on('data', onData);
      this.proc.stderr.on('data', onData);
      this.exited.then((e) => {
        clearTimeout(timer);
        if (!this.url) reject(new Error('fluxhook serve exited (' + JSON.stringify(e) + ') before listening:\n' + this.log.slice(-3000)));
      });
    });
  }

  async api(method, p, body, opts = {}) {
    const headers = { Authorization: 'Bearer ' + (opts.key || this.rootKey) };
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    const res = await fetch(this.url + p, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
    const text = await res.text();
    let json = null;
    try { json = text ? JSON.parse(text) : null; } catch (e) { json = null; }
    return { status: res.status, body: json, text, headers: res.headers };
  }

  // SIGTERM, then SIGKILL if it does not stop within 10 s.
  async stop() {
    if (!this.proc || this.exit) return this.exit;
    this.proc.kill('SIGTERM');
    const t = setTimeout(() => { if (!this.exit) this.proc.kill('SIGKILL'); }, 10000);
    const e = await this.exited;
    clearTimeout(t);
    return e;
  }

  cleanup() {
    try { fs.rmSync(this.dir, { recursive: true, force: true }); } catch (e) { /* best effort */ }
  }
}

// --- a real receiver whose answer the test switches ---

class Receiver {
  constructor() {
    this.status = 200;
    this.requests = [];
    this.server = http.createServer((req, res) => {
      const chunks = [];
      req.on('data', (c) => chunks.push(c));
      req.on('end', () => {
        this.requests.push({ method: req.method, path: req.url, headers: req.headers, body: Buffer.concat(chunks), status: this.status });
        res.writeHead(this.status, { 'Content-Type': 'text/plain' });
        res.end(this.status === 200 ? 'thanks' : 'receiver says: unavailable (' + this.status + ')');
      });
    });
  }

  listen() {
    return new Promise((resolve) => this.server.listen(0, '127.0.0.1', () => {
      this.url = 'http://127.0.0.1:' + this.server.address().port + '/hook';
      resolve();
    }));
  }

  close() {
    this.server.closeAllConnections?.();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}

// --- a tiny runner: each test with its own timeout ---

const tests = [];
function test(name, fn, timeout = TEST_TIMEOUT_MS) { tests.push({ name, fn, timeout }); }

function withTimeout(p, ms, name) {
  let t;
  return Promise.race([
    p.finally(() => clearTimeout(t)),
    new Promise((_, reject) => { t = setTimeout(() => reject(new Error(name + ': timed out after ' + ms + ' ms')), ms); }),
  ]);
}

function assert(cond, msg) { if (!cond) throw new Error('assertion failed: ' + msg); }
function eq(a, b, msg) { if (a !== b) throw new Error('assertion failed: ' + msg + ': expected ' + JSON.stringify(b) + ', got ' + JSON.stringify(a)); }

async function until(fn, what, ms = 15000) {
  const end = Date.now() + ms;
  let last;
  while (Date.now() < end) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (e) { last = e; }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error('timed out waiting for ' + what + (last ? ' (last error: ' + last.message + ')' : ''));
}

async function shot(page, name) {
  fs.mkdirSync(SHOTS, { recursive: true });
  await page.screenshot({ path: path.join(SHOTS, name + '.png'), fullPage: true });
}

// --- the scenarios (they run in order and build on each other) ---

const srv = new Server();
const rc = new Receiver();
let browser;
let page;
const pageErrors = [];
const st = {}; // what earlier tests learned: endpoint id, delivery ids

async function goto(p) {
  await page.goto(srv.url + p);
}

async function nav(name) {
  await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name, exact: true }).click();
  await page.getByRole('heading', { level: 1 }).first().waitFor();
}

function card() {
  return page.locator('article.endpoint[data-endpoint="' + st.endpoint + '"]');
}

test('serves the dashboard at / with its security headers', async () => {
  const res = await page.goto(srv.url + '/');
  eq(res.status(), 200, 'GET / status');
  const hd = res.headers();
  assert((hd['content-type'] || '').startsWith('text/html'), 'content type of / is HTML');
  assert((hd['content-security-policy'] || '').includes("default-src 'self'"), 'CSP default-src self');
  eq(hd['x-content-type-options'], 'nosniff', 'X-Content-Type-Options');
  eq(hd['referrer-policy'], 'no-referrer', 'Referrer-Policy');
  eq(hd['x-frame-options'], 'DENY', 'X-Frame-Options');
  await page.getByRole('heading', { name: 'Sign in to fluxhook' }).waitFor();
  assert(!(await page.locator('header.top').isVisible()), 'no navigation before signing in');
  const js = await fetch(srv.url + '/app.js');
  assert((js.headers.get('content-type') || '').startsWith('text/javascript'), 'app.js is JavaScript');
  const missing = await fetch(srv.url + '/no-such-file.js');
  eq(missing.status, 404, 'unknown asset answers 404');
  const deep = await fetch(srv.url + '/deliveries/dlv_x');
  eq(deep.status, 200, 'an app route serves the page');
  await shot(page, 'signin');
});

test('a refused key shows the server\'s message', async () => {
  const bad = await srv.api('GET', '/v1/endpoints', undefined, { key: 'fhk_wrong' });
  eq(bad.status, 401, 'API refuses a wrong key');
  await page.getByLabel('API key').fill('fhk_wrong');
  await page.getByRole('button', { name: 'Sign in' }).click();
  const alert = page.locator('.signin [role=alert]');
  await until(async () => (await alert.textContent()).includes(bad.body.error.message), 'the 401 message in the form');
  eq(await page.evaluate(() => sessionStorage.getItem('fluxhook.key')), null, 'a refused key is not kept');
});

test('sign in; the key stays in sessionStorage only', async () => {
  await page.getByLabel('API key').fill(srv.rootKey);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('heading', { name: 'Endpoints', level: 1 }).waitFor();
  await page.getByRole('heading', { name: 'No endpoints yet' }).waitFor();
  eq(await page.evaluate(() => sessionStorage.getItem('fluxhook.key')), srv.rootKey, 'key in sessionStorage');
  eq(await page.evaluate(() => localStorage.length), 0, 'nothing in localStorage');
  eq((await page.context().cookies()).length, 0, 'no cookie');
  assert(!page.url().includes(srv.rootKey), 'key not in the URL');
  // An admin key gets the account switcher.
  await page.getByLabel('Account').waitFor();
  await shot(page, 'endpoints-empty');
});

test('a bad URL shows the server\'s error beside the field', async () => {
  await page.getByRole('link', { name: 'New endpoint' }).click();
  await page.getByRole('heading', { name: 'New endpoint' }).waitFor();
  const direct = await srv.api('POST', '/v1/endpoints', { url: 'ftp://example.com/hook', description: '', event_types: [], enabled: true });
  assert(direct.status >= 400 && direct.status < 500, 'API refuses ftp:// (got ' + direct.status + ')');
  await page.getByLabel('URL').fill('ftp://example.com/hook');
  await page.getByRole('button', { name: 'Create endpoint' }).click();
  const beside = page.locator('#ep-url-err');
  await until(async () => ((await beside.textContent()) || '').trim().length > 0, 'an error beside the URL field');
  const text = await page.locator('form').textContent();
  assert(text.includes(direct.body.error.message) ||
    (direct.body.error.fields || []).some((f) => text.includes(f.problem)), 'the server\'s words are shown: ' + JSON.stringify(direct.body.error));
  eq(await page.getByLabel('URL').getAttribute('aria-invalid'), 'true', 'URL marked invalid');
  await shot(page, 'endpoint-form-error');
});

test('create an endpoint', async () => {
  await page.getByLabel('URL').fill(rc.url);
  await page.getByLabel('Description (optional)').fill('browser test receiver');
  await page.getByLabel('conversation.started').check();
  await page.getByLabel('agent.response').check();
  await page.getByRole('button', { name: 'Create endpoint' }).click();
  await page.getByRole('heading', { name: 'Endpoints', level: 1 }).waitFor();
  const list = await srv.api('GET', '/v1/endpoints');
  eq(list.body.data.length, 1, 'one endpoint');
  const ep = list.body.data[0];
  st.endpoint = ep.id;
  eq(ep.url, rc.url, 'its URL');
  eq([...ep.event_types].sort().join(','), 'agent.response,conversation.started', 'its event types');
  await card().waitFor();
  const text = await card().textContent();
  assert(text.includes(rc.url) && text.includes('browser test receiver'), 'card shows URL and description');
  assert(text.includes('conversation.started') && text.includes('agent.response'), 'card shows event types');
  await card().locator('.badge', { hasText: 'Enabled' }).waitFor();
  await shot(page, 'endpoints');
});

test('edit an endpoint: the form is filled in and saves', async () => {
  await card().getByRole('link', { name: 'Edit' }).click();
  await page.getByRole('heading', { name: 'Edit endpoint' }).waitFor();
  eq(await page.getByLabel('URL').inputValue(), rc.url, 'URL filled in');
  assert(await page.getByLabel('conversation.started').isChecked(), 'subscribed type checked');
  assert(!(await page.getByLabel('agent.updated').isChecked()), 'other type unchecked');
  await page.getByLabel('Description (optional)').fill('edited receiver');
  await page.getByLabel('agent.updated').check();
  await page.getByRole('button', { name: 'Save changes' }).click();
  await page.getByRole('heading', { name: 'Endpoints', level: 1 }).waitFor();
  await until(async () => (await card().textContent()).includes('edited receiver'), 'the new description on the card');
  const ep = (await srv.api('GET', '/v1/endpoints/' + st.endpoint)).body;
  eq(ep.description, 'edited receiver', 'description saved');
  eq([...ep.event_types].sort().join(','), 'agent.response,agent.updated,conversation.started', 'types saved');
});

test('send a test event and see it delivered with 200', async () => {
  await nav('Test');
  await page.getByLabel('Endpoint').selectOption(st.endpoint);
  await page.getByLabel('Event type').selectOption('conversation.started');
  await until(async () => (await page.locator('.sample').textContent()).includes('conv-123'), 'the sample payload');
  const before = rc.requests.length;
  await page.getByRole('button', { name: 'Send test event' }).click();
  const item = page.locator('li.sent-item').first();
  await item.locator('.badge', { hasText: 'Delivered' }).waitFor({ timeout: 15000 });
  await until(async () => (await item.textContent()).includes('HTTP 200'), 'HTTP 200 shown');
  st.firstDelivery = await item.getAttribute('data-delivery');
  const req = await until(() => rc.requests.slice(before).find((r) => r.headers['x-workflux-delivery'] === st.firstDelivery), 'the receiver got it');
  eq(req.headers['x-workflux-event'], 'conversation.started', 'event header');
  const sec = await srv.api('GET', '/v1/endpoints/' + st.endpoint + '/secret');
  const want = crypto.createHmac('sha256', sec.body.secret).update(req.body).digest('hex');
  eq(req.headers['x-workflux-signature'], want, 'signature verifies with the endpoint secret');
  await shot(page, 'test');
});

test('a failing receiver: retries, then the disabled badge and the held count', async () => {
  rc.status = 503;
  await page.getByRole('button', { name: 'Send test event' }).click();
  const item = page.locator('li.sent-item').first();
  await until(async () => (await item.getAttribute('data-delivery')) !== st.firstDelivery, 'a new sent item');
  st.failedDelivery = await item.getAttribute('data-delivery');
  await item.locator('.badge', { hasText: 'Failed' }).waitFor({ timeout: 20000 });
  const d = await srv.api('GET', '/v1/deliveries/' + st.failedDelivery);
  eq(d.body.attempts.length, 5, 'five attempts, as the schedule says');
  // A new event while the endpoint is disabled is held.
  await until(async () => (await srv.api('GET', '/v1/endpoints/' + st.endpoint)).body.status === 'disabled', 'endpoint disabled by the server');
  await nav('Endpoints');
  await card().locator('.badge', { hasText: 'Disabled' }).waitFor();
  const pub = await srv.api('POST', '/v1/events', { event: 'agent.response', data: { conversation_id: 'conv-9', agent_id: 'agent-9', message_id: 'msg-9', content: 'held for later' } });
  eq(pub.status, 202, 'publish accepted');
  st.heldEvent = pub.body.id;
  // The page updates itself (polling), no reload.
  await card().locator('.held', { hasText: '1 held' }).waitFor({ timeout: 10000 });
  const text = await card().locator('.ep-status').textContent();
  const ep = (await srv.api('GET', '/v1/endpoints/' + st.endpoint)).body;
  assert(ep.disabled_reason && text.includes(ep.disabled_reason), 'the reason is shown: ' + text);
  assert(text.includes('since'), 'the time is shown');
  await shot(page, 'endpoints-disabled');
}, 45000);

test('open a delivery and read its attempts', async () => {
  await nav('Deliveries');
  await page.getByLabel('Status').selectOption('failed');
  const row = page.locator('tr[data-delivery="' + st.failedDelivery + '"]');
  await row.waitFor();
  await shot(page, 'deliveries');
  await row.getByRole('link').click();
  await page.getByRole('heading', { name: 'Attempts' }).waitFor();
  const attempts = page.locator('li.attempt');
  await until(async () => (await attempts.count()) === 5, 'five attempts listed');
  for (let i = 0; i < 5; i++) {
    const t = await attempts.nth(i).textContent();
    assert(t.includes('Attempt ' + (i + 1)) && t.includes('HTTP 503'), 'attempt ' + (i + 1) + ' shows 503: ' + t);
  }
  await attempts.first().locator('summary').click();
  assert((await attempts.first().textContent()).includes('receiver says: unavailable'), 'the kept response body');
  const payload = await page.locator('section[aria-labelledby=h-payload]').textContent();
  assert(payload.includes('conv-123') && payload.includes('"event": "conversation.started"'), 'pretty-printed payload');
  const headers = await page.locator('section[aria-labelledby=h-headers]').textContent();
  assert(headers.includes('X-Workflux-Delivery') && headers.includes(st.failedDelivery), 'headers sent');
  await shot(page, 'delivery');
});

test('enable (resume) and see the held delivery go out', async () => {
  rc.status = 200;
  const before = rc.requests.length;
  await nav('Endpoints');
  await card().getByRole('button', { name: 'Enable…' }).click();
  const dlg = page.getByRole('dialog', { name: 'Enable this endpoint?' });
  await dlg.waitFor();
  await dlg.getByLabel(/Resume/).check();
  await dlg.getByRole('button', { name: 'Enable' }).click();
  await card().locator('.badge', { hasText: 'Enabled' }).waitFor();
  await card().locator('.held', { hasText: '0 held' }).waitFor({ timeout: 10000 });
  await until(() => rc.requests.slice(before).find((r) => r.headers['x-workflux-event-id'] === st.heldEvent && r.status === 200), 'the held event delivered');
  await nav('Deliveries');
  await page.getByLabel('Event type').selectOption('agent.response');
  await page.locator('tr.status-delivered').first().waitFor();
});

test('retry a failed delivery from its page', async () => {
  await goto('/deliveries/' + st.failedDelivery);
  await page.getByRole('heading', { name: 'Attempts' }).waitFor();
  await page.getByRole('button', { name: 'Retry now' }).click();
  await page.locator('dl.summary .badge', { hasText: 'Delivered' }).waitFor({ timeout: 15000 });
  await until(async () => (await page.locator('li.attempt').count()) === 6, 'a sixth attempt listed');
  assert((await page.locator('li.attempt').nth(5).textContent()).includes('HTTP 200'), 'the retry got 200');
});

test('the deliveries list is live and paginated', async () => {
  await goto('/deliveries');
  const rows = page.locator('table.deliveries tbody tr');
  await rows.first().waitFor();
  const top = await rows.first().getAttribute('data-delivery');
  await page.evaluate(() => { window.__noReload = 1; });
  const ids = [];
  for (let i = 0; i < 30; i++) {
    const r = await srv.api('POST', '/v1/events', { event: 'conversation.started', data: { conversation_id: 'conv-p' + i, agent_id: 'agent-1', channel: 'chat' } });
    eq(r.status, 202, 'publish ' + i);
    ids.push(r.body.id);
  }
  await until(async () => (await rows.first().getAttribute('data-delivery')) !== top, 'new deliveries shown without reload');
  eq(await page.evaluate(() => window.__noReload), 1, 'the page was not reloaded');
  await until(async () => (await rows.count()) === 25, 'a full first page of 25');
  const older = page.getByRole('button', { name: 'Older →' });
  assert(await older.isEnabled(), 'an older page exists');
  const firstPage = await rows.first().getAttribute('data-delivery');
  await older.click();
  await until(async () => (await rows.first().getAttribute('data-delivery')) !== firstPage, 'page 2 shown');
  assert((await page.locator('.pager').textContent()).includes('Page 2'), 'page 2 labelled');
  await page.getByRole('button', { name: '← Newer' }).click();
  await until(async () => (await page.locator('.pager').textContent()).includes('Page 1'), 'back on page 1');
  await until(() => Promise.all(ids.map((id) => srv.api('GET', '/v1/deliveries?event_id=' + id)))
    .then((rs) => rs.every((r) => r.body.data.length === 1 && r.body.data[0].status === 'delivered')), 'all 30 delivered', 20000);
});

test('replay an endpoint\'s deliveries since a chosen time', async () => {
  await nav('Deliveries');
  await page.locator('details.replay summary').click();
  await page.getByLabel('Deliveries to replay').selectOption('');
  const before = rc.requests.length;
  await page.getByRole('button', { name: 'Replay' }).click();
  await page.locator('details.replay .ok').waitFor();
  await until(() => rc.requests.length >= before + 3, 'the replayed deliveries arrive');
});

test('reveal, copy and rotate the secret', async () => {
  await nav('Endpoints');
  const old = (await srv.api('GET', '/v1/endpoints/' + st.endpoint + '/secret')).body.secret;
  await card().getByRole('button', { name: 'Reveal' }).click();
  await until(async () => (await card().locator('code.secret').textContent()) === old, 'the secret revealed');
  await card().getByRole('button', { name: 'Copy secret' }).click();
  await page.locator('#toast').filter({ hasText: /Copied|Could not copy/ }).waitFor();
  await card().getByRole('button', { name: 'Hide' }).click();
  assert(!(await card().textContent()).includes(old), 'masked again');
  await card().getByRole('button', { name: 'Rotate…' }).click();
  const dlg = page.getByRole('dialog', { name: 'Rotate the signing secret?' });
  await dlg.getByRole('button', { name: 'Rotate secret' }).click();
  const now = await until(async () => {
    const v = await card().locator('code.secret').textContent();
    return v.startsWith('whsec_') && v !== old && !v.includes('•') ? v : null;
  }, 'the new secret shown');
  eq((await srv.api('GET', '/v1/endpoints/' + st.endpoint + '/secret')).body.secret, now, 'the page shows the current secret');
  assert((await card().locator('.prev-secret').textContent()).includes('previous secret also signs webhook-signature until'), 'the grace period is shown');
  const before = rc.requests.length;
  const t = await srv.api('POST', '/v1/endpoints/' + st.endpoint + '/test', { event: 'conversation.started' });
  eq(t.status, 202, 'test accepted');
  const req = await until(() => rc.requests.slice(before).find((r) => r.headers['x-workflux-delivery'] === t.body.delivery_id), 'the signed delivery');
  eq(req.headers['x-workflux-signature'], crypto.createHmac('sha256', now).update(req.body).digest('hex'), 'signed with the new secret');
  await shot(page, 'endpoints-secret');
});

test('charts draw the account\'s deliveries', async () => {
  await nav('Charts');
  await page.locator('svg.chart rect.c-ok').first().waitFor();
  assert((await page.locator('svg.chart rect.c-fail, svg.chart rect.c-retry').count()) > 0, 'failures and retries drawn');
  const tiles = await page.locator('.tiles').textContent();
  assert(/Delivered\s*[1-9]/.test(tiles), 'delivered tile counts: ' + tiles);
  await page.getByLabel('Scope').selectOption(st.endpoint);
  await page.getByLabel('Last day').check();
  await page.locator('svg.chart rect.c-ok').first().waitFor();
  await shot(page, 'charts');
});

test('event catalog lists the nine types with samples and snippets', async () => {
  await nav('Event catalog');
  eq(await page.locator('section.event-type').count(), 9, 'nine event types');
  const text = await page.locator('main').textContent();
  assert(text.includes('def verify_webhook_signature(payload, signature, secret):'), 'the guide\'s Python');
  assert(text.includes('webhook-signature'), 'the webhook-signature check');
  assert(text.includes('data.conversation_id'), 'fields listed');
  await shot(page, 'catalog');
});

test('the receiving guide: success, schedule, idempotency, libraries; fits and passes axe at both widths', async () => {
  await nav('Receiving');
  await page.getByRole('heading', { name: 'Receiving fluxhook deliveries', level: 1 }).waitFor();
  const text = await page.locator('main').textContent();
  for (const want of ['Any 2xx status is success.', 'The time limit is 15 seconds', '1 hour after attempt 4 failed',
    'Order is not guaranteed', 'X-Workflux-Event-Id', 'A worked example', 'more than 5 minutes away',
    'com.standardwebhooks:standardwebhooks', 'examples/receivers/csharp/Receiver.cs']) {
    assert(text.includes(want), 'the guide says: ' + want);
  }
  await page.getByRole('navigation', { name: 'Sections of the guide' }).getByRole('link', { name: 'Duplicates and idempotency' }).click();
  await until(() => page.evaluate(() => location.hash === '#idempotency'), 'the section link to work');
  const found = [];
  for (const size of [WIDE, NARROW]) {
    await page.setViewportSize(size);
    const over = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    assert(over <= 1, 'no sideways scrolling at ' + size.width + ' px (' + over + ' px too wide)');
    for (const v of await axeViolations()) found.push(size.width + ' px: ' + v);
    await shot(page, 'receiving-' + size.width);
  }
  await page.setViewportSize(WIDE);
  eq(found.length, 0, 'violations:\n  ' + found.join('\n  '));
});

test('delete an endpoint, after a confirmation', async () => {
  const mk = await srv.api('POST', '/v1/endpoints', { url: rc.url + '/second', description: 'to delete' });
  eq(mk.status, 201, 'second endpoint created');
  await nav('Endpoints');
  const c = page.locator('article.endpoint[data-endpoint="' + mk.body.id + '"]');
  await c.waitFor();
  await c.getByRole('button', { name: 'Delete…' }).click();
  await page.getByRole('dialog', { name: 'Delete this endpoint?' }).getByRole('button', { name: 'Cancel' }).click();
  eq((await srv.api('GET', '/v1/endpoints/' + mk.body.id)).status, 200, 'cancel keeps it');
  await c.getByRole('button', { name: 'Delete…' }).click();
  await page.getByRole('dialog', { name: 'Delete this endpoint?' }).getByRole('button', { name: 'Delete endpoint' }).click();
  await c.waitFor({ state: 'detached' });
  eq((await srv.api('GET', '/v1/endpoints/' + mk.body.id)).status, 404, 'deleted');
});

test('the audit log lists the changes made, filters them and shows no secret', async () => {
  await nav('Audit log');
  const rows = page.locator('table.audit tbody tr');
  await page.locator('tr[data-action="endpoint.deleted"]').first().waitFor();
  await page.locator('tr[data-action="endpoint.secret_rotated"]').first().waitFor();
  const text = await page.locator('main').innerText();
  assert(!text.includes('whsec_'), 'no secret on the audit page');
  await page.getByLabel('Change').selectOption('endpoint.created');
  await until(async () => {
    const acts = await rows.evaluateAll((trs) => trs.map((tr) => tr.dataset.action));
    return acts.length > 0 && acts.every((a) => a === 'endpoint.created');
  }, 'only endpoint.created rows');
  assert(page.url().includes('action=endpoint.created'), 'the filter is in the URL');
  await page.getByLabel('Change').selectOption('');
  await page.getByLabel('Object id').fill(st.endpoint);
  await page.getByLabel('Object id').press('Enter');
  await until(async () => {
    const targets = await rows.evaluateAll((trs) => trs.map((tr) => tr.querySelector('td code').textContent));
    return targets.length > 1 && targets.every((t) => t === st.endpoint);
  }, 'only the endpoint\'s rows');
  await shot(page, 'audit-log');
});

test('an admin switches accounts', async () => {
  const acct = await srv.api('POST', '/v1/accounts', { name: 'second' });
  eq(acct.status, 201, 'account created');
  await page.getByRole('button', { name: 'Sign out' }).click();
  await page.getByLabel('API key').fill(srv.rootKey);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('heading', { name: 'Endpoints', level: 1 }).waitFor();
  await page.getByLabel('Account').selectOption(acct.body.id);
  await page.getByRole('heading', { name: 'No endpoints yet' }).waitFor();
  await page.getByLabel('Account').selectOption('');
  await card().waitFor();
});

// axe-core's WCAG 2.1 A and AA rules on a page, evaluated through the
// driver (so the page's CSP, which forbids inline scripts, still holds).
async function axeViolations() {
  if (!(await page.evaluate(() => typeof window.axe !== 'undefined'))) await page.evaluate(AXE_SOURCE);
  return page.evaluate(async () => {
    const r = await window.axe.run(document, { runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'] } });
    return r.violations.map((v) => v.id + ' (' + v.impact + '): ' + v.help + ' at ' + v.nodes.slice(0, 3).map((n) => n.target.join(' ')).join(', '));
  });
}

test('every main page passes axe-core\'s WCAG 2.1 AA checks', async () => {
  const found = [];
  const pages = [
    ['/endpoints', () => card().waitFor()],
    ['/endpoints/' + st.endpoint + '/edit', () => page.getByRole('heading', { name: 'Edit endpoint' }).waitFor()],
    ['/test', () => page.getByRole('button', { name: 'Send test event' }).waitFor()],
    ['/deliveries', () => page.locator('table.deliveries tbody tr').first().waitFor()],
    ['/deliveries/' + st.failedDelivery, () => page.locator('li.attempt').first().waitFor()],
    ['/charts', () => page.locator('svg.chart').first().waitFor()],
    ['/catalog', () => page.locator('section.event-type').first().waitFor()],
    ['/audit', () => page.locator('table.audit tbody tr').first().waitFor()],
  ];
  for (const [p, ready] of pages) {
    await goto(p);
    await ready();
    for (const v of await axeViolations()) found.push(p + ': ' + v);
  }
  // The open dialog too.
  await goto('/endpoints');
  await card().getByRole('button', { name: 'Disable…' }).click();
  await page.getByRole('dialog').waitFor();
  for (const v of await axeViolations()) found.push('disable dialog: ' + v);
  await page.keyboard.press('Escape');
  await page.getByRole('dialog').waitFor({ state: 'detached' });
  eq(found.length, 0, 'violations:\n  ' + found.join('\n  '));
}, 60000);

test('keyboard only: focus order into the form, dialogs take and give back focus', async () => {
  await goto('/endpoints');
  await card().waitFor();
  // Opening a view puts focus on its heading; the next Tab reaches its first control.
  await page.getByRole('link', { name: 'New endpoint' }).focus();
  await page.keyboard.press('Enter');
  await page.getByRole('heading', { name: 'New endpoint' }).waitFor();
  await until(async () => (await page.evaluate(() => document.activeElement.tagName)) === 'H1', 'focus on the heading');
  await page.keyboard.press('Tab');
  eq(await page.evaluate(() => document.activeElement.id), 'ep-url', 'Tab goes to the URL field');
  await page.keyboard.type(rc.url + '/keyboard');
  await page.keyboard.press('Tab');
  eq(await page.evaluate(() => document.activeElement.id), 'ep-desc', 'then the description');
  await page.keyboard.type('made with the keyboard');
  await page.keyboard.press('Enter');
  await page.getByRole('heading', { name: 'Endpoints', level: 1 }).waitFor();
  const made = (await srv.api('GET', '/v1/endpoints')).body.data.find((e) => e.description === 'made with the keyboard');
  assert(made, 'endpoint created from the keyboard');
  const c = page.locator('article.endpoint[data-endpoint="' + made.id + '"]');
  const del = c.getByRole('button', { name: 'Delete…' });
  await del.focus();
  await page.keyboard.press('Enter');
  const dlg = page.getByRole('dialog', { name: 'Delete this endpoint?' });
  await dlg.waitFor();
  eq(await page.evaluate(() => document.activeElement.textContent), 'Cancel', 'the dialog focuses its safe button');
  await page.keyboard.press('Escape');
  await dlg.waitFor({ state: 'detached' });
  eq(await page.evaluate(() => document.activeElement.textContent), 'Delete…', 'focus returns to the button');
  eq((await srv.api('GET', '/v1/endpoints/' + made.id)).status, 200, 'Escape deletes nothing');
  await page.keyboard.press('Enter');
  await dlg.waitFor();
  await page.keyboard.press('Tab');
  eq(await page.evaluate(() => document.activeElement.textContent), 'Delete endpoint', 'Tab reaches the confirm button');
  await page.keyboard.press('Enter');
  await c.waitFor({ state: 'detached' });
  eq((await srv.api('GET', '/v1/endpoints/' + made.id)).status, 404, 'deleted from the keyboard');
});

test('a narrow window is still usable by keyboard', async () => {
  await page.setViewportSize(NARROW);
  await goto('/endpoints');
  await card().waitFor();
  const over = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  assert(over <= 1, 'no sideways scrolling (' + over + ' px too wide)');
  await page.keyboard.press('Tab');
  eq(await page.evaluate(() => document.activeElement.textContent), 'Skip to content', 'first Tab reaches the skip link');
  const outline = await page.evaluate(() => getComputedStyle(document.activeElement).outlineStyle);
  assert(outline !== 'none', 'focus is visible');
  await page.keyboard.press('Enter');
  for (const name of ['Endpoints', 'Test', 'Deliveries', 'Charts', 'Event catalog']) {
    assert(await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name, exact: true }).isVisible(), name + ' link visible');
  }
  await shot(page, 'narrow-endpoints');
  await card().getByRole('button', { name: 'Disable…' }).click();
  await page.getByRole('dialog', { name: 'Disable this endpoint?' }).getByRole('button', { name: 'Disable' }).click();
  await card().locator('.badge', { hasText: 'Disabled' }).waitFor();
  await goto('/deliveries/' + st.failedDelivery);
  await page.getByRole('heading', { name: 'Attempts' }).waitFor();
  const over2 = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  assert(over2 <= 1, 'delivery page fits (' + over2 + ' px too wide)');
  await shot(page, 'narrow-delivery');
  await page.setViewportSize(WIDE);
});

test('enable, skipping the held deliveries', async () => {
  // The narrow-window test left the endpoint disabled by hand.
  const pub = await srv.api('POST', '/v1/events', { event: 'conversation.started', data: { conversation_id: 'conv-skip', agent_id: 'agent-1', channel: 'chat' } });
  eq(pub.status, 202, 'publish accepted');
  await goto('/endpoints');
  await card().locator('.held', { hasText: '1 held' }).waitFor();
  await card().getByRole('button', { name: 'Enable…' }).click();
  const dlg = page.getByRole('dialog', { name: 'Enable this endpoint?' });
  await dlg.getByLabel(/Skip/).check();
  await dlg.getByRole('button', { name: 'Enable' }).click();
  await card().locator('.badge', { hasText: 'Enabled' }).waitFor();
  await card().locator('.held', { hasText: '0 held' }).waitFor();
  const d = await until(async () => {
    const r = await srv.api('GET', '/v1/deliveries?event_id=' + pub.body.id);
    return r.body.data.length === 1 && r.body.data[0].status === 'failed' ? r.body.data[0] : null;
  }, 'the skipped delivery ends as failed');
  assert(!rc.requests.some((r) => r.headers['x-workflux-event-id'] === pub.body.id), 'the skipped event was not sent');
  await goto('/deliveries/' + d.id);
  await page.locator('dl.summary .badge', { hasText: 'Failed' }).waitFor();
  if (d.last_error) assert((await page.locator('main').textContent()).includes(d.last_error), 'why it failed: ' + d.last_error);
  await shot(page, 'delivery-skipped');
});

test('an attempt without an answer shows its error class', async () => {
  // A port nobody listens on: every attempt is a refused connection.
  const probe = net.createServer();
  await new Promise((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const port = probe.address().port;
  await new Promise((resolve) => probe.close(resolve));
  const ep = await srv.api('POST', '/v1/endpoints', { url: 'http://127.0.0.1:' + port + '/hook', event_types: ['integration.error'] });
  eq(ep.status, 201, 'endpoint created');
  const pub = await srv.api('POST', '/v1/events', { event: 'integration.error', data: { integration_id: 'int-1', integration_type: 'crm', error_code: 'E1', error_message: 'down' } });
  eq(pub.status, 202, 'publish accepted');
  const d = await until(async () => {
    const r = await srv.api('GET', '/v1/deliveries?event_id=' + pub.body.id);
    return r.body.data.length === 1 && r.body.data[0].attempts_made > 0 ? r.body.data[0] : null;
  }, 'a first attempt made');
  await goto('/deliveries/' + d.id);
  const cls = page.locator('li.attempt').first().locator('.error-class');
  await cls.waitFor();
  eq(await cls.textContent(), 'connect', 'the class is shown');
  assert((await cls.getAttribute('title')).includes('retried'), 'its meaning is in the title');
  assert((await page.locator('li.attempt').first().textContent()).includes('connection refused'), 'the plain message');
  await shot(page, 'delivery-error-class');
  const del = await srv.api('DELETE', '/v1/endpoints/' + ep.body.id);
  eq(del.status, 204, 'endpoint deleted');
});

test('a failed call shows the server\'s message, never a blank page', async () => {
  const res = await srv.api('GET', '/v1/deliveries/dlv_doesnotexist');
  eq(res.status, 404, 'API answers 404');
  await goto('/deliveries/dlv_doesnotexist');
  const alert = page.locator('main [role=alert]');
  await alert.waitFor();
  assert((await alert.textContent()).includes(res.body.error.message), 'the server\'s message: ' + await alert.textContent());
  await shot(page, 'error');
});

test('no script error or CSP violation in the page', async () => {
  eq(pageErrors.length, 0, 'page errors: ' + pageErrors.join(' | '));
});

test('the server stops cleanly; the open page then says it cannot reach it', async () => {
  await goto('/deliveries/' + st.failedDelivery);
  await page.locator('li.attempt').first().waitFor();
  const e = await srv.stop();
  eq(e.code, 0, 'exit status (log tail: ' + srv.log.slice(-1500) + ')');
  for (const mark of ['ERROR: AddressSanitizer', 'ERROR: LeakSanitizer', 'runtime error:']) {
    assert(!srv.log.includes(mark), 'no sanitizer report: ' + mark);
  }
  await until(async () => (await page.locator('main [role=alert]').allTextContents())
    .some((t) => t.includes('Cannot reach the fluxhook server')), 'the page reports the lost server', 10000);
  assert((await page.locator('main').textContent()).includes('Attempt 1'), 'what was shown stays');
  await shot(page, 'server-gone');
  await browser.close();
  browser = null;
}, 30000);

// --- main ---

async function main() {
  let passed = 0;
  let failed = 0;
  const stopAll = async () => {
    if (browser) await browser.close().catch(() => {});
    await srv.stop().catch(() => {});
    await rc.close().catch(() => {});
    srv.cleanup();
  };
  for (const sig of ['SIGINT', 'SIGTERM']) {
    process.on(sig, () => { stopAll().finally(() => process.exit(1)); });
  }
  try {
    await rc.listen();
    await srv.start();
    browser = await chromium.launch({
      executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
             '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    });
    const context = await browser.newContext({ viewport: WIDE });
    page = await context.newPage();
    page.setDefaultTimeout(10000);
    page.on('pageerror', (e) => pageErrors.push(String(e)));
    page.on('console', (m) => {
      if (m.type() === 'error' && /Content Security Policy|Refused to/i.test(m.text())) pageErrors.push(m.text());
    });
  } catch (e) {
    console.log('not ok - setup: ' + (e.stack || e));
    await stopAll();
    console.log('browser: 0 passed, ' + Math.max(1, tests.length) + ' failed');
    process.exit(1);
  }
  for (const t of tests) {
    const start = Date.now();
    try {
      await withTimeout(Promise.resolve().then(t.fn), t.timeout, t.name);
      passed += 1;
      console.log('ok - ' + t.name + ' (' + (Date.now() - start) + ' ms)');
    } catch (e) {
      failed += 1;
      console.log('not ok - ' + t.name + ': ' + String(e && e.message ? e.message : e).replace(/\x1b\[[0-9;]*m/g, ''));
      if (page && browser) await shot(page, 'failed-' + t.name.replace(/[^a-z0-9]+/gi, '-').toLowerCase()).catch(() => {});
    }
  }
  await stopAll();
  if (failed) console.log('--- server log (tail) ---\n' + srv.log.slice(-4000));
  console.log('browser: ' + passed + ' passed, ' + failed + ' failed');
  process.exit(failed ? 1 : 0);
}

main();
