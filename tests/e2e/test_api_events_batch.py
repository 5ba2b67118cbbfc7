"""POST /v1/events/batch: up to 500 events in one body, each checked and
answered on its own and in order, the valid ones published in one commit;
idempotency keys per item; the body as a whole refused when it is not a batch."""
import json
import unittest

from apiutil import ApiCase, GUIDE_SAMPLES, announce_body

STARTED = GUIDE_SAMPLES["conversation.started"]
RESPONSE = GUIDE_SAMPLES["agent.response"]


class BatchTest(ApiCase):

    def batch(self, events, status=200, **kw):
        return self.call("POST", "/v1/events/batch", {"events": events}, status, **kw)

    def test_each_event_answered_in_order_and_delivered(self):
        rc = self.receiver()
        ep = self.endpoint(rc.url, event_types=["conversation.started"])
        bad = dict(STARTED)
        del bad["conversation_id"]
        events = [
            {"event": "conversation.started", "data": STARTED,
             "timestamp": "2024-01-01T12:00:00Z"},
            {"event": "conversation.started", "data": bad},
            "not an object",
            {"event": "agent.response", "data": RESPONSE, "idempotency_key": "k-1"},
            {"event": "agent.response", "data": RESPONSE, "idempotency_key": "k-1"},
            {"event": "no.such", "data": {}},
            {"event": "conversation.started", "data": dict(STARTED, conversation_id="c-2"),
             "extra": 1},
        ]
        res = self.batch(events)["results"]
        self.assertEqual(len(res), len(events))
        self.assertEqual(res[0]["status"], 202, res[0])
        self.assertEqual(res[0]["deliveries"], 1)
        self.assertEqual(res[0]["event"], "conversation.started")
        self.assertEqual(res[0]["timestamp"], "2024-01-01T12:00:00Z")
        self.assertEqual(res[1]["status"], 422)
        self.assertEqual(res[1]["error"]["type"], "validation_failed")
        self.assertIn("data.conversation_id", self.paths(res[1]["error"]))
        self.assertEqual(res[2]["status"], 400)
        self.assertIn("object", res[2]["error"]["message"])
        self.assertEqual(res[3]["status"], 202)
        self.assertEqual(res[3]["deliveries"], 0)
        # The same key later in the same batch answers the earlier event.
        self.assertEqual(res[4]["status"], 200)
        self.assertEqual(res[4]["id"], res[3]["id"])
        self.assertEqual(res[5]["status"], 422)
        self.assertIn("event", self.paths(res[5]["error"]))
        self.assertEqual(res[6]["status"], 422)
        self.assertIn("extra", self.paths(res[6]["error"]))
        listed = {e["id"] for e in self.call("GET", "/v1/events")["data"]}
        self.assertEqual(listed, {res[0]["id"], res[3]["id"]})
        req = rc.wait_for(1)[0]
        self.assertEqual(json.loads(req.body),
                         {"id": res[0]["id"], "event": "conversation.started",
                          "timestamp": "2024-01-01T12:00:00Z", "data": STARTED})
        ds = self.wait_event_deliveries(res[0]["id"], 1)
        self.assertEqual(ds[0]["endpoint_id"], ep["id"])

    def test_keys_across_batches_and_single_publishes(self):
        single = self.publish("agent.response", RESPONSE, idem="order-1")
        res = self.batch([
            {"event": "conversation.started", "data": STARTED, "idempotency_key": "order-1"},
            {"event": "agent.response", "data": RESPONSE, "idempotency_key": "order-2"},
            {"event": "agent.response", "data": RESPONSE, "idempotency_key": "x" * 256},
            {"event": "agent.response", "data": RESPONSE, "idempotency_key": 7},
        ])["results"]
        self.assertEqual((res[0]["status"], res[0]["id"], res[0]["event"]),
                         (200, single["id"], "agent.response"))
        self.assertEqual(res[1]["status"], 202)
        for r in res[2:]:
            self.assertEqual(r["status"], 422, r)
            self.assertEqual(self.paths(r["error"]), ["idempotency_key"])
        again = self.publish("agent.response", RESPONSE, status=200, idem="order-2")
        self.assertEqual(again["id"], res[1]["id"])
        self.assertEqual(len(self.call("GET", "/v1/events")["data"]), 2)

    def test_fan_out_holds_for_a_disabled_endpoint(self):
        rc = self.receiver()
        on = self.endpoint(rc.url)
        off = self.endpoint(rc.url, enabled=False)
        res = self.batch([{"event": "agent.response", "data": RESPONSE}] * 3)["results"]
        self.assertEqual([r["deliveries"] for r in res], [2, 2, 2])
        rc.wait_for(3)
        ids = sorted(r["id"] for r in res)
        self.srv.wait_for(lambda: sorted(d["event_id"] for d in self.deliveries(
            endpoint_id=on["id"], status="delivered")) == ids, what="3 delivered")
        held = self.deliveries(endpoint_id=off["id"])
        self.assertEqual(sorted(d["status"] for d in held), ["held"] * 3)
        self.assertEqual(sorted(d["event_id"] for d in held), ids)

    def test_500_events_over_the_single_body_cap(self):
        big = dict(RESPONSE, content="x" * 800)
        events = [{"event": "agent.response", "data": big} for _ in range(500)]
        self.assertGreater(len(json.dumps({"events": events})), 256 * 1024)
        res = self.batch(events)["results"]
        self.assertEqual([r["status"] for r in res], [202] * 500)
        self.assertEqual(len({r["id"] for r in res}), 500)
        page = self.call("GET", "/v1/events?limit=500")["data"]
        self.assertEqual(len(page), 500)
        self.assertEqual(page[0]["data"]["content"], "x" * 800)

    def test_a_body_that_is_not_a_batch(self):
        one = {"event": "agent.response", "data": RESPONSE}
        err = self.error("POST", "/v1/events/batch", {"events": [one] * 501}, 422)
        self.assertEqual(self.paths(err), ["events"])
        err = self.error("POST", "/v1/events/batch", {"events": []}, 422)
        self.assertEqual(self.paths(err), ["events"])
        err = self.error("POST", "/v1/events/batch", one, 422)
        self.assertEqual(sorted(self.paths(err)), ["data", "event", "events"])
        err = self.error("POST", "/v1/events/batch", raw='{"events": [', status=400)
        self.assertIn("malformed JSON", err["message"])
        err = self.error("POST", "/v1/events/batch", raw='{"events": [], "events": []}',
                         status=422)
        self.assertEqual(self.paths(err), ["events"])
        self.assertIn("twice", err["message"])
        self.error("POST", "/v1/events/batch", raw="{}", status=415,
                   headers={"Content-Type": "text/plain"})
        # Refused from its announced length, before the body is sent.
        data = announce_body(self.srv, "/v1/events/batch", (8 << 20) + 1, until=b"8192 KiB")
        self.assertTrue(data.startswith(b"HTTP/1.1 413"), data[:200])
        self.assertIn(b"8192 KiB", data)
        self.assertEqual(self.call("GET", "/v1/events")["data"], [])

    def test_in_the_openapi_document(self):
        doc = self.call("GET", "/openapi.json")
        op = doc["paths"]["/v1/events/batch"]["post"]
        ref = op["requestBody"]["content"]["application/json"]["schema"]["$ref"]
        self.assertTrue(ref.endswith("/EventBatch"))
        self.assertIn("EventBatchResults", json.dumps(op["responses"]["200"]))
        self.assertEqual(doc["components"]["schemas"]["EventBatch"]["properties"]["events"]
                         ["maxItems"], 500)


if __name__ == "__main__":
    unittest.main()
