"""/v1/deliveries: filtered pages, one delivery with every attempt and the
headers sent, and manual retries (409 while an attempt is under way)."""
import socket
import time
import unittest

from apiutil import ApiCase, GUIDE_SAMPLES, SERVE_ARGS

RESPONSE = GUIDE_SAMPLES["agent.response"]
STARTED = GUIDE_SAMPLES["conversation.started"]
DELIVERY_FIELDS = {"id", "event_id", "endpoint_id", "event", "status", "attempts_made",
                   "next_attempt_at"}


def closed_port():
    """A loopback port nothing listens on (bound, then released)."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class ReadTest(ApiCase):

    def test_one_delivery_with_every_attempt(self):
        rc = self.receiver([{"status": 503, "body": b"busy, try later"}, 200])
        ep = self.endpoint(rc.url)
        ev = self.publish("agent.response", RESPONSE)
        dlv = self.deliveries(event_id=ev["id"])[0]
        d = self.wait_status(dlv["id"], ("delivered",))
        self.assertTrue(DELIVERY_FIELDS <= set(d), d)
        self.assertEqual((d["event_id"], d["endpoint_id"], d["event"]),
                         (ev["id"], ep["id"], "agent.response"))
        self.assertEqual(d["attempts_made"], 2)
        self.assertIsNone(d["next_attempt_at"])
        a1, a2 = d["attempts"]
        self.assertEqual((a1["n"], a1["status_code"]), (1, 503))
        self.assertEqual(a1["response_body"], "busy, try later")
        self.assertEqual((a2["n"], a2["status_code"], a2["error"]), (2, 200, None))
        for a in (a1, a2):
            self.assertEqual(set(a) >= {"n", "at", "status_code", "error", "duration_ms",
                                        "response_body"}, True, a)
            self.assertIsInstance(a["duration_ms"], int)
            self.assertGreaterEqual(a["duration_ms"], 0)
            self.assertRegex(a["at"], r"^\d{4}-\d\d-\d\dT")
        self.assertLessEqual(a1["at"], a2["at"])
        h = d["headers"]
        self.assertEqual(h["Content-Type"], "application/json")
        self.assertTrue(h["User-Agent"].startswith("fluxhook/"))
        self.assertEqual(h["X-Workflux-Event"], "agent.response")
        self.assertEqual(h["X-Workflux-Event-Id"], ev["id"])
        self.assertEqual(h["X-Workflux-Delivery"], d["id"])
        self.assertEqual(h["webhook-id"], ev["id"])
        # The headers shown are the ones the receiver got.
        req = rc.wait_for(2)[1]
        for k, v in h.items():
            self.assertEqual(req.headers[k.lower()], v, k)
        # Lists do not carry the attempts.
        self.assertNotIn("attempts", self.deliveries(event_id=ev["id"])[0])

    def test_each_attempt_keeps_the_headers_sent_and_answered(self):
        rc = self.receiver([{"status": 503, "body": b"busy",
                             "headers": {"X-Request-Id": "req-1", "Retry-After": "0"}},
                            {"status": 200, "headers": {"X-Request-Id": "req-2"}}])
        self.endpoint(rc.url)
        ev = self.publish("agent.response", RESPONSE)
        dlv = self.deliveries(event_id=ev["id"])[0]
        d = self.wait_status(dlv["id"], ("delivered",))
        reqs = rc.wait_for(2)
        self.assertEqual(d["round_attempts"], 2)
        for a, req, rid in zip(d["attempts"], reqs, ("req-1", "req-2")):
            sent = {h["name"]: h["value"] for h in a["request_headers"]}
            # Every header the receiver got, signatures and timestamps included, with its value.
            for name in ("X-Workflux-Signature", "webhook-signature", "webhook-timestamp",
                         "X-Workflux-Attempt", "X-Workflux-Delivery", "webhook-id"):
                self.assertEqual(sent[name], req.headers[name.lower()], name)
            self.assertEqual(sent["X-Workflux-Attempt"], str(a["n"]))
            self.assertNotIn("Expect", sent)
            got = {h["name"].lower(): h["value"] for h in a["response_headers"]}
            self.assertEqual(got["x-request-id"], rid)

    def test_no_answer_keeps_no_response_headers(self):
        self.endpoint("http://127.0.0.1:%d/hook" % closed_port())
        ev = self.publish("agent.response", RESPONSE)
        dlv = self.deliveries(event_id=ev["id"])[0]
        d = self.wait_status(dlv["id"], ("failed", "held"))
        for a in d["attempts"]:
            self.assertIsNone(a["response_headers"])
            self.assertIn("X-Workflux-Signature", [h["name"] for h in a["request_headers"]])

    def test_transport_failure_has_no_status_code(self):
        ep = self.endpoint("http://127.0.0.1:%d/hook" % closed_port())
        ev = self.publish("agent.response", RESPONSE)
        dlv = self.deliveries(event_id=ev["id"])[0]
        d = self.wait_status(dlv["id"], ("failed", "held"))
        self.assertEqual(len(d["attempts"]), 3)
        for a in d["attempts"]:
            self.assertIsNone(a["status_code"])
            self.assertIsInstance(a["error"], str)
            self.assertTrue(a["error"])
        # Retries exhausted: the endpoint was disabled.
        self.assertEqual(self.call("GET", "/v1/endpoints/" + ep["id"])["status"], "disabled")

    def test_unknown_malformed_and_foreign_ids_are_404(self):
        _, key = self.new_account()
        self.endpoint("https://a.example.com/", key=key, enabled=False)
        ev = self.publish("agent.response", RESPONSE, key=key)
        theirs = self.deliveries(key=key, event_id=ev["id"])[0]["id"]
        self.error("GET", "/v1/deliveries/" + theirs, status=404)
        self.error("POST", "/v1/deliveries/%s/retry" % theirs, status=404)
        self.assertEqual(self.deliveries(), [])
        self.assertEqual(self.deliveries(event_id=ev["id"]), [])
        for bad in ("nope", "dlv_", "evt_01JE0000000000000000000000",
                    "dlv_01JE0000000000000000000000"):
            self.error("GET", "/v1/deliveries/" + bad, status=404)
            self.error("POST", "/v1/deliveries/%s/retry" % bad, status=404)


class ListTest(ApiCase):

    def test_filters(self):
        ok = self.receiver()
        bad = self.receiver(default=400)
        ep_ok = self.endpoint(ok.url)
        ep_bad = self.endpoint(bad.url, event_types=["agent.response"])
        e1 = self.publish("agent.response", RESPONSE)
        e2 = self.publish("conversation.started", STARTED)
        self.wait_event_deliveries(e1["id"], 2)
        self.wait_event_deliveries(e2["id"], 1)
        every = self.deliveries()
        self.assertEqual(len(every), 3)
        ids = [d["id"] for d in every]
        self.assertEqual(ids, sorted(ids, reverse=True))  # newest first
        got = self.deliveries(endpoint_id=ep_bad["id"])
        self.assertEqual([(d["event_id"], d["status"]) for d in got], [(e1["id"], "failed")])
        got = self.deliveries(endpoint_id=ep_ok["id"])
        self.assertEqual(sorted(d["event_id"] for d in got), sorted([e1["id"], e2["id"]]))
        got = self.deliveries(status="failed")
        self.assertEqual([d["endpoint_id"] for d in got], [ep_bad["id"]])
        got = self.deliveries(status="delivered")
        self.assertEqual(len(got), 2)
        self.assertEqual(self.deliveries(status="held"), [])
        got = self.deliveries(event="conversation.started")
        self.assertEqual([d["event_id"] for d in got], [e2["id"]])
        got = self.deliveries(event_id=e1["id"], status="delivered")
        self.assertEqual([d["endpoint_id"] for d in got], [ep_ok["id"]])
        got = self.deliveries(endpoint_id=ep_ok["id"], event="agent.response")
        self.assertEqual([d["event_id"] for d in got], [e1["id"]])

    def test_date_range(self):
        self.endpoint("https://a.example.com/", enabled=False)
        first = self.publish("agent.response", RESPONSE)
        time.sleep(0.05)  # creation times apart, not a wait for an outcome
        second = self.publish("agent.response", RESPONSE)
        d1 = self.deliveries(event_id=first["id"])[0]
        d2 = self.deliveries(event_id=second["id"])[0]
        cut = d2["created_at"]
        got = self.deliveries(since=cut)
        self.assertEqual([d["id"] for d in got], [d2["id"]])
        got = self.deliveries(until=cut)
        self.assertEqual([d["id"] for d in got], [d1["id"]])
        got = self.deliveries(since=d1["created_at"], until=cut)
        self.assertEqual([d["id"] for d in got], [d1["id"]])
        self.assertEqual(len(self.deliveries(since="2000-01-01T00:00:00Z")), 2)
        err = self.error("GET", "/v1/deliveries?since=yesterday", status=400)
        self.assertIn("since", err["message"])
        err = self.error("GET", "/v1/deliveries?since=%s&until=%s" % (cut, cut), status=400)
        self.assertIn("until", err["message"])

    def test_bad_filters_answer_400(self):
        err = self.error("GET", "/v1/deliveries?status=done", status=400)
        for s in ("pending", "delivering", "delivered", "failed", "held"):
            self.assertIn(s, err["message"])
        self.error("GET", "/v1/deliveries?limit=0", status=400)
        self.error("GET", "/v1/deliveries?after=ep_x", status=400)
        self.error("GET", "/v1/deliveries?event=nope", status=400)

    def test_pages_without_gaps_or_duplicates(self):
        self.endpoint("https://a.example.com/", enabled=False)
        self.endpoint("https://b.example.com/", enabled=False)
        for _ in range(4):
            self.publish("agent.response", RESPONSE)
        every = [d["id"] for d in self.deliveries()]
        self.assertEqual(len(every), 8)
        seen, after, pages = [], None, 0
        while True:
            page = self.call("GET", "/v1/deliveries?limit=3" + ("&after=" + after if after
                                                                 else ""))
            pages += 1
            seen += [d["id"] for d in page["data"]]
            after = page["next"]
            if after is None:
                break
            self.assertLess(pages, 10)
        self.assertEqual(seen, every)
        self.assertEqual(pages, 3)
        page = self.call("GET", "/v1/deliveries?status=held&limit=8")
        self.assertEqual(len(page["data"]), 8)
        self.assertIsNone(page["next"])


class RetryTest(ApiCase):

    def test_retry_a_failed_delivery(self):
        rc = self.receiver([400])
        self.endpoint(rc.url)
        ev = self.publish("agent.response", RESPONSE)
        dlv = self.deliveries(event_id=ev["id"])[0]
        d = self.wait_status(dlv["id"], ("failed",))
        self.assertEqual(d["attempts_made"], 1)
        st, b, _ = self.srv.api("POST", "/v1/deliveries/%s/retry" % dlv["id"])
        self.assertEqual(st, 202, b)
        self.assertEqual(b["id"], dlv["id"])
        d = self.wait_status(dlv["id"], ("delivered",))
        self.assertEqual([a["status_code"] for a in d["attempts"]], [400, 200])
        reqs = rc.wait_for(2)
        self.assertEqual([r.headers["x-workflux-delivery"] for r in reqs], [dlv["id"]] * 2)
        self.assertEqual(reqs[0].body, reqs[1].body)
        # Retrying a delivered one sends it again too.
        self.call("POST", "/v1/deliveries/%s/retry" % dlv["id"], status=202)
        rc.wait_for(3)
        self.srv.wait_for(lambda: self.delivery(dlv["id"])["attempts_made"] == 3,
                          what="a third attempt")


    def test_retry_after_the_endpoint_was_deleted_is_409(self):
        rc = self.receiver([400])
        ep = self.endpoint(rc.url)
        ev = self.publish("agent.response", RESPONSE)
        dlv = self.wait_event_deliveries(ev["id"], 1, ("failed",))[0]
        self.call("DELETE", "/v1/endpoints/" + ep["id"], status=204)
        err = self.error("POST", "/v1/deliveries/%s/retry" % dlv["id"], status=409)
        self.assertIn("deleted", err["message"])
        # The log of a deleted endpoint's deliveries stays readable.
        d = self.delivery(dlv["id"])
        self.assertEqual((d["status"], d["attempts_made"]), ("failed", 1))
        self.assertEqual(len(rc.requests), 1)


class RetryWhileDeliveringTest(ApiCase):
    serve_args = SERVE_ARGS + ["--attempt-timeout", "3s"]

    def test_409_while_delivering(self):
        rc = self.receiver([{"hang": True}, 200])
        self.endpoint(rc.url)
        ev = self.publish("agent.response", RESPONSE)
        dlv = self.deliveries(event_id=ev["id"])[0]
        self.wait_status(dlv["id"], ("delivering",))
        err = self.error("POST", "/v1/deliveries/%s/retry" % dlv["id"], status=409)
        self.assertIn("being delivered", err["message"])
        d = self.wait_status(dlv["id"], ("delivered",), timeout=30)
        self.assertIsNone(d["attempts"][0]["status_code"])
        self.assertEqual(d["attempts"][-1]["status_code"], 200)


if __name__ == "__main__":
    unittest.main()
