"""The HTTP front end cannot be starved (issue 10): 10,000 idle connections
plus 1,000 that drip one byte of a request head every 2 seconds, while new
clients publish and ask /healthz, each answered within a second. The drips
are answered 408 and closed at the head deadline; the idle connections stay
open (the server is below its limit, so nothing is shed).

The new clients come from a thread of their own, one every PROBE_EVERY_S
until the flood ends: how many fit in it depends on the machine's load, not
on the server, so the test asks for MIN_PROBES of them answered while every
drip is still held, and fails on any answer slower than a second or
refused."""
import resource
import selectors
import socket
import threading
import time
import unittest

from harness import Server

IDLE = 10000
DRIPS = 1000
HEAD_TIMEOUT_S = 4
DRIP_EVERY_S = 2
PROBE_EVERY_S = 0.25
MIN_PROBES = 3          # new clients answered while every drip is still held
DRIP_HEAD = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
EVENT = {"event": "user.message",
         "data": {"conversation_id": "c1", "message_id": "m1", "user_id": "u1", "content": "hi"}}


def raise_nofile(want):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(want, hard), hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def metric(srv, name):
    status, text, _ = srv.api("GET", "/metrics", key=False, timeout=5)
    assert status == 200, text
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError("no %s in /metrics" % name)


class Prober(threading.Thread):
    """New clients, one every PROBE_EVERY_S until halted or one fails: each
    a GET /healthz and a publish, timed. .done holds the
    (finished_at, [latencies]) of each answered client, .errors what went
    wrong (a refused connection, an error status)."""

    def __init__(self, srv):
        super().__init__(daemon=True)
        self.srv = srv
        self.done = []
        self.errors = []
        self.halt = threading.Event()

    def run(self):
        while not self.errors:
            lat = []
            try:
                for method, path, body, want in (("GET", "/healthz", None, 200),
                                                  ("POST", "/v1/events", EVENT, 202)):
                    t0 = time.monotonic()
                    status, answer, _ = self.srv.api(method, path, body,
                                                     key=False if body is None else None,
                                                     timeout=5)
                    lat.append(time.monotonic() - t0)
                    if status != want:
                        self.errors.append("%s %s: %d %s" % (method, path, status, answer))
            except OSError as e:
                self.errors.append("a new client: %r" % e)
            if not self.errors:
                self.done.append((time.monotonic(), lat))
            if self.halt.wait(PROBE_EVERY_S):
                return


class Flood(unittest.TestCase):
    def setUp(self):
        need = IDLE + DRIPS + 500
        if raise_nofile(need) < need:
            self.skipTest("the open-file limit is below %d" % need)
        self.socks = []
        self.addCleanup(self.close_all)
        self.srv = Server(args=["--allow-http", "--http-per-ip", "0",
                                "--http-head-timeout", "%ds" % HEAD_TIMEOUT_S],
                          log_level="info", test=self)
        self.srv.start()

    def close_all(self):
        for s in self.socks:
            s.close()
        self.socks = []

    def connect_many(self, n, deadline):
        out = []
        for _ in range(n):
            self.assertLess(time.monotonic(), deadline, "connecting took too long")
            s = socket.create_connection(("127.0.0.1", self.srv.port), timeout=10)
            s.setblocking(False)
            self.socks.append(s)
            out.append(s)
        return out


    def test_idle_and_dripping_connections_do_not_starve_new_clients(self):
        start = time.monotonic()
        idle = self.connect_many(IDLE, start + 120)
        drips = self.connect_many(DRIPS, start + 150)
        # Every one of them is held (the last ones may still be in the accept queue).
        self.srv.wait_for(lambda: metric(self.srv, 'fluxhook_http_connections{state="all"}')
                          > IDLE + DRIPS, what="all connections accepted")

        sel = selectors.DefaultSelector()
        sent = {}
        answers = {}
        for s in drips:
            sel.register(s, selectors.EVENT_READ)
            sent[s] = 0
            answers[s] = b""
        closed_at = {}
        prober = Prober(self.srv)
        t_drip = time.monotonic()
        next_drip = t_drip
        prober.start()
        self.addCleanup(prober.join, 30)
        self.addCleanup(prober.halt.set)
        deadline = t_drip + HEAD_TIMEOUT_S + 15
        while len(closed_at) < DRIPS and time.monotonic() < deadline:
            now = time.monotonic()
            if now >= next_drip:
                for s in drips:
                    if s not in closed_at and sent[s] < len(DRIP_HEAD) - 4:
                        try:
                            s.send(DRIP_HEAD[sent[s]:sent[s] + 1])
                            sent[s] += 1
                        except OSError:
                            closed_at[s] = now
                next_drip += DRIP_EVERY_S
            for key, _ in sel.select(timeout=0.05):
                s = key.fileobj
                try:
                    got = s.recv(4096)
                except BlockingIOError:
                    continue
                except OSError:
                    got = b""
                if got:
                    answers[s] += got
                    continue
                sel.unregister(s)
                closed_at.setdefault(s, time.monotonic())
        sel.close()
        prober.halt.set()
        prober.join(30)

        self.assertEqual(prober.errors, [])
        lat = [x for _, pair in prober.done for x in pair]
        self.assertEqual(len(closed_at), DRIPS, "drips still open after %ss" % (deadline - t_drip))
        # Each was told why before the close: a whole 408 with the JSON error.
        for s in drips:
            a = answers[s]
            self.assertTrue(a.startswith(b"HTTP/1.1 408 Request Timeout\r\n"), a[:200])
            self.assertTrue(a.endswith(b"}}\n") and b'"request_timeout"' in a, a[-200:])
        # Each drip had sent more than one byte (so an idle timer alone never fired)
        # and was closed near the head deadline, not before it.
        self.assertTrue(all(sent[s] >= 2 for s in drips), sorted(sent.values())[:10])
        first = min(closed_at.values()) - t_drip
        last = max(closed_at.values()) - t_drip
        self.assertGreaterEqual(first, HEAD_TIMEOUT_S - 0.5)
        self.assertLess(last, HEAD_TIMEOUT_S + 5)
        # New clients were answered while the flood was whole, each within a second.
        during = [t for t, _ in prober.done if t < min(closed_at.values())]
        self.assertGreaterEqual(len(during), MIN_PROBES, "new clients answered during the flood")
        self.assertLess(max(lat), 1.0, "slowest answer %.3fs" % max(lat))
        self.assertGreaterEqual(
            metric(self.srv, 'fluxhook_http_connections_closed_total{reason="head_timeout"}'),
            DRIPS)

        # The idle connections are all still open: none got an answer or an EOF.
        sel = selectors.DefaultSelector()
        for s in idle:
            sel.register(s, selectors.EVENT_READ)
        ready = sel.select(timeout=0)
        sel.close()
        self.assertEqual(len(ready), 0, "%d idle connections were closed" % len(ready))
        print("flood: idle=%d drips=%d probes=%d (%d during the whole flood) max_latency_ms=%.1f "
              "drips_closed_s=%.1f..%.1f setup_s=%.1f"
              % (IDLE, DRIPS, len(prober.done), len(during), 1000 * max(lat), first, last,
                 t_drip - start))


if __name__ == "__main__":
    unittest.main()
