// What the small browser tests share: fluxhook serve on a free loopback port
// with a fresh SQLite store, and API calls to it.
//
// $FLUXHOOK_BIN picks the binary (default ../../build/fluxhook).

import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(HERE, '..', '..');
const BIN = path.resolve(HERE, process.env.FLUXHOOK_BIN || path.join(ROOT, 'build', 'fluxhook'));

// fluxhook serve (its store in dir) with args; resolves once it listens.
export function serve(dir, rootKey, args) {
  const env = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('FLUXHOOK_')) env[k] = v;
  env.FLUXHOOK_ROOT_KEY = rootKey;
  const proc = spawn(BIN, ['serve', '--listen', '127.0.0.1:0', '--db', 'sqlite:' + path.join(dir, 'db'),
    '--allow-http', '--allow-networks', '127.0.0.0/8', ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  proc.log = '';
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('serve did not start:\n' + proc.log.slice(-2000))), 60000);
    const onData = (c) => {
      proc.log += c.toString();
      const m = proc.log.match(/serve: listening url=(http:\/\/127\.0\.0\.1:\d+)/);
      if (m && !proc.url) { proc.url = m[1]; clearTimeout(timer); resolve(proc); }
    };
    proc.stdout.on('data', onData);
    proc.stderr.on('data', onData);
    proc.on('exit', (code) => { if (!proc.url) { clearTimeout(timer); reject(new Error('serve exited ' + code + ':\n' + proc.log)); } });
  });
}

// One API call with key; resolves with the parsed answer, rejects on a non-2xx.
export async function api(srv, key, method, p, body, headers = {}) {
  const h = { Authorization: 'Bearer ' + key, ...headers };
  if (body !== undefined) h['Content-Type'] = 'application/json';
  const res = await fetch(srv.url + p, { method, headers: h, body: body === undefined ? undefined : JSON.stringify(body) });
  const json = await res.json().catch(() => null);
  if (!res.ok) throw new Error(method + ' ' + p + ': ' + res.status + ' ' + JSON.stringify(json));
  return json;
}

// Stops srv (may be null), then prints the tally (a sanitizer report in its
// log counts as one more failure; any failure prints the log's tail), removes
// dir and exits with the outcome.
export async function finish(srv, dir, passed, failed) {
  if (srv) {
    srv.kill('SIGTERM');
    await new Promise((r) => srv.on('exit', r));
    if (/ERROR: (Address|Leak|Undefined)Sanitizer|runtime error:/.test(srv.log)) {
      failed += 1;
      console.log('not ok - sanitizer report in the server log');
    }
    if (failed) console.log('--- server log (tail) ---\n' + srv.log.slice(-3000));
  }
  fs.rmSync(dir, { recursive: true, force: true });
  console.log('browser: ' + passed + ' passed, ' + failed + ' failed');
  process.exit(failed ? 1 : 0);
}
