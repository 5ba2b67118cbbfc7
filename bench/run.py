#!/usr/bin/env python3
"""make bench: fluxhook's benchmark suite, one table.

Every workload runs the release build (`fluxhook serve` on a fresh SQLite
store, synchronous=FULL semantics: nothing is answered 202 before it is on
disk) on loopback, driven by build/bench/http_load (C, so Python measures
nothing). The reference is nginx (1 worker, `return 200`) measured by wrk
(-t2 -c64) in the same run, started by this script: every throughput is
printed beside it as a ratio, so targets hold on any machine. nginx is also
the receiver of the throughput workloads (an endpoint that answers 200 at
once); the latency workloads use http_load's sink, which logs arrivals.

Workloads are the functions in WORKLOADS, run in order; each takes the
Context and returns rows (Row). To add rows, write a function like the
ones below and put it in WORKLOADS: Context has the helpers (a fresh
server, the nginx reference, a receiver sink, the 1M-delivery backlog
shared by the workloads that need it, the time left).

usage: python3 bench/run.py [--build DIR] [--only REGEX] [--quick] [--markdown FILE]
       python3 bench/run.py --micro [NAME...]   (the micro benchmarks: build/bench/bench_*,
                                                 bench/pg_scale.py, bench/retry_timing.py)
Bounded: the whole suite stops starting workloads after --budget seconds
(default 540) and never runs past 10 minutes.
"""
import argparse
import http.client
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

# The server process, the API client, the bench key and the percentile of bench/pg_scale.py.
import pg_scale  # noqa: E402
from pg_scale import KEY, api, percentile as pct  # noqa: E402
HARD_LIMIT = 600  # seconds: the suite never runs longer


class Row:
    """One line of the table. ratio is figure / reference when both are rates."""

    def __init__(self, workload, figure, value=None, ref=None, ratio=None, target="",
                 met=None):
        self.workload, self.figure, self.value = workload, figure, value
        self.ref, self.ratio, self.target, self.met = ref, ratio, target, met


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_port(port, proc, timeout=20):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("process exited %s before listening" % proc.returncode)
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.02)
    raise RuntimeError("nothing listens on port %d" % port)


