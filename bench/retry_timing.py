#!/usr/bin/env python3
"""Retry timing: do attempts start when they are scheduled, with many due at once?

One `fluxhook serve` (release build, SQLite) and a receiver (build/bench/
http_load sink) that answers every delivery 503. N deliveries (default 1,000:
E endpoints x N/E events) are held by disabled endpoints, then every endpoint
is enabled at once, so all N are due together; with --retry-schedule 0ms,D
each delivery's first attempt fails and its second is scheduled D after the
first ended (a third, an hour later, keeps the endpoints from being disabled
meanwhile). From the attempt log (GET /v1/deliveries/{id}):

    lateness = attempt2.at - (attempt1.at + attempt1.duration_ms + D)

Prints p50, p99 and max lateness, and how many second attempts started within
the target: +20 % of D or +50 ms, whichever is larger. Loopback only,
bounded by --budget seconds.

usage: python3 bench/retry_timing.py [--build DIR] [--deliveries N] [--endpoints E]
                                     [--delay-ms D] [--budget S]
"""
import argparse
import datetime
import http.client
import json
import os
import secrets
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = {"conversation_id": "c-1", "message_id": "m-1", "user_id": "u-1", "content": "hi"}


def api(port, key, method, path, body=None):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        conn.request(method, path, body=json.dumps(body) if body is not None else None,
                     headers={"Authorization": "Bearer " + key,
                              "Content-Type": "application/json"})
        r = conn.getresponse()
        payload = r.read()
        return r.status, json.loads(payload) if payload else None
    finally:
        conn.close()


def ms(rfc3339):
    """Milliseconds since the epoch of "2026-11-30T07:00:00.123Z"."""
    t = datetime.datetime.strptime(rfc3339, "%Y-%m-%dT%H:%M:%S.%fZ")
    return int(t.replace(tzinfo=datetime.timezone.utc).timestamp() * 1000 + 0.5)


def percentile(values, p):
    if not values:
        return float("nan")
    s = sorted(values)
    return s[min(len(s) - 1, max(0, (p * len(s) + 99) // 100 - 1))]


def wait_line(proc, prefix, deadline):
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        if line.startswith(prefix):
            return line.strip()
    raise RuntimeError("no '%s' line" % prefix)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--deliveries", type=int, default=1000)
    ap.add_argument("--endpoints", type=int, default=20)
    ap.add_argument("--delay-ms", type=int, default=500)
    ap.add_argument("--budget", type=int, default=120)
    a = ap.parse_args()
    deadline = time.monotonic() + a.budget
    events = max(1, a.deliveries // a.endpoints)
    work = tempfile.mkdtemp(prefix="fluxhook-retry-bench-")
    key = "fhk_" + secrets.token_urlsafe(32)
    sink = subprocess.Popen([os.path.join(a.build, "bench", "http_load"), "sink", "--status",
                             "503"], stdout=subprocess.PIPE, text=True)
    srv = None
    try:
        sink_port = int(wait_line(sink, "port=", deadline).split("=")[1])
        env = dict(os.environ, FLUXHOOK_ROOT_KEY=key, FLUXHOOK_LOG_LEVEL="info")
        log_path = os.path.join(work, "serve.log")
        with open(log_path, "w") as log:
            srv = subprocess.Popen([os.path.join(a.build, "fluxhook"), "serve", "--listen",
                                    "127.0.0.1:0", "--db", "sqlite:" + os.path.join(work, "f.db"),
                                    "--allow-http", "--allow-networks", "127.0.0.0/8",
                                    "--retry-schedule", "0ms,%dms,1h" % a.delay_ms],
                                   env=env, cwd=work, stdout=subprocess.DEVNULL, stderr=log)
        port = None
        while port is None:
            with open(log_path) as f:
                for line in f:
                    if "serve: listening url=" in line:
                        port = int(line.split("url=")[1].split()[0].rsplit(":", 1)[1])
            if port is None and (srv.poll() is not None or time.monotonic() > deadline):
                raise RuntimeError("fluxhook serve did not start")
            time.sleep(0.02)
        eps = []
        for _ in range(a.endpoints):
            st, ep = api(port, key, "POST", "/v1/endpoints",
                         {"url": "http://127.0.0.1:%d/hook" % sink_port})
            assert st == 201, ep
            eps.append(ep["id"])
            st, b = api(port, key, "POST", "/v1/endpoints/%s/disable" % ep["id"], {})
            assert st == 200, b
        for _ in range(events):
            st, b = api(port, key, "POST", "/v1/events", {"event": "user.message", "data": DATA})
            assert st == 202, b
        t0 = time.monotonic()
        for ep in eps:
            st, b = api(port, key, "POST", "/v1/endpoints/%s/enable" % ep, {})
            assert st == 200, b
        enabled = time.monotonic() - t0

        total = events * a.endpoints
        # Every second attempt is over once every delivery has made two.
        seen = {}
        while time.monotonic() < deadline and len(seen) < total:
            for ep in eps:
                st, b = api(port, key, "GET", "/v1/deliveries?endpoint_id=%s&limit=500" % ep)
                for d in b["data"]:
                    if d["attempts_made"] >= 2:
                        seen[d["id"]] = True
            time.sleep(0.2)
        late = []
        for ep in eps:
            st, b = api(port, key, "GET", "/v1/deliveries?endpoint_id=%s&limit=500" % ep)
            for d in b["data"]:
                st, full = api(port, key, "GET", "/v1/deliveries/" + d["id"])
                at = full["attempts"]
                if len(at) < 2:
                    continue
                due = ms(at[0]["at"]) + at[0]["duration_ms"] + a.delay_ms
                late.append(ms(at[1]["at"]) - due)
        target = max(a.delay_ms * 0.2, 50)
        within = sum(1 for x in late if x <= target)
        print("retry_timing: release build, SQLite, %d cores; %d deliveries due at once "
              "(%d endpoints x %d events), second attempt scheduled %d ms after the first; "
              "enabling took %.0f ms" % (os.cpu_count(), total, a.endpoints, events,
                                         a.delay_ms, enabled * 1000))
        print("%-40s %10s" % ("measure", "value"))
        print("-" * 51)
        print("%-40s %10d" % ("second attempts measured", len(late)))
        print("%-40s %10.0f" % ("lateness p50 ms", percentile(late, 50)))
        print("%-40s %10.0f" % ("lateness p99 ms", percentile(late, 99)))
        print("%-40s %10.0f" % ("lateness max ms", max(late) if late else float("nan")))
        print("%-40s %9.1f%%" % ("started within +%.0f ms" % target,
                                 100.0 * within / len(late) if late else 0.0))
        return 0
    finally:
        for p in (srv, sink):
            if p is not None and p.poll() is None:
                p.terminate()
                try:
                    p.wait(10)
                except subprocess.TimeoutExpired:
                    p.kill()


if __name__ == "__main__":
    sys.exit(main())
