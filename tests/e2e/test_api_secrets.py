"""GET /v1/endpoints/{id}/secret and POST .../secret/rotate: reading the
secret, rotating it with a grace period during which webhook-signature carries
one signature per active secret, verified here as receivers do."""
import time
import unittest

from apiutil import ApiCase, GUIDE_SAMPLES, standard_signatures
from guide import verify_webhook_signature

RESPONSE = GUIDE_SAMPLES["agent.response"]
NEW_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


def parse_time(s):
    """RFC 3339 UTC (with or without a fraction) to Unix seconds."""
    base, _, frac = s.rstrip("Z").partition(".")
    t = time.mktime(time.strptime(base, "%Y-%m-%dT%H:%M:%S")) - time.timezone
    return t + (float("0." + frac) if frac else 0.0)


class SecretTest(ApiCase):

    def deliver_one(self, rc, n):
        """Publishes an event and returns the n-th request the receiver saw."""
        ev = self.publish("agent.response", RESPONSE)
        self.wait_event_deliveries(ev["id"], 1, ("delivered",))
        req = rc.wait_for(n)[n - 1]
        self.assertEqual(req.headers["x-workflux-event-id"], ev["id"])
        return req

    def standard(self, req):
        """The webhook-signature entries of a request and the check of each."""
        h = req.headers
        entries = h["webhook-signature"].split(" ")
        return entries, (h["webhook-id"], h["webhook-timestamp"], req.body)

    def test_read_the_secret(self):
        ep = self.endpoint("https://a.example.com/")
        got = self.call("GET", "/v1/endpoints/%s/secret" % ep["id"])
        self.assertEqual(got, {"secret": ep["secret"], "previous": None})

    def test_signatures_verify_with_the_secret(self):
        rc = self.receiver()
        ep = self.endpoint(rc.url)
        req = self.deliver_one(rc, 1)
        self.assertTrue(verify_webhook_signature(req.body.decode(),
                                                 req.headers["x-workflux-signature"],
                                                 ep["secret"]))
        self.assertFalse(verify_webhook_signature(req.body.decode() + " ",
                                                  req.headers["x-workflux-signature"],
                                                  ep["secret"]))
        entries, (mid, ts, body) = self.standard(req)
        self.assertEqual(entries, [standard_signatures(ep["secret"], mid, ts, body)])

    def test_rotation_signs_with_both_during_grace(self):
        rc = self.receiver()
        ep = self.endpoint(rc.url)
        old = ep["secret"]
        p = "/v1/endpoints/%s/secret" % ep["id"]
        before = time.time()
        rot = self.call("POST", p + "/rotate", {})
        after = time.time()
        self.assertRegex(rot["secret"], r"^whsec_")
        self.assertNotEqual(rot["secret"], old)
        self.assertEqual(rot["previous"]["secret"], old)
        expires = parse_time(rot["previous"]["expires_at"])
        self.assertGreaterEqual(expires, before + 86400 - 1)
        self.assertLessEqual(expires, after + 86400 + 1)
        self.assertEqual(self.call("GET", p), rot)
        new = rot["secret"]

        req = self.deliver_one(rc, 1)
        sig = req.headers["x-workflux-signature"]
        self.assertTrue(verify_webhook_signature(req.body.decode(), sig, new))
        self.assertFalse(verify_webhook_signature(req.body.decode(), sig, old))
        entries, (mid, ts, body) = self.standard(req)
        self.assertEqual(len(entries), 2, entries)
        self.assertIn(standard_signatures(new, mid, ts, body), entries)
        self.assertIn(standard_signatures(old, mid, ts, body), entries)

        # A second rotation without grace drops both older secrets at once.
        rot2 = self.call("POST", p + "/rotate", {"grace_seconds": 0, "secret": NEW_SECRET})
        self.assertEqual(rot2, {"secret": NEW_SECRET, "previous": None})
        req = self.deliver_one(rc, 2)
        self.assertTrue(verify_webhook_signature(req.body.decode(),
                                                 req.headers["x-workflux-signature"],
                                                 NEW_SECRET))
        entries, (mid, ts, body) = self.standard(req)
        self.assertEqual(entries, [standard_signatures(NEW_SECRET, mid, ts, body)])

    def test_old_secret_stops_signing_when_the_grace_ends(self):
        rc = self.receiver()
        ep = self.endpoint(rc.url)
        p = "/v1/endpoints/%s/secret" % ep["id"]
        rot = self.call("POST", p + "/rotate", {"grace_seconds": 1})
        self.assertEqual(rot["previous"]["secret"], ep["secret"])
        expires = parse_time(rot["previous"]["expires_at"])
        # Not a timed assertion: wait until the grace period is over, then look.
        while time.time() <= expires + 0.05:
            time.sleep(0.05)
        self.assertEqual(self.call("GET", p), {"secret": rot["secret"], "previous": None})
        req = self.deliver_one(rc, 1)
        entries, (mid, ts, body) = self.standard(req)
        self.assertEqual(entries, [standard_signatures(rot["secret"], mid, ts, body)])

    def test_rotation_with_a_short_grace(self):
        ep = self.endpoint("https://a.example.com/")
        p = "/v1/endpoints/%s/secret" % ep["id"]
        rot = self.call("POST", p + "/rotate", {"grace_seconds": 60})
        self.assertEqual(rot["previous"]["secret"], ep["secret"])
        self.assertLess(parse_time(rot["previous"]["expires_at"]), time.time() + 62)

    def test_rotation_validation(self):
        ep = self.endpoint("https://a.example.com/", secret=NEW_SECRET)
        p = "/v1/endpoints/%s/secret/rotate" % ep["id"]
        for bad in (-1, 7 * 86400 + 1, "60", 1.5):
            err = self.error("POST", p, {"grace_seconds": bad}, 422)
            self.assertEqual(self.paths(err), ["grace_seconds"], bad)
        for bad in ("whsec_x", "plain", 7, NEW_SECRET):
            err = self.error("POST", p, {"secret": bad}, 422)
            self.assertEqual(self.paths(err), ["secret"], bad)
        self.call("POST", p, {"grace_seconds": 7 * 86400})
        self.error("POST", "/v1/endpoints/ep_nope/secret/rotate", {}, 404)
        self.error("GET", "/v1/endpoints/ep_nope/secret", status=404)


if __name__ == "__main__":
    unittest.main()
