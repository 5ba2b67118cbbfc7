"""A delivery whose whole schedule fails disables its endpoint, which then
holds (never drops) its deliveries until it is enabled again."""
import calendar
import time
import unittest

from apiutil import ApiCase

DATA = {"conversation_id": "c-1", "message_id": "m-1", "user_id": "u-1", "content": "hi"}


class DeliverDisable(ApiCase):
    serve_args = ["--allow-http", "--allow-networks", "127.0.0.0/8",
                  "--retry-schedule", "0ms,50ms,100ms,150ms,200ms"]

    def get_ep(self, ep_id):
        return self.call("GET", "/v1/endpoints/" + ep_id)

    def exhaust(self, rc, ep):
        """Publishes one event that fails all five attempts; returns its delivery."""
        before = len(rc.requests)  # read before publishing: the first attempt may beat the 202
        ev = self.publish("user.message", DATA)
        reqs = rc.wait_for(before + 5, timeout=20)
        d = self.wait_event_deliveries(ev["id"], 1)[0]
        self.assertEqual(d["status"], "failed", d)
        self.assertEqual(d["attempts_made"], 5)
        self.assertEqual([r.headers["x-workflux-attempt"] for r in reqs[-5:]],
                         ["1", "2", "3", "4", "5"])
        return d

    def test_schedule_exhausted_disables_and_holds(self):
        rc = self.receiver(default=503)
        ep = self.endpoint(rc.url)
        before = time.time()
        d = self.exhaust(rc, ep)

        e = self.srv.wait_for(lambda: (lambda x: x if x["status"] == "disabled" else None)(
            self.get_ep(ep["id"])), what="endpoint disabled")
        self.assertIn("5 consecutive failed attempts", e["disabled_reason"])
        self.assertIn("HTTP 503", e["disabled_reason"])
        self.assertTrue(e["disabled_at"], e)
        attempts = self.delivery(d["id"])["attempts"]
        self.assertEqual([a["n"] for a in attempts], [1, 2, 3, 4, 5])
        self.assertTrue(all(a["status_code"] == 503 for a in attempts))
        at = calendar.timegm(time.strptime(e["disabled_at"][:19], "%Y-%m-%dT%H:%M:%S"))
        self.assertTrue(before - 1 <= at <= time.time() + 1, (before, e["disabled_at"]))

        # New events for a disabled endpoint are held, not sent and not dropped.
        rc.set_responses([], default=200)
        held = [self.publish("user.message", DATA) for _ in range(3)]
        for ev in held:
            ds = self.wait_event_deliveries(ev["id"], 1, statuses=("held",))
            self.assertEqual(ds[0]["attempts_made"], 0)
        # None was sent so far; one sent while held would show below as a
        # ninth request or a second attempt (assert_settled).
        self.assertEqual(len(rc.requests), 5)
        self.assertEqual(self.get_ep(ep["id"]).get("held"), 3)

        # Enabling resumes the held ones; the failed one stays failed.
        self.call("POST", "/v1/endpoints/%s/enable" % ep["id"], {})
        got = rc.wait_for(8, timeout=20)[5:]
        self.assertEqual(sorted(r.headers["x-workflux-event-id"] for r in got),
                         sorted(ev["id"] for ev in held))
        for ev in held:
            self.assertEqual(self.wait_event_deliveries(ev["id"], 1)[0]["status"], "delivered")
        e = self.get_ep(ep["id"])
        self.assertEqual(e["status"], "enabled")
        self.assertIsNone(e["disabled_reason"])
        self.assertEqual(self.delivery(d["id"])["status"], "failed")
        # Five attempts of the failed one, one of each held one, and no more.
        for ev in held:
            self.assertEqual(self.wait_event_deliveries(ev["id"], 1)[0]["attempts_made"], 1)
        self.assert_settled(rc, ep["id"], 8)

    def test_enable_skip_held(self):
        rc = self.receiver(default=500)
        ep = self.endpoint(rc.url)
        self.exhaust(rc, ep)
        self.srv.wait_for(lambda: self.get_ep(ep["id"])["status"] == "disabled",
                          what="endpoint disabled")
        rc.set_responses([], default=200)
        ev = self.publish("user.message", DATA)
        dl = self.wait_event_deliveries(ev["id"], 1, statuses=("held",))[0]
        self.call("POST", "/v1/endpoints/%s/enable" % ep["id"], {"skip_held": True})
        d = self.wait_status(dl["id"])
        self.assertEqual(d["status"], "failed")
        self.assertEqual(d["attempts_made"], 0)
        # Nothing more was sent; new events flow again.
        ev2 = self.publish("user.message", DATA)
        reqs = rc.wait_for(6)
        self.assertEqual(reqs[5].headers["x-workflux-event-id"], ev2["id"])
        self.assertEqual(self.wait_event_deliveries(ev2["id"], 1)[0]["status"], "delivered")
        self.assert_settled(rc, ep["id"], 6)

    def test_other_endpoints_unaffected(self):
        bad = self.receiver(default=503)
        good = self.receiver()
        ep_bad = self.endpoint(bad.url)
        ep_good = self.endpoint(good.url)
        ev = self.publish("user.message", DATA)
        ds = self.wait_event_deliveries(ev["id"], 2)
        by_ep = {d["endpoint_id"]: d["status"] for d in ds}
        self.assertEqual(by_ep, {ep_bad["id"]: "failed", ep_good["id"]: "delivered"})
        self.srv.wait_for(lambda: self.get_ep(ep_bad["id"])["status"] == "disabled",
                          what="endpoint disabled")
        self.assertEqual(self.get_ep(ep_good["id"])["status"], "enabled")
        ev2 = self.publish("user.message", DATA)
        self.assertEqual(good.wait_for(2)[1].headers["x-workflux-event-id"], ev2["id"])


if __name__ == "__main__":
    unittest.main()
