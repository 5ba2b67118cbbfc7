"""What a receiver answers is kept for the delivery log: the first 4 KiB of the
body; reading stops at 64 KiB, and a long answer does not change the outcome."""
import unittest

from apiutil import ApiCase

DATA = {"conversation_id": "c-1", "message_id": "m-1", "user_id": "u-1", "content": "hi"}


class DeliverResponseBody(ApiCase):

    def attempts_for(self, answers):
        for old in self.call("GET", "/v1/endpoints")["data"]:
            self.call("DELETE", "/v1/endpoints/" + old["id"], status=204)
        rc = self.receiver(responses=answers)
        self.endpoint(rc.url)
        ev = self.publish("user.message", DATA)
        d = self.wait_event_deliveries(ev["id"], 1)[0]
        return d, self.delivery(d["id"])["attempts"]

    def test_short_body_kept_whole(self):
        d, a = self.attempts_for([{"status": 503, "body": b"busy, come back later"},
                                  {"status": 200, "body": b'{"ok":true}'}])
        self.assertEqual(d["status"], "delivered")
        self.assertEqual(a[0]["response_body"], "busy, come back later")
        self.assertEqual(a[1]["response_body"], '{"ok":true}')

    def test_long_body_first_4k(self):
        body = bytes((ord("a") + i % 26) for i in range(20000))
        d, a = self.attempts_for([{"status": 200, "body": body}])
        self.assertEqual(d["status"], "delivered")
        self.assertEqual(a[0]["response_body"], body[:4096].decode())

    def test_huge_body_success_and_failure(self):
        big = b"x" * (1024 * 1024)
        d, a = self.attempts_for([{"status": 200, "body": big}])
        self.assertEqual(d["status"], "delivered")
        self.assertEqual(d["attempts_made"], 1)
        self.assertEqual(len(a[0]["response_body"]), 4096)
        d, a = self.attempts_for([{"status": 404, "body": big}])
        self.assertEqual(d["status"], "failed")
        self.assertEqual(d["attempts_made"], 1)
        self.assertEqual(a[0]["status_code"], 404)
        self.assertEqual(len(a[0]["response_body"]), 4096)

    def test_empty_body(self):
        d, a = self.attempts_for([204])
        self.assertEqual(d["status"], "delivered")
        self.assertIn(a[0]["response_body"], (None, ""))


if __name__ == "__main__":
    unittest.main()
