"""Scopes for keys and tokens: a matrix over every route of /openapi.json
(a token lacking the route's scope answers 403 naming it, a token with just
that scope does not), and keys with scopes, expiry, last use and rotation."""
import json
import re
import time
import unittest

from oauthutil import SharedServerCase, new_client, token

ACCOUNT_SCOPES = ["events:write", "events:read", "endpoints:read", "endpoints:write",
                  "deliveries:read", "deliveries:write"]
FAKE_IDS = {"ep_": "ep_01M8NX0YSK8GKJ0K8A499BAKBE", "evt_": "evt_01M8NX0YSK8GKJ0K8A499BAKBE",
            "dlv_": "dlv_01M8NX0YSK8GKJ0K8A499BAKBE", "key_": "key_01M8NX0YSK8GKJ0K8A499BAKBE",
            "oc_": "oc_01M8NX0YSK8GKJ0K8A499BAKBE", "acct_": "acct_01M8NX0YSK8GKJ0K8A499BAKBE"}


def concrete(path):
    """path with each {id} replaced by a well-formed id that names nothing."""
    prefix = {"/v1/endpoints/": "ep_", "/v1/events/": "evt_", "/v1/deliveries/": "dlv_",
              "/v1/api-keys/": "key_", "/v1/oauth-clients/": "oc_", "/v1/accounts/": "acct_"}
    for head, p in prefix.items():
        if path.startswith(head + "{id}"):
            return path.replace("{id}", FAKE_IDS[p])
    return path


