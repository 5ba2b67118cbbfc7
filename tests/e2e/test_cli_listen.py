"""`fluxhook listen` receiving real deliveries from a live server: it prints
each one with its ids and attempt, verifies both signatures with the
endpoint's secret, answers with the chosen statuses so retries show, and
exits cleanly on SIGINT and SIGTERM."""
import json
import signal
import unittest
import urllib.request

from cliutil import CliCase, Listener, SECRET, STARTED

OTHER = "whsec_b3RoZXJvdGhlcm90aGVyb3RoZXJvdGhlcm90aGVy"


class CliListenTest(CliCase):
    def test_receives_and_verifies_a_real_delivery(self):
        ln = Listener(self, "--secret", SECRET)
        ep = self.endpoint(ln.url + "/hook", "--secret", SECRET)
        ev = self.cli_json("events", "publish", "conversation.started", "--data",
                           json.dumps(STARTED))
        out = ln.wait_for(lambda t: "answer" in t, what="one delivery")
        _, page, _ = self.srv.api("GET", "/v1/deliveries?event_id=" + ev["id"])
        dlv = page["data"][0]["id"]
        self.assertRegex(out, r"#1 POST /hook \(\d+ bytes\)")
        self.assertRegex(out, r"(?m)^  event\s+conversation\.started$")
        self.assertRegex(out, r"(?m)^  event id\s+%s$" % ev["id"])
        self.assertRegex(out, r"(?m)^  delivery id\s+%s$" % dlv)
        self.assertRegex(out, r"(?m)^  attempt\s+1$")
        self.assertRegex(out, r"(?m)^  X-Workflux-Signature\s+verified$")
        self.assertRegex(out, r"(?m)^  webhook-signature\s+verified$")
        self.assertRegex(out, r"(?m)^  answer\s+200$")
        p = self.cli("deliveries", "list", "--follow", "--event", ev["id"], "--until-delivered",
                     "1", "--timeout", "30s")
        self.assertIn(" delivered ", p.stdout)
        self.assertEqual(ep["url"], ln.url + "/hook")
        rc, err = ln.stop()
        self.assertEqual(rc, 0, err)
        self.assertIn("listen: stopped deliveries=1", ln.text())

    def test_wrong_secret_and_no_secret(self):
        ln = Listener(self, "--secret", OTHER)
        self.endpoint(ln.url + "/hook", "--secret", SECRET)
        bare = Listener(self)
        self.endpoint(bare.url + "/hook", "--secret", SECRET)
        self.cli("events", "publish", "conversation.started", "--data", json.dumps(STARTED))
        out = ln.wait_for(lambda t: "answer" in t, what="one delivery")
        self.assertRegex(out, r"(?m)^  X-Workflux-Signature\s+FAILED: signature does not match$")
        self.assertRegex(out, r"(?m)^  webhook-signature\s+FAILED: ")
        self.assertNotIn("verified", out)
        out = bare.wait_for(lambda t: "answer" in t, what="one delivery")
        self.assertIn("listen: no --secret", out)
        self.assertRegex(out, r"(?m)^  X-Workflux-Signature\s+not checked")
        # A request without the headers says so.
        req = urllib.request.Request(ln.url + "/plain", data=b"{}", method="POST")
        with urllib.request.urlopen(req, timeout=10) as r:
            self.assertEqual(r.status, 200)
        out = ln.wait_for(lambda t: "#2 POST /plain" in t and t.count("answer") == 2)
        self.assertRegex(out, r"(?m)^  X-Workflux-Signature\s+FAILED: header missing$")

    def test_respond_codes_show_retries(self):
        ln = Listener(self, "--secret", SECRET, "--respond", "503,500,200", "--delay", "10ms")
        self.endpoint(ln.url + "/hook", "--secret", SECRET)
        ev = self.cli_json("events", "publish", "conversation.started", "--data",
                           json.dumps(STARTED))
        out = ln.wait_for(lambda t: t.count("answer") == 3, what="three attempts")
        self.assertEqual([int(x) for x in
                          [ln_.split()[-1] for ln_ in out.splitlines() if "  attempt " in ln_]],
                         [1, 2, 3])
        answers = [ln_.split()[1] for ln_ in out.splitlines() if ln_.startswith("  answer")]
        self.assertEqual(answers, ["503", "500", "200"])
        self.assertIn("after 10ms", out)
        self.assertEqual(out.count("webhook-signature     verified"), 3)
        self.srv.wait_for(lambda: self.srv.api("GET", "/v1/deliveries?event_id=" + ev["id"])[1]
                          ["data"][0]["status"] == "delivered", what="delivered on attempt 3")

    def test_always_failing_disables_the_endpoint(self):
        ln = Listener(self, "--respond", "503")
        ep = self.endpoint(ln.url + "/hook")
        self.cli("events", "publish", "conversation.started", "--data", json.dumps(STARTED))
        ln.wait_for(lambda t: t.count("answer") == 3, what="three failed attempts")
        self.srv.wait_for(lambda: self.srv.api("GET", "/v1/endpoints/" + ep["id"])[1]["status"]
                          == "disabled", what="the endpoint disabled")
        dl = self.cli_json("deliveries", "list", "--endpoint", ep["id"])["data"][0]
        self.assertEqual((dl["attempts_made"], dl["status"]), (3, "failed"))
        self.assertEqual(ln.text().count("answer"), 3)

    def test_sigterm_exits_cleanly_and_port_zero_is_free(self):
        ln = Listener(self)
        self.assertNotRegex(ln.url, r":0$")
        rc, err = ln.stop(signal.SIGTERM)
        self.assertEqual(rc, 0, err)
        self.assertIn("listen: stopped deliveries=0", ln.text())


if __name__ == "__main__":
    unittest.main()
