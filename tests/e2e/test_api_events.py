"""POST /v1/events, GET /v1/events/{id}, GET /v1/events: publishing, catalog
validation, idempotency keys, fan-out by event type, reading and paging."""
import json
import unittest

from apiutil import ApiCase, GUIDE_SAMPLES

STARTED = GUIDE_SAMPLES["conversation.started"]
RESPONSE = GUIDE_SAMPLES["agent.response"]


class PublishTest(ApiCase):

    def test_publish_answers_202_and_delivers_the_envelope(self):
        rc = self.receiver()
        ep = self.endpoint(rc.url)
        st, b, h = self.srv.api("POST", "/v1/events",
                                {"event": "conversation.started", "data": STARTED,
                                 "timestamp": "2024-01-01T12:00:00Z"})
        self.assertEqual(st, 202, b)
        self.assertEqual(set(b), {"id", "event", "timestamp", "deliveries"})
        self.assertTrue(b["id"].startswith("evt_"))
        self.assertEqual(b["event"], "conversation.started")
        self.assertEqual(b["timestamp"], "2024-01-01T12:00:00Z")
        self.assertEqual(b["deliveries"], 1)
        self.assertEqual(h.get("Location"), "/v1/events/" + b["id"])
        req = rc.wait_for(1)[0]
        env = json.loads(req.body)
        self.assertEqual(env, {"id": b["id"], "event": "conversation.started",
                               "timestamp": "2024-01-01T12:00:00Z", "data": STARTED})
        self.assertEqual(req.headers["x-workflux-event-id"], b["id"])
        ds = self.wait_event_deliveries(b["id"], 1)
        self.assertEqual(ds[0]["endpoint_id"], ep["id"])
        self.assertEqual(ds[0]["status"], "delivered")

    def test_publish_without_endpoints_fans_out_to_none(self):
        b = self.publish("agent.response", RESPONSE)
        self.assertEqual(b["deliveries"], 0)
        self.assertRegex(b["timestamp"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")

    def test_422_lists_every_problem_with_its_path(self):
        data = dict(STARTED)
        del data["conversation_id"]
        data["agent_id"] = 7
        data["user_email"] = "no-at-sign"
        err = self.error("POST", "/v1/events", {"event": "conversation.started", "data": data},
                         422)
        paths = self.paths(err)
        for p in ("data.conversation_id", "data.agent_id", "data.user_email"):
            self.assertIn(p, paths, err)
        self.assertEqual(len(paths), 3, err)
        for f in err["fields"]:
            self.assertTrue(f["problem"], f)

    def test_422_for_unknown_type_bad_data_and_bad_timestamp(self):
        err = self.error("POST", "/v1/events", {"event": "no.such", "data": {}}, 422)
        self.assertIn("event", self.paths(err))
        err = self.error("POST", "/v1/events", {"event": "agent.response", "data": [1]}, 422)
        self.assertIn("data", self.paths(err))
        err = self.error("POST", "/v1/events", {"event": "agent.response", "data": RESPONSE,
                                                "timestamp": "yesterday"}, 422)
        self.assertIn("timestamp", self.paths(err))
        err = self.error("POST", "/v1/events", {"data": RESPONSE}, 422)
        self.assertIn("event", self.paths(err))
        self.assertEqual(self.call("GET", "/v1/events")["data"], [])

    def test_malformed_json_and_wrong_media_type(self):
        self.error("POST", "/v1/events", raw="{\"event\": ", status=400)
        self.error("POST", "/v1/events", raw="event=x", status=415,
                   headers={"Content-Type": "application/x-www-form-urlencoded"})

    def test_disabled_endpoint_gets_a_held_delivery(self):
        rc = self.receiver()
        ep = self.endpoint(rc.url, enabled=False)
        b = self.publish("agent.response", RESPONSE)
        self.assertEqual(b["deliveries"], 1)
        ds = self.deliveries(event_id=b["id"])
        self.assertEqual([(d["endpoint_id"], d["status"]) for d in ds], [(ep["id"], "held")])
        self.assertEqual(self.call("GET", "/v1/endpoints/" + ep["id"])["held"], 1)


class IdempotencyTest(ApiCase):

    def test_same_key_twice_answers_200_with_the_first_event(self):
        rc = self.receiver()
        self.endpoint(rc.url)
        first = self.publish("agent.response", RESPONSE, idem="order-1")
        again = self.publish("agent.response", RESPONSE, status=200, idem="order-1")
        self.assertEqual(again, first)
        # Even with another body, the key answers the first event.
        other = self.publish("conversation.started", STARTED, status=200, idem="order-1")
        self.assertEqual(other["id"], first["id"])
        self.assertEqual(other["event"], "agent.response")
        ds = self.wait_event_deliveries(first["id"], 1)
        self.assertEqual(len(ds), 1)
        self.assertEqual(len(self.call("GET", "/v1/events")["data"]), 1)
        self.assertEqual(len(self.deliveries()), 1)

    def test_another_key_publishes_a_new_event(self):
        a = self.publish("agent.response", RESPONSE, idem="k-1")
        b = self.publish("agent.response", RESPONSE, idem="k-2")
        self.assertNotEqual(a["id"], b["id"])
        c = self.publish("agent.response", RESPONSE)
        d = self.publish("agent.response", RESPONSE)
        self.assertNotEqual(c["id"], d["id"])

    def test_same_key_in_another_account_is_a_new_event(self):
        _, key = self.new_account()
        a = self.publish("agent.response", RESPONSE, idem="shared")
        b = self.publish("agent.response", RESPONSE, idem="shared", key=key)
        self.assertNotEqual(a["id"], b["id"])
        self.call("GET", "/v1/events/" + b["id"], key=key)
        self.error("GET", "/v1/events/" + b["id"], status=404)

    def test_key_length(self):
        self.publish("agent.response", RESPONSE, idem="x" * 255)
        err = self.error("POST", "/v1/events", {"event": "agent.response", "data": RESPONSE},
                         400, headers={"Idempotency-Key": "x" * 256})
        self.assertIn("Idempotency-Key", err["message"])
        self.assertEqual(len(self.call("GET", "/v1/events")["data"]), 1)

    def test_a_rejected_publish_does_not_use_the_key(self):
        self.error("POST", "/v1/events", {"event": "agent.response", "data": {}}, 422,
                   headers={"Idempotency-Key": "k"})
        self.publish("agent.response", RESPONSE, idem="k")


class FanOutTest(ApiCase):

    def test_event_type_filters(self):
        all_rc = self.receiver()
        agent_rc = self.receiver()
        ep_all = self.endpoint(all_rc.url)
        ep_agent = self.endpoint(agent_rc.url, event_types=["agent.response"])
        s = self.publish("conversation.started", STARTED)
        self.assertEqual(s["deliveries"], 1)
        a = self.publish("agent.response", RESPONSE)
        self.assertEqual(a["deliveries"], 2)
        self.wait_event_deliveries(s["id"], 1)
        self.wait_event_deliveries(a["id"], 2)
        got = [d["event_id"] for d in self.deliveries(endpoint_id=ep_agent["id"])]
        self.assertEqual(got, [a["id"]])
        got = [d["event_id"] for d in self.deliveries(endpoint_id=ep_all["id"])]
        self.assertEqual(sorted(got), sorted([s["id"], a["id"]]))
        reqs = agent_rc.wait_for(1)
        self.assertEqual([r.headers["x-workflux-event"] for r in reqs], ["agent.response"])
        self.assertEqual(len(all_rc.wait_for(2)), 2)

    def test_deleted_endpoint_gets_nothing_new(self):
        rc = self.receiver()
        ep = self.endpoint(rc.url)
        self.call("DELETE", "/v1/endpoints/" + ep["id"], status=204)
        self.assertEqual(self.publish("agent.response", RESPONSE)["deliveries"], 0)


class ReadTest(ApiCase):

    def test_get_one_event(self):
        b = self.publish("agent.response", RESPONSE, timestamp="2024-01-01T12:01:00Z")
        ev = self.call("GET", "/v1/events/" + b["id"])
        self.assertEqual(ev["id"], b["id"])
        self.assertEqual(ev["event"], "agent.response")
        self.assertEqual(ev["timestamp"], "2024-01-01T12:01:00Z")
        self.assertEqual(ev["data"], RESPONSE)
        self.assertEqual(ev["deliveries"], 0)

    def test_unknown_malformed_and_foreign_ids_are_404(self):
        _, key = self.new_account()
        theirs = self.publish("agent.response", RESPONSE, key=key)
        self.error("GET", "/v1/events/" + theirs["id"], status=404)
        self.error("GET", "/v1/events/evt_00000000000000000000000000", status=404)
        self.error("GET", "/v1/events/nonsense", status=404)
        self.error("GET", "/v1/events/ep_01JDZZZZZZZZZZZZZZZZZZZZZZ", status=404)
        self.assertEqual(self.call("GET", "/v1/events")["data"], [])

    def test_pages_newest_first_without_gaps_or_duplicates(self):
        ids = []
        for i in range(7):
            ids.append(self.publish("agent.response" if i % 2 else "conversation.started",
                                    RESPONSE if i % 2 else STARTED)["id"])
        ids.reverse()
        seen, after, pages = [], None, 0
        while True:
            q = "/v1/events?limit=3" + ("&after=" + after if after else "")
            page = self.call("GET", q)
            pages += 1
            self.assertLessEqual(len(page["data"]), 3)
            seen += [e["id"] for e in page["data"]]
            after = page["next"]
            if after is None:
                break
            self.assertEqual(after, page["data"][-1]["id"])
            self.assertLess(pages, 10)
        self.assertEqual(seen, ids)
        self.assertEqual(pages, 3)
        all_ = self.call("GET", "/v1/events")
        self.assertEqual([e["id"] for e in all_["data"]], ids)
        self.assertIsNone(all_["next"])
        exact = self.call("GET", "/v1/events?limit=7")
        self.assertEqual(len(exact["data"]), 7)
        self.assertIsNone(exact["next"])
        self.assertIn("data", all_["data"][0])

    def test_filter_by_type(self):
        s = self.publish("conversation.started", STARTED)["id"]
        a1 = self.publish("agent.response", RESPONSE)["id"]
        a2 = self.publish("agent.response", RESPONSE)["id"]
        page = self.call("GET", "/v1/events?event=agent.response")
        self.assertEqual([e["id"] for e in page["data"]], [a2, a1])
        page = self.call("GET", "/v1/events?event=conversation.started")
        self.assertEqual([e["id"] for e in page["data"]], [s])
        page = self.call("GET", "/v1/events?event=agent.response&limit=1")
        self.assertEqual([e["id"] for e in page["data"]], [a2])
        page = self.call("GET", "/v1/events?event=agent.response&limit=1&after=" + page["next"])
        self.assertEqual([e["id"] for e in page["data"]], [a1])
        self.assertIsNone(page["next"])

    def test_bad_page_parameters(self):
        self.error("GET", "/v1/events?limit=0", status=400)
        self.error("GET", "/v1/events?limit=abc", status=400)
        self.error("GET", "/v1/events?limit=100000", status=400)
        self.error("GET", "/v1/events?after=garbage", status=400)
        self.error("GET", "/v1/events?event=no.such", status=400)


if __name__ == "__main__":
    unittest.main()
