"""OAuth 2.0 (RFC 6749 client_credentials and refresh_token grants, RFC 7009
revocation, RFC 7662 introspection, RFC 8414 metadata): every grant, every
§5.2 error with its status and headers, refresh-token rotation and reuse
detection, revocation taking effect at once, client management."""
import json
import os
import re
import shlex
import subprocess
import unittest

from harness import ROOT, Server
from oauthutil import SharedServerCase, form_post, new_client, token

ARTIFACTS = os.path.join(ROOT, "tests", "artifacts")


class OAuth(SharedServerCase):
    serve_args = ["--oauth-token-ttl", "2s"]

    def assert_oauth_error(self, got, status, code, in_desc=None):
        st, body, headers = got
        self.assertEqual(st, status, body)
        self.assertEqual(body["error"], code, body)
        self.assertIsInstance(body["error_description"], str)
        if in_desc:
            self.assertIn(in_desc, body["error_description"])
        self.assertEqual(headers["Cache-Control"], "no-store")
        self.assertEqual(headers["Pragma"], "no-cache")
        if status == 401:
            self.assertTrue(headers["WWW-Authenticate"].startswith("Basic realm="), headers)
        return body

    def grant(self, client, **fields):
        return form_post(self.srv, "/oauth/token", fields,
                         basic=(client["client_id"], client["client_secret"]))

    def test_client_credentials_by_basic_and_by_body(self):
        c = new_client(self.srv, ["events:write", "events:read"])
        self.assertTrue(c["client_id"].startswith("oc_"))
        self.assertTrue(c["client_secret"].startswith("fhc_"))
        st, t, h = self.grant(c, grant_type="client_credentials")
        self.assertEqual(st, 200, t)
        self.assertEqual(h["Cache-Control"], "no-store")
        self.assertEqual(h["Pragma"], "no-cache")
        self.assertEqual(t["token_type"], "Bearer")
        self.assertEqual(t["expires_in"], 2)
        self.assertEqual(t["scope"], "events:write events:read")
        self.assertTrue(t["access_token"].startswith("fha_"))
        self.assertTrue(t["refresh_token"].startswith("fhr_"))
        # client_secret_post: the same client in the body.
        st, t2, _ = form_post(self.srv, "/oauth/token",
                              {"grant_type": "client_credentials",
                               "client_id": c["client_id"], "client_secret": c["client_secret"],
                               "scope": "events:read"})
        self.assertEqual(st, 200, t2)
        self.assertEqual(t2["scope"], "events:read")
        # The token calls the API within its scopes.
        st, body, h = self.srv.api("GET", "/v1/events", key=t["access_token"])
        self.assertEqual(st, 200, body)
        st, body, _ = self.srv.api("POST", "/v1/events", {"event": "x"}, key=t2["access_token"])
        self.assertEqual(st, 403, body)
        self.assertIn("events:write", body["error"]["message"])

    def test_refresh_rotates_and_reuse_revokes_the_family(self):
        c = new_client(self.srv)
        t1 = token(self.srv, c)
        st, t2, _ = self.grant(c, grant_type="refresh_token", refresh_token=t1["refresh_token"])
        self.assertEqual(st, 200, t2)
        self.assertNotEqual(t2["refresh_token"], t1["refresh_token"])
        self.assertNotEqual(t2["access_token"], t1["access_token"])
        # A narrower scope may be asked for on refresh, a wider one not.
        st, t3, _ = self.grant(c, grant_type="refresh_token", refresh_token=t2["refresh_token"],
                               scope="deliveries:read")
        self.assertEqual(st, 200, t3)
        self.assertEqual(t3["scope"], "deliveries:read")
        self.assert_oauth_error(self.grant(c, grant_type="refresh_token",
                                           refresh_token=t3["refresh_token"],
                                           scope="deliveries:read endpoints:write"),
                                400, "invalid_scope", "endpoints:write")
        self.assertEqual(self.srv.api("GET", "/v1/deliveries", key=t3["access_token"])[0], 200)
        # t1's refresh token again: reuse. Refused, and every token of the grant ends.
        self.assert_oauth_error(self.grant(c, grant_type="refresh_token",
                                           refresh_token=t1["refresh_token"]),
                                400, "invalid_grant", "already used")
        for t in (t2, t3):
            st, body, h = self.srv.api("GET", "/v1/deliveries", key=t["access_token"])
            self.assertEqual(st, 401, body)
            self.assertIn("revoked", body["error"]["message"])
            self.assertIn('error="invalid_token"', h["WWW-Authenticate"])
        self.assert_oauth_error(self.grant(c, grant_type="refresh_token",
                                           refresh_token=t3["refresh_token"]),
                                400, "invalid_grant", "revoked")
        self.assertIn("refresh token reused", self.srv.log_text())
        # Another grant of the same client is untouched.
        other = token(self.srv, c)
        self.assertEqual(self.srv.api("GET", "/v1/deliveries", key=other["access_token"])[0], 200)

    def test_errors_of_rfc6749_section_5_2(self):
        c = new_client(self.srv, ["events:read"])
        other = new_client(self.srv, ["events:read"])
        t = token(self.srv, c)
        # invalid_request: no grant_type, a parameter twice, not a form, two client auths.
        self.assert_oauth_error(self.grant(c), 400, "invalid_request", "grant_type")
        self.assert_oauth_error(
            form_post(self.srv, "/oauth/token", [("grant_type", "client_credentials"),
                                                 ("grant_type", "client_credentials")],
                      basic=(c["client_id"], c["client_secret"])),
            400, "invalid_request", "more than once")
        st, body, h = self.srv.api("POST", "/oauth/token", {"grant_type": "client_credentials"},
                                   key=False)
        self.assert_oauth_error((st, body, h), 400, "invalid_request",
                                "application/x-www-form-urlencoded")
        self.assert_oauth_error(
            form_post(self.srv, "/oauth/token",
                      {"grant_type": "client_credentials", "client_secret": c["client_secret"]},
                      basic=(c["client_id"], c["client_secret"])),
            400, "invalid_request", "twice")
        self.assert_oauth_error(self.grant(c, grant_type="refresh_token"), 400,
                                "invalid_request", "refresh_token")
        for raw in ("grant_type=client_credentials&scope=%zz", "grant_type=client%00",
                    "&".join("p%d=1" % i for i in range(17))):
            self.assert_oauth_error(form_post(self.srv, "/oauth/token", None, raw=raw,
                                              basic=(c["client_id"], c["client_secret"])),
                                    400, "invalid_request")
        # invalid_client: none, unknown, wrong secret, another client's secret, a key.
        self.assert_oauth_error(form_post(self.srv, "/oauth/token",
                                          {"grant_type": "client_credentials"}),
                                401, "invalid_client")
        self.assert_oauth_error(self.grant({"client_id": "oc_nope", "client_secret": "x"},
                                           grant_type="client_credentials"),
                                401, "invalid_client")
        self.assert_oauth_error(self.grant({"client_id": c["client_id"],
                                            "client_secret": c["client_secret"] + "x"},
                                           grant_type="client_credentials"),
                                401, "invalid_client")
        self.assert_oauth_error(self.grant({"client_id": c["client_id"],
                                            "client_secret": other["client_secret"]},
                                           grant_type="client_credentials"),
                                401, "invalid_client")
        self.assert_oauth_error(self.grant({"client_id": "key_x",
                                            "client_secret": self.srv.root_key},
                                           grant_type="client_credentials"),
                                401, "invalid_client")
        self.assert_oauth_error(form_post(self.srv, "/oauth/token",
                                          {"grant_type": "client_credentials"},
                                          headers={"Authorization": "Basic !!!"}),
                                401, "invalid_client")
        # invalid_grant: unknown, another client's, an access token as refresh token.
        self.assert_oauth_error(self.grant(c, grant_type="refresh_token", refresh_token="fhr_x"),
                                400, "invalid_grant")
        self.assert_oauth_error(self.grant(other, grant_type="refresh_token",
                                           refresh_token=t["refresh_token"]),
                                400, "invalid_grant")
        self.assert_oauth_error(self.grant(c, grant_type="refresh_token",
                                           refresh_token=t["access_token"]),
                                400, "invalid_grant")
        # invalid_scope: unknown, beyond the client's.
        self.assert_oauth_error(self.grant(c, grant_type="client_credentials", scope="events:fly"),
                                400, "invalid_scope", "events:fly")
        self.assert_oauth_error(self.grant(c, grant_type="client_credentials",
                                           scope="events:read admin"),
                                400, "invalid_scope", "admin")
        # unsupported_grant_type.
        for g in ("password", "authorization_code", "implicit"):
            self.assert_oauth_error(self.grant(c, grant_type=g), 400, "unsupported_grant_type", g)
        # The refresh token still works after all that.
        st, _, _ = self.grant(c, grant_type="refresh_token", refresh_token=t["refresh_token"])
        self.assertEqual(st, 200)

    def test_access_token_expires(self):
        c = new_client(self.srv)
        t = token(self.srv, c)
        self.assertEqual(self.srv.api("GET", "/v1/endpoints", key=t["access_token"])[0], 200)
        # --oauth-token-ttl 2s: wait for the expiry, bounded.
        got = self.srv.wait_for(
            lambda: (lambda r: r if r[0] == 401 else None)(
                self.srv.api("GET", "/v1/endpoints", key=t["access_token"])),
            timeout=15, what="the access token to expire", interval=0.2)
        self.assertIn("expired", got[1]["error"]["message"])
        # The refresh token outlives it.
        st, t2, _ = self.grant(c, grant_type="refresh_token", refresh_token=t["refresh_token"])
        self.assertEqual(st, 200, t2)
        self.assertEqual(self.srv.api("GET", "/v1/endpoints", key=t2["access_token"])[0], 200)

    def test_revocation_takes_effect_at_once(self):
        c = new_client(self.srv)
        other = new_client(self.srv)
        a = token(self.srv, c)
        b = token(self.srv, c)
        key = a["access_token"]
        conn = self.srv.connection()
        self.assertEqual(self.srv.api("GET", "/v1/endpoints", key=key, conn=conn)[0], 200)
        # Another client cannot revoke it (200 per RFC 7009, and nothing happens).
        st, _, _ = form_post(self.srv, "/oauth/revoke", {"token": key},
                             basic=(other["client_id"], other["client_secret"]))
        self.assertEqual(st, 200)
        self.assertEqual(self.srv.api("GET", "/v1/endpoints", key=key, conn=conn)[0], 200)
        st, body, _ = form_post(self.srv, "/oauth/revoke",
                                {"token": key, "token_type_hint": "access_token"},
                                basic=(c["client_id"], c["client_secret"]))
        self.assertEqual(st, 200, body)
        # The very next request, on the same keep-alive connection, is refused.
        st, body, _ = self.srv.api("GET", "/v1/endpoints", key=key, conn=conn)
        self.assertEqual(st, 401, body)
        self.assertIn("revoked", body["error"]["message"])
        # Its refresh token is not (only an access token was revoked) ...
        self.assertEqual(self.grant(c, grant_type="refresh_token",
                                    refresh_token=a["refresh_token"])[0], 200)
        # ... but revoking a refresh token ends its whole grant.
        st, _, _ = form_post(self.srv, "/oauth/revoke", {"token": b["refresh_token"]},
                             basic=(c["client_id"], c["client_secret"]))
        self.assertEqual(st, 200)
        self.assertEqual(self.srv.api("GET", "/v1/endpoints", key=b["access_token"],
                                      conn=conn)[0], 401)
        self.assert_oauth_error(self.grant(c, grant_type="refresh_token",
                                           refresh_token=b["refresh_token"]),
                                400, "invalid_grant")
        # Unknown tokens answer 200 too; a missing token is invalid_request.
        st, _, _ = form_post(self.srv, "/oauth/revoke", {"token": "fha_nothing"},
                             basic=(c["client_id"], c["client_secret"]))
        self.assertEqual(st, 200)
        self.assert_oauth_error(form_post(self.srv, "/oauth/revoke", {},
                                          basic=(c["client_id"], c["client_secret"])),
                                400, "invalid_request", "token")
        self.assert_oauth_error(form_post(self.srv, "/oauth/revoke", {"token": key}), 401,
                                "invalid_client")
        conn.close()

    def test_introspection(self):
        c = new_client(self.srv, ["events:read", "deliveries:read"])
        other = new_client(self.srv)
        t = token(self.srv, c, scope="events:read")
        st, info, h = form_post(self.srv, "/oauth/introspect", {"token": t["access_token"]},
                                basic=(c["client_id"], c["client_secret"]))
        self.assertEqual(st, 200, info)
        self.assertEqual(h["Cache-Control"], "no-store")
        self.assertIs(info["active"], True)
        self.assertEqual(info["scope"], "events:read")
        self.assertEqual(info["client_id"], c["client_id"])
        self.assertEqual(info["token_type"], "Bearer")
        self.assertEqual(info["sub"], "acct_default")
        self.assertTrue(info["jti"].startswith("tok_"))
        self.assertGreater(info["exp"], info["iat"])
        st, info, _ = form_post(self.srv, "/oauth/introspect", {"token": t["refresh_token"]},
                                basic=(c["client_id"], c["client_secret"]))
        self.assertEqual((info["active"], info["token_type"]), (True, "refresh_token"))
        # Another client's view: inactive. Unknown: inactive. Revoked: inactive.
        st, info, _ = form_post(self.srv, "/oauth/introspect", {"token": t["access_token"]},
                                basic=(other["client_id"], other["client_secret"]))
        self.assertEqual(info, {"active": False})
        st, info, _ = form_post(self.srv, "/oauth/introspect", {"token": "fha_x"},
                                basic=(c["client_id"], c["client_secret"]))
        self.assertEqual(info, {"active": False})
        form_post(self.srv, "/oauth/revoke", {"token": t["access_token"]},
                  basic=(c["client_id"], c["client_secret"]))
        st, info, _ = form_post(self.srv, "/oauth/introspect", {"token": t["access_token"]},
                                basic=(c["client_id"], c["client_secret"]))
        self.assertEqual(info, {"active": False})

    def test_metadata(self):
        st, md, _ = self.srv.api("GET", "/.well-known/oauth-authorization-server", key=False)
        self.assertEqual(st, 200, md)
        self.assertEqual(md["issuer"], self.srv.url)
        self.assertEqual(md["token_endpoint"], self.srv.url + "/oauth/token")
        self.assertEqual(md["revocation_endpoint"], self.srv.url + "/oauth/revoke")
        self.assertEqual(md["introspection_endpoint"], self.srv.url + "/oauth/introspect")
        self.assertEqual(md["grant_types_supported"], ["client_credentials", "refresh_token"])
        self.assertIn("client_secret_basic", md["token_endpoint_auth_methods_supported"])
        self.assertIn("client_secret_post", md["token_endpoint_auth_methods_supported"])
        self.assertEqual(set(md["scopes_supported"]),
                         {"events:write", "events:read", "endpoints:read", "endpoints:write",
                          "deliveries:read", "deliveries:write", "admin"})

    def test_clients_are_managed_per_account_and_deleting_revokes(self):
        st, acct, _ = self.srv.api("POST", "/v1/accounts", {"name": "clients"})
        self.assertEqual(st, 201)
        hdr = {"X-Workflux-Account": acct["id"]}
        c = new_client(self.srv, ["endpoints:read"], account=acct["id"])
        self.assertEqual(c["account_id"], acct["id"])
        self.assertEqual(c["scopes"], ["endpoints:read"])
        st, lst, _ = self.srv.api("GET", "/v1/oauth-clients", headers=hdr)
        self.assertEqual([x["client_id"] for x in lst["data"]], [c["client_id"]])
        self.assertNotIn("client_secret", lst["data"][0])
        # The client is no API key: not listed with keys, not usable as a bearer.
        st, keys, _ = self.srv.api("GET", "/v1/accounts/%s/api-keys" % acct["id"])
        self.assertEqual(keys["data"], [])
        st, body, _ = self.srv.api("GET", "/v1/endpoints", key=c["client_secret"])
        self.assertEqual(st, 401)
        self.assertIn("/oauth/token", body["error"]["message"])
        # Its tokens act for its account only.
        t = token(self.srv, c)
        st, eps, _ = self.srv.api("GET", "/v1/endpoints", key=t["access_token"])
        self.assertEqual((st, eps["data"]), (200, []))
        st, body, _ = self.srv.api("GET", "/v1/endpoints", key=t["access_token"],
                                   headers={"X-Workflux-Account": "acct_default"})
        self.assertEqual(st, 403, body)
        # Bad input.
        st, body, _ = self.srv.api("POST", "/v1/oauth-clients", {"scopes": ["events:fly"]})
        self.assertEqual(st, 422, body)
        self.assertEqual(body["error"]["fields"][0]["path"], "scopes")
        st, body, _ = self.srv.api("POST", "/v1/oauth-clients", {"scopes": []})
        self.assertEqual(st, 422, body)
        # Deleting it revokes its tokens at once and its secret stops working.
        st, _, _ = self.srv.api("DELETE", "/v1/oauth-clients/" + c["id"], headers=hdr)
        self.assertEqual(st, 204)
        self.assertEqual(self.srv.api("GET", "/v1/endpoints", key=t["access_token"])[0], 401)
        self.assertEqual(self.grant(c, grant_type="client_credentials")[0], 401)
        self.assertEqual(self.srv.api("DELETE", "/v1/oauth-clients/" + c["id"], headers=hdr)[0],
                         404)
        # Only admins manage clients.
        st, key, _ = self.srv.api("POST", "/v1/accounts/%s/api-keys" % acct["id"], {})
        st, body, _ = self.srv.api("POST", "/v1/oauth-clients", {}, key=key["secret"])
        self.assertEqual(st, 403, body)
        self.assertIn("admin", body["error"]["message"])


