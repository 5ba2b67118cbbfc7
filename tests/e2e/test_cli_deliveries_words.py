"""Deliveries in words, as a person reads them, in `deliveries list` and
`show` ("retrying — attempt 2 of 3, next in 40 s", "held — endpoint
disabled", "failed — 404, not retried"), times with their zone, and
`deliveries replay`'s --dry-run and confirmation."""
import json
import re
import subprocess
import time
import unittest

from cliutil import CliCase, STARTED, table
from harness import clean_env
from receiver import Receiver


class CliDeliveriesWordsTest(CliCase):
    serve_args = ["--allow-http", "--allow-networks", "127.0.0.0/8",
                  "--retry-schedule", "0ms,40s,100ms"]

    def setUp(self):
        super().setUp()
        self.rc = Receiver(responses=[503], default=200)
        self.addCleanup(self.rc.close)

    def publish(self):
        return self.cli_json("events", "publish", "conversation.started", "--data",
                             json.dumps(STARTED))

    def delivery(self, ev):
        return self.srv.api("GET", "/v1/deliveries?event_id=" + ev["id"])[1]["data"][0]

    def state_of(self, dlv_id):
        rows = [r for r in table(self.cli("deliveries", "list").stdout) if r["ID"] == dlv_id]
        return rows[0]["STATE"]

    def test_words_for_each_status(self):
        ep = self.endpoint(self.rc.url)
        ev = self.publish()
        self.srv.wait_for(lambda: self.delivery(ev)["attempts_made"] == 1,
                          what="the first attempt (503)")
        d = self.delivery(ev)
        self.assertEqual(d["max_attempts"], 3)
        state = self.state_of(d["id"])
        self.assertRegex(state, r"^retrying — attempt 2 of 3, next in (\d+ s)$")
        self.assertLessEqual(int(state.split()[-2]), 40)
        # show says it too, with times in the local zone.
        shown = self.cli("deliveries", "show", d["id"], env={"TZ": "UTC"}).stdout
        self.assertRegex(shown, r"(?m)^state\s+retrying — attempt 2 of 3, next in \d+ s$")
        self.assertRegex(shown, r"(?m)^next_attempt_at\s+\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC$")
        self.assertRegex(shown, r"(?m)^1\s+\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC\s+503\s")
        tokyo = self.cli("deliveries", "show", d["id"], env={"TZ": "Asia/Tokyo"}).stdout
        self.assertRegex(tokyo, r"(?m)^created_at\s+\S+ \S+ JST$")
        # Disabled by hand: its delivery is held.
        self.cli("endpoints", "disable", ep["id"])
        self.srv.wait_for(lambda: self.delivery(ev)["status"] == "held", what="held")
        self.assertEqual(self.state_of(d["id"]), "held — endpoint disabled, resumes when it is "
                                                 "enabled")
        self.cli("endpoints", "enable", ep["id"])
        self.cli("deliveries", "retry", d["id"])
        self.srv.wait_for(lambda: self.delivery(ev)["status"] == "delivered", what="delivered")
        # Enabling and the retry each start a new round of 3: the attempt is counted in its
        # round (1, or 2 when the retry came after the enable's attempt).
        self.assertRegex(self.state_of(d["id"]), r"^delivered — 200 on attempt [12] of 3$")
        # A 404 is final.
        self.rc.set_responses([404], default=404)
        ev2 = self.publish()
        self.srv.wait_for(lambda: self.delivery(ev2)["status"] == "failed", what="failed")
        self.assertEqual(self.state_of(self.delivery(ev2)["id"]), "failed — 404, not retried")
        # --json keeps the API's objects.
        self.assertNotIn("state", self.cli_json("deliveries", "list")["data"][0])

    def test_follow_lines_carry_the_words(self):
        self.rc.set_responses([], default=200)
        self.endpoint(self.rc.url)
        self.publish()
        before = time.gmtime()
        p = self.cli("deliveries", "list", "--follow", "--until-delivered", "1", "--timeout",
                     "30s", "--interval", "50ms", env={"TZ": "Asia/Tokyo"})
        after = time.gmtime()
        self.assertRegex(p.stdout, r"(?m)  delivered — 200 on attempt 1 of 3$")
        # Each line starts with the local time of day and its zone, as show prints times.
        for line in p.stdout.splitlines():
            m = re.match(r"(\d\d):\d\d:\d\d JST  dlv_", line)
            self.assertIsNotNone(m, line)
            self.assertIn(int(m.group(1)), {(before.tm_hour + 9) % 24, (after.tm_hour + 9) % 24})
        p = self.cli("deliveries", "list", "--follow", "--until-delivered", "1", "--timeout",
                     "30s", env={"TZ": "UTC"})
        self.assertRegex(p.stdout.splitlines()[-1], r"^\d\d:\d\d:\d\d UTC  dlv_\S+\s+delivered ")


