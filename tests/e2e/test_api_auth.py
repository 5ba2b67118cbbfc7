"""Authentication and tenant isolation: no key, bad key, admin routes,
X-Workflux-Account, and another account's ids answering 404."""
import unittest

from harness import Server

SAMPLE = {"conversation_id": "conv_1", "agent_id": "agent_1", "channel": "web"}


class ApiAuth(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.srv = Server(args=["--allow-http", "--allow-networks", "127.0.0.0/8",
                               "--retry-schedule", "0ms"])
        cls.srv.start()
        cls.accounts = {}
        for name in ("alpha", "beta"):
            status, acct, _ = cls.srv.api("POST", "/v1/accounts", {"name": name})
            assert status == 201, acct
            status, key, _ = cls.srv.api("POST", "/v1/accounts/%s/api-keys" % acct["id"],
                                         {"name": "k"})
            assert status == 201, key
            cls.accounts[name] = (acct["id"], key["secret"])

    @classmethod
    def tearDownClass(cls):
        code = cls.srv.stop()
        report = cls.srv.sanitizer_report()
        if code != 0 or report:
            raise AssertionError("serve exited %s\n%s" % (code, report))

    def assert_error(self, got, status, etype, in_message=None):
        self.assertEqual(got[0], status, got[1])
        self.assertEqual(got[1]["error"]["type"], etype)
        if in_message:
            self.assertIn(in_message, got[1]["error"]["message"])

    def test_no_key_is_401(self):
        for method, path in (("GET", "/v1/endpoints"), ("POST", "/v1/events"),
                             ("GET", "/v1/accounts"), ("GET", "/v1/event-types")):
            self.assert_error(self.srv.api(method, path, key=False), 401, "unauthorized",
                              "Authorization: Bearer")

    def test_bad_key_is_401(self):
        self.assert_error(self.srv.api("GET", "/v1/endpoints", key="fhk_wrong"), 401,
                          "unauthorized", "invalid API key")
        self.assert_error(self.srv.api("GET", "/v1/endpoints", key=self.srv.root_key + "x"),
                          401, "unauthorized")
        for value in ("Basic abc", "Bearer", "Bearer ", self.srv.root_key):
            self.assert_error(self.srv.api("GET", "/v1/endpoints", key=False,
                                           headers={"Authorization": value}),
                              401, "unauthorized")

    def test_scheme_is_case_insensitive(self):
        status, body, _ = self.srv.api("GET", "/v1/accounts/acct_default", key=False,
                                       headers={"Authorization": "bearer " + self.srv.root_key})
        self.assertEqual(status, 200, body)

    def test_public_routes_need_no_key(self):
        for path in ("/healthz", "/metrics", "/openapi.json"):
            status, _, _ = self.srv.api("GET", path, key=False)
            self.assertEqual(status, 200, path)

    def test_admin_routes_refuse_other_keys(self):
        acct, key = self.accounts["alpha"]
        self.assert_error(self.srv.api("GET", "/v1/accounts", key=key), 403, "forbidden",
                          "admin")
        self.assert_error(self.srv.api("POST", "/v1/accounts", {"name": "x"}, key=key), 403,
                          "forbidden")
        self.assert_error(self.srv.api("POST", "/v1/accounts/%s/api-keys" % acct, {}, key=key),
                          403, "forbidden")
        self.assert_error(self.srv.api("GET", "/v1/accounts/%s/api-keys" % acct, key=key), 403,
                          "forbidden")
        self.assert_error(self.srv.api("DELETE", "/v1/api-keys/key_x", key=key), 403,
                          "forbidden")
        # Its own account it may read; another one is not there for it.
        self.assertEqual(self.srv.api("GET", "/v1/accounts/" + acct, key=key)[0], 200)
        other = self.accounts["beta"][0]
        self.assert_error(self.srv.api("GET", "/v1/accounts/" + other, key=key), 404,
                          "not_found")
        self.assert_error(self.srv.api("GET", "/v1/accounts/acct_default", key=key), 404,
                          "not_found")

    def test_act_for_another_account(self):
        acct, key = self.accounts["alpha"]
        status, ep, _ = self.srv.api("POST", "/v1/endpoints", {"url": "http://127.0.0.1:9/a"},
                                     headers={"X-Workflux-Account": acct})
        self.assertEqual(status, 201, ep)
        # The endpoint belongs to alpha: alpha's own key sees it, the root key alone does not.
        self.assertEqual(self.srv.api("GET", "/v1/endpoints/" + ep["id"], key=key)[0], 200)
        self.assertEqual(self.srv.api("GET", "/v1/endpoints/" + ep["id"])[0], 404)
        status, body, _ = self.srv.api("GET", "/v1/endpoints/" + ep["id"],
                                       headers={"X-Workflux-Account": acct})
        self.assertEqual(status, 200, body)

    def test_act_for_missing_account_is_404(self):
        self.assert_error(self.srv.api("GET", "/v1/endpoints",
                                       headers={"X-Workflux-Account": "acct_nope"}),
                          404, "not_found", "acct_nope")

    def test_non_admin_cannot_act_for_another_account(self):
        acct, key = self.accounts["alpha"]
        other = self.accounts["beta"][0]
        self.assert_error(self.srv.api("GET", "/v1/endpoints", key=key,
                                       headers={"X-Workflux-Account": other}),
                          403, "forbidden", "X-Workflux-Account")
        # Naming its own account is fine.
        status, _, _ = self.srv.api("GET", "/v1/endpoints", key=key,
                                    headers={"X-Workflux-Account": acct})
        self.assertEqual(status, 200)

    def test_tenant_isolation(self):
        _, akey = self.accounts["alpha"]
        _, bkey = self.accounts["beta"]
        status, ep, _ = self.srv.api("POST", "/v1/endpoints",
                                     {"url": "http://127.0.0.1:9/hook"}, key=akey)
        self.assertEqual(status, 201, ep)
        status, ev, _ = self.srv.api("POST", "/v1/events",
                                     {"event": "conversation.started", "data": SAMPLE}, key=akey)
        self.assertEqual(status, 202, ev)
        status, dl, _ = self.srv.api("GET", "/v1/deliveries?event_id=%s&endpoint_id=%s"
                                     % (ev["id"], ep["id"]), key=akey)
        self.assertEqual(status, 200, dl)
        self.assertEqual(len(dl["data"]), 1)
        dlv = dl["data"][0]["id"]
        ep_id, ev_id = ep["id"], ev["id"]
        probes = [
            ("GET", "/v1/endpoints/" + ep_id, None),
            ("PATCH", "/v1/endpoints/" + ep_id, {"description": "mine now"}),
            ("POST", "/v1/endpoints/%s/disable" % ep_id, {}),
            ("POST", "/v1/endpoints/%s/enable" % ep_id, {}),
            ("GET", "/v1/endpoints/%s/secret" % ep_id, None),
            ("POST", "/v1/endpoints/%s/secret/rotate" % ep_id, {}),
            ("POST", "/v1/endpoints/%s/test" % ep_id, {"event": "conversation.started"}),
            ("GET", "/v1/endpoints/%s/stats" % ep_id, None),
            ("POST", "/v1/endpoints/%s/replay" % ep_id, {"since": "2020-01-01T00:00:00Z"}),
            ("GET", "/v1/events/" + ev_id, None),
            ("GET", "/v1/deliveries/" + dlv, None),
            ("POST", "/v1/deliveries/%s/retry" % dlv, {}),
            ("DELETE", "/v1/endpoints/" + ep_id, None),
        ]
        for method, path, body in probes:
            got = self.srv.api(method, path, body, key=bkey)
            self.assertEqual(got[0], 404, "%s %s answered %s to another account: %s"
                             % (method, path, got[0], got[1]))
            self.assertEqual(got[1]["error"]["type"], "not_found")
        # Beta's lists do not show alpha's objects.
        for path in ("/v1/endpoints", "/v1/events", "/v1/deliveries",
                     "/v1/deliveries?event_id=" + ev_id, "/v1/deliveries?endpoint_id=" + ep_id):
            status, body, _ = self.srv.api("GET", path, key=bkey)
            self.assertEqual(status, 200, body)
            self.assertEqual(body["data"], [], path)
        # And alpha still has everything, unchanged.
        status, body, _ = self.srv.api("GET", "/v1/endpoints/" + ep_id, key=akey)
        self.assertEqual(status, 200)
        self.assertEqual(body["description"], "")
        self.assertEqual(self.srv.api("GET", "/v1/events/" + ev_id, key=akey)[0], 200)
        self.assertEqual(self.srv.api("GET", "/v1/deliveries/" + dlv, key=akey)[0], 200)

    def test_key_never_logged(self):
        self.srv.api("GET", "/v1/endpoints", key="fhk_not_a_real_key_at_all")
        log = self.srv.log_text()
        self.assertNotIn("fhk_not_a_real_key_at_all", log)
        self.assertNotIn(self.srv.root_key, log)
        for _, key in self.accounts.values():
            self.assertNotIn(key, log)


if __name__ == "__main__":
    unittest.main()
