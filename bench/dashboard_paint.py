#!/usr/bin/env python3
"""Every dashboard page's first paint against a local server holding 100k
deliveries (a script, not a test: it prints a table and asserts nothing).

The release build serves a fresh SQLite store. http_load (build/bench)
publishes --deliveries events held for a disabled endpoint (so the store
holds that many deliveries), then a few thousand delivered to a local sink
(so charts, attempts and the delivery page have data). Then headless
Chromium (bench/dashboard_paint.mjs) opens each page --runs times after one
warm-up and the table shows, per page, the median and worst first
contentful paint and time until the page's data is drawn, from the start of
the navigation. The target is under 300 ms drawn.

usage: python3 bench/dashboard_paint.py [--build DIR] [--deliveries N] [--runs N] [--keep]
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)

from pg_scale import KEY, Serve, api, load  # noqa: E402  (the same server and load helpers)

TARGET_MS = 300


def seed(tool, srv, sink_port, n):
    """n deliveries held for a disabled endpoint, and some delivered ones."""
    held = api(srv.port, "POST", "/v1/endpoints",
               {"url": "https://held.example.com/hook", "event_types": ["user.message"],
                "enabled": False, "description": "holds the backlog"})
    live = api(srv.port, "POST", "/v1/endpoints",
               {"url": "http://127.0.0.1:%d/hook" % sink_port,
                "event_types": ["agent.response"], "description": "a local sink"})
    t0 = time.monotonic()
    got = load(tool, srv.port, "--connections", "16", "--count", str(n), "--event", "user.message")
    if got["ok"] < n:
        raise RuntimeError("published only %d of %d" % (got["ok"], n))
    got = load(tool, srv.port, "--connections", "4", "--count", "2000", "--event", "agent.response")
    if got["ok"] < 2000:
        raise RuntimeError("published only %d of 2000 live events" % got["ok"])
    deadline = time.monotonic() + 120
    while True:
        page = api(srv.port, "GET", "/v1/deliveries?status=pending&endpoint_id=" + live["id"] + "&limit=1")
        if not page["data"] or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    print("seeded %d held and 2000 live deliveries in %.1f s" % (n, time.monotonic() - t0))
    return held, live


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--deliveries", type=int, default=100000)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    a = ap.parse_args()
    binary = os.path.join(a.build, "fluxhook")
    tool = os.path.join(a.build, "bench", "http_load")
    for f in (binary, tool):
        if not os.access(f, os.X_OK):
            print("dashboard_paint: no '%s': build first (make)" % f, file=sys.stderr)
            return 2
    work = tempfile.mkdtemp(prefix="fluxhook-paint-")
    srv = sink = None
    try:
        sink = subprocess.Popen([tool, "sink", "--port", "0"], stdout=subprocess.PIPE, text=True)
        sink_port = int(sink.stdout.readline().strip().split("=")[1])
        srv = Serve(binary, "sqlite:" + os.path.join(work, "db"), "all", work, "serve")
        srv.wait_listening()
        held, live = seed(tool, srv, sink_port, a.deliveries)
        dlv = api(srv.port, "GET", "/v1/deliveries?limit=1&status=delivered")["data"][0]["id"]
        p = subprocess.run(["node", os.path.join(HERE, "dashboard_paint.mjs"),
                            "http://127.0.0.1:%d" % srv.port, KEY, live["id"], dlv, str(a.runs)],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=600)
        if p.returncode != 0:
            print(p.stdout, p.stderr, file=sys.stderr)
            return 1
        res = json.loads(p.stdout.strip().splitlines()[-1])
        print("the API calls behind the pages, median of %d (ms)" % a.runs)
        for path in ("/v1/endpoints?limit=100", "/v1/endpoints/%s/stats" % held["id"],
                     "/v1/endpoints/%s/stats" % live["id"], "/v1/stats",
                     "/v1/stats/series?window=1h", "/v1/deliveries?limit=25",
                     "/v1/deliveries?limit=25&status=delivered",
                     "/v1/deliveries?limit=25&endpoint_id=" + live["id"],
                     "/v1/deliveries/" + dlv, "/v1/event-types", "/v1/accounts?limit=100"):
            ts = []
            for _ in range(a.runs):
                t0 = time.monotonic()
                api(srv.port, "GET", path)
                ts.append((time.monotonic() - t0) * 1000)
            print("  %-60s %7.1f" % (path.replace(held["id"], "HELD").replace(live["id"], "LIVE"),
                                     statistics.median(ts)))
        total = api(srv.port, "GET", "/v1/stats")["day"]["deliveries"]
        print("dashboard first paint, %d deliveries in the store, median and worst of %d loads "
              "(ms from navigation start; target: drawn under %d)" % (total, a.runs, TARGET_MS))
        print("%-52s %9s %9s %9s %9s  %s" % ("page", "fcp med", "fcp max", "drawn med",
                                             "drawn max", ""))
        for page_path, r in res.items():
            name = page_path.replace(live["id"], "ID")
            fcp = [x for x in r["fcp"] if x is not None]
            dm, dx = statistics.median(r["drawn"]), max(r["drawn"])
            print("%-52s %9.0f %9.0f %9.0f %9.0f  %s" % (
                name, statistics.median(fcp) if fcp else -1, max(fcp) if fcp else -1, dm, dx,
                "ok" if dm < TARGET_MS else "over target"))
        return 0
    finally:
        if srv is not None:
            srv.stop()
        if sink is not None:
            sink.terminate()
            sink.wait()
        if a.keep:
            print("work directory kept: " + work)
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
