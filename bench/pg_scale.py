#!/usr/bin/env python3
"""SQLite against PostgreSQL with one and two worker processes, in one run.

Three set-ups of the release build on loopback, each on a fresh store:
  sqlite               one `fluxhook serve` (--role all) on a SQLite file
  postgres 1 worker    one --role api and one --role worker sharing a database
  postgres 2 workers   one --role api and two --role worker
The database is a throwaway PostgreSQL cluster (tests/pgcluster.py; fsync
and synchronous_commit on) started for the run. Each set-up runs:
  publish      POST /v1/events from 32 keep-alive connections for a few
               seconds, as fast as answers come (each event held for a
               disabled endpoint: the write path only); events/s
  drain        20k deliveries held by a disabled endpoint, then enabled:
               deliveries/s until the store counts them all delivered, to a
               local receiver that answers 200 at once
  latency      events published open-loop at a moderate rate; publish ->
               arrival at the receiver, p50 and p99 (the API and the worker
               are different processes on PostgreSQL)
The HTTP ends are build/bench/http_load (C), so Python measures nothing.
Prints one table. Bounded: about two minutes, at most --budget seconds.

The PostgreSQL set-ups get the drain backlog by `fluxhook db copy` of the
SQLite store (which published it), so their time goes to what is measured.

usage: python3 bench/pg_scale.py [--build DIR] [--budget S] [--publish-seconds S]
                                 [--drain N] [--rate R] [--latency-seconds S] [--keep]
"""
import argparse
import http.client
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests"))

import pgcluster  # noqa: E402  (tests/pgcluster.py, standard library only)

# The API's rate limits (10,000 requests/s per key, 20,000 per account by
# default) are a policy, not a capacity: left on, a flat-out publisher
# measures the limiter (429s answered at once), so the benches turn them off.
SERVE_ARGS = ["--allow-http", "--allow-networks", "127.0.0.0/8",
              "--rate-limit", "0", "--rate-limit-account", "0"]
KEY = "fhk_bench_" + secrets.token_hex(16)


class Budget:
    def __init__(self, seconds):
        self.deadline = time.monotonic() + seconds

    def left(self):
        return self.deadline - time.monotonic()


class Serve:
    """One `fluxhook serve` process; its log goes to a file."""

    def __init__(self, binary, db, role, workdir, name):
        self.log_path = os.path.join(workdir, name + ".log")
        self.log = open(self.log_path, "wb")
        env = {k: v for k, v in os.environ.items() if not k.startswith("FLUXHOOK_")}
        env.update(FLUXHOOK_ROOT_KEY=KEY, FLUXHOOK_LOG_LEVEL="info")
        self.proc = subprocess.Popen(
            [binary, "serve", "--listen", "127.0.0.1:0", "--db", db, "--role", role]
            + SERVE_ARGS, env=env, cwd=workdir, stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL, stderr=self.log)
        self.port = None

    def wait_listening(self, timeout=60):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with open(self.log_path, "rb") as f:
                m = re.search(rb"serve: listening url=http://[^:]+:(\d+)", f.read())
            if m:
                self.port = int(m.group(1))
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.02)
        raise RuntimeError("serve did not start:\n" + open(self.log_path).read()[-3000:])

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


def api(port, method, path, body=None, timeout=60):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        hdrs = {"Authorization": "Bearer " + KEY}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            hdrs["Content-Type"] = "application/json"
        conn.request(method, path, body=data, headers=hdrs)
        resp = conn.getresponse()
        text = resp.read().decode()
        if resp.status >= 300:
            raise RuntimeError("%s %s: %d %s" % (method, path, resp.status, text))
        return json.loads(text) if text.startswith("{") else text
    finally:
        conn.close()


def delivered(port):
    text = api(port, "GET", "/metrics")
    m = re.search(r'fluxhook_deliveries\{status="delivered"\} (\d+)', text)
    return int(m.group(1)) if m else 0


def sink_count(port):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", "/count")
        return int(conn.getresponse().read())
    finally:
        conn.close()


