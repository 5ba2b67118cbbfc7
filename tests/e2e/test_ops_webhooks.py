"""Operational webhooks: an account's operational endpoints receive
fluxhook's own events about its other endpoints (endpoint.recovered,
delivery.failed, endpoint.disabled, endpoint.enabled), signed like any
delivery; customer endpoints never get them; an operational endpoint's own
failures make none; the dispatcher's disabling is in the audit log."""
import json
import unittest

from apiutil import ApiCase, standard_signatures
from guide import verify_webhook_signature

DATA = {"conversation_id": "c-1", "message_id": "m-1", "user_id": "u-1", "content": "hi"}
OWN = ["endpoint.disabled", "endpoint.enabled", "delivery.failed", "endpoint.recovered"]
OPS = "/v1/operational-endpoints"


class OpsWebhooks(ApiCase):
    serve_args = ["--allow-http", "--allow-networks", "127.0.0.0/8",
                  "--retry-schedule", "0ms,50ms,100ms"]

    def ops_endpoint(self, url, **fields):
        body = dict(url=url)
        body.update(fields)
        return self.call("POST", OPS, body, 201)

    def verified(self, req, secret):
        """The body of an operational delivery, after checking both signatures."""
        body = req.body.decode()
        self.assertTrue(verify_webhook_signature(body, req.headers["x-workflux-signature"],
                                                 secret), req.headers)
        want = standard_signatures(secret, req.headers["webhook-id"],
                                   req.headers["webhook-timestamp"], req.body)
        self.assertIn(want, req.headers["webhook-signature"].split(" "))
        return json.loads(body)

    def received(self, rc, n, secret):
        """The first n requests of rc, verified, as {type: [envelope, ...]}."""
        out = {}
        for req in rc.wait_for(n, timeout=20)[:n]:
            env = self.verified(req, secret)
            self.assertEqual(req.headers["x-workflux-event"], env["event"])
            out.setdefault(env["event"], []).append(env)
        return out

    def test_each_event_delivered_and_signed(self):
        ops_rc = self.receiver()
        op = self.ops_endpoint(ops_rc.url, description="pager")
        self.assertTrue(op["secret"].startswith("whsec_"), op)
        self.assertEqual(self.call("GET", "%s/%s/secret" % (OPS, op["id"]))["secret"],
                         op["secret"])

        # One failed attempt, then a success: endpoint.recovered.
        rc = self.receiver(responses=[503], default=200)
        ep = self.endpoint(rc.url)
        ev = self.publish("user.message", DATA)
        self.wait_event_deliveries(ev["id"], 1, ("delivered",))
        got = self.received(ops_rc, 1, op["secret"])
        rec = got["endpoint.recovered"][0]["data"]
        self.assertEqual(rec["endpoint_id"], ep["id"])
        self.assertEqual(rec["url"], rc.url)
        self.assertEqual(rec["failed_attempts"], 1)

        # An answer that is not retried: delivery.failed, the endpoint stays enabled.
        rc.set_responses([410], default=200)
        ev = self.publish("user.message", DATA)
        d = self.wait_event_deliveries(ev["id"], 1, ("failed",))[0]
        got = self.received(ops_rc, 2, op["secret"])
        failed = got["delivery.failed"][0]["data"]
        self.assertEqual(failed["delivery_id"], d["id"])
        self.assertEqual(failed["event_id"], ev["id"])
        self.assertEqual(failed["event_type"], "user.message")
        self.assertEqual(failed["last_status_code"], 410)
        self.assertEqual(failed["attempts"], 1)
        self.assertEqual(self.call("GET", "/v1/endpoints/" + ep["id"])["status"], "enabled")

        # The whole schedule fails: delivery.failed and endpoint.disabled.
        rc.set_responses([], default=503)
        ev = self.publish("user.message", DATA)
        self.wait_event_deliveries(ev["id"], 1, ("failed",))
        got = self.received(ops_rc, 4, op["secret"])
        self.assertEqual(len(got["delivery.failed"]), 2)
        dis = got["endpoint.disabled"][0]["data"]
        self.assertEqual(dis["endpoint_id"], ep["id"])
        self.assertIn("3 consecutive failed attempts", dis["reason"])
        self.assertEqual(dis["held"], 0)
        self.assertEqual(self.call("GET", "/v1/endpoints/" + ep["id"])["status"], "disabled")
        audit = self.call("GET", "/v1/audit-log?action=endpoint.disabled&actor=dispatcher")
        self.assertEqual([(a["target"], a["actor"]) for a in audit["data"]],
                         [(ep["id"], "dispatcher")])

        # Two events held, then enabled: endpoint.enabled with what it resumed.
        rc.set_responses([], default=200)
        for _ in range(2):
            held = self.publish("user.message", DATA)
            self.wait_event_deliveries(held["id"], 1, ("held",))
        self.call("POST", "/v1/endpoints/%s/enable" % ep["id"], {})
        got = self.received(ops_rc, 5, op["secret"])
        en = got["endpoint.enabled"][0]["data"]
        self.assertEqual(en, {"endpoint_id": ep["id"], "url": rc.url, "resumed": 2,
                              "skipped": False})

        # Disabled by its owner, with held deliveries: the reason and the count.
        self.assert_settled(rc, ep["id"], 1 + 1 + 1 + 3 + 2)
        self.call("POST", "/v1/endpoints/%s/disable" % ep["id"], {"reason": "maintenance"})
        held = self.publish("user.message", DATA)
        self.wait_event_deliveries(held["id"], 1, ("held",))
        got = self.received(ops_rc, 6, op["secret"])
        self.assertEqual(got["endpoint.disabled"][1]["data"]["reason"], "maintenance")

        # The customer endpoint (subscribed to every type) never got fluxhook's own.
        for req in rc.requests:
            self.assertEqual(json.loads(req.body)["event"], "user.message")
        # And the operational endpoint got only those, each one event delivered.
        self.assertTrue(all(json.loads(r.body)["event"] in OWN for r in ops_rc.requests))
        self.assert_settled(ops_rc, op["id"], 6)

    def test_operational_failures_make_none(self):
        bad_rc = self.receiver(default=503)
        bad = self.ops_endpoint(bad_rc.url)
        good_rc = self.receiver()
        good = self.ops_endpoint(good_rc.url, event_types=["delivery.failed",
                                                           "endpoint.disabled",
                                                           "endpoint.enabled"])
        rc = self.receiver(default=410)
        ep = self.endpoint(rc.url)
        ev = self.publish("user.message", DATA)
        self.wait_event_deliveries(ev["id"], 1, ("failed",))
        # The good one gets delivery.failed; the bad one fails it three times
        # and is disabled by the dispatcher, like a customer endpoint.
        got = self.received(good_rc, 1, good["secret"])
        self.assertEqual(got["delivery.failed"][0]["data"]["endpoint_id"], ep["id"])
        self.srv.wait_for(lambda: self.call("GET", "%s/%s" % (OPS, bad["id"]))["status"]
                          == "disabled", timeout=20, what="operational endpoint disabled")
        self.assert_settled(bad_rc, bad["id"], 3)
        audit = self.call("GET", "/v1/audit-log?action=endpoint.disabled&actor=dispatcher")
        self.assertEqual([a["target"] for a in audit["data"]], [bad["id"]])

        # A marker after it: enabling the customer endpoint's twin state.
        self.call("POST", "/v1/endpoints/%s/disable" % ep["id"], {})
        self.call("POST", "/v1/endpoints/%s/enable" % ep["id"], {})
        got = self.received(good_rc, 3, good["secret"])
        self.assertEqual(sorted(got), ["delivery.failed", "endpoint.disabled",
                                       "endpoint.enabled"])
        # Nothing was ever published about the operational endpoint itself.
        for t in OWN:
            for e in self.call("GET", "/v1/events?event=%s&limit=500" % t)["data"]:
                body = json.dumps(e)
                self.assertNotIn(bad["id"], body, e)
                self.assertNotIn(good["id"], body, e)
        self.assert_settled(good_rc, good["id"], 3)

    def test_kinds_are_apart(self):
        rc = self.receiver()
        ep = self.endpoint(rc.url)
        op = self.ops_endpoint(rc.url, event_types=["endpoint.disabled"])
        self.assertEqual(op["event_types"], ["endpoint.disabled"])
        self.assertEqual([e["id"] for e in self.call("GET", "/v1/endpoints")["data"]], [ep["id"]])
        self.assertEqual([e["id"] for e in self.call("GET", OPS)["data"]], [op["id"]])
        self.error("GET", "/v1/endpoints/" + op["id"], status=404)
        self.error("GET", "%s/%s" % (OPS, ep["id"]), status=404)
        self.error("DELETE", "%s/%s" % (OPS, ep["id"]), status=404)
        self.error("POST", "/v1/endpoints/%s/test" % op["id"], {"event": "user.message"},
                   status=404)
        # Each kind takes only its own types.
        err = self.error("POST", OPS, {"url": rc.url, "event_types": ["user.message"]},
                         status=422)
        self.assertIn("endpoint.disabled", err["fields"][0]["problem"])
        self.assertEqual(self.paths(err), ["event_types[0]"])
        err = self.error("POST", "/v1/endpoints", {"url": rc.url,
                                                   "event_types": ["endpoint.disabled"]},
                         status=422)
        self.assertEqual(self.paths(err), ["event_types[0]"])
        # A producer cannot publish fluxhook's own types.
        err = self.error("POST", "/v1/events", {"event": "delivery.failed", "data": {}},
                         status=422)
        self.assertIn("event", self.paths(err))

        op = self.call("PATCH", "%s/%s" % (OPS, op["id"]),
                       {"description": "on call", "event_types": None})
        self.assertEqual((op["description"], op["event_types"]), ("on call", []))
        self.call("DELETE", "%s/%s" % (OPS, op["id"]), status=204)
        self.error("GET", "%s/%s" % (OPS, op["id"]), status=404)
        actions = [a["action"] for a in self.call("GET", "/v1/audit-log?target=" + op["id"])["data"]]
        self.assertEqual(sorted(actions), ["operational_endpoint.created",
                                           "operational_endpoint.deleted",
                                           "operational_endpoint.updated"])


if __name__ == "__main__":
    unittest.main()