class CliReplayConfirmTest(CliCase):
    def setUp(self):
        super().setUp()
        self.rc = Receiver(default=404)
        self.addCleanup(self.rc.close)
        self.endpoint(self.rc.url)
        for i in range(3):
            self.cli("events", "publish", "conversation.started", "--data",
                     json.dumps(dict(STARTED, conversation_id="c-%d" % i)))
        self.srv.wait_for(lambda: len(self.srv.api("GET", "/v1/deliveries?status=failed")[1]
                                      ["data"]) == 3, what="three failed deliveries")
        self.rc.set_responses([], default=200)

    def attempts(self):
        return sorted(d["attempts_made"] for d in
                      self.srv.api("GET", "/v1/deliveries")[1]["data"])

    def run_replay(self, *args, stdin=subprocess.DEVNULL):
        env = clean_env({"FLUXHOOK_URL": self.srv.url, "FLUXHOOK_API_KEY": self.srv.root_key})
        return subprocess.run([self.srv.bin, "deliveries", "replay", *args], env=env,
                              stdin=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True, timeout=60)

    def test_dry_run_changes_nothing(self):
        ids = {d["id"] for d in self.srv.api("GET", "/v1/deliveries")[1]["data"]}
        p = self.run_replay("--status", "failed", "--dry-run")
        self.assertEqual(p.returncode, 0, p.stderr)
        lines = p.stdout.splitlines()
        self.assertEqual(lines[0], "dry run: 3 deliveries (status failed) would be replayed; "
                                   "nothing was changed")
        self.assertEqual({l.strip() for l in lines[1:]}, ids)
        p = self.run_replay("--status", "failed", "--dry-run", "--json")
        self.assertEqual(json.loads(p.stdout)["would_replay"], 3)
        self.assertEqual(self.attempts(), [1, 1, 1])
        self.assertEqual(self.rc.requests[3:], [])

    def test_refuses_without_a_terminal_unless_yes(self):
        p = self.run_replay("--status", "failed")
        self.assertEqual(p.returncode, 2, p.stderr)
        self.assertIn("3 deliveries (status failed) would be replayed; add --yes", p.stderr)
        self.assertEqual(self.attempts(), [1, 1, 1])
        p = self.run_replay("--status", "failed", "--yes")
        self.assertEqual((p.returncode, p.stdout), (0, "3 deliveries replayed, 0 refused\n"))
        self.srv.wait_for(lambda: self.attempts() == [2, 2, 2], what="three replayed")

    def test_asks_on_a_terminal(self):
        for answer, status in ((b"n\n", 1), (b"y\n", 0)):
            with self.subTest(answer=answer):
                rc, out, err = self.cli_on_terminal("deliveries", "replay", "--status", "failed",
                                                    answer=answer)
                self.assertEqual(rc, status, err)
                self.assertIn(b"Replay 3 deliveries (status failed)? They are delivered again "
                              b"to their endpoints. [y/N]", err)
                if status == 1:
                    self.assertIn(b"nothing replayed", err)
                    self.assertEqual(self.attempts(), [1, 1, 1])
                else:
                    self.assertEqual(out, b"3 deliveries replayed, 0 refused\n")
                    self.srv.wait_for(lambda: self.attempts() == [2, 2, 2], what="replayed")

    def test_one_delivery_needs_no_confirmation(self):
        ev = self.srv.api("GET", "/v1/deliveries")[1]["data"][0]["event_id"]
        p = self.run_replay("--event", ev)
        self.assertEqual((p.returncode, p.stdout), (0, "1 deliveries replayed, 0 refused\n"))


class CliSuggestTest(CliCase):
    def test_did_you_mean(self):
        p = self.cli("lisen", status=2)
        self.assertIn("unknown command 'lisen'; did you mean 'fluxhook listen'?", p.stderr)
        p = self.cli("triger", "conversation.started", status=2)
        self.assertIn("did you mean 'fluxhook trigger'?", p.stderr)
        p = self.cli("help", "delivery", status=2)
        self.assertIn("did you mean 'fluxhook deliveries'?", p.stderr)
        p = self.cli("deliveries", "lst", status=2)
        self.assertIn("unknown subcommand 'lst'; did you mean 'fluxhook deliveries list'?",
                      p.stderr)
        p = self.cli("deliveries", "list", "--endpont", "ep_x", status=2)
        self.assertIn("unknown option '--endpont' (did you mean --endpoint?)", p.stderr)
        p = self.cli("listen", "--forwad-to=http://127.0.0.1:1/", status=2)
        self.assertIn("did you mean --forward-to?", p.stderr)
        p = self.cli("serve", "--allow-network", "10.0.0.0/8", status=2)
        self.assertIn("did you mean --allow-networks?", p.stderr)
        p = self.cli("frobnicate", status=2)
        self.assertIn("unknown command 'frobnicate'\n", p.stderr)
        self.assertNotIn("did you mean", p.stderr)

    def test_missing_key_says_which_variable(self):
        p = self.cli("endpoints", "list", env={"FLUXHOOK_API_KEY": None}, status=1)
        self.assertIn("no API key (HTTP 401): set FLUXHOOK_API_KEY", p.stderr)
        self.assertIn("export FLUXHOOK_API_KEY=$(cat var/root.key)", p.stderr)
        p = self.cli("trigger", "conversation.started", env={"FLUXHOOK_API_KEY": "fhk_wrong"},
                     status=1)
        self.assertIn("HTTP 401", p.stderr)
        self.assertIn("the server refused the key in FLUXHOOK_API_KEY", p.stderr)


if __name__ == "__main__":
    unittest.main()
