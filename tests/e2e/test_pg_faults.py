"""PostgreSQL faults under load, on one host: the database restarting and a
primary failing over to its streaming standby. Publish answers 503 with
Retry-After (never 202) while no event can be stored, /healthz says the store
is unreachable, fluxhook reconnects by itself, and every event answered 202
before, during and after the fault reaches its receiver. And at start: serve
rides out connections the database ends while the store opens, and fails at
once on what trying again cannot fix.

Each test starts its own throwaway cluster (tests/pgcluster.py), since it
stops and restarts it."""
import os
import subprocess
import sys
import threading
import unittest

from harness import Server, run_bin
from loadgen import DATA, Publisher
from receiver import Receiver

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from pgcluster import PgCluster, _bin  # noqa: E402

DELIVERED_WITHIN = 90
MIGRATE_LOCK = 7380973040433721195  # src/store/pg/pg_db.c PG_MIGRATE_LOCK
RETRY_LINE = "(--store-open-timeout)"


class LockHolder:
    """A psql session on db that holds serve's migration lock until release()."""

    def __init__(self, pg, db):
        self.proc = subprocess.Popen(
            [_bin("psql"), "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1"] + pg._conn_args()
            + ["-d", db], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True)
        self.proc.stdin.write("SELECT pg_backend_pid(), pg_advisory_lock(%d);\n" % MIGRATE_LOCK)
        self.proc.stdin.flush()
        self.pid = int(self.proc.stdout.readline().split("|")[0])

    def release(self):
        if self.proc.poll() is None:
            self.proc.stdin.close()  # the session ends, and its lock with it
            self.proc.wait(30)
            self.proc.stdout.close()


class StartFaults(threading.Thread):
    """Ends every connection to database db but the lock holder's, every
    `every` seconds, until halted."""

    def __init__(self, pg, db, spare_pid, every):
        super().__init__(daemon=True)
        self.pg, self.db, self.spare, self.every = pg, db, spare_pid, every
        self.ended = 0
        self.halt = threading.Event()

    def run(self):
        sql = ("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
               "WHERE datname = '%s' AND pid <> pg_backend_pid() AND pid <> %d"
               % (self.db, self.spare))
        while not self.halt.wait(self.every):
            self.ended += int(self.pg.psql(sql).strip() or 0)


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

    def test_start_rides_out_connections_ended_while_the_store_opens(self):
        pg = PgCluster()
        pg.start()
        self.addCleanup(pg.cleanup)
        pg.create_db("fh")
        # Holding the migration lock keeps serve in its first step, so the
        # database ends its connections there for sure, try after try.
        holder = LockHolder(pg, "fh")
        self.addCleanup(holder.release)
        faults = StartFaults(pg, "fh", holder.pid, every=0.05)
        faults.start()
        self.addCleanup(faults.halt.set)
        srv = Server(db=pg.url("fh"), args=["--allow-http", "--allow-networks", "127.0.0.0/8",
                                            "--store-open-timeout", "5m"], test=self)
        srv.start(wait=False)
        srv.wait_for(lambda: srv.log_text().count(RETRY_LINE) >= 3, timeout=60,
                     what="three tries of opening the store")
        self.assertRegex(srv.log_text(), "store: waiting to migrate failed: .*terminating "
                                         "connection due to administrator command")
        self.assertNotIn("serve: listening", srv.log_text())
        # Let the migrations run, still ending every connection (more slowly,
        # so that a whole try fits between two rounds) until serve listens.
        holder.release()
        faults.every = 0.2
        srv.wait_for(lambda: "serve: listening url=" in srv.log_text(), timeout=120,
                     interval=0.05, what="serve listening despite the ended connections")
        faults.halt.set()
        faults.join(30)
        self.assertGreater(faults.ended, 0)
        self.assertTrue(srv.running())
        self.assertIn("serve: store open after ", srv.log_text())
        # It serves: the account and its key made during the faults work, and
        # an event published now is delivered.
        srv._wait_listening()
        rc = Receiver()
        self.addCleanup(rc.close)
        st, ep, _ = srv.api("POST", "/v1/endpoints", {"url": rc.url})
        self.assertEqual(st, 201, ep)
        st, ev, _ = srv.api("POST", "/v1/events", {"event": "user.message", "data": DATA})
        self.assertEqual(st, 202, ev)
        self.assert_all_delivered(srv, rc, [ev["id"]])
        self.assertEqual(srv.stop(), 0)

    def test_start_fails_at_once_on_what_trying_again_cannot_fix(self):
        pg = PgCluster()
        pg.start()
        self.addCleanup(pg.cleanup)
        pg.create_db("newer")
        pg.psql("CREATE TABLE schema_version (version INTEGER PRIMARY KEY, name TEXT NOT NULL, "
                "applied_at BIGINT NOT NULL); INSERT INTO schema_version VALUES (9999, 'x', 0)",
                db="newer")
        pg.create_db("sealed")
        first = Server(db=pg.url("sealed"), test=self)
        first.start()
        self.assertEqual(first.stop(), 0)
        other_key = "ab" * 32
        cases = [
            (pg.url("nosuchdb"), {}, 'database "nosuchdb" does not exist'),
            (pg.url("fh").replace("postgres@", "nosuchrole@"), {},
             'role "nosuchrole" does not exist'),
            (pg.url("newer"), {}, "database schema version 9999 is newer than this fluxhook"),
            (pg.url("sealed"), {"FLUXHOOK_MASTER_KEY": other_key}, "wrong master key"),
        ]
        for url, env, says in cases:
            with self.subTest(says=says):
                # Trying again would take 10 minutes: the run's 60 s bound fails it.
                p = run_bin("serve", "--listen", "127.0.0.1:0", "--db", url,
                            "--store-open-timeout", "10m", env=env, timeout=60)
                self.assertEqual(p.returncode, 1, p.stderr)
                self.assertIn(says, p.stderr)
                self.assertNotIn(RETRY_LINE, p.stderr)


if __name__ == "__main__":
    unittest.main()
