"""HTTPS deliveries: a receiver whose certificate comes from a test CA is
trusted with --ca-file (beside the system CAs), and refused with a TLS error
without it."""
import unittest

from apiutil import standard_signatures
from guide import verify_webhook_signature
from harness import Server, mkdtemp
from receiver import Receiver, TestCA

DATA = {"conversation_id": "c-1", "message_id": "m-1", "user_id": "u-1", "content": "hi"}
BASE = ["--allow-networks", "127.0.0.0/8", "--retry-schedule", "0ms,50ms"]


class DeliverTls(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.ca = TestCA(mkdtemp())

    def server(self, args):
        srv = Server(args=BASE + args, test=self)
        srv.start()
        return srv

    def receiver(self):
        rc = Receiver(tls=self.ca)
        self.addCleanup(rc.close)
        self.assertTrue(rc.url.startswith("https://127.0.0.1:"))
        return rc

    def call(self, srv, method, path, body=None, status=200):
        st, b, _ = srv.api(method, path, body)
        self.assertEqual(st, status, b)
        return b

    def deliver(self, srv, url):
        """Creates an endpoint for url, publishes one event, waits for its end."""
        ep = self.call(srv, "POST", "/v1/endpoints", {"url": url}, 201)
        ev, d = self.publish_one(srv)
        return ep, ev, d

    def publish_one(self, srv):
        """Publishes one event; waits for its delivery's end and returns both."""
        ev = self.call(srv, "POST", "/v1/events", {"event": "user.message", "data": DATA}, 202)
        box = {}

        def done():
            ds = self.call(srv, "GET", "/v1/deliveries?event_id=" + ev["id"])["data"]
            box["d"] = ds[0] if ds else None
            return ds and ds[0]["status"] in ("delivered", "failed")
        srv.wait_for(done, timeout=20, what="the delivery to end")
        return ev, self.call(srv, "GET", "/v1/deliveries/" + box["d"]["id"])

    def test_ca_file_trusted(self):
        srv = self.server(["--ca-file", self.ca.ca_file])
        rc = self.receiver()
        ep, ev, d = self.deliver(srv, rc.url)
        self.assertEqual(d["status"], "delivered", d)
        self.assertEqual(d["attempts_made"], 1)
        req = rc.wait_for(1)[0]
        self.assertEqual(req.headers["x-workflux-event-id"], ev["id"])
        self.assertTrue(verify_webhook_signature(req.body.decode(),
                                                 req.headers["x-workflux-signature"],
                                                 ep["secret"]))
        self.assertEqual(req.headers["webhook-signature"],
                         standard_signatures(ep["secret"], ev["id"],
                                             req.headers["webhook-timestamp"], req.body))
        # By name too: the certificate names localhost.
        rc2 = self.receiver()
        ep2, ev2, d2 = self.deliver(srv, rc2.url.replace("127.0.0.1", "localhost"))
        self.assertEqual(d2["status"], "delivered", d2)

    def test_connections_reused(self):
        # Deliveries one after another ride the TLS connections already open
        # (one per dispatcher thread at most), each answer read whole.
        srv = self.server(["--ca-file", self.ca.ca_file])
        rc = self.receiver()
        rc.set_responses([], default={"status": 200, "body": "thanks!"})
        self.call(srv, "POST", "/v1/endpoints", {"url": rc.url}, 201)
        for _ in range(6):
            _, d = self.publish_one(srv)
            self.assertEqual(d["status"], "delivered", d)
            self.assertEqual(d["attempts_made"], 1, d)
            self.assertEqual(d["attempts"][0]["response_body"], "thanks!", d)
        self.assertEqual(len(rc.wait_for(6)), 6)
        with rc._lock:
            conns = len(rc._socks)
        self.assertLessEqual(conns, 2)
        self.assertEqual(rc.errors, 0)

    def test_without_ca_file_tls_error(self):
        srv = self.server([])
        rc = self.receiver()
        ep, ev, d = self.deliver(srv, rc.url)
        self.assertEqual(d["status"], "failed", d)
        # A TLS failure is a transport failure: retried through the schedule.
        self.assertEqual(d["attempts_made"], 2)
        for a in d["attempts"]:
            self.assertIsNone(a["status_code"])
            self.assertEqual(a["error_class"], "tls")
            self.assertIn("tls", a["error"].lower())
            self.assertIn("certificate", a["error"].lower())
        self.assertEqual(rc.requests, [])

    def test_bad_ca_file_refuses_to_start(self):
        bad = mkdtemp() + "/not-a-ca.pem"
        with open(bad, "w") as f:
            f.write("not a certificate\n")
        srv = Server(args=BASE + ["--ca-file", bad], test=self)
        with self.assertRaises(AssertionError):
            srv.start()


if __name__ == "__main__":
    unittest.main()
