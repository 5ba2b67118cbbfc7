"""POST /v1/endpoints/{id}/test: a type's sample sent as a real, logged
delivery to that one endpoint, signed like any other."""
import json
import unittest

from apiutil import ApiCase, GUIDE_SAMPLES, ALL_TYPES
from guide import verify_webhook_signature


class TestEventTest(ApiCase):

    def test_sends_the_guide_sample_to_this_endpoint_only(self):
        rc = self.receiver()
        bystander = self.receiver()
        ep = self.endpoint(rc.url)
        other = self.endpoint(bystander.url)
        st, b, _ = self.srv.api("POST", "/v1/endpoints/%s/test" % ep["id"],
                                {"event": "conversation.started"})
        self.assertEqual(st, 202, b)
        self.assertTrue(b["event_id"].startswith("evt_"), b)
        self.assertTrue(b["delivery_id"].startswith("dlv_"), b)
        d = self.wait_status(b["delivery_id"], ("delivered",))
        self.assertEqual(d["endpoint_id"], ep["id"])
        self.assertEqual(d["event_id"], b["event_id"])
        self.assertEqual(d["event"], "conversation.started")
        self.assertEqual(len(d["attempts"]), 1)
        self.assertEqual(d["attempts"][0]["status_code"], 200)

        req = rc.wait_for(1)[0]
        env = json.loads(req.body)
        self.assertEqual(env["id"], b["event_id"])
        self.assertEqual(env["event"], "conversation.started")
        self.assertEqual(env["data"], GUIDE_SAMPLES["conversation.started"])
        self.assertEqual(req.headers["x-workflux-delivery"], b["delivery_id"])
        self.assertEqual(req.headers["x-workflux-event"], "conversation.started")
        self.assertTrue(verify_webhook_signature(req.body.decode(),
                                                 req.headers["x-workflux-signature"],
                                                 ep["secret"]))
        # A real event: readable, and delivered nowhere else.
        ev = self.call("GET", "/v1/events/" + b["event_id"])
        self.assertEqual(ev["data"], GUIDE_SAMPLES["conversation.started"])
        self.assertEqual(self.deliveries(event_id=b["event_id"]), [
            self.deliveries(endpoint_id=ep["id"])[0]])
        self.assertEqual(self.deliveries(endpoint_id=other["id"]), [])
        self.assertEqual(bystander.requests, [])

    def test_every_type_has_a_sample_that_passes_the_catalog(self):
        rc = self.receiver()
        ep = self.endpoint(rc.url, event_types=["agent.response"])
        sent = {}
        for t in ALL_TYPES:
            b = self.call("POST", "/v1/endpoints/%s/test" % ep["id"], {"event": t}, 202)
            sent[b["event_id"]] = t
        reqs = rc.wait_for(len(ALL_TYPES))
        self.assertEqual(len(reqs), len(ALL_TYPES))
        for req in reqs:
            env = json.loads(req.body)
            t = sent[env["id"]]
            self.assertEqual(env["event"], t)
            if t in GUIDE_SAMPLES:
                self.assertEqual(env["data"], GUIDE_SAMPLES[t])
            # The sample is a valid event of its type: publishing it is accepted.
            self.publish(t, env["data"])

    def test_disabled_endpoint_holds_the_test(self):
        rc = self.receiver()
        ep = self.endpoint(rc.url, enabled=False)
        b = self.call("POST", "/v1/endpoints/%s/test" % ep["id"], {"event": "user.message"},
                      202)
        self.assertEqual(self.delivery(b["delivery_id"])["status"], "held")
        self.call("POST", "/v1/endpoints/%s/enable" % ep["id"], {})
        self.wait_status(b["delivery_id"], ("delivered",))
        self.assertEqual(json.loads(rc.wait_for(1)[0].body)["event"], "user.message")

    def test_edited_data_is_sent_and_checked_like_a_publish(self):
        rc = self.receiver()
        ep = self.endpoint(rc.url)
        p = "/v1/endpoints/%s/test" % ep["id"]
        data = dict(GUIDE_SAMPLES["conversation.started"], conversation_id="conv-edited")
        b = self.call("POST", p, {"event": "conversation.started", "data": data}, 202)
        self.wait_status(b["delivery_id"], ("delivered",))
        self.assertEqual(json.loads(rc.wait_for(1)[0].body)["data"], data)
        # The catalog's rules, with field paths, exactly as POST /v1/events answers.
        bad = dict(data)
        del bad["conversation_id"]
        err = self.error("POST", p, {"event": "conversation.started", "data": bad}, 422)
        pub = self.error("POST", "/v1/events", {"event": "conversation.started", "data": bad}, 422)
        self.assertEqual(self.paths(err), self.paths(pub))
        self.assertIn("data.conversation_id", self.paths(err))
        err = self.error("POST", p, {"event": "conversation.started", "data": [1]}, 422)
        self.assertEqual(self.paths(err), ["data"])
        self.assertEqual(len(self.deliveries(endpoint_id=ep["id"])), 1)

    def test_errors(self):
        ep = self.endpoint("https://a.example.com/")
        p = "/v1/endpoints/%s/test" % ep["id"]
        err = self.error("POST", p, {"event": "no.such"}, 422)
        self.assertEqual(self.paths(err), ["event"])
        err = self.error("POST", p, {}, 422)
        self.assertEqual(self.paths(err), ["event"])
        self.error("POST", p, {"event": 3}, 422)
        self.error("POST", "/v1/endpoints/ep_01JE0000000000000000000000/test",
                   {"event": "user.message"}, 404)
        self.assertEqual(self.deliveries(), [])


if __name__ == "__main__":
    unittest.main()
