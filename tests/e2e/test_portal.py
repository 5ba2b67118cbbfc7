"""Customer portal links through the API: who may make one, for which
account and scopes; the one-time token exchanged for a session limited to
that account and those scopes; and the dashboard's framing headers (none
by default, an allow-list with --portal-frame-ancestors)."""
import unittest
import urllib.parse

from harness import Server, run_bin
from oauthutil import SharedServerCase


class Portal(SharedServerCase):
    serve_args = ["--allow-http", "--allow-networks", "127.0.0.0/8"]

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        st, cls.acct, _ = cls.srv.api("POST", "/v1/accounts", {"name": "customer"})
        hdr = {"X-Workflux-Account": cls.acct["id"]}
        st, cls.ep, _ = cls.srv.api("POST", "/v1/endpoints", {"url": "http://127.0.0.1:9/c"},
                                    headers=hdr)
        assert st == 201, cls.ep
        st, cls.root_ep, _ = cls.srv.api("POST", "/v1/endpoints", {"url": "http://127.0.0.1:9/r"})
        assert st == 201, cls.root_ep

    def link(self, body, key=None, status=201):
        st, b, _ = self.srv.api("POST", "/v1/portal-links", body, key=key)
        self.assertEqual(st, status, b)
        return b

    def exchange(self, url, status=201):
        frag = urllib.parse.urlsplit(url).fragment
        self.assertTrue(frag.startswith("portal=fhl_"), url)
        st, b, _ = self.srv.api("POST", "/v1/portal-sessions", {"token": frag[len("portal="):]},
                                key=False)
        self.assertEqual(st, status, b)
        return b

    def test_link_signs_in_once_limited_to_its_account_and_scopes(self):
        link = self.link({"account_id": self.acct["id"], "expires_in": 600,
                          "scopes": ["endpoints:read", "deliveries:read"]})
        self.assertTrue(link["url"].startswith(self.srv.url + "/#portal=fhl_"), link)
        self.assertEqual(link["account_id"], self.acct["id"])
        self.assertEqual(link["scopes"], ["endpoints:read", "deliveries:read"])
        self.assertIsNotNone(link["expires_at"])
        sess = self.exchange(link["url"])
        self.assertTrue(sess["access_token"].startswith("fhs_"))
        self.assertEqual(sess["account_id"], self.acct["id"])
        self.assertEqual(sess["expires_at"], link["expires_at"])
        key = sess["access_token"]
        # Only its account's endpoints.
        st, eps, _ = self.srv.api("GET", "/v1/endpoints", key=key)
        self.assertEqual([e["id"] for e in eps["data"]], [self.ep["id"]])
        self.assertEqual(self.srv.api("GET", "/v1/endpoints/" + self.root_ep["id"], key=key)[0],
                         404)
        st, b, _ = self.srv.api("GET", "/v1/endpoints", key=key,
                                headers={"X-Workflux-Account": "acct_default"})
        self.assertEqual(st, 403, b)
        # Only its scopes.
        self.assertEqual(self.srv.api("GET", "/v1/deliveries", key=key)[0], 200)
        st, b, _ = self.srv.api("POST", "/v1/endpoints", {"url": "http://127.0.0.1:9/x"}, key=key)
        self.assertEqual(st, 403, b)
        self.assertIn("endpoints:write", b["error"]["message"])
        st, b, _ = self.srv.api("GET", "/v1/endpoints/%s/secret" % self.ep["id"], key=key)
        self.assertEqual(st, 403, b)
        self.assertEqual(self.srv.api("GET", "/v1/accounts", key=key)[0], 403)
        # The link works once.
        err = self.exchange(link["url"], status=401)
        self.assertIn("already used", err["error"]["message"])
        self.assertIn("portal link issued", self.srv.log_text())

    def test_who_may_make_links(self):
        acct = self.acct["id"]
        # A key of the account with endpoints:write, for its own account only.
        st, k, _ = self.srv.api("POST", "/v1/accounts/%s/api-keys" % acct,
                                {"scopes": ["endpoints:read", "endpoints:write"]})
        writer = k["secret"]
        link = self.link({"expires_in": 60}, key=writer)
        self.assertEqual(link["account_id"], acct)
        self.assertEqual(link["scopes"], ["endpoints:read", "endpoints:write"])
        err = self.link({"account_id": "acct_default"}, key=writer, status=404)
        self.assertIn("account_id", err["error"]["message"])
        err = self.link({"scopes": ["deliveries:read"]}, key=writer, status=422)
        self.assertIn("scopes the caller holds", err["error"]["message"])
        # A key without endpoints:write may not.
        st, k, _ = self.srv.api("POST", "/v1/accounts/%s/api-keys" % acct,
                                {"scopes": ["endpoints:read"]})
        st, b, _ = self.srv.api("POST", "/v1/portal-links", {}, key=k["secret"])
        self.assertEqual(st, 403, b)
        self.assertIn("endpoints:write", b["error"]["message"])
        # Bad input.
        for body, field in (({"scopes": ["admin"]}, "scopes"), ({"scopes": ["x:y"]}, "scopes"),
                            ({"expires_in": 5}, "expires_in"),
                            ({"expires_in": 86401}, "expires_in")):
            err = self.link(body, status=422)
            self.assertEqual([f["path"] for f in err["error"]["fields"]], [field], body)
        self.link({"account_id": "acct_nope"}, status=404)
        # Exchange errors.
        st, b, _ = self.srv.api("POST", "/v1/portal-sessions", {"token": "fhl_nope"}, key=False)
        self.assertEqual(st, 401, b)
        st, b, _ = self.srv.api("POST", "/v1/portal-sessions", {"token": writer}, key=False)
        self.assertEqual(st, 422, b)

    def test_dashboard_is_not_framed_by_default(self):
        st, _, h = self.srv.api("GET", "/", key=False)
        self.assertEqual(st, 200)
        self.assertIn("frame-ancestors 'none'", h["Content-Security-Policy"])
        self.assertEqual(h["X-Frame-Options"], "DENY")


class PortalFraming(unittest.TestCase):
    def test_allow_list(self):
        srv = Server(args=["--portal-frame-ancestors",
                           "https://app.example.com, http://127.0.0.1:8443 'self'"], test=self)
        srv.start()
        st, _, h = srv.api("GET", "/endpoints", key=False)
        self.assertEqual(st, 200)
        csp = h["Content-Security-Policy"]
        self.assertIn("frame-ancestors https://app.example.com http://127.0.0.1:8443 'self'", csp)
        self.assertNotIn("'none'", csp.split("frame-ancestors")[1])
        self.assertIsNone(h.get("X-Frame-Options"))
        # Other assets keep their own headers; the API is unchanged.
        st, _, h = srv.api("GET", "/app.js", key=False)
        self.assertIsNone(h.get("Content-Security-Policy"))

    def test_bad_origins_are_refused(self):
        for bad in ("app.example.com", "https://x.com/path", "https://x.com; script-src *",
                    "'unsafe-inline'"):
            p = run_bin("serve", "-n", "--portal-frame-ancestors", bad)
            self.assertEqual(p.returncode, 2, (bad, p.stderr))
            self.assertIn("--portal-frame-ancestors", p.stderr)
            self.assertIn("expected origins", p.stderr)


if __name__ == "__main__":
    unittest.main()
