"""Hand-off: on SQLite, a delivery published on this process goes to its own
dispatcher leased at insert, without a claim. What a user sees must not change:
it arrives signed with the endpoint's secret and the event's headers, the API
shows one attempt delivered, and a kill -9 after the publish loses nothing (the
delivery is claimed again once its lease runs out). On PostgreSQL every
delivery takes the claim path, and the same holds. An enable hands the endpoint's
held deliveries over the same way (SQLite). (Rotated secrets on handed-off
deliveries: test_api_secrets.py.)"""
import time
import unittest

from apiutil import ApiCase, metric, standard_signatures
from guide import verify_webhook_signature
from harness import STORE, Server
from receiver import Receiver

DATA = {"conversation_id": "c-1", "message_id": "m-1", "user_id": "u-1", "content": "hi"}
SERVE_ARGS = ["--allow-http", "--allow-networks", "127.0.0.0/8"]


class DeliverHandoff(ApiCase):

    serve_args = SERVE_ARGS

    def test_handed_off_delivery_signed_and_recorded(self):
        rc = self.receiver()
        ep = self.endpoint(rc.url)
        t0 = int(time.time())
        evs = [self.publish("user.message", DATA) for _ in range(5)]
        reqs = rc.wait_for(5, timeout=20)
        t1 = int(time.time()) + 1
        handed = metric(self.srv, "fluxhook_handoffs_total")
        if STORE == "sqlite":
            # An idle endpoint far under its cap: every one went without a claim.
            self.assertEqual(handed, 5)
        else:
            self.assertEqual(handed, 0)
        by_event = {r.headers["x-workflux-event-id"]: r for r in reqs}
        self.assertEqual(set(by_event), {ev["id"] for ev in evs})
        for ev in evs:
            req = by_event[ev["id"]]
            h = req.headers
            ds = self.deliveries(event_id=ev["id"])
            self.assertEqual(len(ds), 1)
            self.assertEqual(h["x-workflux-delivery"], ds[0]["id"])
            self.assertEqual(h["webhook-id"], ev["id"])
            self.assertEqual(h["x-workflux-event"], "user.message")
            self.assertTrue(t0 <= int(h["webhook-timestamp"]) <= t1)
            self.assertTrue(verify_webhook_signature(req.body.decode("utf-8"),
                                                     h["x-workflux-signature"], ep["secret"]))
            self.assertEqual(h["webhook-signature"],
                             standard_signatures(ep["secret"], ev["id"],
                                                 h["webhook-timestamp"], req.body))
            self.assertEqual(self.call("GET", "/v1/events/" + ev["id"])["data"], DATA)
            # Attempt 1, delivered, recorded under the lease of the hand-off.
            d = self.wait_status(ds[0]["id"], ("delivered",))
            self.assertEqual(d["attempts_made"], 1)
            self.assertEqual([(a["n"], a["status_code"]) for a in d["attempts"]], [(1, 200)])
        self.assertEqual(len(rc.requests), 5)

    def test_enable_hands_held_over(self):
        # More than the store's lease cap of one endpoint (4 x 64): the enable
        # waits for results to make room, and every one arrives once.
        n = 300
        rc = self.receiver()
        ep = self.endpoint(rc.url, enabled=False)
        evs = []
        for _ in range(n // 100):
            b = self.call("POST", "/v1/events/batch",
                          {"events": [{"event": "user.message", "data": DATA}] * 100})
            evs += [r["id"] for r in b["results"]]
        self.assertEqual(self.call("GET", "/v1/endpoints/" + ep["id"])["held"], n)
        before = metric(self.srv, "fluxhook_handoffs_total")
        got = self.call("POST", "/v1/endpoints/%s/enable" % ep["id"], {})
        self.assertEqual(got["resumed"], n)
        self.assertEqual(got["held"], 0)
        reqs = rc.wait_for(n, timeout=60)
        self.assert_settled(rc, ep["id"], n, timeout=60)
        handed = metric(self.srv, "fluxhook_handoffs_total") - before
        # SQLite: every one handed over by the enable, none left for a claim.
        self.assertEqual(handed, n if STORE == "sqlite" else 0)
        self.assertEqual(sorted(r.headers["webhook-id"] for r in reqs), sorted(evs))
        for req in reqs[:5]:
            self.assertTrue(verify_webhook_signature(req.body.decode("utf-8"),
                                                     req.headers["x-workflux-signature"],
                                                     ep["secret"]))
        ds = self.deliveries(endpoint_id=ep["id"], limit=500)
        self.assertEqual(len(ds), n)
        self.assertTrue(all(d["status"] == "delivered" and d["attempts_made"] == 1 for d in ds))


class DeliverHandoffCrash(unittest.TestCase):

    def test_kill9_after_publish_delivered_after_lease(self):
        # The first attempt hangs at the receiver, so the process dies holding it.
        rc = Receiver(responses=[{"hang": True}], default=200)
        self.addCleanup(rc.close)
        srv = Server(args=SERVE_ARGS + ["--attempt-timeout", "1s", "--lease", "3s",
                                        "--retry-schedule", "0ms,100ms,200ms"], test=self)
        srv.start()
        st, ep, _ = srv.api("POST", "/v1/endpoints", {"url": rc.url})
        self.assertEqual(st, 201, ep)
        st, ev, _ = srv.api("POST", "/v1/events", {"event": "user.message", "data": DATA})
        self.assertEqual(st, 202, ev)
        first = rc.wait_for(1, timeout=20)[0]
        if STORE == "sqlite":
            self.assertEqual(metric(srv, "fluxhook_handoffs_total"), 1)
        srv.kill9()
        killed = time.monotonic()
        srv.start()
        st, page, _ = srv.api("GET", "/v1/deliveries?event_id=" + ev["id"])
        self.assertEqual(st, 200, page)
        dlv_id = page["data"][0]["id"]
        again = rc.wait_for(2, timeout=30)[1]
        # Not before the lease of the first attempt ran out (3 s from the publish).
        self.assertGreater(time.monotonic() - killed, 1.0)
        self.assertEqual(again.headers["webhook-id"], first.headers["webhook-id"])
        self.assertEqual(again.headers["x-workflux-delivery"], dlv_id)
        self.assertEqual(again.body, first.body)

        def delivered():
            st2, d, _ = srv.api("GET", "/v1/deliveries/" + dlv_id)
            return st2 == 200 and d["status"] == "delivered"
        srv.wait_for(delivered, timeout=20, what="the delivery delivered after the restart")
        st, d, _ = srv.api("GET", "/v1/deliveries/" + dlv_id)
        # The attempt of the killed process was never recorded: the one after is attempt 1.
        self.assertEqual([(a["n"], a["status_code"]) for a in d["attempts"]], [(1, 200)])
        self.assertEqual(len(rc.requests), 2)
        self.assertEqual(srv.stop(), 0)


if __name__ == "__main__":
    unittest.main()
