"""POST /v1/endpoints/{id}/replay: deliver again every delivery of an endpoint
created in a time window, optionally only the failed or delivered ones."""
import time
import unittest

from apiutil import ApiCase, GUIDE_SAMPLES, rfc3339

RESPONSE = GUIDE_SAMPLES["agent.response"]


class ReplayTest(ApiCase):

    def publish_n(self, n):
        ids = [self.publish("agent.response", RESPONSE)["id"] for _ in range(n)]
        for i in ids:
            self.wait_event_deliveries(i, 1)
        return ids

    def pause(self):
        """Lets the clock pass a millisecond boundary on both sides of a cut."""
        time.sleep(0.01)

    def wait_attempts(self, event_id, n, status):
        """Waits until the event's one delivery has n attempts and status."""
        def done():
            d = self.deliveries(event_id=event_id)[0]
            return d["attempts_made"] == n and d["status"] == status
        self.srv.wait_for(done, what="%s: %d attempts, %s" % (event_id, n, status))

    def test_replays_the_failed_ones_since_a_time(self):
        rc = self.receiver(default=400)
        ep = self.endpoint(rc.url)
        p = "/v1/endpoints/%s/replay" % ep["id"]
        early = self.publish_n(2)          # failed, before `since`
        self.pause()
        since = rfc3339(time.time())
        self.pause()
        failed = self.publish_n(3)         # failed, inside the window
        rc.set_responses([200, 200])
        delivered = self.publish_n(2)      # delivered, inside the window
        for e in delivered:
            self.assertEqual(self.deliveries(event_id=e)[0]["status"], "delivered")
        self.assertEqual(len(rc.requests), 7)

        st, b, _ = self.srv.api("POST", p, {"since": since, "status": "failed"})
        self.assertEqual(st, 202, b)
        self.assertEqual(b, {"replayed": 3})
        got = rc.wait_for(10)[7:]
        self.assertEqual(sorted(r.headers["x-workflux-event-id"] for r in got), sorted(failed))
        for e in failed:
            self.wait_attempts(e, 2, "failed")
        for e in early + delivered:
            self.assertEqual(self.deliveries(event_id=e)[0]["attempts_made"], 1)
        # Without status both kinds are replayed: 3 failed + 2 delivered.
        b = self.call("POST", p, {"since": since}, 202)
        self.assertEqual(b, {"replayed": 5})
        got = rc.wait_for(15)[10:]
        self.assertEqual(sorted(r.headers["x-workflux-event-id"] for r in got),
                         sorted(failed + delivered))
        for e in early:
            self.assertEqual(self.deliveries(event_id=e)[0]["attempts_made"], 1)

    def test_until_bounds_the_window(self):
        rc = self.receiver()
        ep = self.endpoint(rc.url)
        p = "/v1/endpoints/%s/replay" % ep["id"]
        since = rfc3339(time.time() - 1)
        first = self.publish_n(2)
        self.pause()
        until = rfc3339(time.time())
        self.pause()
        self.publish_n(3)
        b = self.call("POST", p, {"since": since, "until": until, "status": "delivered"}, 202)
        self.assertEqual(b, {"replayed": 2})
        got = rc.wait_for(7)[5:]
        self.assertEqual(sorted(r.headers["x-workflux-event-id"] for r in got), sorted(first))
        b = self.call("POST", p, {"since": since, "status": "failed"}, 202)
        self.assertEqual(b, {"replayed": 0})
        future = rfc3339(time.time() + 3600)
        self.assertEqual(self.call("POST", p, {"since": future}, 202), {"replayed": 0})

    def test_replay_of_a_disabled_endpoint_holds(self):
        rc = self.receiver()
        ep = self.endpoint(rc.url)
        since = rfc3339(time.time() - 1)
        ids = self.publish_n(2)
        self.call("POST", "/v1/endpoints/%s/disable" % ep["id"], {})
        b = self.call("POST", "/v1/endpoints/%s/replay" % ep["id"], {"since": since}, 202)
        self.assertEqual(b["replayed"], 2)
        for e in ids:
            self.assertEqual(self.deliveries(event_id=e)[0]["status"], "held")
        self.assertEqual(len(rc.requests), 2)

    def test_dry_run_counts_and_changes_nothing(self):
        rc = self.receiver(default=400)
        ep = self.endpoint(rc.url)
        other = self.endpoint(rc.url)
        p = "/v1/endpoints/%s/replay" % ep["id"]
        since = rfc3339(time.time() - 1)
        events = [self.publish("agent.response", RESPONSE)["id"] for _ in range(12)]
        for e in events:                   # failed, at both endpoints
            self.wait_event_deliveries(e, 2)
        mine = sorted(self.deliveries(event_id=e, endpoint_id=ep["id"])[0]["id"] for e in events)
        rc.wait_for(24)
        b = self.call("POST", p, {"since": since, "status": "failed", "dry_run": True}, 200)
        # Counted exactly (more than the ids it lists), the first ten ids oldest first.
        self.assertEqual(b, {"dry_run": True, "would_replay": 12, "ids": mine[:10]})
        self.assertEqual(self.call("POST", p, {"since": since, "status": "delivered",
                                               "dry_run": True}, 200)["would_replay"], 0)
        self.assertEqual(self.call("POST", p, {"since": since, "until": rfc3339(time.time() + 60),
                                               "dry_run": True}, 200)["would_replay"], 12)
        # Nothing changed: still failed after one attempt, and no audit entry.
        for d in self.deliveries(endpoint_id=ep["id"]):
            self.assertEqual((d["status"], d["attempts_made"]), ("failed", 1))
        audit = self.call("GET", "/v1/audit-log?action=endpoint.replayed")["data"]
        self.assertEqual(audit, [])
        # false is a replay; what it replays is what the dry run counted.
        rc.set_responses([], default=200)
        b = self.call("POST", p, {"since": since, "status": "failed", "dry_run": False}, 202)
        self.assertEqual(b, {"replayed": 12})
        got = rc.wait_for(36)[24:]
        self.assertEqual(sorted(r.headers["x-workflux-event-id"] for r in got), sorted(events))
        # The other endpoint's deliveries were neither counted nor replayed.
        for d in self.deliveries(endpoint_id=other["id"]):
            self.assertEqual(d["attempts_made"], 1)
        err = self.error("POST", p, {"since": since, "dry_run": "yes"}, 422)
        self.assertEqual(self.paths(err), ["dry_run"])
        self.error("POST", "/v1/endpoints/ep_nope/replay",
                   {"since": since, "dry_run": True}, 404)

    def test_validation(self):
        ep = self.endpoint("https://a.example.com/")
        p = "/v1/endpoints/%s/replay" % ep["id"]
        err = self.error("POST", p, {}, 422)
        self.assertEqual(self.paths(err), ["since"])
        err = self.error("POST", p, {"since": "yesterday"}, 422)
        self.assertEqual(self.paths(err), ["since"])
        err = self.error("POST", p, {"since": "2024-01-02T00:00:00Z",
                                     "until": "2024-01-01T00:00:00Z"}, 422)
        self.assertEqual(self.paths(err), ["until"])
        err = self.error("POST", p, {"since": "2024-01-01T00:00:00Z", "status": "pending"}, 422)
        self.assertEqual(self.paths(err), ["status"])
        err = self.error("POST", p, {"since": 5, "until": "x", "status": 1}, 422)
        self.assertEqual(sorted(self.paths(err)), ["since", "status", "until"])
        self.error("POST", "/v1/endpoints/ep_nope/replay", {"since": "2024-01-01T00:00:00Z"},
                   404)


if __name__ == "__main__":
    unittest.main()
