"""The address rules: http:// only with --allow-http; targets that resolve to
loopback (or another private range) fail at once as "blocked" unless inside
--allow-networks, whatever name or form the URL uses."""
import unittest

from harness import Server
from receiver import Receiver

DATA = {"conversation_id": "c-1", "message_id": "m-1", "user_id": "u-1", "content": "hi"}


class DeliverAddressRules(unittest.TestCase):

    def server(self, args):
        srv = Server(args=["--retry-schedule", "0ms,50ms,50ms"] + args, test=self)
        srv.start()
        return srv

    def receiver(self):
        rc = Receiver()
        self.addCleanup(rc.close)
        return rc

    def call(self, srv, method, path, body=None, status=200):
        st, b, _ = srv.api(method, path, body)
        self.assertEqual(st, status, b)
        return b

    def deliver(self, srv, url):
        """One endpoint for url alone, one event; returns (endpoint, delivery with attempts)."""
        for old in self.call(srv, "GET", "/v1/endpoints")["data"]:
            self.call(srv, "DELETE", "/v1/endpoints/" + old["id"], status=204)
        ep = self.call(srv, "POST", "/v1/endpoints", {"url": url}, 201)
        ev = self.call(srv, "POST", "/v1/events", {"event": "user.message", "data": DATA}, 202)
        box = {}

        def done():
            ds = self.call(srv, "GET", "/v1/deliveries?event_id=" + ev["id"])["data"]
            box["d"] = ds[0] if ds else None
            return ds and ds[0]["status"] in ("delivered", "failed")
        srv.wait_for(done, timeout=20, what="the delivery to end")
        return ep, self.call(srv, "GET", "/v1/deliveries/" + box["d"]["id"])

    def test_http_refused_without_allow_http(self):
        srv = self.server([])
        rc = self.receiver()
        st, b, _ = srv.api("POST", "/v1/endpoints", {"url": rc.url})
        self.assertIn(st, (400, 422), b)
        self.assertIn("https", b["error"]["message"])
        st, b, _ = srv.api("POST", "/v1/endpoints", {"url": "https://example.com/hook"})
        self.assertEqual(st, 201, b)

    def test_loopback_blocked_without_allow_networks(self):
        srv = self.server(["--allow-http"])
        rc = self.receiver()
        port = rc.port
        cases = [
            ("http://127.0.0.1:%d/hook" % port, "127.0.0.1", "loopback"),
            ("http://localhost:%d/hook" % port, "", "loopback"),  # after DNS
            ("http://[::1]:%d/hook" % port, "::1", "loopback"),
            ("http://[::ffff:127.0.0.1]:%d/hook" % port, "::ffff:127.0.0.1", "loopback"),
            ("http://127.1.2.3:%d/hook" % port, "127.1.2.3", "loopback"),
            ("http://10.1.2.3:%d/hook" % port, "10.1.2.3", "private network"),
            ("http://169.254.169.254:%d/hook" % port, "169.254.169.254", "link-local"),
            ("http://0.0.0.0:%d/hook" % port, "0.0.0.0", "unspecified"),
        ]
        for url, addr, why in cases:
            with self.subTest(url=url):
                ep, d = self.deliver(srv, url)
                self.assertEqual(d["status"], "failed", d)
                self.assertEqual(d["attempts_made"], 1)  # never retried
                a = d["attempts"][0]
                self.assertIsNone(a["status_code"])
                self.assertEqual(a["error_class"], "blocked")
                self.assertIn("is blocked (%s" % why, a["error"])
                self.assertIn("--allow-networks", a["error"])
                if addr:
                    self.assertIn("address %s is blocked" % addr, a["error"])
                e = self.call(srv, "GET", "/v1/endpoints/" + ep["id"])
                self.assertEqual(e["status"], "enabled")
        self.assertEqual(rc.requests, [])
        st, metrics, _ = srv.api("GET", "/metrics", key=False)
        self.assertIn('fluxhook_attempts_total{outcome="blocked"} %d' % len(cases), metrics)

    def test_allowed_networks_delivered(self):
        srv = self.server(["--allow-http", "--allow-networks", "10.0.0.0/8, 127.0.0.0/8"])
        rc = self.receiver()
        for url in ("http://127.0.0.1:%d/hook" % rc.port, "http://localhost:%d/hook" % rc.port):
            with self.subTest(url=url):
                ep, d = self.deliver(srv, url)
                self.assertEqual(d["status"], "delivered", d)
        self.assertEqual(len(rc.requests), 2)
        # ::1 is not in the list: still blocked.
        ep, d = self.deliver(srv, "http://[::1]:%d/hook" % rc.port)
        self.assertEqual(d["status"], "failed")
        self.assertIn("blocked", d["attempts"][0]["error"])

    def test_other_range_does_not_allow_loopback(self):
        srv = self.server(["--allow-http", "--allow-networks", "10.0.0.0/8"])
        rc = self.receiver()
        ep, d = self.deliver(srv, rc.url)
        self.assertEqual(d["status"], "failed")
        self.assertIn("address 127.0.0.1 is blocked", d["attempts"][0]["error"])
        self.assertEqual(rc.requests, [])

    def test_bad_allow_networks_refuses_to_start(self):
        for bad, needle in (("127.0.0.0/33", "127.0.0.0/33"), ("10.0.0.0/8,nope", "nope"),
                            ("10.0.0.0/8,,::1", "empty")):
            with self.subTest(value=bad):
                srv = Server(args=["--allow-networks", bad], test=self)
                with self.assertRaises(AssertionError):
                    srv.start()
                self.assertIn(needle, srv.log_text())


if __name__ == "__main__":
    unittest.main()