class Transcript(unittest.TestCase):
    """The OAuth flow with curl, as a user runs it, on a server with the defaults."""

    def setUp(self):
        self.srv = Server(test=self)
        self.srv.start()

    def test_curl_transcript(self):
        """The OAuth flow with curl, written to tests/artifacts/oauth-transcript.txt."""
        c = new_client(self.srv, ["events:write", "events:read", "endpoints:read"],
                       name="transcript")
        url = self.srv.url
        lines = []

        def curl(*args):
            argv = ["curl", "-sS", "-i"] + list(args)
            p = subprocess.run(argv, capture_output=True, text=True, timeout=30)
            self.assertEqual(p.returncode, 0, p.stderr)
            out = re.sub(r"(?m)^Date: .*\r?\n", "", p.stdout).replace("\r\n", "\n")
            shown = " ".join(shlex.quote(a) for a in argv)
            lines.append("$ " + shown + "\n" + out.rstrip("\n") + "\n")
            return out.split("\n\n", 1)[1] if "\n\n" in out else ""

        curl(url + "/.well-known/oauth-authorization-server")
        body = json.loads(curl("-u", "%s:%s" % (c["client_id"], c["client_secret"]),
                                "-d", "grant_type=client_credentials",
                                "-d", "scope=events:write events:read",
                                url + "/oauth/token"))
        access, refresh = body["access_token"], body["refresh_token"]
        curl("-H", "Authorization: Bearer " + access, "-H", "Content-Type: application/json",
             "-d", '{"event":"conversation.started","data":{"conversation_id":"c1",'
             '"agent_id":"a1","channel":"web"}}', url + "/v1/events")
        curl("-H", "Authorization: Bearer " + access, url + "/v1/endpoints")
        body = json.loads(curl("-u", "%s:%s" % (c["client_id"], c["client_secret"]),
                                "-d", "grant_type=refresh_token", "-d",
                                "refresh_token=" + refresh, url + "/oauth/token"))
        curl("-u", "%s:%s" % (c["client_id"], c["client_secret"]),
             "-d", "grant_type=refresh_token", "-d", "refresh_token=" + refresh,
             url + "/oauth/token")
        curl("-H", "Authorization: Bearer " + body["access_token"], url + "/v1/events?limit=1")
        curl("-u", "%s:%s" % (c["client_id"], c["client_secret"]),
             "-d", "token=" + body["access_token"], url + "/oauth/introspect")
        transcript = "".join(lines)
        self.assertIn('"error":"invalid_grant"', transcript)
        self.assertIn("HTTP/1.1 403", transcript)
        self.assertIn("HTTP/1.1 401", transcript)
        os.makedirs(ARTIFACTS, exist_ok=True)
        with open(os.path.join(ARTIFACTS, "oauth-transcript.txt"), "w") as f:
            f.write("# generated by tests/e2e/test_oauth.py (test_curl_transcript); "
                    "secrets are real but belong to a throwaway server\n\n" + transcript)


if __name__ == "__main__":
    unittest.main()
