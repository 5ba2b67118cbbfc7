"""fluxhook db migrate on SQLite, and the usage errors of db migrate and db copy
that need no database server (the PostgreSQL side is in test_db_copy)."""
import os
import re
import sqlite3
import unittest

from harness import Server, mkdtemp, run_bin


class Migrate(unittest.TestCase):
    def test_fresh_store_then_nothing_to_apply(self):
        d = mkdtemp()
        db = "sqlite:%s/fluxhook.db" % d
        p = run_bin("db", "migrate", "--db", db)
        self.assertEqual(p.returncode, 0, p.stderr)
        # The newest version, and one migration per file (numbers may have gaps).
        files = sorted(os.listdir(os.path.join(os.path.dirname(__file__), "..", "..", "src",
                                               "store", "migrations")))
        self.assertEqual(p.stdout, "schema version %d: applied %d migrations\n"
                         % (int(files[-1][:3]), len(files)))
        version = p.stdout.split()[2].rstrip(":")
        self.assertIn("applied migration 001_initial", p.stderr)
        p = run_bin("db", "migrate", "--db", db)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(p.stdout, "schema version %s: up to date, nothing to apply\n" % version)
        self.assertNotIn("applied migration", p.stderr)
        # A server starts on the migrated store as on any other.
        srv = Server(db=db, test=self)
        srv.start()
        self.assertEqual(srv.api("GET", "/v1/endpoints")[0], 200)
        self.assertEqual(srv.stop(), 0)

    def test_environment_twin(self):
        d = mkdtemp()
        p = run_bin("db", "migrate", env={"FLUXHOOK_DB": "sqlite:%s/env.db" % d})
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertTrue(os.path.exists(os.path.join(d, "env.db")))

    def test_usage_errors_exit_2(self):
        cases = [
            ([], "--db is required"),
            (["--db", "mysql://localhost/x"], "expected sqlite:PATH or postgres://"),
            (["--db", "sqlite:"], "expected sqlite:PATH"),
            (["--db", "sqlite:x.db", "extra"], "unexpected argument"),
            (["--bogus"], "--bogus"),
        ]
        for args, what in cases:
            p = run_bin("db", "migrate", *args)
            self.assertEqual(p.returncode, 2, (args, p.stderr))
            self.assertIn(what, p.stderr, args)
            self.assertEqual(p.stdout, "", args)
        p = run_bin("db")
        self.assertEqual(p.returncode, 2)
        self.assertIn("expected a subcommand", p.stderr)
        p = run_bin("db", "vacuum")
        self.assertEqual(p.returncode, 2)
        self.assertIn("unknown subcommand 'vacuum'", p.stderr)

    def test_unopenable_sqlite_exits_1(self):
        d = mkdtemp()
        p = run_bin("db", "migrate", "--db", "sqlite:%s/no/such/dir/x.db" % d)
        self.assertEqual(p.returncode, 1, p.stderr)
        self.assertIn("cannot open", p.stderr)

    def test_help_says_what_it_does(self):
        p = run_bin("db", "migrate", "--help")
        self.assertEqual(p.returncode, 0)
        self.assertIn("--db", p.stdout)
        self.assertNotIn("--api-key", p.stdout)  # not a client command
        p = run_bin("db", "copy", "--help")
        self.assertEqual(p.returncode, 0)
        for word in ("--from", "--to", "lease", "empty", "one transaction"):
            self.assertIn(word, p.stdout)


class CopyUsage(unittest.TestCase):
    def test_bad_urls_exit_2(self):
        cases = [
            (["--to", "postgres://127.0.0.1/x"], "--from and --to are required"),
            (["--from", "sqlite:a.db"], "--from and --to are required"),
            (["--from", "postgres://h/x", "--to", "postgres://h/y"], "--from: expected sqlite"),
            (["--from", "sqlite::memory:", "--to", "postgres://h/y"], "--from: expected sqlite"),
            (["--from", "sqlite:a.db", "--to", "sqlite:b.db"], "--to: expected postgres://"),
        ]
        for args, what in cases:
            p = run_bin("db", "copy", *args)
            self.assertEqual(p.returncode, 2, (args, p.stderr))
            self.assertIn(what, p.stderr, args)
            self.assertEqual(p.stdout, "", args)

    def test_missing_source_exits_3(self):
        d = mkdtemp()
        # The source is checked first, so the target is never contacted.
        p = run_bin("db", "copy", "--from", "sqlite:%s/none.db" % d, "--to",
                    "postgres://127.0.0.1:1/nowhere")
        self.assertEqual(p.returncode, 3, p.stderr)
        self.assertIn("no such file", p.stderr)
        self.assertIn("nothing was copied", p.stderr)
        self.assertFalse(os.path.exists(os.path.join(d, "none.db")))

    def test_source_of_another_schema_version_is_refused(self):
        d = mkdtemp()
        path = os.path.join(d, "old.db")
        con = sqlite3.connect(path)
        con.execute("CREATE TABLE schema_version (version INTEGER PRIMARY KEY, name TEXT, "
                    "applied_at INTEGER)")
        con.execute("INSERT INTO schema_version VALUES (1, 'initial', 0)")
        con.commit()
        con.close()
        p = run_bin("db", "copy", "--from", "sqlite:" + path, "--to",
                    "postgres://127.0.0.1:1/nowhere")
        self.assertEqual(p.returncode, 1, p.stderr)
        self.assertIn("schema version 1", p.stderr)
        self.assertIn("db migrate", p.stderr)


if __name__ == "__main__":
    unittest.main()
