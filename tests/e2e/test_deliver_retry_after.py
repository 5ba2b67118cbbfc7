"""Retry-After on 429 and 503 (seconds or an HTTP date) is honoured when it asks
for longer than the schedule's next delay, up to one hour; elsewhere ignored."""
import calendar
import email.utils
import time
import unittest

from apiutil import ApiCase

DATA = {"conversation_id": "c-1", "message_id": "m-1", "user_id": "u-1", "content": "hi"}


def parse_time(s):
    """RFC 3339 UTC with milliseconds -> Unix seconds (float)."""
    return calendar.timegm(time.strptime(s[:19], "%Y-%m-%dT%H:%M:%S")) + float("0" + s[19:-1])


class DeliverRetryAfter(ApiCase):
    serve_args = ["--allow-http", "--allow-networks", "127.0.0.0/8",
                  "--retry-schedule", "0ms,100ms,100ms"]

    def one(self, first, second=200):
        """A receiver answering first then second, the only endpoint, and one event."""
        for old in self.call("GET", "/v1/endpoints")["data"]:
            self.call("DELETE", "/v1/endpoints/" + old["id"], status=204)
        rc = self.receiver(responses=[first, second])
        ep = self.endpoint(rc.url)
        ev = self.publish("user.message", DATA)
        dl = self.wait_event_deliveries(ev["id"], 1, statuses=("pending", "delivered",
                                                               "failed"))[0]
        return rc, ep, ev, dl

    def test_seconds_on_429(self):
        rc, ep, ev, dl = self.one({"status": 429, "headers": {"Retry-After": "2"}})
        first = rc.wait_for(1)[0]
        # While it waits, the API shows the delivery pending, due about 2 s later.
        d = self.wait_status(dl["id"], statuses=("pending",))
        self.assertEqual(d["attempts_made"], 1)
        due = parse_time(d["next_attempt_at"])
        self.assertGreaterEqual(due - first.at, 1.5)
        self.assertLessEqual(due - first.at, 10)
        reqs = rc.wait_for(2, timeout=15)
        self.assertGreaterEqual(reqs[1].at - reqs[0].at, 1.8)
        self.assertEqual(self.wait_status(dl["id"])["status"], "delivered")

    def test_http_date_on_503(self):
        at = int(time.time()) + 3
        when = email.utils.formatdate(at, usegmt=True)
        rc, ep, ev, dl = self.one({"status": 503, "headers": {"Retry-After": when}})
        reqs = rc.wait_for(2, timeout=15)
        # Not before the date (the schedule alone would have retried after 100 ms).
        self.assertGreaterEqual(reqs[1].at, at - 0.05)
        self.assertEqual(self.wait_status(dl["id"])["status"], "delivered")

    def test_capped_at_one_hour(self):
        rc, ep, ev, dl = self.one({"status": 429, "headers": {"Retry-After": "86400"}})
        first = rc.wait_for(1)[0]
        d = self.wait_status(dl["id"], statuses=("pending",))
        wait = parse_time(d["next_attempt_at"]) - first.at
        self.assertGreaterEqual(wait, 3600 - 5)
        self.assertLessEqual(wait, 3600 + 5)

    def test_shorter_than_schedule_ignored(self):
        # The schedule says 100 ms after attempt 1; a Retry-After of 0 changes nothing
        # and a past date neither.
        rc, ep, ev, dl = self.one({"status": 503, "headers": {"Retry-After": "0"}})
        rc.wait_for(2, timeout=10)
        self.assertEqual(self.wait_status(dl["id"])["status"], "delivered")
        past = email.utils.formatdate(time.time() - 600, usegmt=True)
        rc2, ep2, ev2, dl2 = self.one({"status": 429, "headers": {"Retry-After": past}})
        rc2.wait_for(2, timeout=10)

    def test_ignored_on_other_codes(self):
        # A 500 or 408 asking for 30 minutes is retried on the schedule all the same.
        for code in (500, 408):
            with self.subTest(code=code):
                rc, ep, ev, dl = self.one({"status": code, "headers": {"Retry-After": "1800"}})
                rc.wait_for(2, timeout=10)

    def test_garbage_ignored(self):
        rc, ep, ev, dl = self.one({"status": 503, "headers": {"Retry-After": "soon-ish"}})
        rc.wait_for(2, timeout=10)
        self.assertEqual(self.wait_status(dl["id"])["status"], "delivered")


if __name__ == "__main__":
    unittest.main()
