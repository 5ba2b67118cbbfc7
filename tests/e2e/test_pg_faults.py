"""PostgreSQL faults under load, on one host: the database restarting and a
primary failing over to its streaming standby. Publish answers 503 with
Retry-After (never 202) while no event can be stored, /healthz says the store
is unreachable, fluxhook reconnects by itself, and every event answered 202
before, during and after the fault reaches its receiver.

Each test starts its own throwaway cluster (tests/pgcluster.py), since it
stops and restarts it."""
import http.client
import json
import os
import sys
import threading
import time
import unittest

from harness import Server
from receiver import Receiver

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from pgcluster import PgCluster  # noqa: E402

DATA = {"conversation_id": "c-1", "message_id": "m-1", "user_id": "u-1", "content": "hi"}
RATE = 100          # events/s the publisher aims at
LOAD_SECONDS = 60   # the publisher stops by itself after this long at the latest
DELIVERED_WITHIN = 90


class Publisher(threading.Thread):
    """Publishes at about RATE events/s until stop() or LOAD_SECONDS; records the
    ids answered 202 and every other answer (status, Retry-After)."""

    def __init__(self, srv):
        super().__init__(daemon=True)
        self.srv = srv
        self.acked = []
        self.refused = []   # (status, retry_after) of answers other than 202
        self.errors = 0     # connections that failed
        self._halt = threading.Event()

    def run(self):
        deadline = time.monotonic() + LOAD_SECONDS
        conn = None
        hdrs = {"Authorization": "Bearer " + self.srv.root_key,
                "Content-Type": "application/json"}
        body = json.dumps({"event": "user.message", "data": DATA})
        while not self._halt.is_set() and time.monotonic() < deadline:
            t0 = time.monotonic()
            try:
                if conn is None:
                    conn = http.client.HTTPConnection("127.0.0.1", self.srv.port, timeout=30)
                conn.request("POST", "/v1/events", body=body, headers=hdrs)
                r = conn.getresponse()
                payload = r.read()
                if r.status == 202:
                    self.acked.append(json.loads(payload)["id"])
                else:
                    self.refused.append((r.status, r.getheader("Retry-After")))
            except (OSError, http.client.HTTPException):
                self.errors += 1
                if conn is not None:
                    conn.close()
                conn = None
            self._halt.wait(max(0.0, 1.0 / RATE - (time.monotonic() - t0)))
        if conn is not None:
            conn.close()

    def stop(self):
        self._halt.set()
        self.join(60)

    def wait_acked(self, n, timeout=30):
        """Waits until n more events than now are acknowledged."""
        target = len(self.acked) + n
        deadline = time.monotonic() + timeout
        while len(self.acked) < target:
            if time.monotonic() > deadline:
                raise AssertionError("publishing did not resume: %d acked, wanted %d"
                                     % (len(self.acked), target))
            time.sleep(0.02)


class PgFaults(unittest.TestCase):

    def serve(self, db):
        srv = Server(db=db, args=["--allow-http", "--allow-networks", "127.0.0.0/8",
                                  "--retry-schedule", "0ms,200ms,500ms,1s,2s"], test=self)
        srv.start()
        rc = Receiver()
        self.addCleanup(rc.close)
        st, ep, _ = srv.api("POST", "/v1/endpoints", {"url": rc.url})
        self.assertEqual(st, 201, ep)
        return srv, rc

    def assert_all_delivered(self, srv, rc, acked):
        want = set(acked)

        def arrived():
            return want <= {r.headers["x-workflux-event-id"] for r in rc.requests}
        srv.wait_for(arrived, timeout=DELIVERED_WITHIN, interval=0.2,
                     what="every acknowledged event delivered")
        missing = [i for i in list(want)[:50] if srv.api("GET", "/v1/events/" + i)[0] != 200]
        self.assertEqual(missing, [], "acknowledged events missing from the store")

    def wait_unavailable(self, srv):
        """Waits until the store is seen as unreachable; returns the 503 answers."""
        out = {}

        def down():
            st, body, hdrs = srv.api("GET", "/healthz", key=False, timeout=10)
            if st != 503:
                return False
            out["health"] = (body, hdrs)
            st, body, hdrs = srv.api("POST", "/v1/events",
                                     {"event": "user.message", "data": DATA}, timeout=30)
            out["publish"] = (st, body, hdrs)
            return True
        srv.wait_for(down, timeout=30, interval=0.1, what="/healthz answering 503")
        return out

    def test_database_restart_under_load(self):
        pg = PgCluster()
        pg.start()
        self.addCleanup(pg.cleanup)
        pg.create_db("fh")
        srv, rc = self.serve(pg.url("fh"))
        pub = Publisher(srv)
        pub.start()
        self.addCleanup(pub.stop)
        pub.wait_acked(100)

        pg.stop("fast")
        down = self.wait_unavailable(srv)
        body, _ = down["health"]
        self.assertEqual(body["store"], "store unavailable", body)
        st, body, hdrs = down["publish"]
        self.assertEqual(st, 503, body)
        self.assertEqual(body["error"]["type"], "unavailable", body)
        self.assertEqual(hdrs.get("Retry-After"), "2")

        pg.start()
        srv.wait_for(lambda: srv.api("GET", "/healthz", key=False)[0] == 200, timeout=30,
                     interval=0.1, what="/healthz answering 200 again")
        pub.wait_acked(100)
        pub.stop()
        self.assertTrue(srv.running(), "fluxhook exited during the outage")
        self.assertTrue(all(s == 503 for s, _ in pub.refused), pub.refused[:10])
        self.assertTrue(all(ra == "2" for _, ra in pub.refused), pub.refused[:10])
        self.assert_all_delivered(srv, rc, pub.acked)
        self.assertIn("postgres connection lost", srv.log_text())

    def test_failover_to_a_promoted_standby(self):
        primary = PgCluster()
        primary.start()
        self.addCleanup(primary.cleanup)
        primary.create_db("fh")
        standby = primary.add_standby()
        # Commits wait for the standby: a failover loses no acknowledged event.
        primary.psql("ALTER SYSTEM SET synchronous_standby_names = '*'")
        primary.psql("SELECT pg_reload_conf()")
        url = ("postgres://postgres@%s:%d,%s:%d/fh?target_session_attrs=read-write"
               % (primary.host, primary.port, standby.host, standby.port))
        srv, rc = self.serve(url)
        pub = Publisher(srv)
        pub.start()
        self.addCleanup(pub.stop)
        pub.wait_acked(100)

        primary.kill9()
        self.wait_unavailable(srv)
        standby.promote()
        srv.wait_for(lambda: srv.api("GET", "/healthz", key=False)[0] == 200, timeout=30,
                     interval=0.1, what="/healthz answering 200 on the new primary")
        pub.wait_acked(100)
        pub.stop()
        self.assertTrue(srv.running(), "fluxhook exited during the failover")
        self.assertTrue(all(s == 503 for s, _ in pub.refused), pub.refused[:10])
        self.assert_all_delivered(srv, rc, pub.acked)


if __name__ == "__main__":
    unittest.main()
