"""Which answers are retried (408, 429, 500, 502, 503, 504, a dropped
connection) and which fail the delivery at once (every other status,
redirects included, never followed)."""
import socket
import unittest

from apiutil import ApiCase

RETRIED = [408, 429, 500, 502, 503, 504]
FINAL = [400, 401, 403, 404, 410, 301, 302]
DATA = {"conversation_id": "c-1", "message_id": "m-1", "user_id": "u-1", "content": "hi"}


class DeliverRetryCodes(ApiCase):
    serve_args = ["--allow-http", "--allow-networks", "127.0.0.0/8",
                  "--retry-schedule", "0ms,50ms,50ms,50ms"]

    def send_one(self, rc):
        """A new endpoint for rc, alone in being subscribed (the others of the
        test are deleted first), and one event for it."""
        for old in self.call("GET", "/v1/endpoints")["data"]:
            self.call("DELETE", "/v1/endpoints/" + old["id"], status=204)
        ep = self.endpoint(rc.url, event_types=["user.message"])
        ev = self.publish("user.message", DATA)
        self.assertEqual(ev["deliveries"], 1)
        return ep, ev

    def check_retried_then_delivered(self, first):
        rc = self.receiver(responses=[first], default=200)
        ep, ev = self.send_one(rc)
        reqs = rc.wait_for(2)
        d = self.wait_event_deliveries(ev["id"], 1)[0]
        self.assertEqual(d["status"], "delivered", d)
        self.assertEqual(d["attempts_made"], 2)
        full = self.delivery(d["id"])
        a1, a2 = full["attempts"]
        self.assertEqual((a1["n"], a2["n"]), (1, 2))
        if isinstance(first, int):
            self.assertEqual(a1["status_code"], first)
        else:
            self.assertIsNone(a1["status_code"])
            self.assertTrue(a1["error"], a1)
        self.assertEqual(a2["status_code"], 200)
        self.assertEqual([r.headers["x-workflux-attempt"] for r in reqs], ["1", "2"])
        self.assertEqual(reqs[0].body, reqs[1].body)
        self.assertEqual(reqs[0].headers["x-workflux-delivery"],
                         reqs[1].headers["x-workflux-delivery"])
        self.assertEqual(reqs[0].headers["x-workflux-event-id"], ev["id"])
        self.assertEqual(self.call("GET", "/v1/endpoints/" + ep["id"])["status"], "enabled")

    def test_retried_codes(self):
        for code in RETRIED:
            with self.subTest(code=code):
                self.check_retried_then_delivered(code)

    def test_closed_connection_retried(self):
        self.check_retried_then_delivered({"close": True})

    def test_connection_refused_retried(self):
        # A port nobody listens on: every attempt is a transport failure.
        probe = socket.socket()
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
        probe.close()
        for old in self.call("GET", "/v1/endpoints")["data"]:
            self.call("DELETE", "/v1/endpoints/" + old["id"], status=204)
        ep = self.endpoint("http://127.0.0.1:%d/hook" % port)
        ev = self.publish("user.message", DATA)
        d = self.wait_event_deliveries(ev["id"], 1)[0]
        self.assertEqual(d["status"], "failed")
        self.assertEqual(d["attempts_made"], 4)
        for a in self.delivery(d["id"])["attempts"]:
            self.assertIsNone(a["status_code"])
            self.assertEqual(a["error_class"], "connect")
            self.assertEqual(a["error"],
                             "cannot connect to 127.0.0.1 port %d: connection refused" % port)
        e = self.srv.wait_for(lambda: (lambda x: x if x["status"] == "disabled" else None)(
            self.call("GET", "/v1/endpoints/" + ep["id"])), what="endpoint disabled")
        self.assertIn("4 consecutive failed attempts; last: cannot connect", e["disabled_reason"])

    def test_final_codes_fail_at_once(self):
        rcs = {}
        evs = {}
        for code in FINAL:
            rc = self.receiver(default={"status": code,
                                        "headers": {"Location": "http://127.0.0.1:9/x"}})
            ep = self.endpoint(rc.url, event_types=["agent.updated"], description=str(code))
            rcs[code] = (rc, ep)
        ev = self.publish("agent.updated", {"agent_id": "a-1", "updated_fields": ["name"]})
        self.assertEqual(ev["deliveries"], len(FINAL))
        ds = self.wait_event_deliveries(ev["id"], len(FINAL))
        by_ep = {d["endpoint_id"]: d for d in ds}
        # Failed, with nothing scheduled: no second attempt may come. A retry
        # would have kept the delivery pending until the schedule ran out, and
        # ended it with more than one attempt.
        for code, (rc, ep) in rcs.items():
            with self.subTest(code=code):
                d = by_ep[ep["id"]]
                self.assertEqual(d["status"], "failed", d)
                self.assertEqual(d["attempts_made"], 1)
                self.assertIsNone(d["next_attempt_at"], d)
                self.assert_settled(rc, ep["id"], 1)
                a = self.delivery(d["id"])["attempts"]
                self.assertEqual(len(a), 1)
                self.assertEqual(a[0]["status_code"], code)
                # One failed delivery does not disable an endpoint.
                self.assertEqual(self.call("GET", "/v1/endpoints/" + ep["id"])["status"],
                                 "enabled")
        evs[ev["id"]] = ev

    def test_redirect_not_followed(self):
        target = self.receiver()
        rc = self.receiver(default={"status": 302, "headers": {"Location": target.url}})
        ep, ev = self.send_one(rc)
        d = self.wait_event_deliveries(ev["id"], 1)[0]
        self.assertEqual(d["status"], "failed")
        a = self.delivery(d["id"])["attempts"]
        self.assertEqual(a[0]["status_code"], 302)
        self.assertIn("redirect", a[0]["error"] or "")
        self.assertEqual(len(rc.requests), 1)
        self.assertEqual(target.requests, [])

    def test_success_codes(self):
        for code in (200, 201, 202, 204, 299):
            with self.subTest(code=code):
                rc = self.receiver(default=code)
                ep, ev = self.send_one(rc)
                d = self.wait_event_deliveries(ev["id"], 1)[0]
                self.assertEqual(d["status"], "delivered")
                self.assertEqual(d["attempts_made"], 1)
                self.assertEqual(len(rc.requests), 1)


if __name__ == "__main__":
    unittest.main()
