"""`fluxhook endpoints replay`: --dry-run says exactly how many deliveries
(counted by the server) and the first of them, and changes nothing; more
than one is replayed only after a yes on a terminal, or with --yes."""
import json
import re
import subprocess
import unittest

from cliutil import CliCase, STARTED
from harness import clean_env
from receiver import Receiver

N = 12  # more than the ten ids a dry run lists


class CliEndpointsReplayTest(CliCase):
    def setUp(self):
        super().setUp()
        self.rc = Receiver(default=404)
        self.addCleanup(self.rc.close)
        self.ep = self.endpoint(self.rc.url)
        for i in range(N):
            st, b, _ = self.srv.api("POST", "/v1/events", {
                "event": "conversation.started", "data": dict(STARTED, conversation_id="c-%d" % i)})
            self.assertEqual(st, 202, b)
        self.srv.wait_for(lambda: self.attempts() == [1] * N, what="%d failed deliveries" % N)
        self.rc.set_responses([], default=200)

    def deliveries(self):
        return self.srv.api("GET", "/v1/deliveries?limit=100&endpoint_id=" + self.ep["id"])[1]["data"]

    def attempts(self):
        return sorted(d["attempts_made"] for d in self.deliveries() if d["status"] == "failed")

    def run_replay(self, *args, stdin=subprocess.DEVNULL):
        env = clean_env({"FLUXHOOK_URL": self.srv.url, "FLUXHOOK_API_KEY": self.srv.root_key})
        return subprocess.run([self.srv.bin, "endpoints", "replay", self.ep["id"], "--since", "1h",
                               *args], env=env, stdin=stdin, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, timeout=60)

    def test_dry_run_counts_exactly_and_changes_nothing(self):
        oldest = sorted(d["id"] for d in self.deliveries())[:10]
        p = self.run_replay("--status", "failed", "--dry-run")
        self.assertEqual(p.returncode, 0, p.stderr)
        lines = p.stdout.splitlines()
        self.assertRegex(lines[0], r"^dry run: 12 deliveries \(endpoint %s, since \S+Z, status "
                                   r"failed\) would be replayed; nothing was changed$"
                         % re.escape(self.ep["id"]))
        self.assertEqual([ln.strip() for ln in lines[1:11]], oldest)
        self.assertEqual(lines[11:], ["  ... and 2 more"])
        p = self.run_replay("--dry-run", "--json")
        self.assertEqual(json.loads(p.stdout), {"would_replay": N, "ids": oldest})
        p = self.run_replay("--status", "delivered", "-n")
        self.assertTrue(p.stdout.startswith("dry run: 0 deliveries"), p.stdout)
        self.assertEqual(self.attempts(), [1] * N)
        self.assertEqual(self.rc.requests[N:], [])
        p = self.run_replay("--dry-run", "--yes")
        self.assertEqual(p.returncode, 2, p.stderr)
        self.assertIn("--dry-run and --yes: choose one", p.stderr)

    def test_refuses_without_a_terminal_unless_yes(self):
        p = self.run_replay("--status", "failed")
        self.assertEqual(p.returncode, 2, p.stderr)
        self.assertRegex(p.stderr, r"12 deliveries \(endpoint \S+, since \S+, status failed\) "
                                   r"would be replayed; add --yes")
        self.assertEqual(self.attempts(), [1] * N)
        p = self.run_replay("--status", "failed", "--yes")
        self.assertEqual((p.returncode, p.stdout), (0, "12 deliveries replayed\n"), p.stderr)
        self.rc.wait_for(2 * N)
        self.srv.wait_for(lambda: sorted(d["attempts_made"] for d in self.deliveries())
                          == [2] * N, what="all replayed")

    def test_asks_on_a_terminal(self):
        for answer, status in ((b"n\n", 1), (b"y\n", 0)):
            with self.subTest(answer=answer):
                rc, out, err = self.cli_on_terminal("endpoints", "replay", self.ep["id"],
                                                    "--since", "1h", answer=answer)
                self.assertEqual(rc, status, err)
                self.assertRegex(err, rb"Replay 12 deliveries \(endpoint \S+, since \S+\)\? They "
                                      rb"are delivered again to their endpoints. \[y/N\]")
                if status == 1:
                    self.assertIn(b"nothing replayed", err)
                    self.assertEqual(self.attempts(), [1] * N)
                else:
                    self.assertEqual(out, b"12 deliveries replayed\n")
                    self.rc.wait_for(2 * N)

    def test_one_delivery_needs_no_confirmation(self):
        self.rc.set_responses([], default=200)
        ds = sorted(self.deliveries(), key=lambda d: d["id"])
        st, b, _ = self.srv.api("POST", "/v1/deliveries/%s/retry" % ds[0]["id"])
        self.assertEqual(st, 202, b)
        self.srv.wait_for(lambda: any(d["status"] == "delivered" for d in self.deliveries()),
                          what="one delivered")
        p = self.run_replay("--status", "delivered")
        self.assertEqual((p.returncode, p.stdout), (0, "1 deliveries replayed\n"), p.stderr)


if __name__ == "__main__":
    unittest.main()
