"""The audit log: every change made through the API is recorded with the
credential that made it, when, and the changed fields (never a secret);
GET /v1/audit-log pages and filters them by action, target, actor and time;
a change that did not happen is not recorded; each account sees its own;
`fluxhook audit list` prints them."""
import json
import time
import unittest

from apiutil import ApiCase, rfc3339

DATA = {"conversation_id": "c", "message_id": "m", "user_id": "u", "content": "hi"}


class AuditTest(ApiCase):

    def log(self, key=None, headers=None, **query):
        """Every entry matching query, following next cursors with small pages."""
        out, after = [], None
        while True:
            q = dict(query, limit=3)
            if after:
                q["after"] = after
            page = self.call("GET", "/v1/audit-log?" + "&".join("%s=%s" % kv for kv in q.items()),
                             key=key, headers=headers)
            out += page["data"]
            after = page["next"]
            if not after:
                return out

    def root_key_id(self):
        keys = self.call("GET", "/v1/accounts/acct_default/api-keys")["data"]
        self.assertEqual(len(keys), 1, keys)
        return keys[0]["id"]

    def test_every_change_is_recorded_once_without_secrets(self):
        actor = self.root_key_id()
        rc = self.receiver()
        t0 = time.time()
        ep = self.endpoint(rc.url, description="first")
        eid = ep["id"]
        self.call("PATCH", "/v1/endpoints/" + eid, {"description": "second",
                                                    "event_types": ["user.message"]})
        self.call("POST", "/v1/endpoints/%s/disable" % eid, {"reason": "maintenance"})
        self.call("POST", "/v1/endpoints/%s/enable" % eid, {})
        self.call("GET", "/v1/endpoints/%s/secret" % eid)
        rot = self.call("POST", "/v1/endpoints/%s/secret/rotate" % eid, {"grace_seconds": 60})
        ev = self.publish("user.message", DATA)
        dlv = self.wait_event_deliveries(ev["id"], 1, ("delivered",))[0]
        self.call("POST", "/v1/deliveries/%s/retry" % dlv["id"], {}, 202)
        self.wait_status(dlv["id"], ("delivered",))
        self.call("POST", "/v1/endpoints/%s/replay" % eid, {"since": rfc3339(t0 - 60)}, 202)
        acct = self.call("POST", "/v1/accounts", {"name": "audited"}, 201)
        k = self.call("POST", "/v1/accounts/%s/api-keys" % acct["id"], {"name": "k"}, 201)
        self.call("DELETE", "/v1/api-keys/%s" % k["id"], status=204,
                  headers={"X-Workflux-Account": acct["id"]})
        self.call("DELETE", "/v1/endpoints/" + eid, status=204)

        # Changes that did not happen are not recorded.
        self.error("PATCH", "/v1/endpoints/" + eid, {"description": "x"}, 404)
        self.error("DELETE", "/v1/endpoints/" + eid, status=404)
        self.error("POST", "/v1/endpoints", {"url": "ftp://nope"}, 400)

        entries = self.log()
        actions = [e["action"] for e in reversed(entries)]
        self.assertEqual(actions, [
            "endpoint.created", "endpoint.updated", "endpoint.disabled", "endpoint.enabled",
            "endpoint.secret_revealed", "endpoint.secret_rotated", "delivery.retried",
            "endpoint.replayed", "endpoint.deleted"])
        for e in entries:
            self.assertEqual(e["actor"], actor)
            self.assertEqual(e["account_id"], "acct_default")
            self.assertRegex(e["id"], r"^aud_")
            self.assertGreaterEqual(e["created_at"], rfc3339(t0 - 1))
        by = {e["action"]: e for e in entries}
        self.assertEqual(by["endpoint.created"]["target"], eid)
        self.assertEqual(by["endpoint.created"]["details"]["description"], "first")
        self.assertEqual(by["endpoint.updated"]["details"],
                         {"description": "second", "event_types": "user.message"})
        self.assertEqual(by["endpoint.disabled"]["details"], {"reason": "maintenance"})
        self.assertEqual(by["endpoint.secret_rotated"]["details"], {"grace_seconds": 60})
        self.assertEqual(by["delivery.retried"]["target"], dlv["id"])
        self.assertEqual(by["endpoint.replayed"]["details"]["replayed"], 1)
        text = json.dumps(entries)
        self.assertNotIn("whsec_", text)
        self.assertNotIn(ep["secret"][6:], text)
        self.assertNotIn(rot["secret"][6:], text)

        # The key's changes are in its own account's log.
        other = self.call("GET", "/v1/audit-log",
                          headers={"X-Workflux-Account": acct["id"]})["data"]
        self.assertEqual([e["action"] for e in reversed(other)],
                         ["account.created", "api_key.created", "api_key.deleted"])
        self.assertEqual(other[0]["target"], k["id"])
        self.assertNotIn(k["secret"], json.dumps(other))

    def test_filters_and_isolation(self):
        acct, key = self.new_account()
        a = self.endpoint("https://a.example.com/")
        b = self.endpoint("https://b.example.com/")
        self.call("PATCH", "/v1/endpoints/" + a["id"], {"description": "x"})
        theirs = self.endpoint("https://c.example.com/", key=key)

        self.assertEqual([e["target"] for e in self.log(target=a["id"])], [a["id"], a["id"]])
        self.assertEqual([e["target"] for e in self.log(action="endpoint.created")],
                         [b["id"], a["id"]])
        self.assertEqual(self.log(action="endpoint.deleted"), [])
        mine = self.log(actor=self.root_key_id())
        self.assertEqual(len(mine), 3)
        # The other account sees only its own changes: the admin made it and its
        # key, its own key made its endpoint.
        got = self.log(key=key)
        self.assertEqual([(e["action"], e["target"]) for e in got],
                         [("endpoint.created", theirs["id"]), ("api_key.created", got[1]["target"]),
                          ("account.created", acct)])
        self.assertRegex(got[1]["target"], r"^key_")
        self.assertEqual(got[1]["actor"], self.root_key_id())
        self.assertNotEqual(got[0]["actor"], self.root_key_id())
        self.assertEqual(self.log(key=key, actor=got[0]["actor"]), got[:1])
        self.assertNotIn(theirs["id"], json.dumps(self.log()))
        # Time ranges.
        first = self.log()[-1]["created_at"]
        self.assertEqual(self.log(until=first), [])
        self.assertEqual(len(self.log(since=first)), 3)
        self.assertEqual(self.log(since=rfc3339(time.time() + 3600)), [])
        err = self.error("GET", "/v1/audit-log?since=yesterday", status=400)
        self.assertIn("since: expected an RFC 3339", err["message"])
        self.error("GET", "/v1/audit-log?after=ep_123", status=400)

    def test_access_changes_and_token_actors(self):
        from oauthutil import new_client, token
        acct, key = self.new_account("access")
        hdr = {"X-Workflux-Account": acct}
        keys = self.call("GET", "/v1/accounts/%s/api-keys" % acct)["data"]
        self.call("POST", "/v1/api-keys/%s/rotate" % keys[0]["id"], {"grace_seconds": 60},
                  headers=hdr)
        client = new_client(self.srv, scopes=["endpoints:read", "endpoints:write"], account=acct)
        tok = token(self.srv, client)
        # A change made with an OAuth token is recorded with the token's credential id.
        ep = self.endpoint("https://t.example.com/", key=tok["access_token"])
        link = self.call("POST", "/v1/portal-links",
                         {"account_id": acct, "expires_in": 600, "scopes": ["endpoints:read"]},
                         201)
        self.call("DELETE", "/v1/oauth-clients/%s" % client["id"], status=204, headers=hdr)
        got = self.log(headers=hdr)
        by = {e["action"]: e for e in got}
        for action in ("api_key.rotated", "oauth_client.created", "endpoint.created",
                       "portal_link.issued", "oauth_client.deleted"):
            self.assertIn(action, by, [e["action"] for e in got])
        self.assertEqual(by["api_key.rotated"]["details"], {"grace_seconds": 60})
        self.assertEqual(by["oauth_client.created"]["target"], client["id"])
        self.assertEqual(by["portal_link.issued"]["details"]["scopes"], "endpoints:read")
        self.assertEqual(by["endpoint.created"]["target"], ep["id"])
        actor = by["endpoint.created"]["actor"]
        self.assertNotEqual(actor, self.root_key_id())
        self.assertNotIn(actor, [k["id"] for k in keys])
        self.assertNotIn(tok["access_token"], json.dumps(got))
        self.assertNotIn(client["client_secret"], json.dumps(got))
        self.assertNotIn(link["url"].split("#")[-1], json.dumps(got))

    def test_cli(self):
        ep = self.endpoint("https://a.example.com/")
        self.call("DELETE", "/v1/endpoints/" + ep["id"], status=204)
        p = self.srv.run_cli("audit", "list", "--action", "endpoint.deleted")
        self.assertEqual(p.returncode, 0, p.stderr)
        lines = p.stdout.strip().splitlines()
        self.assertEqual(lines[0].split(), ["TIME", "ACTOR", "ACTION", "TARGET"])
        self.assertEqual(len(lines), 2, p.stdout)
        self.assertIn("endpoint.deleted", lines[1])
        self.assertIn(ep["id"], lines[1])
        p = self.srv.run_cli("audit", "list", "--json", "--since", "1h", "--target", ep["id"])
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual([e["action"] for e in json.loads(p.stdout)["data"]],
                         ["endpoint.deleted", "endpoint.created"])
        p = self.srv.run_cli("audit", "list", "--since", "soon")
        self.assertEqual(p.returncode, 2)
        self.assertIn("--since: expected an RFC 3339 time", p.stderr)


if __name__ == "__main__":
    unittest.main()
