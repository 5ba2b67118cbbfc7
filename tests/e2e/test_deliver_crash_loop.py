"""At least once across repeated crashes: a steady publish load to several
receivers while the server is killed with SIGKILL and started again, cycle
after cycle. Every event answered 202 reaches every receiver (lost must be
0); duplicates are counted and reported, never required to be 0. On
PostgreSQL the loop runs a second time while the database also ends every
connection of the store a few times a second, so the dispatcher's claims
and result writes fail intermittently.

FLUXHOOK_CRASH_CYCLES sets the cycles (10 in `make test`, 200 in
`make soak`); the table goes to stdout and tests/artifacts/crash_loop.txt."""
import collections
import json
import os
import threading
import time
import unittest

import harness
from harness import ROOT, Server
from loadgen import Publisher
from receiver import Receiver

CYCLES = int(os.environ.get("FLUXHOOK_CRASH_CYCLES", "10"))
RECEIVERS = 3
PUBLISHERS = 2
PER_CYCLE = 25          # events acknowledged between two kills, at least
RATE = 200              # events/s each publisher aims at


class StoreFaults(threading.Thread):
    """Ends every connection to the store's database every `every` seconds."""

    def __init__(self, db, every=0.3):
        super().__init__(daemon=True)
        self.db = db
        self.every = every
        self.ended = 0
        self.halt = threading.Event()

    def run(self):
        sql = ("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
               "WHERE datname = current_database() AND pid <> pg_backend_pid()")
        while not self.halt.wait(self.every):
            try:
                self.ended += int(harness.psql(self.db, sql, timeout=10).strip() or 0)
            except (AssertionError, OSError, ValueError):
                pass


class DeliverCrashLoop(unittest.TestCase):

    def test_kill9_loop_under_load_loses_nothing(self):
        self.crash_loop("kill -9 loop", faults=False)

    def test_kill9_loop_with_failing_store_writes(self):
        if os.environ.get("FLUXHOOK_TEST_STORE") != "postgres":
            self.skipTest("ends the database's connections: postgres only")
        self.crash_loop("kill -9 loop, store connections ended every 0.3 s", faults=True)

    def crash_loop(self, name, faults):
        rcs = [Receiver(default={"status": 200, "delay": 0.02}) for _ in range(RECEIVERS)]
        for rc in rcs:
            self.addCleanup(rc.close)
        srv = Server(args=["--allow-http", "--allow-networks", "127.0.0.0/8",
                           "--attempt-timeout", "1s", "--lease", "3s",
                           "--retry-schedule", "0ms,100ms,200ms,400ms,800ms"], test=self)
        srv.start()
        for rc in rcs:
            st, b, _ = srv.api("POST", "/v1/endpoints", {"url": rc.url})
            self.assertEqual(st, 201, b)

        pubs = [Publisher(srv, rate=RATE, limit=CYCLES * 20 + 60) for _ in range(PUBLISHERS)]
        for p in pubs:
            p.start()
        chaos = StoreFaults(srv.db) if faults else None
        if chaos is not None:
            chaos.start()
        started = time.monotonic()
        try:
            for cycle in range(CYCLES):
                target = sum(p.count() for p in pubs) + PER_CYCLE
                srv.wait_for(lambda: sum(p.count() for p in pubs) >= target, timeout=30,
                             interval=0.005, what="publishes acknowledged in cycle %d" % cycle)
                srv.kill9()
                srv.start()
            # One more stretch of load after the last restart.
            target = sum(p.count() for p in pubs) + PER_CYCLE
            srv.wait_for(lambda: sum(p.count() for p in pubs) >= target, timeout=30,
                         interval=0.005, what="publishes acknowledged after the last restart")
        finally:
            for p in pubs:
                p.halt.set()
            if chaos is not None:
                chaos.halt.set()
                chaos.join(30)
            for p in pubs:
                p.join(60)
        acked = [i for p in pubs for i in p.acked]
        self.assertEqual(len(set(acked)), len(acked))
        want = set(acked)

        for rc in rcs:
            def arrived(rc=rc):
                return want <= {r.headers["x-workflux-event-id"] for r in rc.requests}
            srv.wait_for(arrived, timeout=120, interval=0.2,
                         what="every acknowledged event at %s" % rc.url)
        # The store has settled: nothing pending or delivering, nothing failed.
        for status in ("pending", "delivering", "failed", "held"):
            srv.wait_for(lambda s=status: srv.api(
                "GET", "/v1/deliveries?status=%s&limit=1" % s)[1]["data"] == [],
                timeout=60, interval=0.2, what="no delivery %s" % status)

        copies = collections.Counter()
        for rc in rcs:
            for r in rc.requests:
                self.assertEqual(json.loads(r.body)["id"], r.headers["x-workflux-event-id"])
                copies[(rc.url, r.headers["x-workflux-event-id"])] += 1
        lost = sum(1 for rc in rcs for i in want if copies[(rc.url, i)] == 0)
        dups = sum(n - 1 for n in copies.values() if n > 1)
        table = ("%s: cycles %d, events acknowledged %d, deliveries expected %d, "
                 "lost %d, duplicates %d%s, %.0f s\n"
                 % (name, CYCLES, len(acked), len(acked) * RECEIVERS, lost, dups,
                    ", connections ended %d" % chaos.ended if chaos is not None else "",
                    time.monotonic() - started))
        print("\n" + table)
        os.makedirs(os.path.join(ROOT, "tests", "artifacts"), exist_ok=True)
        with open(os.path.join(ROOT, "tests", "artifacts", "crash_loop.txt"), "a") as f:
            f.write(table)
        self.assertEqual(lost, 0)
        if chaos is not None:
            self.assertGreater(chaos.ended, 0)
            self.assertIn("postgres connection lost", srv.log_text())
        self.assertEqual(srv.stop(), 0)


if __name__ == "__main__":
    unittest.main()
