// Customer portal links in real headless Chromium (Debian's chromium, driven
// by playwright-core) against the real fluxhook binary: a link signs the
// dashboard in as a session limited to one account and some scopes, works
// once, and the dashboard may be framed only by the allow-listed origins.
//
//   cd tests/browser && node portal.test.mjs
//
// $FLUXHOOK_BIN picks the binary (default ../../build/fluxhook). Prints one
// line per test, then `browser: N passed, M failed`; exits non-zero on failure.

import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import { serve, api, finish } from './serve.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(HERE, '..', '..');
const SHOTS = path.join(ROOT, 'tests', 'artifacts', 'screenshots');
const TIMEOUT_MS = 30000;

function assert(cond, msg) { if (!cond) throw new Error('assertion failed: ' + msg); }
function eq(a, b, msg) { if (a !== b) throw new Error('assertion failed: ' + msg + ': expected ' + JSON.stringify(b) + ', got ' + JSON.stringify(a)); }

// A page that frames url, served from its own origin (the platform embedding the portal).
function framingPage() {
  const srv = http.createServer((req, res) => {
    const src = new URL(req.url, 'http://x').searchParams.get('src') || '';
    res.writeHead(200, { 'Content-Type': 'text/html' });
    res.end('<!doctype html><title>platform</title><h1>Platform</h1>' +
            '<iframe id="portal" title="portal" width="1000" height="700" src="' +
            src.replace(/[&"<>]/g, '') + '"></iframe>');
  });
  return new Promise((resolve) => srv.listen(0, '127.0.0.1', () => {
    srv.origin = 'http://127.0.0.1:' + srv.address().port;
    resolve(srv);
  }));
}

async function main() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fluxhook-portal-'));
  const rootKey = 'fhk_' + crypto.randomBytes(32).toString('base64url');
  const allowed = await framingPage();
  const other = await framingPage();
  let srv = null;
  let browser = null;
  let passed = 0;
  let failed = 0;
  const results = [];
  const st = {};
  try {
    srv = await serve(dir, rootKey, ['--portal-frame-ancestors', allowed.origin]);
    const acct = await api(srv, rootKey, 'POST', '/v1/accounts', { name: 'Customer Co' });
    st.acct = acct.id;
    st.custEp = (await api(srv, rootKey, 'POST', '/v1/endpoints', { url: 'http://127.0.0.1:9/customer-hook' },
      { 'X-Workflux-Account': acct.id })).id;
    st.rootEp = (await api(srv, rootKey, 'POST', '/v1/endpoints', { url: 'http://127.0.0.1:9/platform-own-hook' })).id;
    browser = await chromium.launch({
      executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run',
             '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    });
  } catch (e) {
    console.log('not ok - setup: ' + (e.stack || e));
    if (browser) await browser.close();
    if (srv) srv.kill('SIGTERM');
    allowed.close(); other.close();
    console.log('browser: 0 passed, 1 failed');
    process.exit(1);
  }
  const link = (scopes) => api(srv, rootKey, 'POST', '/v1/portal-links',
    { account_id: st.acct, expires_in: 600, scopes });

  const tests = [
    ['a portal link signs in, limited to its account and scopes', async (ctx) => {
      const l = await link(['endpoints:read', 'deliveries:read']);
      const page = await ctx.newPage();
      await page.goto(l.url);
      await page.getByText('http://127.0.0.1:9/customer-hook').first().waitFor();
      assert(!(await page.getByText('platform-own-hook').count()), 'the platform\'s own endpoint is not shown');
      assert(!page.url().includes('fhl_'), 'the link token left the address bar: ' + page.url());
      const stored = await page.evaluate(() => JSON.stringify({ ...sessionStorage }) + JSON.stringify({ ...localStorage }));
      assert(!stored.includes('fhl_'), 'the link token is not kept');
      assert(stored.includes('fhs_'), 'a portal session is kept: ' + stored);
      const navLinks = page.getByRole('navigation', { name: 'Main' });
      assert(await navLinks.getByRole('link', { name: 'Deliveries', exact: true }).isVisible(), 'Deliveries shown (deliveries:read)');
      assert(!(await navLinks.getByRole('link', { name: 'Test', exact: true }).isVisible()), 'Test hidden (no endpoints:write)');
      assert(!(await navLinks.getByRole('link', { name: 'Event catalog', exact: true }).isVisible()), 'catalog hidden (no events:read)');
      assert((await page.locator('#account-box').textContent()).includes(st.acct), 'the account box names the link\'s account');
      eq(await page.locator('#account-box select').count(), 0, 'no account switcher');
      // The server holds the line whatever the page does: no endpoints:write.
      const write = await page.evaluate(async () => {
        const r = await fetch('/v1/endpoints', { method: 'POST', headers: {
          Authorization: 'Bearer ' + sessionStorage.getItem('fluxhook.key'), 'Content-Type': 'application/json' },
          body: JSON.stringify({ url: 'http://127.0.0.1:9/x' }) });
        return r.status;
      });
      eq(write, 403, 'creating an endpoint with the portal session');
      // A reload keeps the session (this tab only).
      await page.reload();
      await page.getByText('http://127.0.0.1:9/customer-hook').first().waitFor();
      fs.mkdirSync(SHOTS, { recursive: true });
      await page.screenshot({ path: path.join(SHOTS, 'portal-signed-in.png'), fullPage: true });
      st.usedUrl = l.url;
    }],
    ['a used link does not sign in again', async (ctx) => {
      const page = await ctx.newPage();
      await page.goto(st.usedUrl);
      const alert = page.locator('#portal-error');
      await alert.waitFor();
      assert((await alert.textContent()).includes('already used'), 'says the link was used: ' + await alert.textContent());
      await page.getByRole('heading', { name: 'Sign in to fluxhook' }).waitFor();
    }],
    ['the portal may be framed by the allow-listed origin only', async (ctx) => {
      const l = await link(['endpoints:read']);
      const page = await ctx.newPage();
      await page.goto(allowed.origin + '/?src=' + encodeURIComponent(l.url));
      const frame = page.frameLocator('#portal');
      await frame.getByText('http://127.0.0.1:9/customer-hook').first().waitFor();
      // Another origin: Chromium refuses to display the frame, citing frame-ancestors.
      const l2 = await link(['endpoints:read']);
      const page2 = await ctx.newPage();
      const refused = new Promise((resolve) => page2.on('console', (m) => {
        if (/frame-ancestors/.test(m.text())) resolve(m.text());
      }));
      await page2.goto(other.origin + '/?src=' + encodeURIComponent(l2.url));
      const msg = await refused;
      assert(/Refused to (display|frame)|has been blocked/.test(msg), 'a refusal: ' + msg);
      assert(msg.includes(allowed.origin), 'the refusal names the allowed origin: ' + msg);
    }],
  ];
  for (const [name, fn] of tests) {
    const ctx = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    const start = Date.now();
    let timer;
    try {
      await Promise.race([fn(ctx), new Promise((_, rej) => { timer = setTimeout(() => rej(new Error('timed out')), TIMEOUT_MS); })]);
      passed += 1;
      results.push('ok - ' + name + ' (' + (Date.now() - start) + ' ms)');
    } catch (e) {
      failed += 1;
      results.push('not ok - ' + name + ': ' + (e && e.message ? e.message : e));
    } finally {
      clearTimeout(timer);
      await ctx.close();
    }
    console.log(results[results.length - 1]);
  }
  await browser.close();
  allowed.close();
  other.close();
  await finish(srv, dir, passed, failed);
}

main();
