"""`fluxhook deliveries ...` against a live server: list with filters, show
with every attempt, retry, replay many, and --follow seeing deliveries go
to delivered (and failed) as they happen."""
import json
import signal
import socket
import subprocess
import threading
import unittest

from cliutil import CliCase, STARTED, table
from harness import clean_env
from receiver import Receiver


class CliDeliveriesTest(CliCase):
    def setUp(self):
        super().setUp()
        self.rc = Receiver()
        self.addCleanup(self.rc.close)

    def publish(self, **data):
        return self.cli_json("events", "publish", "conversation.started", "--data",
                             json.dumps(dict(STARTED, **data)))

    def wait_status(self, dlv, status):
        self.srv.wait_for(lambda: self.srv.api("GET", "/v1/deliveries/" + dlv)[1]["status"]
                          == status, what="%s %s" % (dlv, status))

    def test_list_show_retry(self):
        ep = self.endpoint(self.rc.url)
        ev = self.publish()
        self.rc.wait_for(1)
        _, page, _ = self.srv.api("GET", "/v1/deliveries?event_id=" + ev["id"])
        dlv = page["data"][0]["id"]
        self.wait_status(dlv, "delivered")
        rows = table(self.cli("deliveries", "list").stdout)
        self.assertEqual(len(rows), 1)
        r = rows[0]
        self.assertEqual((r["ID"], r["STATUS"], r["EVENT"], r["EVENT ID"], r["ENDPOINT"],
                          r["ATTEMPTS"], r["CODE"]),
                         (dlv, "delivered", "conversation.started", ev["id"], ep["id"], "1", "200"))
        self.assertEqual(table(self.cli("deliveries", "list", "--status", "failed").stdout), [])
        self.assertEqual(len(table(self.cli("deliveries", "list", "--endpoint", ep["id"],
                                            "--event", ev["id"]).stdout)), 1)
        _, api_list, _ = self.srv.api("GET", "/v1/deliveries?status=delivered")
        self.assertEqual(self.cli_json("deliveries", "list", "--status", "delivered"), api_list)
        shown = self.cli("deliveries", "show", dlv).stdout
        self.assertRegex(shown, r"(?m)^status\s+delivered$")
        attempts = table(shown.split("\n\n", 1)[1])
        self.assertEqual([(a["N"], a["CODE"], a["CLASS"]) for a in attempts], [("1", "200", "-")])
        _, api_one, _ = self.srv.api("GET", "/v1/deliveries/" + dlv)
        self.assertEqual(self.cli_json("deliveries", "show", dlv)["attempts"], api_one["attempts"])
        p = self.cli("deliveries", "retry", dlv)
        self.assertTrue(p.stdout.startswith("retrying " + dlv), p.stdout)
        self.rc.wait_for(2)
        self.srv.wait_for(lambda: len(self.srv.api("GET", "/v1/deliveries/" + dlv)[1]["attempts"])
                          == 2, what="the retry's attempt")
        p = self.cli("deliveries", "show", "dlv_nope", status=1)
        self.assertIn("HTTP 404", p.stderr)
        self.cli("deliveries", "retry", status=2)

    def test_show_error_class(self):
        # A port nobody listens on: each attempt is a refused connection.
        probe = socket.socket()
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
        probe.close()
        self.endpoint("http://127.0.0.1:%d/hook" % port)
        ev = self.publish()
        _, page, _ = self.srv.api("GET", "/v1/deliveries?event_id=" + ev["id"])
        dlv = page["data"][0]["id"]
        self.wait_status(dlv, "failed")
        attempts = table(self.cli("deliveries", "show", dlv).stdout.split("\n\n", 1)[1])
        self.assertEqual([(a["N"], a["CODE"], a["CLASS"]) for a in attempts],
                         [("1", "-", "connect"), ("2", "-", "connect"), ("3", "-", "connect")])
        self.assertTrue(all(a["ERROR"].startswith("cannot connect to 127.0.0.1 port %d" % port)
                            for a in attempts), attempts)

    def test_replay_many(self):
        self.rc.set_responses([], default=410)  # fails at once, no retry
        self.endpoint(self.rc.url)
        evs = [self.publish(conversation_id="r%d" % i) for i in range(6)]
        self.rc.wait_for(6)
        self.srv.wait_for(lambda: len(self.srv.api("GET", "/v1/deliveries?status=failed")[1]
                                      ["data"]) == 6, what="six failed deliveries")
        self.rc.set_responses([], default=200)
        p = self.cli("deliveries", "replay", "--status", "failed", "--limit", "2",
                     status=2)  # --limit is not a replay option
        p = self.cli("deliveries", "replay", "--status", "failed", "--yes")
        self.assertEqual(p.stdout, "6 deliveries replayed, 0 refused\n")
        self.assertNotIn("\r", p.stderr)  # no bar when stderr is not a terminal
        self.rc.wait_for(12)
        self.srv.wait_for(lambda: len(self.srv.api("GET", "/v1/deliveries?status=delivered")[1]
                                      ["data"]) == 6, what="six delivered after the replay")
        self.assertEqual(len(evs), 6)
        p = self.cli("deliveries", "replay", status=2)
        self.assertIn("say which", p.stderr)

    def test_follow_until_delivered(self):
        self.rc.set_responses([503, 503], default=200)
        self.endpoint(self.rc.url)
        ev = self.publish()
        p = self.cli("deliveries", "list", "--follow", "--event", ev["id"],
                     "--until-delivered", "1", "--timeout", "30s", "--interval", "20ms")
        lines = p.stdout.splitlines()
        self.assertRegex(lines[-1], r"dlv_\S+\s+delivered\s+conversation\.started\s+" + ev["id"])
        self.assertIn("code=200", lines[-1])
        self.assertEqual(len(self.rc.requests), 3)
        # JSON lines, each a delivery object.
        p = self.cli("deliveries", "list", "--follow", "--until-delivered", "1", "--json",
                     "--timeout", "30s")
        objs = [json.loads(ln) for ln in p.stdout.splitlines()]
        self.assertEqual(objs[-1]["status"], "delivered")
        self.assertEqual(objs[-1]["event_id"], ev["id"])

    def test_follow_sees_new_deliveries_and_times_out(self):
        self.endpoint(self.rc.url)
        follow = subprocess.Popen(
            [self.srv.bin, "deliveries", "list", "--follow", "--until-delivered", "2",
             "--timeout", "60s", "--interval", "50ms"],
            env=clean_env({"FLUXHOOK_URL": self.srv.url, "FLUXHOOK_API_KEY": self.srv.root_key}),
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.addCleanup(lambda: follow.poll() is None and follow.kill())
        a = self.publish(conversation_id="one")
        b = self.publish(conversation_id="two")
        out, err = follow.communicate(timeout=60)
        self.assertEqual(follow.returncode, 0, err)
        delivered = [ln for ln in out.splitlines() if " delivered " in ln]
        self.assertEqual(len(delivered), 2, out)
        self.assertEqual({a["id"], b["id"]}, {ln.split()[5] for ln in delivered})
        # Nothing more to come: --timeout ends it with status 1.
        p = self.cli("deliveries", "list", "--follow", "--until-delivered", "3", "--timeout",
                     "300ms", status=1)
        self.assertIn("timed out", p.stderr)
        self.cli("deliveries", "list", "--until-delivered", "3", status=2)

    def test_follow_stops_on_ctrl_c(self):
        self.endpoint(self.rc.url)
        follow = subprocess.Popen(
            [self.srv.bin, "deliveries", "list", "--follow", "--interval", "20ms"],
            env=clean_env({"FLUXHOOK_URL": self.srv.url, "FLUXHOOK_API_KEY": self.srv.root_key}),
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.addCleanup(lambda: follow.poll() is None and follow.kill())
        guard = threading.Timer(60, follow.kill)  # a read below must not block forever
        guard.start()
        self.addCleanup(guard.cancel)
        ev = self.publish()
        line = follow.stdout.readline()
        while " delivered " not in line and line:
            line = follow.stdout.readline()
        self.assertIn(ev["id"], line)
        follow.send_signal(signal.SIGINT)
        out, err = follow.communicate(timeout=30)
        self.assertEqual(follow.returncode, 0, err)


if __name__ == "__main__":
    unittest.main()
