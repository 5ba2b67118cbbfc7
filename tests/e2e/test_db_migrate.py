"""fluxhook db migrate on SQLite, and its usage errors."""
import os
import unittest

from harness import Server, mkdtemp, run_bin


class Migrate(unittest.TestCase):
    def test_fresh_store_then_nothing_to_apply(self):
        d = mkdtemp()
        db = "sqlite:%s/fluxhook.db" % d
        p = run_bin("db", "migrate", "--db", db)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertRegex(p.stdout, r"^schema version (\d+): applied \1 migrations\n$")
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


if __name__ == "__main__":
    unittest.main()
