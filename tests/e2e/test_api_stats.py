"""GET /v1/endpoints/{id}/stats, GET /v1/stats and GET /v1/stats/series:
counts by status, success rate and latency after known outcomes, and the
shape of the dashboard's series."""
import time
import unittest

from apiutil import ApiCase, GUIDE_SAMPLES, rfc3339

RESPONSE = GUIDE_SAMPLES["agent.response"]
STATUSES = {"pending", "delivering", "delivered", "failed", "held"}


class StatsTest(ApiCase):

    def known_outcomes(self):
        """On one endpoint: 3 delivered (one after a 503), 1 failed (400):
        5 attempts of which 3 answered 2xx. Plus one held delivery elsewhere."""
        rc = self.receiver([200, 200, 400, 503, 200])
        ep = self.endpoint(rc.url, event_types=["agent.response"])
        ids = []
        for _ in range(4):
            ev = self.publish("agent.response", RESPONSE)
            self.wait_event_deliveries(ev["id"], 1)
            ids.append(ev["id"])
        statuses = [self.deliveries(event_id=e)[0]["status"] for e in ids]
        self.assertEqual(statuses, ["delivered", "delivered", "failed", "delivered"])
        off = self.endpoint("https://a.example.com/", enabled=False,
                            event_types=["user.message"])
        self.publish("user.message", {"conversation_id": "c", "message_id": "m",
                                      "user_id": "u", "content": "hi"})
        return ep, off

    def check_window(self, w, delivered, failed, held, attempts, ok):
        counts = w["counts"]
        self.assertEqual(set(counts), STATUSES)
        self.assertEqual(counts["delivered"], delivered)
        self.assertEqual(counts["failed"], failed)
        self.assertEqual(counts["held"], held)
        self.assertEqual(counts["pending"] + counts["delivering"], 0)
        self.assertEqual(w["attempts"], attempts)
        self.assertEqual(w["attempts_ok"], ok)
        # One unit with the counts: the share of ended deliveries that were delivered.
        if delivered + failed == 0:
            self.assertIsNone(w["success_rate"])
        else:
            self.assertAlmostEqual(w["success_rate"], delivered / (delivered + failed), places=6)
        if attempts == 0:
            self.assertIsNone(w["latency_ms"])
            return
        lat = w["latency_ms"]
        self.assertEqual(set(lat), {"p50", "p95", "p99"})
        self.assertTrue(0 <= lat["p50"] <= lat["p95"] <= lat["p99"], lat)

    def test_empty_endpoint(self):
        ep = self.endpoint("https://a.example.com/")
        s = self.call("GET", "/v1/endpoints/%s/stats" % ep["id"])
        self.assertEqual(set(s), {"hour", "day"})
        for w in ("hour", "day"):
            self.check_window(s[w], 0, 0, 0, 0, 0)
        self.check_window(self.call("GET", "/v1/stats")["hour"], 0, 0, 0, 0, 0)

    def test_counts_after_known_outcomes(self):
        ep, off = self.known_outcomes()
        s = self.call("GET", "/v1/endpoints/%s/stats" % ep["id"])
        for w in ("hour", "day"):
            self.check_window(s[w], 3, 1, 0, 5, 3)
        s = self.call("GET", "/v1/endpoints/%s/stats" % off["id"])
        self.check_window(s["hour"], 0, 0, 1, 0, 0)
        s = self.call("GET", "/v1/stats")
        for w in ("hour", "day"):
            self.check_window(s[w], 3, 1, 1, 5, 3)
        # Another account sees none of it.
        _, key = self.new_account()
        s = self.call("GET", "/v1/stats", key=key)
        self.check_window(s["day"], 0, 0, 0, 0, 0)
        self.error("GET", "/v1/endpoints/%s/stats" % ep["id"], status=404, key=key)
        self.error("GET", "/v1/endpoints/ep_nope/stats", status=404)

    def check_series(self, s, window, bucket_s, n):
        self.assertEqual(s["window"], window)
        self.assertEqual(s["bucket_seconds"], bucket_s)
        self.assertEqual(len(s["data"]), n)
        starts = [b["start"] for b in s["data"]]
        self.assertEqual(starts, sorted(starts))
        for b in s["data"]:
            self.assertEqual(set(b) >= {"start", "delivered", "failed", "retried", "p50_ms",
                                        "p95_ms"}, True, b)
        return {k: sum(b[k] for b in s["data"]) for k in ("delivered", "failed", "retried")}

    def test_series(self):
        ep, off = self.known_outcomes()
        s = self.call("GET", "/v1/stats/series?window=1h&endpoint_id=" + ep["id"])
        sums = self.check_series(s, "1h", 60, 60)
        self.assertEqual(sums, {"delivered": 3, "failed": 1, "retried": 1})
        busy = [b for b in s["data"] if b["delivered"]]
        self.assertTrue(busy)
        for b in busy:
            self.assertIsInstance(b["p50_ms"], int)
            self.assertLessEqual(b["p50_ms"], b["p95_ms"])
        quiet = [b for b in s["data"] if not (b["delivered"] or b["failed"] or b["retried"])]
        for b in quiet:
            self.assertIsNone(b["p50_ms"])
        # The buckets are a minute apart and the last one holds now.
        self.assertLessEqual(s["data"][-1]["start"], rfc3339(time.time()))
        s = self.call("GET", "/v1/stats/series?window=24h")
        sums = self.check_series(s, "24h", s["bucket_seconds"], 86400 // s["bucket_seconds"])
        self.assertIn(s["bucket_seconds"], (1800, 3600))
        self.assertEqual(sums, {"delivered": 3, "failed": 1, "retried": 1})
        s = self.call("GET", "/v1/stats/series")  # 1h by default
        self.check_series(s, "1h", 60, 60)
        s = self.call("GET", "/v1/stats/series?endpoint_id=" + off["id"])
        self.assertEqual(self.check_series(s, "1h", 60, 60),
                         {"delivered": 0, "failed": 0, "retried": 0})

    def test_series_errors(self):
        err = self.error("GET", "/v1/stats/series?window=2h", status=400)
        self.assertIn("24h", err["message"])
        self.error("GET", "/v1/stats/series?endpoint_id=ep_01JE0000000000000000000000",
                   status=404)
        self.error("GET", "/v1/stats/series?endpoint_id=garbage", status=404)


if __name__ == "__main__":
    unittest.main()