def load(tool, port, *args):
    """Runs http_load publish; returns its numbers as a dict."""
    p = subprocess.run([tool, "publish", "--port", str(port), "--key", KEY] + list(args),
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=120)
    m = dict(re.findall(r"(\w+)=([\d.]+)", p.stdout))
    if "ok" not in m:
        raise RuntimeError("http_load publish: %s %s" % (p.stdout, p.stderr))
    return {k: float(v) for k, v in m.items()}


def percentile(values, p):
    """Nearest rank."""
    if not values:
        return None
    v = sorted(values)
    return v[max(0, min(len(v) - 1, -(-p * len(v) // 100) - 1))]


def start(binary, db, roles, workdir, tag):
    """Starts the processes of a set-up; the first one's port is the API's."""
    procs = []
    try:
        for i, role in enumerate(roles):
            procs.append(Serve(binary, db, role, workdir, "%s-%d-%s" % (tag, i, role)))
            # The first one creates the account and key on a new store.
            procs[-1].wait_listening()
    except BaseException:
        stop(procs)
        raise
    return procs


def stop(procs):
    for p in reversed(procs):
        p.stop()


def endpoints(port, sink_port):
    """hold: disabled, takes the publish workload; drain: disabled, for the backlog;
    lat: enabled, for the latency workload (its path makes the sink log arrivals)."""
    eps = {}
    for ep, types, enabled in (("hold", ["user.message"], False),
                               ("drain", ["integration.sync"], False),
                               ("lat", ["agent.response"], True)):
        eps[ep] = api(port, "POST", "/v1/endpoints", {
            "url": "http://127.0.0.1:%d/%s" % (sink_port, ep if ep != "lat" else "lat/log"),
            "event_types": types, "enabled": enabled})["id"]
    return eps


def publish(tool, port, a, out):
    out["publish"] = load(tool, port, "--connections", "32", "--seconds",
                          str(a.publish_seconds), "--event", "user.message")["rate"]


def drain(port, eps, a, budget, out):
    """Enables the drain endpoint; deliveries/s until the store counts its backlog delivered."""
    base = delivered(port)
    t0 = time.monotonic()
    api(port, "POST", "/v1/endpoints/%s/enable" % eps["drain"], {})
    limit = min(60, max(5, budget.left() - 30))
    done = base
    while time.monotonic() - t0 < limit:
        done = delivered(port)
        if done - base >= a.drain:
            break
        time.sleep(0.02)
    out["drain"] = (done - base) / (time.monotonic() - t0)
    out["drain_partial"] = done - base < a.drain


def latency(tool, port, sink_log, workdir, tag, a, budget, out):
    """Open-loop publishing at a.rate; p50 and p99 of publish -> arrival, in ms."""
    pubs = os.path.join(workdir, tag + "-pubs.txt")
    seconds = max(2, min(a.latency_seconds, budget.left() - 15))
    load(tool, port, "--connections", "8", "--seconds", str(seconds), "--rate", str(a.rate),
         "--event", "agent.response", "--log", pubs)
    with open(pubs) as f:
        sent = dict(line.split() for line in f if line.strip())
    deadline = time.monotonic() + 10
    while True:
        with open(sink_log) as f:
            arrived = dict(line.split() for line in f if line.strip())
        mine = [k for k in sent if k in arrived]
        if len(mine) == len(sent) or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    lat = [(int(arrived[k]) - int(sent[k])) / 1000.0 for k in mine]
    out["p50"] = percentile(lat, 50)
    out["p99"] = percentile(lat, 99)
    out["lost"] = len(sent) - len(mine)


def fmt(v, unit="", partial=False):
    if v is None:
        return "-"
    s = ("%.0f" % v) if v >= 100 else ("%.1f" % v)
    return ("> " if partial else "") + s + unit


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--budget", type=float, default=180)
    ap.add_argument("--publish-seconds", type=float, default=5)
    ap.add_argument("--drain", type=int, default=20000)
    ap.add_argument("--rate", type=float, default=200)
    ap.add_argument("--latency-seconds", type=float, default=6)
    ap.add_argument("--keep", action="store_true", help="keep the logs (their folder is printed)")
    a = ap.parse_args()
    budget = Budget(a.budget)
    binary = os.path.join(a.build, "fluxhook")
    tool = os.path.join(a.build, "bench", "http_load")
    for f in (binary, tool):
        if not os.access(f, os.X_OK):
            print("pg_scale: no '%s': build first (make)" % f, file=sys.stderr)
            return 2
    work = tempfile.mkdtemp(prefix="fluxhook-pgscale-")
    pg = pgcluster.PgCluster(root=None)
    sink = None
    results = {}
    copy_s = 0
    try:
        t = time.monotonic()
        pg.start()
        pg_start = time.monotonic() - t
        sink_log = os.path.join(work, "arrivals.txt")
        sink = subprocess.Popen([tool, "sink", "--log", sink_log], stdout=subprocess.PIPE,
                                text=True)
        sink_port = int(sink.stdout.readline().split("=")[1])
        # SQLite: publish, then the drain backlog (published), which the
        # PostgreSQL set-ups get by a copy of this store rather than by
        # publishing it again at their slower rate.
        sq_db = "sqlite:%s/fluxhook.db" % work
        procs = start(binary, sq_db, ["all"], work, "sqlite")
        try:
            port = procs[0].port
            eps = endpoints(port, sink_port)
            out = results["sqlite"] = {}
            publish(tool, port, a, out)
            load(tool, port, "--connections", "32", "--count", str(a.drain), "--event",
                 "integration.sync")
            pg_dbs = []
            for name in ("pg1", "pg2"):
                url = pg.create_db(name)
                t = time.monotonic()
                p = subprocess.run([binary, "db", "copy", "--from", sq_db, "--to", url],
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                   timeout=120)
                if p.returncode != 0:
                    raise RuntimeError("db copy: " + p.stderr[-2000:])
                copy_s = time.monotonic() - t
                pg_dbs.append(url)
            drain(port, eps, a, budget, out)
            latency(tool, port, sink_log, work, "sqlite", a, budget, out)
        finally:
            stop(procs)
        for name, db, roles in (("postgres 1 worker", pg_dbs[0], ["api", "worker"]),
                                ("postgres 2 workers", pg_dbs[1], ["api", "worker", "worker"])):
            if budget.left() < 30:
                print("pg_scale: out of time before '%s'" % name, file=sys.stderr)
                break
            procs = start(binary, db, roles, work, name.replace(" ", "-"))
            try:
                port = procs[0].port
                out = results[name] = {}
                publish(tool, port, a, out)
                drain(port, eps, a, budget, out)
                latency(tool, port, sink_log, work, name.replace(" ", "-"), a, budget, out)
            finally:
                stop(procs)
    finally:
        if sink is not None:
            sink.send_signal(signal.SIGTERM)
            sink.wait(30)
        pg.cleanup()
        if a.keep:
            print("pg_scale: logs in %s" % work, file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)

    names = ["sqlite", "postgres 1 worker", "postgres 2 workers"]
    rows = [
        ("publish events/s (32 connections)", lambda r: fmt(r["publish"])),
        ("drain deliveries/s (%dk held, 1 endpoint)" % (a.drain // 1000),
         lambda r: fmt(r["drain"], partial=r["drain_partial"])),
        ("publish->receiver p50 ms (%g/s)" % a.rate, lambda r: fmt(r["p50"])),
        ("publish->receiver p99 ms (%g/s)" % a.rate, lambda r: fmt(r["p99"])),
    ]
    print("pg_scale: release build on loopback; %d cores (shared with the load tools and "
          "PostgreSQL); PostgreSQL started in %.1fs" % (os.cpu_count(), pg_start))
    print("sqlite: one serve --role all; postgres: one --role api + N --role worker, "
          "one database, its backlog from 'db copy' of the SQLite store (%.1fs each)" % copy_s)
    widths = [44] + [20] * len(names)
    line = "%-*s" % (widths[0], "workload") + "".join("%*s" % (w, n)
                                                      for w, n in zip(widths[1:], names))
    print(line)
    print("-" * len(line))
    for label, get in rows:
        cells = [get(results[n]) if n in results else "-" for n in names]
        print("%-*s" % (widths[0], label) + "".join("%*s" % (w, c)
                                                    for w, c in zip(widths[1:], cells)))
    lost = {n: results[n]["lost"] for n in names if n in results and results[n]["lost"]}
    if lost:
        print("latency: events that had not arrived within 10 s: %s" % lost)
    return 0 if len(results) == len(names) else 1


if __name__ == "__main__":
    sys.exit(main())
