"""`fluxhook trigger TYPE`: publishes the catalog's sample of TYPE, as it is or
changed by --data and --set, validated as any publish; unknown types get a
"did you mean"."""
import json
import unittest

from cliutil import CliCase
from receiver import Receiver


class CliTriggerTest(CliCase):
    def setUp(self):
        super().setUp()
        self.rc = Receiver()
        self.addCleanup(self.rc.close)
        self.endpoint(self.rc.url)
        _, types, _ = self.srv.api("GET", "/v1/event-types")
        items = types["data"] if isinstance(types, dict) else types
        # fluxhook's own operational types are not for producers to publish.
        self.samples = {t.get("name") or t.get("event"): t["sample"] for t in items
                        if t.get("source") != "fluxhook"}
        self.own = [t["event"] for t in items if t.get("source") == "fluxhook"]

    def test_sample_delivered_as_it_is(self):
        p = self.cli("trigger", "conversation.started")
        self.assertRegex(p.stdout, r"^triggered conversation\.started: event evt_\w+, 1 delivery\n")
        body = json.loads(self.rc.wait_for(1)[0].body)
        self.assertEqual(body["event"], "conversation.started")
        self.assertEqual(body["data"], self.samples["conversation.started"])
        # Every type of the catalog triggers as it is.
        for name in self.samples:
            with self.subTest(type=name):
                self.assertEqual(self.cli_json("trigger", name)["deliveries"], 1)
        # fluxhook's own types are refused with what they are.
        self.assertTrue(self.own)
        for name in self.own:
            p = self.cli("trigger", name, status=1)
            self.assertIn("one of fluxhook's own operational event types", p.stderr)

    def test_set_and_data_change_the_sample(self):
        self.cli("trigger", "conversation.started", "--set", "channel=email", "--set",
                 "agent_name=\"Ada\"", "--set=user_id=u-9")
        data = json.loads(self.rc.wait_for(1)[0].body)["data"]
        want = dict(self.samples["conversation.started"], channel="email", agent_name="Ada",
                    user_id="u-9")
        self.assertEqual(data, want)
        own = {"conversation_id": "c-own", "agent_id": "a-own", "channel": "sms"}
        ev = self.cli_json("trigger", "conversation.started", "--data", json.dumps(own))
        got = json.loads(self.rc.wait_for(2)[1].body)
        self.assertEqual((got["id"], got["data"]), (ev["id"], own))

    def test_validated_as_publish(self):
        p = self.cli("trigger", "conversation.started", "--set", "agent_id=7", status=1)
        self.assertIn("HTTP 422", p.stderr)
        self.assertIn("data.agent_id:", p.stderr)
        p = self.cli("trigger", "conversation.started", "--set", "=x", status=2)
        self.assertIn("expected PATH=VALUE", p.stderr)
        p = self.cli("trigger", "conversation.started", "--data", "[1]", status=2)
        self.assertIn("expected a JSON object", p.stderr)
        p = self.cli("trigger", "conversation.startd", status=1)
        self.assertIn("unknown event type 'conversation.startd'; did you mean "
                      "'conversation.started'?", p.stderr)
        p = self.cli("trigger", status=2)
        self.assertIn("usage: fluxhook trigger TYPE", p.stderr)
        self.assertEqual(self.rc.requests, [])
        _, evs, _ = self.srv.api("GET", "/v1/events")
        self.assertEqual(evs["data"], [])

    def test_no_endpoint_says_what_to_do(self):
        _, eps, _ = self.srv.api("GET", "/v1/endpoints")
        for ep in eps["data"]:
            self.srv.api("DELETE", "/v1/endpoints/" + ep["id"])
        p = self.cli("trigger", "message.sent") if "message.sent" in self.samples else \
            self.cli("trigger", "conversation.started")
        self.assertIn(", 0 deliveries", p.stdout)
        self.assertIn("fluxhook endpoints create --url URL", p.stdout)


if __name__ == "__main__":
    unittest.main()
