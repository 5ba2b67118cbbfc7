"""PostgreSQL faults under load, on one host: the database restarting and a
primary failing over to its streaming standby. Publish answers 503 with
Retry-After (never 202) while no event can be stored, /healthz says the store
is unreachable, fluxhook reconnects by itself, and every event answered 202
before, during and after the fault reaches its receiver.

Each test starts its own throwaway cluster (tests/pgcluster.py), since it
stops and restarts it."""
import os
import sys
import unittest

from harness import Server
from loadgen import DATA, Publisher
from receiver import Receiver

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from pgcluster import PgCluster  # noqa: E402

DELIVERED_WITHIN = 90


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
