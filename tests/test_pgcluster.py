"""The PostgreSQL fixture itself: start, databases, psql, restart, a crash,
a standby and its promotion, and that nothing is left behind.

    python3 -m unittest -v tests/test_pgcluster.py
"""
import os
import signal
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pgcluster  # noqa: E402
from pgcluster import PgCluster, PgError  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))


def leftovers(pg_dir):
    """Processes whose working directory is under pg_dir."""
    out = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                if os.readlink("/proc/%s/cwd" % name).startswith(pg_dir + "/"):
                    out.append(int(name))
            except OSError:
                pass
    return out


class TestPgCluster(unittest.TestCase):
    def test_lifecycle(self):
        pg = PgCluster()
        self.addCleanup(pg.cleanup)
        pg.start()
        top = pg.dir
        self.assertTrue(pg.running())
        self.assertEqual(pg.url(), "postgres://postgres@127.0.0.1:%d/postgres" % pg.port)
        self.assertEqual(pg.psql("SELECT 1"), "1\n")
        self.assertEqual(pg.psql("SHOW fsync").strip(), "on")
        self.assertEqual(pg.psql("SHOW max_connections").strip(), "300")
        self.assertEqual(pg.psql("SHOW wal_level").strip(), "replica")
        self.assertEqual(pg.psql("SHOW listen_addresses").strip(), "127.0.0.1")

        url = pg.create_db("fh_selftest")
        self.assertTrue(url.endswith(":%d/fh_selftest" % pg.port))
        pg.psql("CREATE TABLE t (v int); INSERT INTO t VALUES (1), (2)", "fh_selftest")
        with self.assertRaises(PgError):
            pg.create_db("fh_selftest")
        with self.assertRaises(PgError):
            pg.psql("SELECT nope", "fh_selftest")

        port = pg.port
        pg.restart("fast")
        self.assertEqual(pg.port, port)
        self.assertEqual(pg.psql("SELECT sum(v) FROM t", "fh_selftest"), "3\n")

        # A committed row survives a crash; crash recovery runs on start.
        pg.psql("INSERT INTO t VALUES (4)", "fh_selftest")
        pm = pg.postmaster_pid()
        pg.kill9()
        self.assertFalse(pg.running())
        self.assertEqual(leftovers(top), [])
        self.assertFalse(os.path.exists("/proc/%d" % pm), "the postmaster was not reaped")
        pg.start()
        self.assertEqual(pg.psql("SELECT sum(v) FROM t", "fh_selftest"), "7\n")
        with open(pg.log_path) as f:
            self.assertIn("database system was interrupted", f.read())

        pg.restart("immediate")
        self.assertEqual(pg.psql("SELECT sum(v) FROM t", "fh_selftest"), "7\n")
        pg.drop_db("fh_selftest")
        pg.drop_db("fh_selftest")  # already gone: fine
        self.assertEqual(pg.psql("SELECT count(*) FROM pg_database WHERE datname = "
                                 "'fh_selftest'"), "0\n")

        pg.cleanup()
        self.assertFalse(os.path.exists(top))
        self.assertEqual(leftovers(top), [])
        pg.cleanup()  # twice: fine

    def test_standby_and_promote(self):
        pg = PgCluster()
        self.addCleanup(pg.cleanup)
        pg.start()
        pg.create_db("fh_rep")
        pg.psql("CREATE TABLE t (v int); INSERT INTO t VALUES (1)", "fh_rep")
        sb = pg.add_standby()
        self.assertNotEqual(sb.port, pg.port)
        self.assertEqual(sb.psql("SELECT pg_is_in_recovery()"), "t\n")
        self.assertEqual(sb.psql("SELECT sum(v) FROM t", "fh_rep"), "1\n")
        with self.assertRaises(PgError):
            sb.psql("INSERT INTO t VALUES (2)", "fh_rep")
        # Streaming: a commit on the primary arrives (bounded wait on the standby).
        pg.psql("INSERT INTO t VALUES (2)", "fh_rep")
        lsn = pg.psql("SELECT pg_current_wal_lsn()").strip()
        sb.psql("DO $$ BEGIN FOR i IN 1..600 LOOP "
                "EXIT WHEN pg_last_wal_replay_lsn() >= '%s'::pg_lsn; "
                "PERFORM pg_sleep(0.05); END LOOP; END $$" % lsn)
        self.assertEqual(sb.psql("SELECT sum(v) FROM t", "fh_rep"), "3\n")

        pg.kill9()
        sb.promote()
        sb.psql("INSERT INTO t VALUES (4)", "fh_rep")
        self.assertEqual(sb.psql("SELECT sum(v) FROM t", "fh_rep"), "7\n")
        top, sb_top = pg.dir, sb.dir
        pg.cleanup()
        self.assertFalse(os.path.exists(top))
        self.assertFalse(os.path.exists(sb_top))
        self.assertEqual(leftovers(top) + leftovers(sb_top), [])

    def test_cli_and_exit_cleanup(self):
        """The CLI prints a working URL; SIGTERM removes everything."""
        p = subprocess.Popen([sys.executable, os.path.join(HERE, "pgcluster.py"), "start"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            url = p.stdout.readline().strip()
            self.assertRegex(url, r"^postgres://postgres@127\.0\.0\.1:\d+/postgres$")
            info = p.stderr.readline()
            top = info.split("data in ", 1)[1].split(",", 1)[0]
            self.assertTrue(os.path.isdir(top))
            port = url.rsplit(":", 1)[1].split("/")[0]
            q = subprocess.run([os.path.join(pgcluster.PG_BIN, "psql"), "-X", "-A", "-t",
                                "-h", "127.0.0.1", "-p", port, "-U", "postgres", "-c",
                                "SELECT 2"], stdout=subprocess.PIPE, text=True, timeout=30)
            self.assertEqual(q.stdout, "2\n")
            p.send_signal(signal.SIGTERM)
            self.assertEqual(p.wait(60), 0)
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()
            p.stdout.close()
            p.stderr.close()
        self.assertFalse(os.path.exists(top))
        self.assertEqual(leftovers(top), [])

    def test_watchdog_after_sigkill(self):
        """Killed outright, the owner leaves the cleanup to its watchdog."""
        p = subprocess.Popen([sys.executable, os.path.join(HERE, "pgcluster.py"), "start"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            p.stdout.readline()
            top = p.stderr.readline().split("data in ", 1)[1].split(",", 1)[0]
            p.kill()
            p.wait()
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()
            p.stdout.close()
            p.stderr.close()
        # The watchdog runs on; its work ends once the directory is gone.
        wd = [int(n) for n in os.listdir("/proc") if n.isdigit() and
              self._cmdline(n).endswith("\0_watchdog\0%s" % top)]
        for pid in wd:
            self._wait_gone(pid)
        self.assertFalse(os.path.exists(top))
        self.assertEqual(leftovers(top), [])

    @staticmethod
    def _cmdline(pid):
        try:
            with open("/proc/%s/cmdline" % pid) as f:
                return f.read().rstrip("\0")
        except OSError:
            return ""

    def _wait_gone(self, pid):
        # The watchdog is not our child: poll its /proc entry, bounded.
        deadline = time.monotonic() + 60
        while pgcluster._alive(pid):
            if time.monotonic() > deadline:
                self.fail("watchdog %d still running" % pid)
            time.sleep(0.02)


if __name__ == "__main__":
    unittest.main()
