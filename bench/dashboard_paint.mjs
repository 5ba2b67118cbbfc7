// The browser half of bench/dashboard_paint.py: opens each dashboard page in
// headless Chromium against a running server and measures, per page, the
// first contentful paint and the moment the view's data is drawn (both from
// the navigation's start). Prints one JSON line: {page: {fcp: [...], drawn: [...]}}.
//
// usage: node bench/dashboard_paint.mjs URL KEY ENDPOINT_ID DELIVERY_ID RUNS

import path from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
// playwright-core lives with the browser tests (scripts/setup.sh --test installs it).
const { chromium } = createRequire(path.join(ROOT, 'tests', 'browser', 'package.json'))('playwright-core');

const [url, key, ep, dlv, runsArg] = process.argv.slice(2);
const runs = Number(runsArg || 5);
const e = '/endpoints/' + ep;
// Each page with the element that says its data is on screen.
const PAGES = [
  ['/endpoints', 'tr[data-endpoint]'],
  [e, '#ep-health .tile'],
  [e + '/deliveries', 'table.deliveries tbody tr'],
  [e + '/charts', 'svg.chart, .chart-empty'],
  [e + '/test', '.check-result .ok'],
  [e + '/settings', '#replay-form'],
  ['/deliveries', 'table.deliveries tbody tr'],
  ['/deliveries?status=delivered', 'table.deliveries tbody tr'],
  ['/deliveries/' + dlv, 'li.attempt'],
  ['/charts', 'svg.chart, .chart-empty'],
  ['/test', '.check-result .ok'],
  ['/catalog', 'section.event-type'],
];

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking'],
});
const page = await browser.newPage({ viewport: { width: 1366, height: 900 } });
await page.goto(url + '/');
await page.evaluate((k) => sessionStorage.setItem('fluxhook.key', k), key);
await page.goto('about:blank');
const out = {};
for (const [p, ready] of PAGES) {
  out[p] = { fcp: [], drawn: [] };
  for (let i = 0; i < runs + 1; i++) {
    await page.goto(url + p, { waitUntil: 'commit' });
    await page.waitForSelector(ready, { timeout: 30000 });
    const t = await page.evaluate(() => {
      const fcp = performance.getEntriesByName('first-contentful-paint')[0];
      return { drawn: performance.now(), fcp: fcp ? fcp.startTime : null };
    });
    // Each load alone: the server finishes what the page left in flight
    // (a busy endpoint's statistics take it a second) before the next one.
    await page.goto('about:blank');
    await new Promise((r) => setTimeout(r, 2500));
    if (i === 0) continue; // the first load warms the caches
    out[p].fcp.push(t.fcp);
    out[p].drawn.push(t.drawn);
  }
}
await browser.close();
console.log(JSON.stringify(out));
