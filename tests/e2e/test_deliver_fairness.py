"""No endpoint starves another: an endpoint whose receiver never answers, with
more deliveries queued than the dispatcher's global in-flight cap, beside
healthy endpoints that still get every delivery."""
import http.client
import json
import unittest

from harness import Server
from receiver import Receiver

HANGING_EVENTS = 2100  # more than the global in-flight cap (2048)
PER_ENDPOINT_CAP = 64  # the dispatcher's default in-flight cap of one endpoint
HEALTHY = 5
HEALTHY_EVENTS = 40
MSG = {"conversation_id": "c-1", "message_id": "m-1", "user_id": "u-1", "content": "hi"}
ERR = {"integration_id": "i-1", "integration_type": "crm", "error_code": "E1",
       "error_message": "boom"}


class DeliverFairness(unittest.TestCase):

    def publish_many(self, srv, event, data, n):
        conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=30)
        body = json.dumps({"event": event, "data": data})
        hdrs = {"Authorization": "Bearer " + srv.root_key, "Content-Type": "application/json"}
        ids = []
        try:
            for _ in range(n):
                conn.request("POST", "/v1/events", body=body, headers=hdrs)
                r = conn.getresponse()
                payload = r.read()
                self.assertEqual(r.status, 202, payload)
                ids.append(json.loads(payload)["id"])
        finally:
            conn.close()
        return ids

    def test_hanging_endpoint_does_not_starve_others(self):
        srv = Server(args=["--allow-http", "--allow-networks", "127.0.0.0/8",
                           "--attempt-timeout", "120s", "--lease", "300s"], test=self)
        hang = Receiver(default={"hang": True})
        healthy = [Receiver() for _ in range(HEALTHY)]
        # Receivers close after the server stopped (cleanups run last-in first-out).
        for rc in [hang] + healthy:
            self.addCleanup(rc.close)
        srv.start()
        st, b, _ = srv.api("POST", "/v1/endpoints",
                           {"url": hang.url, "event_types": ["integration.error"]})
        self.assertEqual(st, 201, b)
        for rc in healthy:
            st, b, _ = srv.api("POST", "/v1/endpoints",
                               {"url": rc.url, "event_types": ["user.message"]})
            self.assertEqual(st, 201, b)

        # The hanging endpoint's backlog is queued first, so it is due first.
        self.publish_many(srv, "integration.error", ERR, HANGING_EVENTS)
        hang.wait_for(1)
        ids = set(self.publish_many(srv, "user.message", MSG, HEALTHY_EVENTS))

        # Every healthy delivery completes, although no hanging attempt ever ends
        # (they would hold their connections for the whole 120 s attempt timeout).
        for rc in healthy:
            def arrived(rc=rc):
                return ids <= {r.headers["x-workflux-event-id"] for r in rc.requests}
            srv.wait_for(arrived, timeout=60, what="healthy deliveries at %s" % rc.url,
                         interval=0.1)

        def all_delivered():
            st, b, _ = srv.api("GET", "/v1/deliveries?status=delivered&limit=500")
            return len(b["data"]) >= HEALTHY * HEALTHY_EVENTS
        srv.wait_for(all_delivered, timeout=30, what="healthy deliveries recorded")
        # The hanging endpoint holds only its share of the dispatcher: its in-flight cap.
        self.assertLessEqual(len(hang.requests), PER_ENDPOINT_CAP)
        st, metrics, _ = srv.api("GET", "/metrics", key=False)
        gauge = [l for l in metrics.splitlines() if l.startswith("fluxhook_in_flight ")]
        self.assertEqual(len(gauge), 1, metrics)
        self.assertEqual(int(gauge[0].split()[1]), len(hang.requests))
        # A clean stop gives the hung ones back to the store.
        self.assertEqual(srv.stop(), 0)
        self.assertIn("dispatch: released", srv.log_text())

    def test_claims_beyond_the_cap_wait_their_turn(self):
        """The store caps an endpoint's leases at four times its request cap, so
        one claim can take more of a hanging endpoint's held backlog than the
        cap: those wait here, leased, and never open more than the cap."""
        srv = Server(args=["--allow-http", "--allow-networks", "127.0.0.0/8",
                           "--attempt-timeout", "120s", "--lease", "300s"], test=self)
        hang = Receiver(default={"hang": True})
        healthy = Receiver()
        for rc in (hang, healthy):
            self.addCleanup(rc.close)
        srv.start()
        st, ep, _ = srv.api("POST", "/v1/endpoints",
                            {"url": hang.url, "enabled": False,
                             "event_types": ["integration.error"]})
        self.assertEqual(st, 201, ep)
        st, b, _ = srv.api("POST", "/v1/endpoints",
                           {"url": healthy.url, "event_types": ["user.message"]})
        self.assertEqual(st, 201, b)
        self.publish_many(srv, "integration.error", ERR, 4 * PER_ENDPOINT_CAP)
        st, b, _ = srv.api("POST", "/v1/endpoints/%s/enable" % ep["id"], {})
        self.assertEqual(st, 200, b)

        seen = []

        def leased():
            st, b, _ = srv.api("GET", "/v1/deliveries?endpoint_id=%s&status=delivering&limit=500"
                               % ep["id"])
            seen.append(len(b["data"]))
            return len(b["data"]) > PER_ENDPOINT_CAP
        # Claims have leased more than the cap (the rest wait here) ...
        try:
            srv.wait_for(leased, timeout=30, interval=0.1, what="claims past the request cap")
        except AssertionError as e:
            raise AssertionError("leased counts seen last: %s\n%s" % (seen[-5:], e)) from None
        hang.wait_for(PER_ENDPOINT_CAP)
        # ... and once deliveries published after them have gone through the
        # same loops, a claim started at once would have reached the receiver.
        ids = set(self.publish_many(srv, "user.message", MSG, HEALTHY_EVENTS))
        srv.wait_for(lambda: ids <= {r.headers["x-workflux-event-id"] for r in healthy.requests},
                     timeout=60, what="healthy deliveries", interval=0.1)
        self.assertEqual(len(hang.requests), PER_ENDPOINT_CAP)
        self.assertEqual(srv.stop(), 0)


if __name__ == "__main__":
    unittest.main()
