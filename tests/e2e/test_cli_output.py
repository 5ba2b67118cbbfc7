"""What the client commands print and how they exit: statuses 0/1/2/3 of
CONTRACT §5, the URL and key from flags or the environment, colour only on a
terminal and never with NO_COLOR, and the progress bar only on a terminal."""
import json
import os
import tempfile
import unittest

from cliutil import CliCase, STARTED, free_port, run_on_tty
from harness import clean_env, run_bin

ESC = "\x1b["


class CliOutputTest(CliCase):
    def test_unreachable_is_3_and_names_the_url(self):
        url = "http://127.0.0.1:%d" % free_port()
        for args in (["endpoints", "list"], ["events", "publish", "user.message", "--data", "{}"],
                     ["deliveries", "list", "--follow"], ["accounts", "list"],
                     ["keys", "list"], ["event-types"]):
            p = self.cli(*args, env={"FLUXHOOK_URL": url}, status=3)
            self.assertIn("cannot reach " + url, p.stderr)
        p = self.cli("endpoints", "list", "--url", url, status=3)
        self.assertIn(url, p.stderr)
        # A flag beats the environment.
        self.cli("endpoints", "list", "--url", self.srv.url, env={"FLUXHOOK_URL": url})
        # endpoints create: --url is the endpoint's; --server or FLUXHOOK_URL is the server.
        p = self.cli("endpoints", "create", "--url", "http://127.0.0.1:9/h", "--server", url,
                     status=3)
        self.assertIn(url, p.stderr)
        self.cli("endpoints", "create", "--url", "http://127.0.0.1:9/h")

    def test_refused_is_1(self):
        p = self.cli("endpoints", "list", env={"FLUXHOOK_API_KEY": "fhk_wrong"}, status=1)
        self.assertIn("HTTP 401", p.stderr)
        p = self.cli("endpoints", "list", env={"FLUXHOOK_API_KEY": None}, status=1)
        self.assertIn("HTTP 401", p.stderr)
        self.cli("endpoints", "list", "--api-key", self.srv.root_key,
                 env={"FLUXHOOK_API_KEY": None})

    def test_bad_usage_is_2_with_the_usage_line(self):
        cases = [
            (["endpoints", "frobnicate"], "usage: fluxhook endpoints list"),
            (["endpoints", "show"], "usage: fluxhook endpoints show ID"),
            (["endpoints", "show", "a", "b"], "unexpected argument 'b'"),
            (["endpoints", "list", "--bogus"], "unknown option '--bogus'"),
            (["events", "publish", "user.message", "--data"], "needs a value"),
            (["deliveries", "list", "--follow", "--until-delivered", "zero"],
             "usage: fluxhook deliveries list"),
            (["events", "--bogus"], "usage: fluxhook events list"),
            (["listen", "--port", "http"], "usage: fluxhook listen"),
            (["listen", "--respond", "abc"], "--respond"),
        ]
        for args, want in cases:
            p = self.cli(*args, status=2)
            self.assertIn(want, p.stderr, args)
            self.assertEqual(p.stdout, "", args)
        p = self.cli("endpoints", "list", env={"FLUXHOOK_URL": "ftp://x"}, status=2)
        self.assertIn("expected http://", p.stderr)

    def test_help(self):
        p = self.cli("help")
        for c in ("endpoints", "events", "deliveries", "event-types", "accounts", "keys",
                  "listen"):
            self.assertRegex(p.stdout, r"(?m)^  %s " % c)
        p = self.cli("help", "endpoints")
        self.assertIn("rotate-secret", p.stdout)
        p = self.cli("endpoints", "--help")
        self.assertIn("rotate-secret", p.stdout)
        p = self.cli("endpoints", "create", "--help")
        self.assertTrue(p.stdout.startswith("usage: fluxhook endpoints create --url URL"))
        self.assertIn("--server URL", p.stdout)
        p = self.cli("deliveries", "list", "-h")
        self.assertIn("--until-delivered N", p.stdout)
        p = self.cli("listen", "--help")
        self.assertIn("--respond", p.stdout)

    def test_no_colour_unless_terminal(self):
        self.cli("endpoints", "create", "--url", "http://127.0.0.1:9/h")
        p = self.cli("endpoints", "list")
        self.assertNotIn(ESC, p.stdout + p.stderr)
        self.assertIn("enabled", p.stdout)
        env = clean_env({"FLUXHOOK_URL": self.srv.url, "FLUXHOOK_API_KEY": self.srv.root_key,
                         "NO_COLOR": None})
        rc, out = run_on_tty([self.srv.bin, "endpoints", "list"], env)
        self.assertEqual(rc, 0, out)
        self.assertIn(ESC + "32menabled" + ESC + "0m", out)  # status in green
        env["NO_COLOR"] = "1"
        rc, out = run_on_tty([self.srv.bin, "endpoints", "list"], env)
        self.assertEqual(rc, 0, out)
        self.assertNotIn(ESC, out)
        self.assertIn("enabled", out)
        # --json never has colour, even on a terminal.
        del env["NO_COLOR"]
        rc, out = run_on_tty([self.srv.bin, "endpoints", "list", "--json"], env)
        self.assertNotIn(ESC, out)
        self.assertEqual(len(json.loads(out)["data"]), 1)

    def test_progress_bar_only_on_a_terminal(self):
        fd, path = tempfile.mkstemp(prefix="fluxhook-cli-")
        self.addCleanup(os.unlink, path)
        with os.fdopen(fd, "w") as f:
            for i in range(20):
                f.write(json.dumps({"event": "conversation.started",
                                    "data": dict(STARTED, conversation_id="p%d" % i)}) + "\n")
        env = clean_env({"FLUXHOOK_URL": self.srv.url, "FLUXHOOK_API_KEY": self.srv.root_key})
        rc, out = run_on_tty([self.srv.bin, "events", "publish", "--file", path], env)
        self.assertEqual(rc, 0, out)
        self.assertIn("] 20/20", out)
        self.assertIn("publishing [" + "#" * 30 + "]", out)
        p = self.cli("events", "publish", "--file", path)
        self.assertNotIn("publishing", p.stderr)
        self.assertEqual(p.stdout, "published 20 events, 0 refused\n")

    def test_version_and_unknown_command(self):
        p = run_bin("version")
        self.assertEqual(p.returncode, 0)
        p = run_bin("endpointz")
        self.assertEqual(p.returncode, 2)
        self.assertIn("unknown command 'endpointz'", p.stderr)


if __name__ == "__main__":
    unittest.main()
