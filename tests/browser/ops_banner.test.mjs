// Operational webhooks in the dashboard, in real headless Chromium against
// the real fluxhook binary: an endpoint the dispatcher disabled shows a
// banner on every page of its account (but not of another account), which
// goes once it is enabled; the Operational webhooks page adds one.
//
//   cd tests/browser && node ops_banner.test.mjs
//
// $FLUXHOOK_BIN picks the binary (default ../../build/fluxhook). Prints one
// line per check, then `browser: N passed, M failed`; exits non-zero on failure.

import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { chromium } from 'playwright-core';
import { serve, api as call, finish } from './serve.mjs';


function assert(cond, msg) { if (!cond) throw new Error('assertion failed: ' + msg); }

async function main() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fluxhook-opsbanner-'));
  const rootKey = 'fhk_' + crypto.randomBytes(32).toString('base64url');
  let srv = null;
  let browser = null;
  let passed = 0;
  let failed = 0;
  const check = async (name, fn) => {
    try { await fn(); passed += 1; console.log('ok - ' + name); } catch (e) { failed += 1; console.log('not ok - ' + name + ': ' + (e.message || e)); }
  };
  try {
    srv = await serve(dir, rootKey, ['--retry-schedule', '0ms,20ms']);
    const api = (method, p, body, acct) =>
      call(srv, rootKey, method, p, body, acct ? { 'X-Workflux-Account': acct } : {});
    // Port 9 on loopback refuses: the schedule (two attempts) ends, the dispatcher disables it.
    const ep = await api('POST', '/v1/endpoints', { url: 'http://127.0.0.1:9/down-hook' });
    const other = await api('POST', '/v1/accounts', { name: 'Other Co' });
    await api('POST', '/v1/endpoints', { url: 'http://127.0.0.1:9/other-hook' }, other.id);
    await api('POST', '/v1/events', { event: 'user.message', data: { conversation_id: 'c', message_id: 'm', user_id: 'u', content: 'hi' } });
    for (let i = 0; (await api('GET', '/v1/endpoints/' + ep.id)).status !== 'disabled'; i++) {
      assert(i < 300, 'the dispatcher disabled the endpoint');
      await new Promise((r) => setTimeout(r, 50));
    }
    browser = await chromium.launch({
      executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run',
             '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    });
    const page = await (await browser.newContext({ viewport: { width: 1280, height: 900 } })).newPage();
    await page.goto(srv.url + '/');
    await page.getByLabel('API key').fill(rootKey);
    await page.getByRole('button', { name: 'Sign in' }).click();
    const banner = page.locator('[data-banner="disabled:' + ep.id + '"]');
    const nav = page.getByRole('navigation', { name: 'Main' });

    await check('the banner shows on every page of the account', async () => {
      for (const name of ['Endpoints', 'Deliveries', 'Charts', 'Event catalog', 'Audit log', 'Operational webhooks']) {
        await nav.getByRole('link', { name, exact: true }).click();
        await page.getByRole('heading', { name, level: 1 }).waitFor();
        await banner.waitFor();
        const text = await banner.textContent();
        assert(text.includes('http://127.0.0.1:9/down-hook') && text.includes('2 consecutive failed attempts'),
          name + ': the banner names the endpoint and the reason: ' + text);
      }
    });
    await check('the banner links to the endpoint, whose own page says it once', async () => {
      await banner.getByRole('link', { name: 'Enable it' }).click();
      await page.getByRole('button', { name: /Enable/ }).first().waitFor();
      assert(page.url().endsWith('/endpoints/' + ep.id + '/settings'), 'on its settings: ' + page.url());
      await page.locator('[data-banner="endpoint-disabled"]').waitFor();
      assert(!(await banner.count()), 'no second banner for the same endpoint on its page');
    });
    await check('another account\'s pages show no banner', async () => {
      await nav.getByRole('link', { name: 'Endpoints', exact: true }).click();
      await banner.waitFor();
      await page.locator('#account-box select').selectOption(other.id);
      await page.getByText('http://127.0.0.1:9/other-hook').first().waitFor();
      await banner.waitFor({ state: 'detached' });
      await page.locator('#account-box select').selectOption('');
      await page.getByText('http://127.0.0.1:9/down-hook').first().waitFor();
      await banner.waitFor();
    });
    await check('enabling the endpoint removes the banner', async () => {
      await api('POST', '/v1/endpoints/' + ep.id + '/enable', {});
      await banner.waitFor({ state: 'detached' });
    });
    await check('the Operational webhooks page adds one and shows its secret', async () => {
      await nav.getByRole('link', { name: 'Operational webhooks', exact: true }).click();
      await page.getByLabel('URL').fill('http://127.0.0.1:9/ops-hook');
      await page.getByLabel(/^endpoint\.disabled/).check();
      await page.getByRole('button', { name: 'Add', exact: true }).click();
      await page.locator('code.secret').waitFor();
      const secret = await page.locator('code.secret').textContent();
      const list = await api('GET', '/v1/operational-endpoints');
      assert(list.data.length === 1 && list.data[0].url === 'http://127.0.0.1:9/ops-hook', 'created: ' + JSON.stringify(list));
      assert(list.data[0].event_types.join() === 'endpoint.disabled', 'its types: ' + list.data[0].event_types);
      const shown = await api('GET', '/v1/operational-endpoints/' + list.data[0].id + '/secret');
      assert(secret === shown.secret, 'the secret shown is its secret');
      await page.locator('[data-op="' + list.data[0].id + '"]').waitFor();
    });
  } catch (e) {
    failed += 1;
    console.log('not ok - setup: ' + (e.stack || e));
  }
  if (browser) await browser.close();
  await finish(srv, dir, passed, failed);
}

main();