def proc_cpu_s(pid):
    """User + system CPU seconds of a process so far."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def proc_rss_mib(pid):
    with open("/proc/%d/status" % pid) as f:
        m = re.search(r"VmRSS:\s+(\d+) kB", f.read())
    return int(m.group(1)) / 1024.0


class Serve(pg_scale.Serve):
    """One `fluxhook serve` (--role all) on its own fresh SQLite store; its log goes to a file."""

    def __init__(self, ctx, name):
        self.dir = tempfile.mkdtemp(prefix=name + "-", dir=ctx.work)
        self.db_path = os.path.join(self.dir, "fluxhook.db")
        super().__init__(ctx.binary, "sqlite:" + self.db_path, "all", self.dir, "serve")
        ctx.procs.append(self)
        self.wait_listening()

    @property
    def pid(self):
        return self.proc.pid

    def api(self, method, path, body=None, timeout=60):
        return api(self.port, method, path, body, timeout)

    def endpoint(self, url, **fields):
        return self.api("POST", "/v1/endpoints", dict(url=url, **fields))["id"]

    def counts(self):
        """Deliveries in the store by status, from /metrics."""
        text = self.api("GET", "/metrics")
        return {m.group(1): int(m.group(2)) for m in
                re.finditer(r'fluxhook_deliveries\{status="(\w+)"\} (\d+)', text)}

    def delivered(self):
        return self.counts().get("delivered", 0)

    def store_bytes(self):
        return sum(os.path.getsize(self.db_path + s) for s in ("", "-wal", "-shm")
                   if os.path.exists(self.db_path + s))


class Sink:
    """build/bench/http_load sink: answers every POST `status` at once; with log, logs arrivals."""

    def __init__(self, ctx, status=200, log=None):
        args = [ctx.http_load, "sink", "--status", str(status)]
        if log:
            args += ["--log", log]
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, text=True)
        self.port = int(self.proc.stdout.readline().split("=")[1])
        ctx.procs.append(self)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)


class BlackHole:
    """Accepts connections and never answers (until stopped)."""

    def __init__(self, ctx):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(1024)
        self.port = self.sock.getsockname()[1]
        self.held = []
        self.done = False
        threading.Thread(target=self._run, daemon=True).start()
        ctx.procs.append(self)

    def _run(self):
        while not self.done:
            try:
                c, _ = self.sock.accept()
                self.held.append(c)
            except OSError:
                return

    def stop(self):
        self.done = True
        self.sock.close()
        for c in self.held:
            c.close()


class Context:
    def __init__(self, args):
        self.args = args
        self.quick = args.quick
        self.binary = os.path.join(args.build, "fluxhook")
        self.http_load = os.path.join(args.build, "bench", "http_load")
        self.cores = os.cpu_count()
        self.start = time.monotonic()
        self.deadline = self.start + min(args.budget, HARD_LIMIT - 60)
        self.work = tempfile.mkdtemp(prefix="fluxhook-bench-", dir=args.build)
        self.procs = []
        self.nginx = None
        self.nginx_port = None
        self.refs = []
        self._backlog = None

    def left(self):
        return self.deadline - time.monotonic()

    def seconds(self, normal):
        """A workload's duration: shorter with --quick."""
        return max(1.0, normal / 3.0) if self.quick else normal

    # --- the reference ---

    def nginx_start(self):
        prefix = os.path.join(self.work, "nginx")
        os.makedirs(os.path.join(prefix, "logs"), exist_ok=True)
        self.nginx_port = free_port()
        conf = os.path.join(prefix, "nginx.conf")
        with open(conf, "w") as f:
            f.write("worker_processes 1;\nerror_log %s/logs/error.log;\npid %s/nginx.pid;\n"
                    "events { worker_connections 4096; }\n"
                    "http {\n access_log off;\n client_body_temp_path %s/body;\n"
                    " keepalive_requests 1000000;\n"
                    " server {\n  listen 127.0.0.1:%d;\n"
                    "  location / { return 200; }\n }\n}\n"
                    % (prefix, prefix, prefix, self.nginx_port))
        self.nginx = subprocess.Popen([shutil.which("nginx") or "/usr/sbin/nginx", "-p", prefix,
                                       "-c", conf, "-g", "daemon off;"],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_port(self.nginx_port, self.nginx)

    def nginx_measure(self):
        """wrk -t2 -c64 against nginx; requests per second."""
        p = subprocess.run(["wrk", "-t2", "-c64", "-d%ds" % (2 if self.quick else 4),
                            "http://127.0.0.1:%d/" % self.nginx_port],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                           timeout=60)
        m = re.search(r"Requests/sec:\s+([\d.]+)", p.stdout)
        if not m:
            raise RuntimeError("wrk: " + p.stdout)
        self.refs.append(float(m.group(1)))
        return self.refs[-1]

    @property
    def ref(self):
        """The reference: the mean of the nginx runs so far."""
        return sum(self.refs) / len(self.refs)

    def ratio_row(self, workload, value, unit, target_ratio=None, fmt="%.0f"):
        ratio = value / self.ref if self.ref else None
        met = None if target_ratio is None else ratio >= target_ratio
        return Row(workload, (fmt % value) + " " + unit, value, "%.0f req/s" % self.ref, ratio,
                   "" if target_ratio is None else "≥ %.2f" % target_ratio, met)

    # --- helpers for workloads ---

    def serve(self, name):
        return Serve(self, name)

    def sink(self, status=200, log=None):
        return Sink(self, status, log)

    def load(self, port, *args, timeout=300):
        """http_load publish; its numbers as a dict."""
        p = subprocess.run([self.http_load, "publish", "--port", str(port), "--key", KEY]
                           + [str(a) for a in args], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True, timeout=timeout)
        m = dict(re.findall(r"(\w+)=([\d.]+)", p.stdout))
        if "ok" not in m:
            raise RuntimeError("http_load publish: %s %s" % (p.stdout, p.stderr))
        # A rate or latency that counts only the requests answered 202 would
        # hide the others (a limiter's 429s, shedding): such a run is no figure.
        if float(m.get("failed", 0)) > 0:
            raise RuntimeError("http_load publish: %s of %s requests not answered 202"
                               % (m["failed"], m["sent"]))
        return {k: float(v) for k, v in m.items()}

    def publish_held(self, srv, n, seconds):
        """Publishes n events in batches of 500 (at most seconds); returns how many."""
        done, t0 = 0, time.monotonic()
        while done < n and time.monotonic() - t0 < seconds:
            reqs = min(200, (n - done + 499) // 500)
            r = self.load(srv.port, "--connections", 4, "--batch", 500, "--count", reqs)
            done += int(r["ok"])
        return done

    def backlog(self):
        """The shared backlog: one server whose disabled endpoint holds --backlog deliveries
        (1M by default), built once. Returns (server, endpoint id, count, seconds taken)."""
        if self._backlog is None:
            srv = self.serve("backlog")
            ep = srv.endpoint("http://127.0.0.1:%d/backlog" % self.nginx_port, enabled=False)
            t0 = time.monotonic()
            n = self.publish_held(srv, self.args.backlog, max(30, min(240, self.left() - 120)))
            self._backlog = (srv, ep, n, time.monotonic() - t0)
        return self._backlog

    def stop_all(self):
        for p in reversed(self.procs):
            try:
                p.stop()
            except Exception:  # noqa: BLE001 (stop what can be stopped)
                pass
        if self.nginx is not None and self.nginx.poll() is None:
            self.nginx.terminate()
            self.nginx.wait(10)


# --- workloads ---

def publish_no_subscriber(ctx):
    """POST /v1/events from 64 keep-alive connections, flat out, nothing subscribed."""
    srv = ctx.serve("publish")
    try:
        c0 = proc_cpu_s(srv.pid)
        r = ctx.load(srv.port, "--connections", 64, "--seconds", ctx.seconds(6))
        cpu_per_k = (proc_cpu_s(srv.pid) - c0) * 1000.0 / max(1.0, r["ok"] / 1000.0)
        b = ctx.load(srv.port, "--connections", 8, "--batch", 100, "--seconds", ctx.seconds(5))
    finally:
        srv.stop()
    return [ctx.ratio_row("publish, no subscriber", r["rate"], "ev/s", 0.33),
            Row("publish, no subscriber: p99", "%.1f ms (p50 %.1f)" % (r["p99_ms"], r["p50_ms"]),
                r["p99_ms"], target="≤ 10 ms", met=r["p99_ms"] <= 10),
            Row("publish, no subscriber: CPU per 1k published", "%.0f ms" % cpu_per_k, cpu_per_k),
            ctx.ratio_row("batch publish (100 per request)", b["rate"], "ev/s")]


def sustained_fanout(ctx):
    """Fan-out 1 to nginx, publishing flat out: published and delivered rates, the backlog."""
    srv = ctx.serve("sustained")
    try:
        srv.endpoint("http://127.0.0.1:%d/hook" % ctx.nginx_port)
        secs = ctx.seconds(12)
        d0, c0 = srv.delivered(), proc_cpu_s(srv.pid)
        t0 = time.monotonic()
        r = ctx.load(srv.port, "--connections", 64, "--seconds", secs)
        elapsed = time.monotonic() - t0
        d1, c1 = srv.delivered(), proc_cpu_s(srv.pid)
    finally:
        srv.stop()
    pub, dlv = r["ok"] / elapsed, (d1 - d0) / elapsed
    growth = pub - dlv
    # Each event costs one publish and one delivery: the CPU of both, per 1k events.
    cpu_per_k = (c1 - c0) * 1000.0 / max(1.0, (r["ok"] + d1 - d0) / 2000.0)
    return [ctx.ratio_row("fan-out 1, sustained: published", pub, "ev/s"),
            ctx.ratio_row("fan-out 1, sustained: delivered", dlv, "dl/s", 0.20),
            Row("fan-out 1, sustained: backlog growth", "%+.0f /s (%.0f%%)"
                % (growth, 100.0 * growth / max(pub, 1)), growth,
                target="flat (≤ 5% of published)", met=growth <= 0.05 * pub),
            Row("CPU per 1k published + delivered", "%.1f ms" % cpu_per_k, cpu_per_k,
                target="≤ 40 ms", met=cpu_per_k <= 40)]


def drain_held(ctx):
    """--drain deliveries held by a disabled endpoint, then enabled: the drain rate."""
    srv = ctx.serve("drain")
    try:
        ep = srv.endpoint("http://127.0.0.1:%d/drain" % ctx.nginx_port, enabled=False)
        n = ctx.publish_held(srv, ctx.args.drain // (3 if ctx.quick else 1), 60)
        d0, c0 = srv.delivered(), proc_cpu_s(srv.pid)
        t0 = time.monotonic()
        srv.api("POST", "/v1/endpoints/%s/enable" % ep, {})
        done = d0
        while time.monotonic() - t0 < 60 and done - d0 < n:
            time.sleep(0.05)
            done = srv.delivered()
        elapsed = time.monotonic() - t0
        c1 = proc_cpu_s(srv.pid)
    finally:
        srv.stop()
    rate = (done - d0) / elapsed
    row = ctx.ratio_row("drain of %dk held deliveries" % (n // 1000), rate, "dl/s", 0.33)
    if done - d0 < n:
        row.figure += " (partial: %d of %d in 60 s)" % (done - d0, n)
    return [row, Row("drain: CPU per 1k delivered", "%.1f ms"
                     % ((c1 - c0) * 1e6 / max(1, done - d0)), (c1 - c0) * 1e6 / max(1, done - d0))]


def arrivals(sent_path, arrived_path, expect, timeout=15):
    """Publish -> arrival times in ms of every logged event (all its arrivals)."""
    with open(sent_path) as f:
        sent = dict(line.split() for line in f if line.strip())
    deadline = time.monotonic() + timeout
    while True:
        with open(arrived_path) as f:
            # The sink may be writing the last line as it is read: whole lines only.
            lines = [line.split() for line in f if line.endswith("\n") and len(line.split()) == 2]
        got = [(i, t) for i, t in lines if i in sent]
        if len(got) >= len(sent) * expect or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    return [(int(t) - int(sent[i])) / 1000.0 for i, t in got], len(sent) * expect - len(got)


def store_waits(srv):
    """The store's part of a publish's time, from /metrics (SQLite): "commit X, sync Y ms"
    (mean waits of the durable writes: queued until committed, then until synced), and the
    writer's own checkpoints, whose syncs every write queued meanwhile waits for."""
    text = srv.api("GET", "/metrics")
    means = []
    for stage in ("commit", "sync"):
        m = re.search(r'^fluxhook_store_wait_seconds_sum\{stage="%s"\} (\S+)\n'
                      r'fluxhook_store_wait_seconds_count\{stage="%s"\} (\S+)$' % (stage, stage),
                      text, re.M)
        if m is None or float(m.group(2)) == 0:
            return ""
        means.append(float(m.group(1)) * 1000 / float(m.group(2)))
    m = re.search(r'^fluxhook_store_checkpoints_total\{by="writer"\} (\d+)$', text, re.M)
    return "; store waits: commit %.1f, sync %.1f ms%s" % (
        means[0], means[1], "" if m is None else "; writer checkpoints %s" % m.group(1))


def _descendants_cpu_ticks(root):
    """CPU ticks (user + system) of root's live descendants, root excluded."""
    parent, ticks = {}, {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % name) as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue  # it ended meanwhile
        parent[int(name)], ticks[int(name)] = int(fields[1]), int(fields[11]) + int(fields[12])
    total = 0
    for pid, t in ticks.items():
        p = parent.get(pid)
        while p is not None and p != root and p > 1:
            p = parent.get(p)
        if p == root:
            total += t
    return total


class Elsewhere:
    """What the rest of the machine took of its CPUs while a latency workload ran
    (`with Elsewhere() as e: ...`, then str(e)): every CPU tick /proc/stat counts busy,
    less this bench's own (itself, the serve, the sink, the load generator). Another
    process's burst on a 2-core machine delays the deliveries it overlaps, and the slowest
    1 % of a 5 s run is 50 ms of it: a row measured beside one says so. "steal" is the
    share the hypervisor gave to other machines."""

    def __enter__(self):
        self.t0 = self._sample()
        return self

    def __exit__(self, *exc):
        self.t1 = self._sample()
        return False

    @staticmethod
    def _sample():
        with open("/proc/stat") as f:
            cpu = [int(x) for x in f.readline().split()[1:]]
        # user nice system idle iowait irq softirq steal ...
        busy = cpu[0] + cpu[1] + cpu[2] + cpu[5] + cpu[6]
        # os.times(): this process and its children already waited for (the load generator).
        ours = _descendants_cpu_ticks(os.getpid()) + sum(os.times()[:4]) * os.sysconf("SC_CLK_TCK")
        return busy, cpu[7], sum(cpu[:8]), ours

    def __str__(self):
        busy, steal, total, ours = (b - a for a, b in zip(self.t0, self.t1))
        if total <= 0:
            return ""
        return "; machine busy elsewhere %.0f %%, steal %.0f %%" % (
            max(0.0, busy - ours) * 100.0 / total, steal * 100.0 / total)


def latency_open_loop(ctx):
    """Open loop at 5k and 10k ev/s, fan-out 1 to a logging sink: publish -> arrival."""
    rows = []
    for rate, target in ((5000, 5.0), (10000, 10.0)):
        srv = ctx.serve("latency")
        log = os.path.join(srv.dir, "arrivals.txt")
        sink = ctx.sink(log=log)
        try:
            srv.endpoint("http://127.0.0.1:%d/lat/log" % sink.port)
            pubs = os.path.join(srv.dir, "sent.txt")
            with Elsewhere() as elsewhere:
                ctx.load(srv.port, "--connections", 64, "--seconds", ctx.seconds(5), "--rate",
                         rate, "--log", pubs)
            lat, lost = arrivals(pubs, log, 1)
            waits = store_waits(srv) + str(elsewhere)
        finally:
            srv.stop()
            sink.stop()
        p50, p99 = pct(lat, 50), pct(lat, 99)
        rows.append(Row("publish -> receiver at %dk ev/s: p99" % (rate // 1000),
                        "%.1f ms (p50 %.1f%s%s)" % (p99, p50, ", %d lost" % lost if lost else "",
                                                    waits),
                        p99, target="≤ %.0f ms" % target, met=p99 <= target and lost == 0))
    return rows


def empty_claims(srv):
    """Claims of the dispatcher that found nothing (/metrics), or None from a build without
    the counter."""
    m = re.search(r'^fluxhook_claims_total\{found="none"\} (\d+)$', srv.api("GET", "/metrics"),
                  re.M)
    return int(m.group(1)) if m else None


def bad_neighbours(ctx):
    """20 healthy endpoints at 500 ev/s, alone and beside a black hole and a 500 endpoint."""
    p99s, empty, busy, cpu = {}, {}, {}, {}
    for bad in (False, True):
        srv = ctx.serve("neighbours")
        log = os.path.join(srv.dir, "arrivals.txt")
        sink = ctx.sink(log=log)
        extra = []
        try:
            for i in range(20):
                srv.endpoint("http://127.0.0.1:%d/h%d/log" % (sink.port, i))
            if bad:
                extra = [BlackHole(ctx), ctx.sink(status=500)]
                for e in extra:
                    srv.endpoint("http://127.0.0.1:%d/bad" % e.port)
            pubs = os.path.join(srv.dir, "sent.txt")
            c0 = proc_cpu_s(srv.pid)
            with Elsewhere() as elsewhere:
                ctx.load(srv.port, "--connections", 16, "--seconds", ctx.seconds(6), "--rate",
                         500, "--log", pubs)
            busy[bad] = str(elsewhere)
            lat, _ = arrivals(pubs, log, 20)
            # serve's work for the same healthy deliveries: what the bad two add to it is
            # theirs to explain, apart from the machine's noise in the latencies.
            cpu[bad] = (proc_cpu_s(srv.pid) - c0) * 1000.0 / max(1.0, len(lat) / 1000.0)
            empty[bad] = empty_claims(srv)
        finally:
            srv.stop()
            sink.stop()
            for e in extra:
                e.stop()
        p99s[bad] = (pct(lat, 50), pct(lat, 99))
    ratio = p99s[True][1] / p99s[False][1]
    # The ratio says something only while the healthy endpoints keep up at all.
    kept_up = p99s[False][1] <= 100
    return [Row("20 healthy + black hole + 500: healthy p99",
                "%.1f ms vs %.1f ms alone (p50 %.1f vs %.1f%s; serve CPU per 1k healthy "
                "deliveries %.0f vs %.0f ms)%s%s"
                % (p99s[True][1], p99s[False][1], p99s[True][0], p99s[False][0],
                   "" if empty[True] is None else
                   "; claims that found nothing %d vs %d" % (empty[True], empty[False]),
                   cpu[True], cpu[False],
                   "" if kept_up else "; 10k deliveries/s not kept up alone",
                   "; beside: %s; alone: %s" % (busy[True][2:], busy[False][2:])),
                p99s[True][1], "%.1f ms" % p99s[False][1], ratio,
                "≤ 1.2 × (alone ≤ 100 ms)", ratio <= 1.2 and kept_up)]


def backlog_footprint(ctx):
    """The shared backlog of held deliveries: RSS while it waits, store bytes per event."""
    srv, ep, n, secs = ctx.backlog()
    ev = srv.api("GET", "/v1/events?limit=1")["data"][0]
    body = len(json.dumps({"id": ev["id"], "event": ev["event"], "timestamp": ev["timestamp"],
                           "data": ev["data"]}, separators=(",", ":")).encode())
    rss = proc_rss_mib(srv.pid)
    per = srv.store_bytes() / max(1, n) - body
    size = "%dk" % (n // 1000) if n < 1000000 else "%gM" % (n / 1e6)
    return [Row("backlog: %s deliveries published (batches of 500)" % size,
                "%.0f ev/s" % (n / secs), n / secs),
            Row("RSS with %s deliveries waiting" % size, "%.1f MiB" % rss, rss,
                target="≤ 64 MiB", met=rss <= 64 and n >= ctx.args.backlog),
            Row("store per event + delivery, beyond the %d B body" % body, "%.0f B" % per, per,
                target="≤ 1024 B", met=per <= 1024)]


def enable_backlog(ctx):
    """Enable of the endpoint holding the shared backlog: time to its first delivery, and the
    slowest publish (one at a time, on its own connection) while the enable runs."""
    srv, ep, n, _ = ctx.backlog()
    lat, done, result = [], threading.Event(), {}

    def publisher():
        conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=60)
        data = srv.api("GET", "/v1/events?limit=1")["data"][0]["data"]  # a valid one
        body = json.dumps({"event": "user.message", "data": data})
        hdrs = {"Authorization": "Bearer " + KEY, "Content-Type": "application/json"}
        while not done.is_set() and len(lat) < 200000:
            t = time.monotonic()
            conn.request("POST", "/v1/events", body=body, headers=hdrs)
            resp = conn.getresponse()
            resp.read()
            if resp.status != 202:
                result["error"] = "publish answered %d" % resp.status
                break
            lat.append((time.monotonic() - t) * 1000.0)
        conn.close()

    def enable():
        # It answers once the last chunk is written: on a slow machine, minutes for 1M.
        result["reply"] = srv.api("POST", "/v1/endpoints/%s/enable" % ep, {}, timeout=300)
        result["took"] = time.monotonic() - t0

    d0 = srv.delivered()
    pub = threading.Thread(target=publisher)
    pub.start()
    time.sleep(0.5)  # the publisher is under way before the call
    t0 = time.monotonic()
    call = threading.Thread(target=enable)
    call.start()
    first = None
    while time.monotonic() - t0 < 60 and first is None:
        if srv.delivered() > d0:
            first = (time.monotonic() - t0) * 1000.0
        else:
            time.sleep(0.005)
    call.join(300)
    done.set()
    pub.join(60)
    if "error" in result or "reply" not in result:
        raise RuntimeError("enable of the backlog: %s" % result.get("error", "no answer"))
    size = "%dk" % (n // 1000) if n < 1000000 else "%gM" % (n / 1e6)
    worst = max(lat) if lat else float("nan")
    return [Row("enable %s held: first delivery" % size,
                "%.0f ms (the call answered in %.1f s)" % (first if first else -1, result["took"]),
                first, target="≤ 200 ms", met=first is not None and first <= 200),
            Row("enable %s held: slowest publish meanwhile" % size,
                "%.1f ms (p99 %.1f, %d publishes)" % (worst, pct(lat, 99) or 0, len(lat)),
                worst, target="≤ 50 ms", met=bool(lat) and worst <= 50)]


# The suite, in order. perf-reads style additions go here: a function taking the
# Context and returning rows (the backlog workloads share ctx.backlog()).
WORKLOADS = [
    publish_no_subscriber,
    sustained_fanout,
    drain_held,
    latency_open_loop,
    bad_neighbours,
    backlog_footprint,
    enable_backlog,
]


def table(ctx, rows, errors):
    head = ("workload", "fluxhook", "nginx same run", "ratio", "target", "met")
    lines = [head]
    for r in rows:
        lines.append((r.workload, r.figure, r.ref or "",
                      "" if r.ratio is None else "%.2f" % r.ratio, r.target,
                      "" if r.met is None else ("yes" if r.met else "NO")))
    out = ["%d cores; nginx (1 worker, return 200) + wrk -t2 -c64: %s req/s"
           % (ctx.cores, " / ".join("%.0f" % x for x in ctx.refs)), ""]
    out.append("| " + " | ".join(head) + " |")
    out.append("|" + "---|" * len(head))
    for ln in lines[1:]:
        out.append("| " + " | ".join(ln) + " |")
    for name, why in errors:
        out.append("\n%s did not finish: %s" % (name, why))
    return "\n".join(out)


def micro(args):
    """The micro benchmarks, each printing its own table (the former bench/run.py)."""
    bench_dir = os.path.join(args.build, "bench")
    found = sorted(f for f in os.listdir(bench_dir) if f.startswith("bench_"))
    scripts = sorted(f for f in os.listdir(HERE) if f.endswith(".py") and f != "run.py")
    runs = [(f, [os.path.join(bench_dir, f)]) for f in found
            if not args.names or f[len("bench_"):] in args.names]
    runs += [(f, [sys.executable, os.path.join(HERE, f), "--build", args.build])
             for f in scripts if not args.names or f[:-3] in args.names]
    status = 0
    for name, argv in runs:
        print("== " + name, flush=True)
        if subprocess.run(argv, timeout=900).returncode != 0:
            status = 1
    return status


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--only", help="regex of workload function names")
    ap.add_argument("--quick", action="store_true", help="shorter runs, smaller backlogs")
    ap.add_argument("--budget", type=float, default=540)
    ap.add_argument("--drain", type=int, default=200000)
    ap.add_argument("--backlog", type=int, default=1000000)
    ap.add_argument("--markdown", help="also write the table to this file")
    ap.add_argument("--micro", action="store_true")
    ap.add_argument("names", nargs="*")
    args = ap.parse_args()
    args.build = os.path.abspath(args.build)
    if args.micro:
        return micro(args)
    if args.quick:
        args.backlog = min(args.backlog, 200000)
    for tool in ("nginx", "wrk"):
        if shutil.which(tool) is None and not os.path.exists("/usr/sbin/" + tool):
            print("bench: '%s' is missing: run ./scripts/setup.sh --bench" % tool,
                  file=sys.stderr)
            return 2
    ctx = Context(args)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    rows, errors = [], []
    try:
        ctx.nginx_start()
        ctx.nginx_measure()
        for fn in WORKLOADS:
            if args.only and not re.search(args.only, fn.__name__):
                continue
            if ctx.left() < 20:
                errors.append((fn.__name__, "out of time (budget %ds)" % args.budget))
                continue
            t0 = time.monotonic()
            try:
                got = fn(ctx)
                rows += got
                for r in got:
                    print("  %-50s %s" % (r.workload, r.figure), flush=True)
            except Exception as e:  # noqa: BLE001 (one workload failing does not stop the suite)
                errors.append((fn.__name__, "%s: %s" % (type(e).__name__, e)))
            print("bench: %s took %.0f s" % (fn.__name__, time.monotonic() - t0),
                  file=sys.stderr, flush=True)
        ctx.nginx_measure()
    finally:
        ctx.stop_all()
        shutil.rmtree(ctx.work, ignore_errors=True)
    text = table(ctx, rows, errors)
    print("\n" + text)
    print("\ntook %.0f s" % (time.monotonic() - ctx.start))
    if args.markdown:
        with open(args.markdown, "w") as f:
            f.write(text + "\n")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
