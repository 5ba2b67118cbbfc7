"""Bad neighbours: an endpoint whose receiver holds every request, and one that
answers 500, beside a healthy endpoint. Their deliveries wait for them without
making the dispatcher ask the store for claims that can only come back empty
(fluxhook_claims_total{found="none"} in /metrics): publishes to an endpoint
whose requests here are all under way leave its deliveries due without waking
a claim (SQLite: the hand-off says it is full, counted in
fluxhook_handoffs_declined_total{why="hanging"}), and a result retried a minute
later wakes none. Once the held requests end (their attempt timeout), what waited is
delivered without another publish to wake the dispatcher, and the healthy
endpoint gets every delivery meanwhile."""
import time
import unittest

from apiutil import ApiCase, metric
from harness import STORE

PER_ENDPOINT_CAP = 64  # the dispatcher's default in-flight cap of one endpoint
THREADS = 2            # the dispatcher's default loops
HANG_S = 1.0           # no request of a full endpoint ended for this long: it hangs
WAITING = 150          # published to the full endpoint, one request each
ERR = {"integration_id": "i-1", "integration_type": "crm", "error_code": "E1",
       "error_message": "boom"}
MSG = {"conversation_id": "c-1", "message_id": "m-1", "user_id": "u-1", "content": "hi"}


def empty_claims(srv):
    return metric(srv, 'fluxhook_claims_total{found="none"}')


def declined(srv, why):
    return metric(srv, 'fluxhook_handoffs_declined_total{why="%s"}' % why)


class DeliverNeighbours(ApiCase):

    # Held requests end after 4 s; failed attempts are tried again a minute later.
    serve_args = ["--allow-http", "--allow-networks", "127.0.0.0/8", "--attempt-timeout", "4s"]

    def arrived(self, rc, ids):
        return ids <= {r.headers["x-workflux-event-id"] for r in rc.requests}

    def assert_few_empty_claims(self, before, t0):
        """Each loop looks again shortly, then less often (50 ms doubling to its
        1 s poll) while nothing comes of it: about 6 + 1 per second per loop,
        never one per publish or per result (SQLite; PostgreSQL claims for
        every publish, having no hand-off)."""
        if STORE != "sqlite":
            return
        took = time.monotonic() - t0
        got = empty_claims(self.srv) - before
        bound = THREADS * (8 + took)
        self.assertLessEqual(got, bound, "%d empty claims in %.1f s" % (got, took))

    def test_full_endpoint_waits_without_claims(self):
        hang = self.receiver(responses=[{"hang": True}] * PER_ENDPOINT_CAP)
        healthy = self.receiver()
        self.endpoint(hang.url, event_types=["integration.error"])
        self.endpoint(healthy.url, event_types=["user.message"])
        for _ in range(PER_ENDPOINT_CAP):
            self.publish("integration.error", ERR)
        hang.wait_for(PER_ENDPOINT_CAP)

        before, t0 = empty_claims(self.srv), time.monotonic()
        hanging0 = declined(self.srv, "hanging")
        waiting, ok = set(), set()
        for i in range(WAITING):
            waiting.add(self.publish("integration.error", ERR)["id"])
            if i % 10 == 0:
                ok.add(self.publish("user.message", MSG)["id"])
        self.srv.wait_for(lambda: self.arrived(healthy, ok), timeout=30,
                          what="the healthy endpoint's deliveries", interval=0.05)
        self.assert_few_empty_claims(before, t0)
        if STORE == "sqlite":
            # None of its requests ever ended: each publish to it was declined as
            # hanging (not as busy), and counted (again if its job ran again).
            self.assertGreaterEqual(declined(self.srv, "hanging") - hanging0, WAITING)

        # Its held requests time out (and are retried a minute later): what waited
        # goes out with no publish to wake the dispatcher.
        self.srv.wait_for(lambda: self.arrived(hang, waiting), timeout=60,
                          what="the deliveries that waited for the full endpoint",
                          interval=0.1)
        self.assertEqual(self.srv.stop(), 0)

    def test_results_retried_later_wake_no_claims(self):
        failing = self.receiver(default=500)
        healthy = self.receiver()
        self.endpoint(failing.url, event_types=["integration.error"])
        self.endpoint(healthy.url, event_types=["user.message"])
        before, t0 = empty_claims(self.srv), time.monotonic()
        ok = set()
        for _ in range(WAITING):
            self.publish("integration.error", ERR)
            ok.add(self.publish("user.message", MSG)["id"])
        failing.wait_for(WAITING, timeout=30)
        self.srv.wait_for(lambda: self.arrived(healthy, ok), timeout=30,
                          what="the healthy endpoint's deliveries", interval=0.05)

        def retried():
            return len(self.deliveries(status="pending", limit=200)) == WAITING
        self.srv.wait_for(retried, timeout=30, what="the failed attempts recorded as retries")
        self.assert_few_empty_claims(before, t0)
        self.assertEqual(self.srv.stop(), 0)

    def test_enable_beside_hanging_receiver(self):
        # Every request of the endpoint hangs, and has for over a second (the
        # dispatcher's sign of a receiver that hangs): an enable then hands
        # nothing over, the call still answers, and what it resumed goes out
        # once the held requests end, with no publish to wake the dispatcher.
        hang = self.receiver(responses=[{"hang": True}] * PER_ENDPOINT_CAP)
        ep = self.endpoint(hang.url, event_types=["integration.error"])
        first = {self.publish("integration.error", ERR)["id"] for _ in range(PER_ENDPOINT_CAP)}
        hang.wait_for(PER_ENDPOINT_CAP)
        hung_at = time.monotonic()
        self.call("POST", "/v1/endpoints/%s/disable" % ep["id"], {})
        held = {self.publish("integration.error", ERR)["id"] for _ in range(36)}
        time.sleep(max(0.0, HANG_S + 0.2 - (time.monotonic() - hung_at)))
        got = self.call("POST", "/v1/endpoints/%s/enable" % ep["id"], {})
        self.assertEqual((got["resumed"], got["held"]), (len(held), 0))
        self.srv.wait_for(lambda: self.arrived(hang, first | held), timeout=60,
                          what="the resumed deliveries after the hung requests", interval=0.1)
        self.assertEqual(self.srv.stop(), 0)

if __name__ == "__main__":
    unittest.main()
