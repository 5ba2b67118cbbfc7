"""The address rules: http:// only with --allow-http; targets that resolve to
loopback (or another private range) fail at once as "blocked" unless inside
--allow-networks, whatever name or form the URL uses. A URL whose host is
such a literal address is refused at create already (400 naming the rule);
to prove that the check at connect time still guards the URLs stored before
that rule, deliver() stores them through a second server on the same store
that allows every network."""
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

    def create(self, srv, url):
        """Creates an endpoint for url on srv; a literal address that srv refuses
        (400 naming the address rule) is stored through a server on the same
        store that allows every network, as a URL stored before the rule was."""
        st, b, _ = srv.api("POST", "/v1/endpoints", {"url": url})
        if st == 201:
            return b
        self.assertEqual(st, 400, b)
        self.assertIn("is a literal address in the address rule", b["error"]["message"])
        self.assertEqual(b["error"]["fields"][0]["path"], "url")
        if getattr(srv, "allow_all", None) is None:
            srv.allow_all = Server(args=["--role", "api", "--allow-http", "--allow-networks",
                                         "0.0.0.0/0,::/0"], db=srv.db, root_key=srv.root_key,
                                   test=self)
            srv.allow_all.start()
        return self.call(srv.allow_all, "POST", "/v1/endpoints", {"url": url}, 201)

    def deliver(self, srv, url):
        """One endpoint for url alone, one event; returns (endpoint, delivery with attempts)."""
        for old in self.call(srv, "GET", "/v1/endpoints")["data"]:
            self.call(srv, "DELETE", "/v1/endpoints/" + old["id"], status=204)
        ep = self.create(srv, url)
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

    def test_literal_private_addresses_refused_at_create_and_update(self):
        srv = self.server(["--allow-http", "--allow-networks", "192.168.0.0/16"])
        cases = [("https://10.1.2.3/hook", "10.1.2.3", "private network"),
                 ("https://[::1]/", "::1", "loopback"),
                 ("http://127.0.0.1:9/x", "127.0.0.1", "loopback"),
                 ("https://127.1/x", "127.0.0.1", "loopback"),  # curl's short form
                 ("https://169.254.169.254/latest", "169.254.169.254", "link-local"),
                 ("https://[fe80::1]/", "fe80::1", "link-local"),
                 ("https://[::ffff:10.0.0.1]/", "::ffff:10.0.0.1", "private network"),
                 ("https://100.64.0.1/", "100.64.0.1", "carrier-grade NAT")]
        ok = self.call(srv, "POST", "/v1/endpoints", {"url": "https://example.com/hook"}, 201)
        for url, addr, rule in cases:
            with self.subTest(url=url):
                st, b, _ = srv.api("POST", "/v1/endpoints", {"url": url})
                self.assertEqual(st, 400, b)
                msg = b["error"]["message"]
                self.assertIn('%s is a literal address in the address rule "%s"' % (addr, rule),
                              msg)
                self.assertIn("--allow-networks", msg)
                self.assertEqual(b["error"]["fields"][0]["path"], "url")
                st, b, _ = srv.api("PATCH", "/v1/endpoints/" + ok["id"], {"url": url})
                self.assertEqual(st, 400, b)
                self.assertIn('address rule "%s"' % rule, b["error"]["message"])
        # Inside --allow-networks, and names (judged after DNS), are accepted.
        for url in ("https://192.168.1.2/hook", "https://localhost/hook"):
            self.call(srv, "POST", "/v1/endpoints", {"url": url}, 201)
        self.assertEqual(self.call(srv, "GET", "/v1/endpoints/" + ok["id"])["url"],
                         "https://example.com/hook")

    def test_dev_allows_loopback_and_http(self):
        srv = self.server(["--dev"])
        self.assertIn("DEVELOPMENT MODE", srv.log_text())
        rc = self.receiver()
        ep, d = self.deliver(srv, "http://127.0.0.1:%d/hook" % rc.port)
        self.assertEqual(d["status"], "delivered", d)
        self.call(srv, "POST", "/v1/endpoints", {"url": "http://[::1]:9/x"}, 201)
        st, b, _ = srv.api("POST", "/v1/endpoints", {"url": "http://10.1.2.3/x"})
        self.assertEqual(st, 400, b)
        self.assertIn('"private network"', b["error"]["message"])
        # Without --dev the secure defaults stay.
        plain = self.server([])
        self.assertNotIn("DEVELOPMENT MODE", plain.log_text())
        st, b, _ = plain.api("POST", "/v1/endpoints", {"url": "https://127.0.0.1/x"})
        self.assertEqual(st, 400, b)
        st, b, _ = plain.api("POST", "/v1/endpoints", {"url": "http://example.com/x"})
        self.assertEqual(st, 400, b)

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
