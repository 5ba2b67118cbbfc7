"""Several fluxhook processes on several hosts, one PostgreSQL database, and
faults under a steady load: no event answered 202 may be lost.

Hosts (network namespaces on one bridge, see topology.py), all in 198.18.0.0/24:

    198.18.0.1   the bridge: this test's own sockets (publisher, API calls)
    198.18.0.10  db    PostgreSQL (tests/pgcluster.py), port 5432
    198.18.0.20  api   fluxhook serve --role api
    198.18.0.31-33 w1-w3  fluxhook serve --role worker (--lease 5s, --attempt-timeout 3s)
    198.18.0.40  rcv   receiver_host.py on port 8000: /a, /b answer at once, /slow after 0.3 s

Every event fans out to the three endpoints. A publisher keeps RATE events/s
going at the api host; what it gets 202 for must reach every endpoint. One
test per fault, in order:

    1 baseline           no fault: no loss, no duplicate
    2 worker kill -9     w1 killed while it holds leases, restarted
    3 worker cut off     w2's link down longer than the lease, then up: its
                         late results must be fenced (its log says so)
    4 postgres restart   stopped at once (-m immediate: a crash, then recovery)
                         and started; publishes get 503 (never 202) while it is
                         down, what got 202 before survives; every
                         process reconnects by itself
    5 api kill -9        the api host killed and restarted
    6 db host cut off    the database host's link down for 10 s (its sessions
                         stall rather than close), then up: publishes get 503
                         (never 202) meanwhile; every process reconnects by itself

After each: wait (bounded) until every acknowledged event reached every
endpoint; count duplicates (an event delivered to an endpoint more than once)
and the seconds from the fault's end to the first delivery of an event
published after it. The table (with a count of events delivered that never got
a 202: stored, but the answer was lost) goes to stdout and
tests/artifacts/multihost.txt, the hosts' logs to tests/artifacts/multihost/.

Needs root and iproute2 (network namespaces); without them it fails and says
why. The fluxhook binary is found as the e2e harness finds it ($FLUXHOOK_BIN,
else build-asan/fluxhook, else build/fluxhook).
"""
import base64
import collections
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
TESTS = os.path.dirname(HERE)
ROOT = os.path.dirname(TESTS)
sys.path.insert(0, TESTS)
sys.path.insert(0, os.path.join(TESTS, "e2e"))
import harness  # noqa: E402
import topology  # noqa: E402
from pgcluster import PgCluster  # noqa: E402
from receiver_host import DeliveryLog  # noqa: E402

ARTIFACTS = os.path.join(ROOT, "tests", "artifacts")

ADDR = {"db": "198.18.0.10", "api": "198.18.0.20", "w1": "198.18.0.31",
        "w2": "198.18.0.32", "w3": "198.18.0.33", "rcv": "198.18.0.40"}
WORKERS = ("w1", "w2", "w3")
PG_PORT = 5432
FH_PORT = 8080
RCV_PORT = 8000
PATHS = ("/a", "/b", "/slow")
# /slow keeps attempts in flight; far below the attempt timeout, so that a
# receiver slowed down by a busy machine does not time out (a duplicate)
SLOW_DELAY = 0.3

LEASE_S = 5
SERVE_ARGS = ["--allow-http", "--allow-networks", "198.18.0.0/15",
              "--attempt-timeout", "3s", "--lease", "%ds" % LEASE_S,
              # ~20 s of retries before an endpoint is disabled: longer than any fault here
              "--retry-schedule", "0ms,200ms,500ms,1s,2s,2s,3s,3s,3s,3s"]

RATE = float(os.environ.get("FLUXHOOK_MULTIHOST_RATE", "60"))  # events/s
PUBLISH_THREADS = 2
PUBLISH_TIMEOUT = 5  # seconds for one publish request
WARM_ACKS = 120  # events acknowledged before a fault
POST_ACKS = 180  # events acknowledged after it
IN_FLIGHT = 3  # attempts a worker has under way when it is killed or cut off
START_TIMEOUT = 60
DRAIN_TIMEOUT = 60
WAIT_TIMEOUT = 30
FENCED = re.compile(r"store: stale result fenced delivery=(\S+) token=(\d+) current=(\d+)")
DB_CUT_S = 10  # how long the db host is cut off


def wait_until(pred, timeout, what, interval=0.05):
    """Polls pred() until it returns something true (returned); fails with
    `what` after timeout seconds."""
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError("timed out after %ss waiting for %s" % (timeout, what))
        time.sleep(interval)


