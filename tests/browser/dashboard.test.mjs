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
const WIDE = { width: 1366, height: 900 };
const NARROW = { width: 390, height: 844 };
const ZONE = 'Europe/Paris'; // the browser's zone: local times must differ from UTC

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
    this.retryAfter = 0;
    this.requests = [];
    this.server = http.createServer((req, res) => {
      const chunks = [];
      req.on('data', (c) => chunks.push(c));
      req.on('end', () => {
        this.requests.push({ method: req.method, path: req.url, headers: req.headers, body: Buffer.concat(chunks), status: this.status });
        const hd = { 'Content-Type': 'text/plain', 'X-Receiver-Request': String(this.requests.length) };
        if (this.retryAfter) hd['Retry-After'] = String(this.retryAfter);
        res.writeHead(this.status, hd);
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

// The endpoint's row in the list, and its page (a tab: '', deliveries, charts, test, settings).
function epRow(id = st.endpoint) {
  return page.locator('tr[data-endpoint="' + id + '"]');
}

async function openEndpoint(tab = '', id = st.endpoint) {
  await goto('/endpoints/' + id + (tab ? '/' + tab : ''));
  await page.locator('nav[aria-label=Endpoint] a[aria-current=page]').waitFor();
}

function section(id) { return page.locator('section[aria-labelledby=' + id + ']'); }

async function overflow() {
  return page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
}

// The same view at both widths, as screenshots w1366-NAME and w390-NAME; at
// 390 px nothing may scroll sideways.
async function shots(name) {
  await shot(page, 'w1366-' + name);
  await page.setViewportSize(NARROW);
  try {
    await page.waitForTimeout(50); // one layout pass at the new width before measuring
    const over = await overflow();
    assert(over <= 1, name + ' at 390 px scrolls sideways by ' + over + ' px');
    await shot(page, 'w390-' + name);
  } finally {
    await page.setViewportSize(WIDE);
  }
}

async function clipboard() {
  return page.evaluate(() => navigator.clipboard.readText());
}

function hmacHex(secret, body) {
  return crypto.createHmac('sha256', secret).update(body).digest('hex');
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
  await shots('signin');
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
  await page.getByLabel('Account').waitFor();
  await shots('endpoints-empty');
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
  await shots('endpoint-form-error');
});

test('create an endpoint: it opens on its own page, ready to test', async () => {
  await page.getByLabel('URL').fill(rc.url);
  await page.getByLabel('Description (optional)').fill('browser test receiver');
  await page.getByLabel('conversation.started').check();
  await page.getByLabel('agent.response').check();
  await page.getByRole('button', { name: 'Create endpoint' }).click();
  await page.getByRole('heading', { name: 'Send a test event' }).waitFor();
  const list = await srv.api('GET', '/v1/endpoints');
  eq(list.body.data.length, 1, 'one endpoint');
  const ep = list.body.data[0];
  st.endpoint = ep.id;
  eq(new URL(page.url()).pathname, '/endpoints/' + ep.id + '/test', 'the endpoint page\'s Test tab');
  eq(ep.url, rc.url, 'its URL');
  eq([...ep.event_types].sort().join(','), 'agent.response,conversation.started', 'its event types');
  assert((await page.locator('h1').textContent()).includes(rc.url), 'the page is named by its URL');
  // The list: one row per endpoint, no buttons; the URL opens the page.
  await nav('Endpoints');
  await epRow().waitFor();
  const text = await epRow().textContent();
  assert(text.includes(rc.url) && text.includes('browser test receiver'), 'row shows URL and description');
  eq(await epRow().locator('button').count(), 0, 'no buttons in the list');
  await epRow().locator('.badge', { hasText: 'Enabled' }).waitFor();
  await shots('endpoints');
  await epRow().getByRole('link', { name: rc.url }).click();
  await page.getByRole('heading', { name: 'Health, last 24 hours' }).waitFor();
  await page.getByText('No delivery yet.').waitFor();
  await shots('endpoint-overview-empty');
});

test('charts of a new endpoint say there is nothing yet', async () => {
  await openEndpoint('charts');
  await page.getByRole('heading', { name: /^Attempts per minute by outcome/ }).waitFor();
  const empty = page.locator('.chart-empty');
  await until(async () => (await empty.count()) === 2, 'both charts show their empty state');
  assert((await empty.first().textContent()).includes('No attempt in the last hour'), 'the empty state says why');
  eq(await page.locator('svg.chart').count(), 0, 'no empty axes drawn');
  await shots('endpoint-charts-empty');
});

test('edit an endpoint: the form is filled in and saves', async () => {
  await openEndpoint('settings');
  await page.getByRole('link', { name: 'Edit URL and events' }).click();
  await page.getByRole('heading', { name: 'Edit endpoint' }).waitFor();
  eq(await page.getByLabel('URL').inputValue(), rc.url, 'URL filled in');
  assert(await page.getByLabel('conversation.started').isChecked(), 'subscribed type checked');
  assert(!(await page.getByLabel('agent.updated').isChecked()), 'other type unchecked');
  await page.getByLabel('Description (optional)').fill('edited receiver');
  await page.getByLabel('agent.updated').check();
  await page.getByRole('button', { name: 'Save changes' }).click();
  await page.getByRole('heading', { name: 'Subscription' }).waitFor();
  await until(async () => (await page.locator('.ep-head').textContent()).includes('edited receiver'), 'the new description on the page');
  const ep = (await srv.api('GET', '/v1/endpoints/' + st.endpoint)).body;
  eq(ep.description, 'edited receiver', 'description saved');
  eq([...ep.event_types].sort().join(','), 'agent.response,agent.updated,conversation.started', 'types saved');
  assert((await section('h-sub').textContent()).includes('agent.updated'), 'the subscription shown');
  await shots('endpoint-settings');
});

test('send a test event and see it delivered with 200', async () => {
  await nav('Test');
  await page.getByLabel('Endpoint').selectOption(st.endpoint);
  await page.getByLabel('Event type').selectOption('conversation.started');
  await until(async () => (await page.getByLabel('Event data (JSON)').inputValue()).includes('conv-123'), 'the sample payload');
  const before = rc.requests.length;
  await page.getByRole('button', { name: 'Send test event' }).click();
  const item = page.locator('li.sent-item').first();
  await item.locator('.badge', { hasText: 'Delivered — HTTP 200' }).waitFor({ timeout: 15000 });
  await until(async () => (await item.textContent()).includes('Accepted: HTTP 200'), 'the attempt in words');
  st.firstDelivery = await item.getAttribute('data-delivery');
  const req = await until(() => rc.requests.slice(before).find((r) => r.headers['x-workflux-delivery'] === st.firstDelivery), 'the receiver got it');
  eq(req.headers['x-workflux-event'], 'conversation.started', 'event header');
  const sec = await srv.api('GET', '/v1/endpoints/' + st.endpoint + '/secret');
  eq(req.headers['x-workflux-signature'], hmacHex(sec.body.secret, req.body), 'signature verifies with the endpoint secret');
  await shots('test');
});

test('the test payload is editable and checked against the catalog as you type', async () => {
  await openEndpoint('test');
  await page.getByLabel('Event type').selectOption('conversation.completed');
  const box = page.getByLabel('Event data (JSON)');
  const check = page.locator('.check-result');
  const send = page.getByRole('button', { name: 'Send test event' });
  await check.getByText('Matches the catalog for conversation.completed.').waitFor();
  // Broken JSON, then a broken field: named at once, and nothing can be sent.
  await box.fill('{"conversation_id": ');
  await check.getByText(/is not valid JSON/).waitFor();
  assert(await send.isDisabled(), 'send is off while the JSON is broken');
  eq(await box.getAttribute('aria-invalid'), 'true', 'the box is marked invalid');
  const bad = { conversation_id: 'conv-live', agent_id: 'agent-1', duration_seconds: -5, messages_count: 2, was_escalated: 'no', satisfaction_score: 9 };
  await box.fill(JSON.stringify(bad, null, 2));
  await until(async () => (await check.textContent()).includes('3 problems'), 'three problems listed');
  const listed = await check.textContent();
  for (const p of ['data.duration_seconds', 'data.was_escalated', 'data.satisfaction_score']) assert(listed.includes(p), p + ' named: ' + listed);
  // The server agrees field for field (the dashboard checks with the catalog it loaded).
  const srvCheck = await srv.api('POST', '/v1/endpoints/' + st.endpoint + '/test', { event: 'conversation.completed', data: bad });
  eq(srvCheck.status, 422, 'the server refuses the same data');
  eq(srvCheck.body.error.fields.map((f) => f.path).sort().join(','), 'data.duration_seconds,data.satisfaction_score,data.was_escalated', 'same paths');
  await shots('test-invalid');
  const good = { ...bad, duration_seconds: 42, was_escalated: true, satisfaction_score: 4 };
  await box.fill(JSON.stringify(good));
  await check.getByText('Matches the catalog').waitFor();
  const before = rc.requests.length;
  await send.click();
  const req = await until(() => rc.requests.slice(before).find((r) => r.headers['x-workflux-event'] === 'conversation.completed'), 'the edited event arrives');
  eq(JSON.stringify(JSON.parse(req.body).data), JSON.stringify(good), 'the receiver got the edited data');
});

test('a retried delivery says which attempt comes next and when', async () => {
  rc.status = 503;
  rc.retryAfter = 60;
  const pub = await srv.api('POST', '/v1/events', { event: 'agent.response', data: { conversation_id: 'conv-r', agent_id: 'agent-r', message_id: 'msg-r', content: 'retry me' } });
  eq(pub.status, 202, 'publish accepted');
  const d = await until(async () => {
    const r = await srv.api('GET', '/v1/deliveries?event_id=' + pub.body.id);
    return r.body.data[0] && r.body.data[0].attempts_made === 1 && r.body.data[0].status === 'pending' ? r.body.data[0] : null;
  }, 'the first attempt refused and rescheduled');
  st.retrying = d.id;
  await goto('/deliveries/' + d.id);
  const state = page.locator('.state-line .badge');
  const of = d.max_attempts ? ' of ' + d.max_attempts : '';
  await until(async () => /^Retrying — attempt 2/.test(await state.textContent()), 'Retrying in words');
  const text = await state.textContent();
  assert(new RegExp('^Retrying — attempt 2' + of + ', next in (\\d+ s|1 min)$').test(text), 'attempt and time: ' + text);
  // Local time with the zone; UTC on hover.
  const t = page.locator('dl.summary time').last();
  const shown = await t.textContent();
  assert(/ (CET|CEST|GMT\+[12])$/.test(shown), 'the local zone is named: ' + shown);
  const title = await t.getAttribute('title');
  assert(/ UTC$/.test(title), 'UTC on hover: ' + title);
  const utc = new Date(d.created_at).toISOString().slice(11, 19);
  assert(title.includes(utc) && !shown.includes(utc), 'local and UTC differ: ' + shown + ' / ' + title);
  await shots('delivery-retrying');
  // The list says it in the same words.
  await goto('/deliveries?event=agent.response');
  await page.locator('tr[data-delivery="' + d.id + '"] .badge', { hasText: /^Retrying — attempt 2/ }).waitFor();
  rc.retryAfter = 0;
  rc.status = 200;
  await srv.api('POST', '/v1/deliveries/' + d.id + '/retry', {});
  await until(async () => (await srv.api('GET', '/v1/deliveries/' + d.id)).body.status === 'delivered', 'delivered after the retry');
});

test('a failing receiver: retries, then failed in words, the disabled banner and the held count', async () => {
  rc.status = 503;
  await nav('Test');
  await page.getByLabel('Endpoint').selectOption(st.endpoint);
  await page.getByLabel('Event type').selectOption('conversation.started');
  await page.getByRole('button', { name: 'Send test event' }).click();
  const item = page.locator('li.sent-item').first();
  await until(async () => (await item.getAttribute('data-delivery')) !== st.firstDelivery, 'a new sent item');
  st.failedDelivery = await item.getAttribute('data-delivery');
  await item.locator('.badge', { hasText: 'Failed — 503 after 5 attempts, retries exhausted' }).waitFor({ timeout: 20000 });
  const d = await srv.api('GET', '/v1/deliveries/' + st.failedDelivery);
  eq(d.body.attempts.length, 5, 'five attempts, as the schedule says');
  await until(async () => (await srv.api('GET', '/v1/endpoints/' + st.endpoint)).body.status === 'disabled', 'endpoint disabled by the server');
  await openEndpoint();
  await page.locator('.ep-head .badge', { hasText: 'Disabled' }).waitFor();
  const banner = page.locator('#banners [data-banner=endpoint-disabled]');
  await banner.waitFor();
  assert((await banner.textContent()).includes('held, not dropped'), 'the banner says what happens');
  const pub = await srv.api('POST', '/v1/events', { event: 'agent.response', data: { conversation_id: 'conv-9', agent_id: 'agent-9', message_id: 'msg-9', content: 'held for later' } });
  eq(pub.status, 202, 'publish accepted');
  st.heldEvent = pub.body.id;
  // The page updates itself (polling), no reload.
  await page.locator('.ep-head .held', { hasText: '1 held' }).waitFor({ timeout: 10000 });
  const held = await until(async () => (await srv.api('GET', '/v1/deliveries?event_id=' + pub.body.id)).body.data[0], 'the held delivery');
  await page.locator('#ep-recent li[data-delivery="' + held.id + '"] .badge', { hasText: 'Held — endpoint disabled' }).waitFor();
  const text = await page.locator('.ep-head .ep-status').textContent();
  const ep = (await srv.api('GET', '/v1/endpoints/' + st.endpoint)).body;
  assert(ep.disabled_reason && text.includes(ep.disabled_reason), 'the reason is shown: ' + text);
  assert(text.includes('since'), 'the time is shown');
  await shots('endpoint-disabled');
  // The banner goes with the page.
  await nav('Event catalog');
  await banner.waitFor({ state: 'detached' });
}, 45000);

test('success rate is one of deliveries, beside the counts it comes from', async () => {
  await openEndpoint();
  const s = (await srv.api('GET', '/v1/endpoints/' + st.endpoint + '/stats')).body.day;
  const c = s.counts;
  const ended = c.delivered + c.failed;
  assert(c.failed >= 1 && c.delivered >= 1, 'both outcomes present: ' + JSON.stringify(c));
  const r = c.delivered / ended;
  const want = (r * 100).toFixed(r === 0 || r === 1 ? 0 : 1) + '% (' + c.delivered + ' of ' + ended + ')';
  const tile = page.locator('#ep-health .tile.rate strong');
  await until(async () => (await tile.textContent()) === want, 'rate tile ' + want);
  assert(Math.abs(s.success_rate - c.delivered / ended) < 1e-9, 'the API\'s rate is the same definition');
  assert((await page.locator('#ep-health .tile.ok strong').textContent()) === String(c.delivered), 'delivered count beside it');
  assert((await page.locator('#ep-health .tile.bad strong').textContent()) === String(c.failed), 'failed count beside it');
  assert((await page.locator('main').textContent()).includes('delivered ÷ (delivered + failed)'), 'the definition is written');
  await shots('endpoint-overview');
  await openEndpoint('deliveries');
  await page.locator('table.deliveries tbody tr').first().waitFor();
  await shots('endpoint-deliveries');
  await nav('Endpoints');
  await until(async () => (await epRow().locator('.success-rate').textContent()) === want, 'the list uses the same rate');
});

test('open a delivery: plain-word errors, the headers sent and answered, copy payload and curl', async () => {
  await nav('Deliveries');
  await page.getByLabel('Status').selectOption('failed');
  const row = page.locator('tr[data-delivery="' + st.failedDelivery + '"]');
  await row.waitFor();
  await shots('deliveries-failed');
  await row.getByRole('link').click();
  await page.getByRole('heading', { name: 'Attempts' }).waitFor();
  const attempts = page.locator('li.attempt');
  await until(async () => (await attempts.count()) === 5, 'five attempts listed');
  const host = new URL(rc.url).host;
  for (let i = 0; i < 5; i++) {
    const t = await attempts.nth(i).locator('.attempt-head').textContent();
    assert(t.includes('Attempt ' + (5 - i)) && t.includes('Refused: HTTP 503 from ' + host), 'attempt ' + (5 - i) + ' in words: ' + t);
  }
  const first = page.locator('li.attempt[data-attempt="1"]');
  await first.locator('details.got-body summary').click();
  assert((await first.textContent()).includes('receiver says: unavailable'), 'the kept response body');
  // The headers actually sent, signatures included, as the receiver got them.
  const got = rc.requests.find((r) => r.headers['x-workflux-delivery'] === st.failedDelivery && r.headers['x-workflux-attempt'] === '1');
  await first.locator('details.sent-headers summary').click();
  const sent = await first.locator('details.sent-headers').textContent();
  for (const k of ['x-workflux-signature', 'webhook-signature', 'webhook-timestamp', 'x-workflux-delivery']) {
    assert(sent.includes(got.headers[k]), k + ' value shown: ' + got.headers[k]);
  }
  await first.locator('details.got-headers summary').click();
  const answered = await first.locator('details.got-headers').textContent();
  assert(answered.includes('X-Receiver-Request') && answered.includes('text/plain'), 'the response headers kept: ' + answered);
  await shots('delivery');
  // Copy payload: the exact bytes sent (the signature verifies over them).
  const sec = (await srv.api('GET', '/v1/endpoints/' + st.endpoint + '/secret')).body;
  await page.getByRole('button', { name: 'Copy payload' }).click();
  const payload = await until(async () => { const v = await clipboard(); return v.startsWith('{') ? v : null; }, 'the payload on the clipboard');
  eq(payload, got.body.toString(), 'the payload copied byte for byte');
  // Copy as curl, then run it: the receiver gets the same body and signatures.
  await first.getByRole('button', { name: 'Copy as curl' }).click();
  const cmd = await until(async () => { const v = await clipboard(); return v.startsWith('curl ') ? v : null; }, 'the curl command on the clipboard');
  rc.status = 200;
  const before = rc.requests.length;
  const run = spawn('sh', ['-c', cmd + ' -s -o /dev/null']);
  const code = await new Promise((resolve) => run.on('exit', resolve));
  eq(code, 0, 'curl ran');
  const again = await until(() => rc.requests[before], 'the curl request arrived');
  eq(again.body.toString(), got.body.toString(), 'same body');
  for (const k of ['x-workflux-signature', 'webhook-signature', 'webhook-id', 'webhook-timestamp', 'content-type']) {
    eq(again.headers[k], got.headers[k], k + ' replayed');
  }
  eq(again.headers['x-workflux-signature'], hmacHex(sec.secret, again.body), 'and it verifies');
});

test('enable (resume) from the endpoint\'s settings and see the held delivery go out', async () => {
  rc.status = 200;
  const before = rc.requests.length;
  await openEndpoint('settings');
  await page.getByRole('button', { name: 'Enable…' }).click();
  const dlg = page.getByRole('dialog', { name: 'Enable this endpoint?' });
  await dlg.waitFor();
  await shots('dialog-enable');
  await dlg.getByLabel(/Resume/).check();
  await dlg.getByRole('button', { name: 'Enable' }).click();
  await page.locator('.ep-head .badge', { hasText: 'Enabled' }).waitFor();
  await page.locator('.ep-head .held', { hasText: '0 held' }).waitFor({ timeout: 10000 });
  await until(() => rc.requests.slice(before).find((r) => r.headers['x-workflux-event-id'] === st.heldEvent && r.status === 200), 'the held event delivered');
  eq(await page.locator('#banners [data-banner]').count(), 0, 'no banner once enabled');
});

test('retry a failed delivery from its page', async () => {
  await goto('/deliveries/' + st.failedDelivery);
  await page.getByRole('heading', { name: 'Attempts' }).waitFor();
  await page.getByRole('button', { name: 'Retry now' }).click();
  await page.locator('.state-line .badge', { hasText: /^Delivered — HTTP 200 after 6 attempts$/ }).waitFor({ timeout: 15000 });
  await until(async () => (await page.locator('li.attempt').count()) === 6, 'a sixth attempt listed');
  assert((await page.locator('li.attempt[data-attempt="6"]').textContent()).includes('Accepted: HTTP 200'), 'the retry got 200');
});

test('an answer that is not retried says so', async () => {
  rc.status = 404;
  try {
    const t = await srv.api('POST', '/v1/endpoints/' + st.endpoint + '/test', { event: 'conversation.started' });
    eq(t.status, 202, 'test accepted');
    await until(async () => (await srv.api('GET', '/v1/deliveries/' + t.body.delivery_id)).body.status === 'failed', 'failed at once');
    await goto('/deliveries/' + t.body.delivery_id);
    await page.locator('.state-line .badge', { hasText: /^Failed — 404, not retried$/ }).waitFor();
    eq(await page.locator('li.attempt').count(), 1, 'one attempt only');
  } finally {
    rc.status = 200;
  }
});

test('find deliveries by event id, by delivery id, and by date range', async () => {
  await goto('/deliveries');
  const rows = page.locator('table.deliveries tbody tr');
  await rows.first().waitFor();
  const search = page.getByLabel('Event or delivery id');
  // By delivery id: that one delivery.
  await search.fill(st.failedDelivery);
  await search.press('Enter');
  await until(async () => (await rows.count()) === 1 && (await rows.first().getAttribute('data-delivery')) === st.failedDelivery, 'the delivery found');
  eq(new URL(page.url()).searchParams.get('q'), st.failedDelivery, 'the search is in the address');
  // By event id: its deliveries.
  const held = (await srv.api('GET', '/v1/deliveries?event_id=' + st.heldEvent)).body.data;
  await search.fill(st.heldEvent);
  await search.press('Enter');
  await until(async () => (await rows.count()) === held.length && (await rows.first().getAttribute('data-delivery')) === held[0].id, 'the event\'s deliveries');
  await shots('deliveries-search');
  // Unknown and malformed terms say so.
  await search.fill('dlv_01JE0000000000000000000000');
  await search.press('Enter');
  await page.getByText('No delivery with id dlv_01JE0000000000000000000000 in this account.').waitFor();
  await search.fill('hello');
  await search.press('Enter');
  await page.getByText(/takes an event id \(evt_…\) or a delivery id \(dlv_…\)/).waitFor();
  await page.getByRole('button', { name: 'Clear filters' }).click();
  await rows.first().waitFor();
  // A date range: from the held event's minute to the next; every row inside it, and all of them.
  const created = new Date(held[0].created_at);
  const from = new Date(created); from.setSeconds(0, 0);
  const to = new Date(from.getTime() + 60000);
  const local = (d) => d.getFullYear() + '-' + String(d.getMonth() + 1).padStart(2, '0') + '-' + String(d.getDate()).padStart(2, '0') + 'T' + String(d.getHours()).padStart(2, '0') + ':' + String(d.getMinutes()).padStart(2, '0');
  // The inputs read local time in the page's zone: the test builds it there too.
  const inZone = (d) => new Date(d.toLocaleString('en-US', { timeZone: ZONE }));
  await page.getByLabel(/^Created from/).fill(local(inZone(from)));
  await page.getByLabel(/^Created from/).dispatchEvent('change');
  await page.getByLabel(/^Created before/).fill(local(inZone(to)));
  await page.getByLabel(/^Created before/).dispatchEvent('change');
  const want = (await srv.api('GET', '/v1/deliveries?limit=25&since=' + from.toISOString() + '&until=' + to.toISOString())).body.data;
  assert(want.some((d) => d.id === held[0].id), 'the API range holds the held delivery');
  await until(async () => (await rows.count()) === want.length && (await rows.first().getAttribute('data-delivery')) === want[0].id, 'the rows of that minute (' + want.length + ')');
  assert((await page.getByLabel(/^Created from/).locator('xpath=..').textContent()).match(/CET|CEST|GMT/), 'the inputs name their zone');
  const q = new URL(page.url()).searchParams;
  eq(q.get('since'), from.toISOString(), 'since in the address');
  await shots('deliveries-range');
  await page.getByRole('button', { name: 'Clear filters' }).click();
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
  await shots('deliveries');
});

test('replay shows how many first, asks, and sends only when confirmed', async () => {
  await openEndpoint('settings');
  const form = page.locator('#replay-form');
  await form.getByLabel('Deliveries to replay').selectOption('');
  const since = new Date(Date.now() - 3600 * 1000).toISOString();
  let want = 0;
  for (const status of ['delivered', 'failed']) {
    want += (await srv.api('GET', '/v1/deliveries?limit=500&endpoint_id=' + st.endpoint + '&status=' + status + '&since=' + since)).body.data.length;
  }
  assert(want >= 30, 'many to replay: ' + want);
  const before = rc.requests.length;
  // The count is the server's dry run (one request), not pages of the list.
  const asked = [];
  const watch = (req) => { if (req.url().includes('/v1/')) asked.push(req.method() + ' ' + req.url().replace(/^.*?\/v1\//, '/v1/') + ' ' + (req.postData() || '')); };
  page.on('request', watch);
  const preview = page.waitForResponse((r) => r.url().endsWith('/replay') && (r.request().postData() || '').includes('"dry_run":true'));
  await form.getByRole('button', { name: 'Replay…' }).click();
  let dlg = page.getByRole('dialog', { name: /^Replay \d+ deliveries\?$/ });
  await dlg.waitFor();
  page.off('request', watch);
  const dry = await (await preview).json();
  const n = Number((await dlg.getByRole('heading').textContent()).match(/\d+/)[0]);
  eq(n, dry.would_replay, 'the dialog shows the exact count of the dry run');
  assert(!(await dlg.textContent()).includes('at least'), 'an exact count, not "at least"');
  eq(asked.filter((a) => a.startsWith('GET /v1/deliveries')).length, 0, 'no paging of the list: ' + asked.join('; '));
  assert(Math.abs(n - want) <= 2, 'the count matches the deliveries (' + n + ' vs ' + want + ')');
  await shots('dialog-replay');
  await dlg.getByRole('button', { name: 'Cancel' }).click();
  await page.getByText('Replay cancelled; nothing was sent.').waitFor();
  const quiet = rc.requests.length;
  eq(quiet, before, 'cancel sends nothing');
  await form.getByRole('button', { name: 'Replay…' }).click();
  dlg = page.getByRole('dialog', { name: /^Replay \d+ deliveries\?$/ });
  await dlg.getByRole('button', { name: /^Replay \d+ deliveries$/ }).click();
  const done = await until(async () => {
    const t = await page.locator('#replay-out .ok').textContent().catch(() => '');
    return /Replaying (\d+) deliveries\./.test(t) ? Number(t.match(/\d+/)[0]) : null;
  }, 'the replay reported');
  assert(Math.abs(done - n) <= 2, 'replayed what was shown (' + done + ' vs ' + n + ')');
  await until(() => rc.requests.length >= before + done, 'the replayed deliveries arrive', 20000);
});

test('reveal, copy and rotate the secret', async () => {
  await openEndpoint('settings');
  const box = section('h-secret');
  const old = (await srv.api('GET', '/v1/endpoints/' + st.endpoint + '/secret')).body.secret;
  await box.getByRole('button', { name: 'Reveal' }).click();
  await until(async () => (await box.locator('code.secret').textContent()) === old, 'the secret revealed');
  await box.getByRole('button', { name: 'Copy secret' }).click();
  await page.locator('#toast').filter({ hasText: /Copied|Could not copy/ }).waitFor();
  eq(await clipboard(), old, 'the secret on the clipboard');
  await box.getByRole('button', { name: 'Hide' }).click();
  assert(!(await box.textContent()).includes(old), 'masked again');
  await box.getByRole('button', { name: 'Rotate…' }).click();
  const dlg = page.getByRole('dialog', { name: 'Rotate the signing secret?' });
  await dlg.getByRole('button', { name: 'Rotate secret' }).click();
  const now = await until(async () => {
    const v = await box.locator('code.secret').textContent();
    return v.startsWith('whsec_') && v !== old && !v.includes('•') ? v : null;
  }, 'the new secret shown');
  eq((await srv.api('GET', '/v1/endpoints/' + st.endpoint + '/secret')).body.secret, now, 'the page shows the current secret');
  assert((await box.locator('.prev-secret').textContent()).includes('previous secret also signs webhook-signature until'), 'the grace period is shown');
  const before = rc.requests.length;
  const t = await srv.api('POST', '/v1/endpoints/' + st.endpoint + '/test', { event: 'conversation.started' });
  eq(t.status, 202, 'test accepted');
  const req = await until(() => rc.requests.slice(before).find((r) => r.headers['x-workflux-delivery'] === t.body.delivery_id), 'the signed delivery');
  eq(req.headers['x-workflux-signature'], hmacHex(now, req.body), 'signed with the new secret');
  await shots('endpoint-secret');
});

test('charts count attempts as attempts, deliveries as deliveries', async () => {
  await nav('Charts');
  await page.locator('svg.chart rect.c-ok').first().waitFor();
  assert((await page.locator('svg.chart rect.c-fail, svg.chart rect.c-retry').count()) > 0, 'failures and retries drawn');
  await page.getByRole('heading', { name: 'Attempts per minute by outcome' }).waitFor();
  eq(await page.getByRole('heading', { name: /Deliveries per/ }).count(), 0, 'no chart of attempts is called deliveries');
  const series = (await srv.api('GET', '/v1/stats/series?window=1h')).body.data;
  const attempts = series.reduce((a, b) => a + b.delivered + b.failed + b.retried, 0);
  const stats = (await srv.api('GET', '/v1/stats')).body.hour;
  eq(attempts, stats.attempts, 'the chart\'s bars add up to the attempts');
  await until(async () => (await page.locator('.tiles').textContent()).includes('Attempts' + stats.attempts) ||
    (await page.locator('.tile', { hasText: /^Attempts/ }).locator('strong').textContent()) === String(stats.attempts), 'the attempts tile');
  const c = stats.counts;
  const rate = await page.locator('.tile.rate strong').textContent();
  assert(rate.endsWith('(' + c.delivered + ' of ' + (c.delivered + c.failed) + ')'), 'the rate beside its counts: ' + rate);
  await shots('charts');
  await page.getByLabel('Last day').check();
  await page.locator('svg.chart rect.c-ok').first().waitFor();
  await openEndpoint('charts');
  await page.locator('svg.chart rect.c-ok').first().waitFor();
  await shots('endpoint-charts');
});

test('event catalog lists the nine types with samples and links to the receiving guide', async () => {
  await nav('Event catalog');
  eq(await page.locator('section.event-type').count(), 9, 'nine event types');
  const text = await page.locator('main').textContent();
  assert(text.includes('data.conversation_id'), 'fields listed');
  // No code of its own: the receiving guide holds the verification examples.
  assert(!text.includes('def verify_webhook'), 'no Python snippets of its own');
  eq(await page.evaluate(() => [...document.querySelectorAll('main pre')].filter((p) => !p.closest('section.event-type')).length), 0,
    'code blocks only for the samples');
  await shots('catalog');
  await page.getByRole('link', { name: 'how to verify both signatures' }).click();
  await page.getByRole('heading', { name: 'Receiving fluxhook deliveries', level: 1 }).waitFor();
  eq(new URL(page.url()).pathname + new URL(page.url()).hash, '/receiving#verify', 'the guide\'s verify section');
  await until(() => page.evaluate(() => document.activeElement && document.activeElement.id === 'verify'), 'the section has the focus');
  assert(await page.locator('#verify').isVisible(), 'the section in view');
  assert((await page.locator('#verify').textContent()).includes('webhook-signature'), 'it explains webhook-signature');
});

test('index.html preloads every module the dashboard loads (no second round of fetches)', async () => {
  await page.reload();
  await page.locator('main h1').first().waitFor();
  const r = await page.evaluate(() => ({
    loaded: performance.getEntriesByType('resource').map((e) => new URL(e.name).pathname).filter((p) => p.endsWith('.js')),
    listed: [...document.querySelectorAll('link[rel=modulepreload], script[type=module]')].map((l) => new URL(l.href || l.src).pathname),
  }));
  assert(r.loaded.length >= 10, 'the modules loaded: ' + r.loaded.join(' '));
  for (const p of r.loaded) assert(r.listed.includes(p), p + ' is in index.html\'s modulepreload list');
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

test('delete an endpoint from its settings, after a confirmation', async () => {
  const mk = await srv.api('POST', '/v1/endpoints', { url: rc.url + '/second', description: 'to delete' });
  eq(mk.status, 201, 'second endpoint created');
  await openEndpoint('settings', mk.body.id);
  await page.getByRole('button', { name: 'Delete…' }).click();
  await shots('dialog-delete');
  await page.getByRole('dialog', { name: 'Delete this endpoint?' }).getByRole('button', { name: 'Cancel' }).click();
  eq((await srv.api('GET', '/v1/endpoints/' + mk.body.id)).status, 200, 'cancel keeps it');
  await page.getByRole('button', { name: 'Delete…' }).click();
  await page.getByRole('dialog', { name: 'Delete this endpoint?' }).getByRole('button', { name: 'Delete endpoint' }).click();
  await page.getByRole('heading', { name: 'Endpoints', level: 1 }).waitFor();
  await epRow(mk.body.id).waitFor({ state: 'detached' });
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
  await epRow().waitFor();
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

function axePages() {
  const e = '/endpoints/' + st.endpoint;
  return [
    ['/endpoints', () => epRow().waitFor()],
    [e, () => page.locator('#ep-health .tile').first().waitFor()],
    [e + '/deliveries', () => page.locator('table.deliveries tbody tr').first().waitFor()],
    [e + '/charts', () => page.locator('svg.chart').first().waitFor()],
    [e + '/test', () => page.locator('.check-result .ok').waitFor()],
    [e + '/settings', () => page.locator('#replay-form').waitFor()],
    [e + '/edit', () => page.getByRole('heading', { name: 'Edit endpoint' }).waitFor()],
    ['/test', () => page.getByRole('button', { name: 'Send test event' }).waitFor()],
    ['/deliveries', () => page.locator('table.deliveries tbody tr').first().waitFor()],
    ['/deliveries/' + st.failedDelivery, () => page.locator('li.attempt').first().waitFor()],
    ['/charts', () => page.locator('svg.chart').first().waitFor()],
    ['/catalog', () => page.locator('section.event-type').first().waitFor()],
    ['/audit', () => page.locator('table.audit tbody tr').first().waitFor()],
  ];
}

test('every page passes axe-core\'s WCAG 2.1 AA checks, at both widths', async () => {
  const found = [];
  for (const size of [WIDE, NARROW]) {
    await page.setViewportSize(size);
    for (const [p, ready] of axePages()) {
      await goto(p);
      await ready();
      // The attempt's details open, so their tables are checked too.
      for (const s of await page.locator('details:not([open]) > summary').all()) await s.click({ timeout: 1000 }).catch(() => {});
      for (const v of await axeViolations()) found.push(size.width + ' ' + p + ': ' + v);
    }
  }
  await page.setViewportSize(WIDE);
  // The open dialog too.
  await openEndpoint('settings');
  await page.getByRole('button', { name: 'Disable…' }).click();
  await page.getByRole('dialog').waitFor();
  for (const v of await axeViolations()) found.push('disable dialog: ' + v);
  await page.keyboard.press('Escape');
  await page.getByRole('dialog').waitFor({ state: 'detached' });
  // And the open menu at 390 px.
  await page.setViewportSize(NARROW);
  await page.getByRole('button', { name: 'Menu' }).click();
  for (const v of await axeViolations()) found.push('open menu: ' + v);
  await page.setViewportSize(WIDE);
  eq(found.length, 0, 'violations:\n  ' + found.join('\n  '));
}, 240000);

test('keyboard only: focus order into the form, dialogs take and give back focus', async () => {
  await goto('/endpoints');
  await epRow().waitFor();
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
  await page.getByRole('heading', { name: 'Send a test event' }).waitFor();
  const made = (await srv.api('GET', '/v1/endpoints')).body.data.find((e) => e.description === 'made with the keyboard');
  assert(made, 'endpoint created from the keyboard');
  await openEndpoint('settings', made.id);
  const del = page.getByRole('button', { name: 'Delete…' });
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
  await page.getByRole('heading', { name: 'Endpoints', level: 1 }).waitFor();
  eq((await srv.api('GET', '/v1/endpoints/' + made.id)).status, 404, 'deleted from the keyboard');
});

test('at 390 px: the menu folds, tables become cards, nothing scrolls sideways', async () => {
  await page.setViewportSize(NARROW);
  try {
    await goto('/deliveries');
    await page.locator('table.deliveries tbody tr').first().waitFor();
    const menu = page.getByRole('button', { name: 'Menu' });
    assert(await menu.isVisible(), 'a Menu button');
    eq(await menu.getAttribute('aria-expanded'), 'false', 'closed at first');
    const mainNav = page.getByRole('navigation', { name: 'Main' });
    assert(!(await mainNav.isVisible()), 'the links are folded away');
    // Every column of a row is visible in its card, labelled.
    const row = page.locator('table.deliveries tbody tr').first();
    eq(await row.evaluate((r) => getComputedStyle(r).display), 'block', 'a row is a card');
    for (const label of ['Status', 'Attempts', 'Last result']) {
      const cell = row.locator('[data-label="' + label + '"]');
      assert(await cell.isVisible(), label + ' visible');
      const box = await cell.boundingBox();
      assert(box.x >= 0 && box.x + box.width <= NARROW.width + 1, label + ' inside the screen: ' + JSON.stringify(box));
    }
    await page.keyboard.press('Tab');
    eq(await page.evaluate(() => document.activeElement.textContent), 'Skip to content', 'first Tab reaches the skip link');
    assert(await page.evaluate(() => getComputedStyle(document.activeElement).outlineStyle) !== 'none', 'focus is visible');
    await menu.click();
    eq(await menu.getAttribute('aria-expanded'), 'true', 'open');
    for (const name of ['Endpoints', 'Test', 'Deliveries', 'Charts', 'Event catalog']) {
      assert(await mainNav.getByRole('link', { name, exact: true }).isVisible(), name + ' link visible');
    }
    await shot(page, 'w390-menu-open');
    await mainNav.getByRole('link', { name: 'Endpoints', exact: true }).click();
    await page.getByRole('heading', { name: 'Endpoints', level: 1 }).waitFor();
    eq(await menu.getAttribute('aria-expanded'), 'false', 'the menu closes on navigation');
    // No page scrolls sideways.
    for (const [p, ready] of axePages()) {
      await goto(p);
      await ready();
      const over = await overflow();
      assert(over <= 1, p + ' scrolls sideways by ' + over + ' px at 390');
    }
    // Disable from the narrow settings page (the next test enables it again).
    await openEndpoint('settings');
    await page.getByRole('button', { name: 'Disable…' }).click();
    await page.getByRole('dialog', { name: 'Disable this endpoint?' }).getByRole('button', { name: 'Disable' }).click();
    await page.locator('.ep-head .badge', { hasText: 'Disabled' }).waitFor();
  } finally {
    await page.setViewportSize(WIDE);
  }
}, 60000);

test('enable, skipping the held deliveries', async () => {
  const pub = await srv.api('POST', '/v1/events', { event: 'conversation.started', data: { conversation_id: 'conv-skip', agent_id: 'agent-1', channel: 'chat' } });
  eq(pub.status, 202, 'publish accepted');
  await openEndpoint('settings');
  await page.locator('.ep-head .held', { hasText: '1 held' }).waitFor();
  await page.getByRole('button', { name: 'Enable…' }).click();
  const dlg = page.getByRole('dialog', { name: 'Enable this endpoint?' });
  await dlg.getByLabel(/Skip/).check();
  await dlg.getByRole('button', { name: 'Enable' }).click();
  await page.locator('.ep-head .badge', { hasText: 'Enabled' }).waitFor();
  await page.locator('.ep-head .held', { hasText: '0 held' }).waitFor();
  const d = await until(async () => {
    const r = await srv.api('GET', '/v1/deliveries?event_id=' + pub.body.id);
    return r.body.data.length === 1 && r.body.data[0].status === 'failed' ? r.body.data[0] : null;
  }, 'the skipped delivery ends as failed');
  assert(!rc.requests.some((r) => r.headers['x-workflux-event-id'] === pub.body.id), 'the skipped event was not sent');
  await goto('/deliveries/' + d.id);
  await page.locator('.state-line .badge', { hasText: /^Failed — / }).waitFor();
  await shots('delivery-skipped');
});

test('an attempt without an answer: plain words, the raw detail one click away', async () => {
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
  const att = page.locator('li.attempt').last();
  const cls = att.locator('.error-class');
  await cls.waitFor();
  eq(await cls.textContent(), 'connect', 'the class is shown');
  assert((await cls.getAttribute('title')).includes('Retried'), 'its meaning is in the title');
  const head = await att.locator('.attempt-head').textContent();
  assert(head.includes('Connection refused by 127.0.0.1:' + port), 'plain words: ' + head);
  const raw = att.locator('details.raw');
  assert(!(await raw.locator('code.attempt-error').isVisible()), 'the raw error is folded away');
  await raw.locator('summary').click();
  const full = (await srv.api('GET', '/v1/deliveries/' + d.id)).body.attempts[0].error;
  eq(await raw.locator('code.attempt-error').textContent(), full, 'the raw error one click away');
  // The list says it in words too, without the raw text.
  await goto('/deliveries?q=' + pub.body.id);
  const row = page.locator('tr[data-delivery="' + d.id + '"]');
  await row.waitFor();
  assert((await row.textContent()).includes('Connection refused by 127.0.0.1:' + port), 'the row in words');
  assert(!(await row.textContent()).includes(full), 'not the raw text on the row');
  await goto('/deliveries/' + d.id);
  await att.waitFor();
  await shots('delivery-error-class');
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
  await shots('error');
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
    const context = await browser.newContext({ viewport: WIDE, timezoneId: ZONE });
    await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: srv.url });
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