class Scopes(SharedServerCase):
    serve_args = ["--allow-http", "--allow-networks", "127.0.0.0/8"]

    def test_matrix_over_every_route_of_openapi(self):
        st, doc, _ = self.srv.api("GET", "/openapi.json", key=False)
        self.assertEqual(st, 200)
        client = new_client(self.srv, ACCOUNT_SCOPES + ["admin"], name="matrix")
        with_scope, without_scope = {}, {}
        for s in ACCOUNT_SCOPES + ["admin"]:
            with_scope[s] = token(self.srv, client, scope=s)["access_token"]
            rest = [x for x in ACCOUNT_SCOPES if x != s]
            without_scope[s] = token(self.srv, client, scope=" ".join(rest))["access_token"]
        checked = 0
        conn = self.srv.connection()
        for path, ops in doc["paths"].items():
            for method, op in ops.items():
                if op.get("security") == []:
                    self.assertNotIn("x-fluxhook-scope", op, path)
                    continue
                scope = op["x-fluxhook-scope"]
                self.assertIn(scope, ACCOUNT_SCOPES + ["admin"], (method, path))
                self.assertIn({"oauth2": [scope]}, op["security"], (method, path))
                body = {} if "requestBody" in op else None
                p = concrete(path)
                st, b, h = self.srv.api(method.upper(), p, body, key=without_scope[scope],
                                        conn=conn)
                self.assertEqual(st, 403, (method, p, b))
                self.assertIn("'%s'" % scope, b["error"]["message"], (method, p))
                self.assertIn('scope="%s"' % scope, h["WWW-Authenticate"])
                st, b, _ = self.srv.api(method.upper(), p, body, key=with_scope[scope], conn=conn)
                self.assertNotIn(st, (401, 403), (method, p, scope, b))
                checked += 1
        conn.close()
        # Every non-public route of the table was covered (32 when this was written).
        self.assertGreaterEqual(checked, 32)

    def test_key_scopes_expiry_and_last_use(self):
        st, acct, _ = self.srv.api("POST", "/v1/accounts", {"name": "scoped"})
        path = "/v1/accounts/%s/api-keys" % acct["id"]
        st, k, _ = self.srv.api("POST", path, {"name": "reader", "scopes": ["events:read"],
                                               "expires_at": "2099-01-01T00:00:00Z"})
        self.assertEqual(st, 201, k)
        self.assertEqual(k["scopes"], ["events:read"])
        self.assertEqual(k["expires_at"], "2099-01-01T00:00:00.000Z")
        self.assertIsNone(k["last_used_at"])
        self.assertIs(k["admin"], False)
        self.assertEqual(self.srv.api("GET", "/v1/events", key=k["secret"])[0], 200)
        st, b, _ = self.srv.api("POST", "/v1/events", {"event": "x", "data": {}}, key=k["secret"])
        self.assertEqual(st, 403, b)
        self.assertIn("events:write", b["error"]["message"])
        st, keys, _ = self.srv.api("GET", path)
        listed = [x for x in keys["data"] if x["id"] == k["id"]][0]
        self.assertIsNotNone(listed["last_used_at"])
        # A key made before scopes existed (no scopes) keeps its account's full access.
        st, full, _ = self.srv.api("POST", path, {"name": "full"})
        self.assertEqual(full["scopes"], ACCOUNT_SCOPES)
        self.assertEqual(self.srv.api("POST", "/v1/endpoints", {"url": "http://127.0.0.1:9/x"},
                                      key=full["secret"])[0], 201)
        self.assertEqual(self.srv.api("GET", "/v1/accounts", key=full["secret"])[0], 403)
        # The root (admin) key has every scope.
        st, keys, _ = self.srv.api("GET", "/v1/accounts/acct_default/api-keys")
        self.assertIn("admin", keys["data"][0]["scopes"])
        # Bad input: unknown scope, past or malformed expiry.
        for body, field in (({"scopes": ["events:fly"]}, "scopes"),
                            ({"scopes": "events:read nope"}, "scopes"),
                            ({"scopes": []}, "scopes"),
                            ({"expires_at": "2001-01-01T00:00:00Z"}, "expires_at"),
                            ({"expires_at": "tomorrow"}, "expires_at")):
            st, b, _ = self.srv.api("POST", path, body)
            self.assertEqual(st, 422, (body, b))
            self.assertEqual([f["path"] for f in b["error"]["fields"]], [field])

    def test_expired_key_is_refused(self):
        st, acct, _ = self.srv.api("POST", "/v1/accounts", {"name": "expiring"})
        path = "/v1/accounts/%s/api-keys" % acct["id"]
        at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 2))
        st, k, _ = self.srv.api("POST", path, {"expires_at": at})
        self.assertEqual(st, 201, k)
        got = self.srv.wait_for(
            lambda: (lambda r: r if r[0] == 401 else None)(
                self.srv.api("GET", "/v1/endpoints", key=k["secret"])),
            timeout=15, what="the key to expire", interval=0.2)
        self.assertIn("expired", got[1]["error"]["message"])

    def test_rotation_keeps_the_old_secret_for_the_grace_period(self):
        st, acct, _ = self.srv.api("POST", "/v1/accounts", {"name": "rotating"})
        hdr = {"X-Workflux-Account": acct["id"]}
        st, k, _ = self.srv.api("POST", "/v1/accounts/%s/api-keys" % acct["id"],
                                {"scopes": ["endpoints:read"]})
        old = k["secret"]
        st, r, _ = self.srv.api("POST", "/v1/api-keys/%s/rotate" % k["id"], {"grace_seconds": 3600},
                                headers=hdr)
        self.assertEqual(st, 200, r)
        self.assertEqual(r["id"], k["id"])
        self.assertNotEqual(r["secret"], old)
        self.assertEqual(r["scopes"], ["endpoints:read"])
        self.assertIsNotNone(r["previous_secret_expires_at"])
        self.assertEqual(self.srv.api("GET", "/v1/endpoints", key=r["secret"])[0], 200)
        self.assertEqual(self.srv.api("GET", "/v1/endpoints", key=old)[0], 200)
        # Rotating again with no grace: the previous secret (the second) ends now.
        st, r2, _ = self.srv.api("POST", "/v1/api-keys/%s/rotate" % k["id"], {"grace_seconds": 0},
                                 headers=hdr)
        self.assertEqual(st, 200, r2)
        st, b, _ = self.srv.api("GET", "/v1/endpoints", key=r["secret"])
        self.assertEqual(st, 401, b)
        self.assertIn("rotated", b["error"]["message"])
        self.assertEqual(self.srv.api("GET", "/v1/endpoints", key=old)[0], 401)
        self.assertEqual(self.srv.api("GET", "/v1/endpoints", key=r2["secret"])[0], 200)
        # Errors: another account's key without acting for it, a bad grace.
        self.assertEqual(self.srv.api("POST", "/v1/api-keys/%s/rotate" % k["id"], {})[0], 404)
        st, b, _ = self.srv.api("POST", "/v1/api-keys/%s/rotate" % k["id"],
                                {"grace_seconds": -1}, headers=hdr)
        self.assertEqual(st, 422, b)

    def test_cli_keys_and_oauth_clients(self):
        st, acct, _ = self.srv.api("POST", "/v1/accounts", {"name": "cli"})
        p = self.srv.run_cli("keys", "create", acct["id"], "--name", "ci", "--scopes",
                             "events:write,deliveries:read", "--expires", "720h", "--json")
        self.assertEqual(p.returncode, 0, p.stderr)
        k = json.loads(p.stdout)
        self.assertEqual(k["scopes"], ["events:write", "deliveries:read"])
        self.assertIsNotNone(k["expires_at"])
        p = self.srv.run_cli("keys", "create", acct["id"], "--scopes", "events:fly")
        self.assertEqual(p.returncode, 1)
        self.assertIn("events:fly", p.stderr)
        p = self.srv.run_cli("keys", "create", acct["id"], "--expires", "soon")
        self.assertEqual(p.returncode, 2)
        self.assertIn("--expires", p.stderr)
        p = self.srv.run_cli("keys", "rotate", k["id"], "--grace", "0s", "--json",
                             "--account", acct["id"])
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertNotEqual(json.loads(p.stdout)["secret"], k["secret"])
        p = self.srv.run_cli("oauth-clients", "create", "--name", "bot", "--scopes",
                             "events:write", "--account", acct["id"])
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("shown only this once", p.stderr)
        cid = re.search(r"(?m)^client_id\s+(oc_\S+)", p.stdout).group(1)
        p = self.srv.run_cli("oauth-clients", "list", "--account", acct["id"])
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn(cid, p.stdout)
        self.assertIn("events:write", p.stdout)
        p = self.srv.run_cli("oauth-clients", "delete", cid, "--account", acct["id"])
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("deleted " + cid, p.stdout)
        p = self.srv.run_cli("oauth-clients", "list", "--json", "--account", acct["id"])
        self.assertEqual(json.loads(p.stdout)["data"], [])


if __name__ == "__main__":
    unittest.main()