def shown_path(p):
    """p relative to the repository when inside it, else absolute."""
    p = os.path.abspath(p)
    return os.path.relpath(p, ROOT) if p.startswith(ROOT + os.sep) else p


class Fluxhook(harness.LogFile):
    """One `fluxhook serve` on a host of the topology."""

    def __init__(self, topo, name, role, db_url, root_key, workdir):
        self.topo = topo
        self.name = name
        self.role = role
        self.addr = topo.host(name).addr
        self.db_url = db_url
        self.root_key = root_key
        self.bin = harness.find_bin()
        self.log_path = os.path.join(workdir, "%s.log" % name)
        self.proc = None
        self.starts = 0
        self._log_offset = 0

    def argv(self):
        return [self.bin, "serve", "--listen", "%s:%d" % (self.addr, FH_PORT),
                "--db", self.db_url, "--role", self.role] + SERVE_ARGS

    def spawn(self):
        """Starts the process without waiting for it."""
        if self.running():
            raise RuntimeError("%s already runs" % self.name)
        with open(self.log_path, "ab") as log:
            self._log_offset = log.tell()
            env = harness.clean_env({"FLUXHOOK_LOG_LEVEL": "info",
                                     "FLUXHOOK_ROOT_KEY": self.root_key,
                                     "FLUXHOOK_MASTER_KEY": harness.TEST_MASTER_KEY})
            self.proc = self.topo.spawn(self.name, self.argv(), env=env, stdout=log,
                                        stderr=subprocess.STDOUT, cwd=os.path.dirname(
                                            self.log_path))
        self.starts += 1

    def wait_ready(self, timeout=START_TIMEOUT):
        def ready():
            if not self.running():
                raise AssertionError("%s exited with %s before answering /healthz:\n%s"
                                     % (self.name, self.proc.returncode, self.log_tail()))
            return self.healthz() == 200
        try:
            wait_until(ready, timeout, "%s /healthz 200" % self.name)
        except AssertionError as e:
            raise AssertionError("%s\n%s's log:\n%s" % (e, self.name, self.log_tail())) from None

    def start(self):
        self.spawn()
        self.wait_ready()

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def kill9(self):
        if self.running():
            self.proc.kill()
        self.proc.wait(30)

    def stop(self, timeout=30):
        """SIGTERM; returns the exit code (None: it had to be killed)."""
        if not self.running():
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(30)
            return None

    def request(self, method, path, body=None, key=True, timeout=5):
        """(status, parsed JSON or text, headers); raises OSError when unreachable."""
        conn = self.topo.http(self.addr, FH_PORT, timeout=timeout)
        hdrs = {}
        if key:
            hdrs["Authorization"] = "Bearer " + self.root_key
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            hdrs["Content-Type"] = "application/json"
        try:
            conn.request(method, path, body=data, headers=hdrs)
            r = conn.getresponse()
            text = r.read().decode("utf-8", "replace")
            status, headers = r.status, r.headers
        finally:
            conn.close()
        parsed = text
        if "json" in headers.get("Content-Type", "") and text:
            try:
                parsed = json.loads(text)
            except ValueError:
                pass
        return status, parsed, headers

    def healthz(self):
        """The status of GET /healthz, None when nothing answers."""
        try:
            return self.request("GET", "/healthz", key=False, timeout=3)[0]
        except (OSError, ValueError):
            return None

    def metrics(self):
        """/metrics as {'name' or 'name{labels}': value}; {} when unreachable."""
        try:
            status, text, _ = self.request("GET", "/metrics", key=False, timeout=3)
        except (OSError, ValueError):
            return {}
        if status != 200:
            return {}
        out = {}
        for line in str(text).splitlines():
            parts = line.split()
            if len(parts) == 2 and not line.startswith("#"):
                try:
                    out[parts[0]] = float(parts[1])
                except ValueError:
                    pass
        return out

    def metric(self, name):
        """The value of one metric line of /metrics, None when unreachable."""
        return self.metrics().get(name)


