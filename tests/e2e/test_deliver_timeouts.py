"""A receiver that never answers: the attempt ends at --attempt-timeout with a
timeout error and is retried. One that answers 200 and then stalls its body:
the status line decides, the delivery succeeds."""
import unittest

from apiutil import ApiCase

DATA = {"conversation_id": "c-1", "message_id": "m-1", "user_id": "u-1", "content": "hi"}


class DeliverTimeouts(ApiCase):
    serve_args = ["--allow-http", "--allow-networks", "127.0.0.0/8",
                  "--retry-schedule", "0ms,100ms,100ms", "--attempt-timeout", "1s"]

    def test_never_answers_times_out_and_retries(self):
        rc = self.receiver(responses=[{"hang": True}], default=200)
        self.endpoint(rc.url)
        ev = self.publish("user.message", DATA)
        reqs = rc.wait_for(2, timeout=20)
        self.assertEqual([r.headers["x-workflux-attempt"] for r in reqs], ["1", "2"])
        d = self.wait_event_deliveries(ev["id"], 1)[0]
        self.assertEqual(d["status"], "delivered")
        a1, a2 = self.delivery(d["id"])["attempts"]
        self.assertIsNone(a1["status_code"])
        self.assertIn("timeout", a1["error"])
        self.assertIn("1000 ms", a1["error"])
        self.assertGreaterEqual(a1["duration_ms"], 900)
        self.assertEqual(a2["status_code"], 200)
        self.assertIsNone(a2["error"])

    def test_every_attempt_times_out(self):
        rc = self.receiver(default={"hang": True})
        ep = self.endpoint(rc.url)
        ev = self.publish("user.message", DATA)
        rc.wait_for(3, timeout=30)
        d = self.wait_event_deliveries(ev["id"], 1, timeout=30)[0]
        self.assertEqual(d["status"], "failed")
        self.assertEqual(d["attempts_made"], 3)
        e = self.srv.wait_for(lambda: (lambda x: x if x["status"] == "disabled" else None)(
            self.call("GET", "/v1/endpoints/" + ep["id"])), what="endpoint disabled")
        self.assertIn("3 consecutive failed attempts", e["disabled_reason"])
        self.assertIn("timeout", e["disabled_reason"])

    def test_200_then_stalled_body_is_success(self):
        rc = self.receiver(responses=[{"status": 200, "stall": True, "body": b"partial"}])
        self.endpoint(rc.url)
        ev = self.publish("user.message", DATA)
        rc.wait_for(1)
        d = self.wait_event_deliveries(ev["id"], 1, timeout=20)[0]
        self.assertEqual(d["status"], "delivered")
        self.assertEqual(d["attempts_made"], 1)
        a = self.delivery(d["id"])["attempts"][0]
        self.assertEqual(a["status_code"], 200)
        self.assertIsNone(a["error"])
        self.assertEqual(a["response_body"], "partial")  # what came before the stall
        self.assertEqual(len(rc.requests), 1)

    def test_503_then_stalled_body_is_retried(self):
        rc = self.receiver(responses=[{"status": 503, "stall": True, "body": b"x"}])
        self.endpoint(rc.url)
        ev = self.publish("user.message", DATA)
        rc.wait_for(2, timeout=20)
        d = self.wait_event_deliveries(ev["id"], 1, timeout=20)[0]
        self.assertEqual(d["status"], "delivered")
        a1 = self.delivery(d["id"])["attempts"][0]
        self.assertEqual(a1["status_code"], 503)


if __name__ == "__main__":
    unittest.main()