class Publisher:
    """Threads that publish user.message events at a steady rate to the api
    host while resumed, and record every answer."""

    def __init__(self, topo, addr, root_key, rate=RATE, threads=PUBLISH_THREADS):
        self.topo = topo
        self.addr = addr
        self.root_key = root_key
        self.interval = 1.0 / rate
        self.max_events = int(rate * 900)  # hard bounds, far above a run's need
        self.deadline = time.monotonic() + 900
        self.acks = []  # (event id, phase, t_send, t_recv, deliveries)
        self.refused = []  # (phase, t_send, t_recv, status, Retry-After or None)
        self.errors = []  # (phase, t_send, t_recv, error): no answer at all
        self.phase = None
        self._cond = threading.Condition()
        self._busy = 0
        self._seq = 0
        self._next = 0.0
        self._on = threading.Event()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._loop, name="publisher-%d" % i,
                                          daemon=True) for i in range(threads)]
        for t in self._threads:
            t.start()

    def resume(self, phase):
        self.phase = phase
        self._on.set()

    def pause(self, timeout=PUBLISH_TIMEOUT + 10):
        """Stops publishing and waits for the requests under way to end."""
        self._on.clear()
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._busy:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError("publish requests still under way after %ss" % timeout)
                self._cond.wait(left)

    def close(self):
        self._on.clear()
        self._stop.set()
        for t in self._threads:
            t.join(PUBLISH_TIMEOUT + 5)

    def _take_slot(self):
        with self._cond:
            if self._seq >= self.max_events:
                return None
            now = time.monotonic()
            slot = max(self._next, now)
            self._next = slot + self.interval
            self._seq += 1
            self._busy += 1
            return self._seq, slot

    def _done(self):
        with self._cond:
            self._busy -= 1
            self._cond.notify_all()

    def _loop(self):
        conn = None
        while not self._stop.is_set() and time.monotonic() < self.deadline:
            if not self._on.wait(0.1):
                continue
            taken = self._take_slot()
            if taken is None:
                return
            seq, slot = taken
            try:
                delay = slot - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                if not self._on.is_set():
                    continue
                conn = self._publish(conn, seq)
            finally:
                self._done()
        if conn is not None:
            conn.close()

    def _publish(self, conn, seq):
        phase = self.phase
        body = json.dumps({"event": "user.message", "data": {
            "conversation_id": "conv-multihost", "message_id": "msg-%d" % seq,
            "user_id": "user-multihost", "content": "event %d of phase %s" % (seq, phase)}})
        t_send = time.time()
        try:
            if conn is None:
                conn = self.topo.http(self.addr, FH_PORT, timeout=PUBLISH_TIMEOUT)
            conn.request("POST", "/v1/events", body=body,
                         headers={"Authorization": "Bearer " + self.root_key,
                                  "Content-Type": "application/json"})
            r = conn.getresponse()
            payload = r.read()
            t_recv = time.time()
        except Exception as e:  # OSError, http.client's errors: no answer
            if conn is not None:
                conn.close()
            with self._cond:
                self.errors.append((phase, t_send, time.time(), repr(e)))
            return None
        with self._cond:
            if r.status == 202:
                try:
                    doc = json.loads(payload)
                    self.acks.append((doc["id"], phase, t_send, t_recv, doc.get("deliveries")))
                except (ValueError, KeyError, TypeError) as e:
                    self.errors.append((phase, t_send, t_recv, "bad 202 body %r: %r"
                                        % (payload[:200], e)))
            else:
                self.refused.append((phase, t_send, t_recv, r.status,
                                     r.headers.get("Retry-After")))
        if r.will_close:
            conn.close()
            return None
        return conn

    def acked(self, phase, since=None):
        with self._cond:
            return [a for a in self.acks if a[1] == phase and (since is None or a[2] >= since)]

    def refusals(self, since, status=None):
        with self._cond:
            return [r for r in self.refused if r[1] >= since and (status is None or r[3] == status)]

    def failures(self, since):
        with self._cond:
            return [e for e in self.errors if e[1] >= since]


class Deliveries:
    """What the receiver got, read from its log."""

    def __init__(self, path):
        self.log = DeliveryLog(path)
        self.records = []
        self.count = collections.Counter()  # (event id, path) -> deliveries
        self.bad = []  # records whose ids disagree or whose signature fails

    def poll(self):
        for r in self.log.poll():
            self.records.append(r)
            self.count[(r["id"], r["path"])] += 1
            if not r["sig"] or not (r["id"] == r["webhook_id"] == r["event_id"]):
                self.bad.append(r)

    def missing(self, event_ids):
        self.poll()
        return [(e, p) for e in event_ids for p in PATHS if self.count[(e, p)] == 0]

    def duplicates(self, event_ids):
        return sum(max(0, self.count[(e, p)] - 1) for e in event_ids for p in PATHS)

    def since(self, t):
        self.poll()
        return [r for r in self.records if r["t"] >= t]


class MultihostFaults(unittest.TestCase):
    rows = []

    @classmethod
    def setUpClass(cls):
        cls.t0 = time.monotonic()
        cls.rows = []
        cls.hosts = []
        fh = harness.find_bin()
        if not os.access(fh, os.X_OK):
            raise AssertionError("no fluxhook binary at %s: build it (ninja -C build-asan, "
                                 "or set FLUXHOOK_BIN)" % fh)
        cls.workdir = tempfile.mkdtemp(prefix="fluxhook-multihost-")
        cls.addClassCleanup(cls._remove_workdir)
        cls.topo = topology.Topology()  # fails and says why without root or netns
        cls.addClassCleanup(cls.topo.teardown)
        for name, addr in ADDR.items():
            cls.topo.add_host(name, addr)

        cls.pg = PgCluster(host=ADDR["db"], port=PG_PORT, prefix=cls.topo.prefix("db"),
                           trust=[str(cls.topo.network)])
        cls.addClassCleanup(cls.pg.cleanup)
        # Before the cluster goes (its log with it), after the processes are gone.
        cls.addClassCleanup(cls._finish)
        cls.pg.start()
        cls.db_url = cls.pg.create_db("fluxhook")

        cls.secrets = {p: "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()
                       for p in PATHS}
        secrets_file = os.path.join(cls.workdir, "secrets.json")
        with open(secrets_file, "w") as f:
            json.dump(cls.secrets, f)
        cls.rcv_log = os.path.join(cls.workdir, "deliveries.jsonl")
        cls.rcv_out = open(os.path.join(cls.workdir, "rcv.log"), "ab")
        cls.addClassCleanup(cls.rcv_out.close)
        cls.rcv = cls.topo.spawn("rcv", [
            sys.executable, os.path.join(HERE, "receiver_host.py"),
            "--listen", "%s:%d" % (ADDR["rcv"], RCV_PORT), "--log", cls.rcv_log,
            "--secrets", secrets_file, "--delay", "/slow=%s" % SLOW_DELAY],
            stdout=cls.rcv_out, stderr=subprocess.STDOUT)
        wait_until(cls._receiver_ready, START_TIMEOUT, "the receiver host on port %d" % RCV_PORT)
        cls.deliveries = Deliveries(cls.rcv_log)

        cls.root_key = harness.new_api_key()
        # The api host first: it creates the schema and the admin key.
        cls.api = Fluxhook(cls.topo, "api", "api", cls.db_url, cls.root_key, cls.workdir)
        cls.hosts.append(cls.api)
        cls.addClassCleanup(cls._kill_hosts)
        cls.api.start()
        cls.endpoints = {}
        for p in PATHS:
            st, b, _ = cls.api.request("POST", "/v1/endpoints", {
                "url": "http://%s:%d%s" % (ADDR["rcv"], RCV_PORT, p),
                "secret": cls.secrets[p], "description": "multihost " + p})
            if st != 201:
                raise AssertionError("POST /v1/endpoints answered %d: %s" % (st, b))
            cls.endpoints[p] = b["id"]
        cls.workers = {w: Fluxhook(cls.topo, w, "worker", cls.db_url, cls.root_key, cls.workdir)
                       for w in WORKERS}
        cls.hosts += list(cls.workers.values())
        for w in cls.workers.values():
            w.spawn()
        for w in cls.workers.values():
            w.wait_ready()
        cls.pub = Publisher(cls.topo, ADDR["api"], cls.root_key)
        cls.addClassCleanup(cls.pub.close)
        cls.setup_s = time.monotonic() - cls.t0

    @classmethod
    def _receiver_ready(cls):
        if cls.rcv.poll() is not None:
            raise AssertionError("the receiver exited with %d" % cls.rcv.returncode)
        try:
            c = cls.topo.http(ADDR["rcv"], RCV_PORT, timeout=2)
            c.request("GET", "/ready")
            ok = c.getresponse().status == 200
            c.close()
            return ok
        except OSError:
            return False

    @classmethod
    def _kill_hosts(cls):
        for h in cls.hosts:
            if h.running():
                h.kill9()

    @classmethod
    def _remove_workdir(cls):
        if os.environ.get("FLUXHOOK_KEEP_TMP"):
            print("multihost: kept %s" % cls.workdir, file=sys.stderr)
            return
        shutil.rmtree(cls.workdir, ignore_errors=True)

    @classmethod
    def _finish(cls):
        if cls.rows:
            cls.write_report()
        cls.keep_logs()

    # --- the report ---

    @classmethod
    def write_report(cls):
        head = "%-24s | %12s | %4s | %10s | %17s | %s" % (
            "fault", "events acked", "lost", "duplicates", "seconds to resume", "notes")
        lines = [head, "-" * len(head)]
        for r in cls.rows:
            resume = "-" if r["resume"] is None else "%.2f" % r["resume"]
            lines.append("%-24s | %12d | %4s | %10s | %17s | %s" % (
                r["fault"], r["acked"], "-" if r["lost"] is None else r["lost"],
                "-" if r["dups"] is None else r["dups"], resume, r["notes"]))
        store = "postgres" if cls.db_url.startswith("postgres") else cls.db_url
        cls.deliveries.poll()
        acked = {a[0] for a in cls.pub.acks}
        unacked = {r["id"] for r in cls.deliveries.records} - acked
        lines.append("")
        lines.append("events delivered without a 202 (stored, but the answer was lost or a 503): %d"
                     % len(unacked))
        lines.append("binary %s, store %s, %g events/s to the api host, each to %d endpoints, "
                     "3 workers (--lease %ds); set-up %.0f s, run %.0f s"
                     % (shown_path(harness.find_bin()), store, RATE, len(PATHS),
                        LEASE_S, cls.setup_s, time.monotonic() - cls.t0))
        text = "\n".join(lines) + "\n"
        print("\n" + text, file=sys.stderr, flush=True)
        os.makedirs(ARTIFACTS, exist_ok=True)
        with open(os.path.join(ARTIFACTS, "multihost.txt"), "w") as f:
            f.write(text)

    @classmethod
    def keep_logs(cls):
        d = os.path.join(ARTIFACTS, "multihost")
        shutil.rmtree(d, ignore_errors=True)
        os.makedirs(d, exist_ok=True)
        srcs = [h.log_path for h in cls.hosts] + [cls.pg.log_path, os.path.join(
            cls.workdir, "rcv.log"), os.path.join(cls.workdir, "deliveries.jsonl")]
        for src in srcs:
            if src and os.path.exists(src):
                shutil.copy(src, d)

    # --- helpers ---

    def ensure_fleet(self):
        """Every process runs and answers /healthz 200 (a fault before may have
        left one down: then this phase fails rather than hides it)."""
        for h in self.hosts:
            self.assertTrue(h.running(), "%s is not running:\n%s" % (h.name, h.log_tail()))
            wait_until(lambda h=h: h.healthz() == 200, WAIT_TIMEOUT,
                       "%s /healthz 200 before the phase" % h.name)

    def wait_acks(self, phase, n, since=None, timeout=WAIT_TIMEOUT):
        wait_until(lambda: len(self.pub.acked(phase, since)) >= n, timeout,
                   "%d events acknowledged in phase %s%s (acked %d; refused %s; errors %s)"
                   % (n, phase, "" if since is None else " after the fault",
                      len(self.pub.acked(phase, since)),
                      collections.Counter(r[3] for r in self.pub.refused[-200:]),
                      [e[3] for e in self.pub.errors[-3:]]))

    def wait_in_flight(self, w):
        """Waits until worker w has attempts under way (so it holds leases);
        returns how many."""
        return wait_until(lambda: (lambda n: n >= IN_FLIGHT and n)(
            w.metric("fluxhook_in_flight") or 0), WAIT_TIMEOUT,
            "%s to have %d attempts in flight" % (w.name, IN_FLIGHT), interval=0.02)

    def wait_others_deliver(self, since, not_from, n=40):
        """Waits until the receiver got n deliveries since `since` from hosts
        other than not_from (the fleet goes on without it)."""
        return wait_until(
            lambda: sum(r["peer"] != not_from for r in self.deliveries.since(since)) >= n,
            WAIT_TIMEOUT, "%d deliveries from the other workers" % n, interval=0.1)

    def queue_state(self):
        """The store's pending and delivering deliveries, as the api host's
        /metrics counts them; None when it does not answer."""
        m = self.api.metrics()
        keys = ['fluxhook_deliveries{status="pending"}', 'fluxhook_deliveries{status="delivering"}']
        if not all(k in m for k in keys):
            return None
        return int(m[keys[0]]), int(m[keys[1]])

    def unanswered(self, w, t):
        """Deliveries that reached /slow from worker w less than SLOW_DELAY
        before t: at t their answer was still to come, so w had not recorded
        them and still held their leases."""
        return {r["delivery"] for r in self.deliveries.since(t - SLOW_DELAY + 0.05)
                if r["peer"] == w.addr and r["path"] == "/slow" and r["t"] < t}

    def wait_taken_over(self, w, t):
        """After worker w is killed or cut off at t: waits until another worker
        sends again one of the deliveries w held (its lease ran out and the
        claim was taken over), and at least until the lease ran out. Returns
        (how many w held unanswered, seconds until the first was sent again)."""
        held = self.unanswered(w, t)

        def again():
            for r in self.deliveries.since(t):
                if r["delivery"] in held and r["peer"] != w.addr:
                    return r["t"]
            return None

        taken = None
        if held:
            taken = wait_until(again, LEASE_S + WAIT_TIMEOUT,
                               "one of the %d deliveries %s held to be sent by another worker"
                               % (len(held), w.name), interval=0.05) - t
        else:
            self.wait_others_deliver(t, w.addr)
        hold = t + LEASE_S + 1 - time.time()
        if hold > 0:
            time.sleep(hold)  # the fault's length: longer than the lease in any case
        return len(held), taken

    @staticmethod
    def taken_note(state):
        n, taken = state.get("taken") or (0, None)
        if taken is None:
            return "no unanswered delivery seen"
        return "%d it held re-sent by others from %.1f s" % (n, taken)

    def drain(self, event_ids):
        """Waits (bounded) until each event reached every endpoint and the
        store has nothing pending or under way (so a copy re-sent after a lease
        ran out has come too); returns the (event, path) pairs still missing
        and the last queue state."""
        deadline = time.monotonic() + DRAIN_TIMEOUT
        missing = self.deliveries.missing(event_ids)
        queue = None
        while time.monotonic() < deadline:
            self.deliveries.poll()
            missing = [m for m in missing if self.deliveries.count[m] == 0]
            if not missing:
                queue = self.queue_state()
                if queue == (0, 0):
                    break
            time.sleep(0.2)
        self.deliveries.poll()
        return missing, queue

    def run_phase(self, phase, title, fault):
        """Load on; fault() (returns {"end": time, "notes": ...}); more load;
        load off; drain; one row of the table. Returns (row, fault info, acks)."""
        row = {"fault": title, "acked": 0, "lost": None, "dups": None, "resume": None,
               "notes": ""}
        self.rows.append(row)
        self.ensure_fleet()
        info = {}
        error = None
        self.pub.resume(phase)
        try:
            self.wait_acks(phase, WARM_ACKS)
            info = fault() or {}
            info.setdefault("end", time.time())
            self.wait_acks(phase, POST_ACKS, since=info["end"])
        except Exception as e:  # still count what was acknowledged, then fail
            error = e
        finally:
            self.pub.pause()
        acks = self.pub.acked(phase)
        ids = [a[0] for a in acks]
        row["acked"] = len(ids)
        missing, queue = self.drain(ids)
        row["lost"] = len(missing)
        row["dups"] = self.deliveries.duplicates(ids)
        if "end" in info:
            after = {a[0] for a in acks if a[2] >= info["end"]}
            firsts = [r["t"] for r in self.deliveries.since(info["end"]) if r["id"] in after]
            if firsts:
                row["resume"] = min(firsts) - info["end"]
        if error is not None:
            raise error
        fanout = collections.Counter(a[4] for a in acks)
        self.assertEqual(set(fanout), {len(PATHS)}, "deliveries per event in the 202 answers")
        if missing:
            self.fail("%d of %d deliveries of acknowledged events did not arrive within %ss, "
                      "such as %s; queue (pending, delivering): %s; endpoints: %s\n"
                      "api log:\n%s" % (len(missing), len(ids) * len(PATHS), DRAIN_TIMEOUT,
                                         missing[:5], queue, self.endpoint_states(),
                                         self.api.log_tail()))
        self.assertEqual(queue, (0, 0), "deliveries (pending, delivering) left in the store "
                         "%ss after the load stopped" % DRAIN_TIMEOUT)
        self.assertEqual(self.deliveries.bad[:5], [],
                         "deliveries with a bad signature or disagreeing ids")
        return row, info, acks

    def endpoint_states(self):
        try:
            st, b, _ = self.api.request("GET", "/v1/endpoints?limit=100")
            return [(e["url"], e["status"], e.get("disabled_reason")) for e in b["data"]]
        except (OSError, KeyError, TypeError) as e:
            return "unknown (%r)" % e

    def first_delivery_from(self, peer, since):
        ts = [r["t"] for r in self.deliveries.since(since) if r["peer"] == peer]
        return min(ts) - since if ts else None

    # --- the faults, in order ---

    def test_1_baseline(self):
        row, _, _ = self.run_phase("a", "a. baseline", lambda: {"end": time.time()})
        self.assertEqual(row["dups"], 0, "duplicates without any fault; failed attempts:\n%s"
                         % self.failed_attempts())

    def failed_attempts(self, n=10):
        """The workers' 'attempt failed' log lines (the first n), for a message."""
        lines = [line for w in self.workers.values() for line in w.log_text().splitlines()
                 if "dispatch: attempt failed" in line]
        return "\n".join(sorted(lines)[:n])

    def test_2_worker_kill9(self):
        w = self.workers["w1"]
        state = {}

        def fault():
            state["in_flight"] = self.wait_in_flight(w)
            w.kill9()
            t = time.time()
            # Down longer than the lease: the others take over what it held.
            state["taken"] = self.wait_taken_over(w, t)
            w.start()
            end = time.time()
            state["down"] = end - t
            return {"end": end}

        try:
            row, info, _ = self.run_phase("b", "b. worker kill -9", fault)
        finally:
            self.rows[-1]["notes"] = "w1 held %d in flight, down %.1f s; %s" % (
                state.get("in_flight") or 0, state.get("down", 0), self.taken_note(state))
        back = self.first_delivery_from(w.addr, info["end"])
        row["notes"] += "; w1 delivers again after %s" % (
            "-" if back is None else "%.2f s" % back)

    def test_3_worker_cut_off(self):
        w = self.workers["w2"]
        state = {}

        def taken_over():
            """w2's fence lines for a delivery another worker claimed since
            (token older than the current one), not a result applied twice."""
            return [m for m in FENCED.finditer(w.log_text()) if m.group(2) != m.group(3)]

        def fault():
            state["fenced0"] = w.metric("fluxhook_results_fenced_total") or 0
            state["logged0"] = len(taken_over())
            state["in_flight"] = self.wait_in_flight(w)
            self.topo.cut("w2")
            t = time.time()
            # Cut longer than the lease: the others take over what it held.
            state["taken"] = self.wait_taken_over(w, t)
            self.topo.heal("w2")
            end = time.time()
            state["down"] = end - t
            # Its late results come back and must be fenced, not applied.
            state["fenced"] = wait_until(
                lambda: len(taken_over()) > state["logged0"], WAIT_TIMEOUT,
                "'stale result fenced ... token=T current=C' with T != C in the log of w2 "
                "(fluxhook_results_fenced_total went from %d to %s)"
                % (state["fenced0"], w.metric("fluxhook_results_fenced_total")))
            wait_until(lambda: w.healthz() == 200, WAIT_TIMEOUT, "w2 /healthz 200 after heal")
            return {"end": end}

        try:
            row, info, _ = self.run_phase("c", "c. worker cut off", fault)
        finally:
            fenced = (w.metric("fluxhook_results_fenced_total") or 0) - state.get("fenced0", 0)
            self.rows[-1]["notes"] = (
                "w2 held %d in flight, cut %.1f s; %s; %d results fenced (%d log lines)"
                % (state.get("in_flight") or 0, state.get("down", 0), self.taken_note(state),
                   fenced, len(taken_over()) - state.get("logged0", 0)))
        self.assertTrue(state.get("fenced"))
        back = self.first_delivery_from(w.addr, info["end"])
        row["notes"] += "; w2 delivers again after %s" % (
            "-" if back is None else "%.2f s" % back)

    def test_4_postgres_restart(self):
        state = {}

        def fault():
            pids = {h.name: h.proc.pid for h in self.hosts}
            state["stop"] = time.time()
            # Immediate: no checkpoint, sessions cut; recovery replays the WAL,
            # so what was committed (and only that) may have been answered 202.
            self.pg.stop("immediate")
            state["down"] = time.time()
            # While the store is down, publishing answers 503 and /healthz too.
            wait_until(lambda: len(self.pub.refusals(state["down"], 503)) >= 3, WAIT_TIMEOUT,
                       "publishes answered 503 while postgres is down (refused %s, errors %s)"
                       % (collections.Counter(r[3] for r in self.pub.refusals(state["down"])),
                          [e[3] for e in self.pub.failures(state["down"])[-3:]]))
            wait_until(lambda: self.api.healthz() == 503, WAIT_TIMEOUT,
                       "api /healthz 503 while postgres is down")
            state["up"] = time.time()
            self.pg.start()
            end = time.time()
            # Every process reconnects by itself: same pids, healthy again.
            for h in self.hosts:
                wait_until(lambda h=h: h.healthz() == 200, WAIT_TIMEOUT,
                           "%s /healthz 200 after postgres came back" % h.name)
            self.assertEqual({h.name: h.proc.pid for h in self.hosts if h.running()}, pids,
                             "a fluxhook process died while postgres restarted")
            return {"end": end}

        row, info, acks = self.run_phase("d", "d. postgres restart", fault)
        down, up = state["down"], state["up"]
        r503 = [r for r in self.pub.refused if r[0] == "d" and r[3] == 503]
        other = collections.Counter(r[3] for r in self.pub.refused if r[0] == "d" and r[3] != 503)
        row["notes"] = "-m immediate, db down %.1f s; %d answered 503%s, %d no answer" % (
            info["end"] - state["stop"], len(r503), " (others: %s)" % dict(other) if other else "",
            len([e for e in self.pub.errors if e[0] == "d"]))
        # Never 202 for an event sent and answered while the store was down.
        during = [a for a in acks if a[2] >= down and a[3] <= up]
        self.assertEqual(during, [], "202 while postgres was down")
        self.assertEqual([r for r in r503 if not r[4]], [], "503 without Retry-After")

    def test_5_api_kill9(self):
        def fault():
            self.api.kill9()
            t = time.time()
            wait_until(lambda: len(self.pub.failures(t)) >= 3, WAIT_TIMEOUT,
                       "publishes failing while the api host is down")
            self.api.start()
            return {"end": time.time(), "down": time.time() - t}

        row, info, _ = self.run_phase("e", "e. api kill -9", fault)
        row["notes"] = "api down %.1f s" % info["down"]

    # --- what must hold at the end ---

    def test_6_db_host_cut_off(self):
        state = {}

        def fault():
            pids = {h.name: h.proc.pid for h in self.hosts}
            # A partition, not a stop: the sessions stall instead of closing.
            self.topo.cut("db")
            state["cut"] = t = time.time()
            wait_until(lambda: len(self.pub.refusals(t, 503)) >= 3, WAIT_TIMEOUT,
                       "publishes answered 503 while the db host is cut off (refused %s, "
                       "errors %s)" % (collections.Counter(r[3] for r in self.pub.refusals(t)),
                                       [e[3] for e in self.pub.failures(t)[-3:]]))
            hold = t + DB_CUT_S - time.time()
            if hold > 0:
                time.sleep(hold)  # the fault's length
            state["heal"] = time.time()
            self.topo.heal("db")
            end = time.time()
            for h in self.hosts:
                wait_until(lambda h=h: h.healthz() == 200, WAIT_TIMEOUT,
                           "%s /healthz 200 after the db host came back" % h.name)
            self.assertEqual({h.name: h.proc.pid for h in self.hosts if h.running()}, pids,
                             "a fluxhook process died while the db host was cut off")
            return {"end": end}

        try:
            row, info, acks = self.run_phase("f", "f. db host cut off", fault)
        finally:
            mine = [a for a in self.pub.acks if a[1] == "f"]
            slow = max([a[3] - a[2] for a in mine] + [r[2] - r[1] for r in self.pub.refused
                                                      if r[0] == "f"] + [0])
            self.rows[-1]["notes"] = (
                "cut %.1f s; %d answered 503, %d no answer within %d s; slowest answer %.1f s"
                % (state.get("heal", 0) - state.get("cut", 0),
                   len([r for r in self.pub.refused if r[0] == "f" and r[3] == 503]),
                   len([e for e in self.pub.errors if e[0] == "f"]), PUBLISH_TIMEOUT, slow))
        during = [a for a in acks if a[2] >= state["cut"] and a[3] <= state["heal"]]
        self.assertEqual(during, [], "202 while the db host was cut off")

    def test_7_nothing_failed_or_held(self):
        for status in ("failed", "held"):
            st, b, _ = self.api.request("GET", "/v1/deliveries?status=%s&limit=20" % status)
            self.assertEqual(st, 200, b)
            self.assertEqual(b["data"], [], "deliveries %s at the end" % status)
        for url, status, why in self.endpoint_states():
            self.assertEqual(status, "enabled", "%s: %s" % (url, why))
        self.assertEqual(self.deliveries.bad[:5], [],
                         "deliveries with a bad signature or disagreeing ids")

    def test_8_clean_stop(self):
        codes = {}
        for h in list(self.workers.values()) + [self.api]:
            codes[h.name] = h.stop()
        self.assertEqual(codes, {h.name: 0 for h in self.hosts}, "exit codes after SIGTERM")
        for h in self.hosts:
            self.assertEqual(h.sanitizer_report(), "", "sanitizer report in %s's log" % h.name)


if __name__ == "__main__":
    unittest.main()
