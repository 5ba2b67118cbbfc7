"""Two serve processes sharing one store: a key rotated without grace or
deleted, an access token revoked (alone, with its grant, or with its OAuth
client) on one of them is refused at the very next request on the other,
however many requests the other authenticated with it before (SQLite: each
process keeps the credentials it found in memory and must notice another
process's commit), and on the process that made the change too."""
import unittest

from apiutil import ApiCase, SERVE_ARGS
from harness import Server
from oauthutil import form_post, new_client, token


class SharedStoreAuth(ApiCase):

    serve_args = SERVE_ARGS + ["--oauth-token-ttl", "1h"]

    def setUp(self):
        super().setUp()
        self.other = Server(args=list(self.serve_args), db=self.srv.db,
                            root_key=self.srv.root_key, test=self)
        self.other.start()
        self.acct = self.call("POST", "/v1/accounts", {"name": "tenant"}, 201)["id"]
        self.hdr = {"X-Workflux-Account": self.acct}

    def works(self, srv, secret, conn, times=3):
        """secret authenticates on srv, times over (on one keep-alive connection)."""
        for _ in range(times):
            st, b, _ = srv.api("GET", "/v1/endpoints", key=secret, conn=conn)
            self.assertEqual(st, 200, b)

    def refused(self, srv, secret, conn, why):
        st, b, _ = srv.api("GET", "/v1/endpoints", key=secret, conn=conn)
        self.assertEqual(st, 401, b)
        self.assertIn(why, b["error"]["message"])

    def key(self):
        k = self.call("POST", "/v1/accounts/%s/api-keys" % self.acct, {"name": "k"}, 201)
        return k["id"], k.get("secret") or k.get("key")

    def test_key_rotated_or_deleted_on_one_is_refused_at_once_on_the_other(self):
        here, there = self.srv.connection(), self.other.connection()
        key_id, old = self.key()
        self.works(self.other, old, there)
        self.works(self.srv, old, here)

        # Rotated here without grace: the old secret is refused there, the new one works.
        st, b, _ = self.srv.api("POST", "/v1/api-keys/%s/rotate" % key_id,
                                {"grace_seconds": 0}, headers=self.hdr)
        self.assertEqual(st, 200, b)
        new = b.get("secret") or b.get("key")
        self.refused(self.other, old, there, "grace period is over")
        self.refused(self.srv, old, here, "grace period is over")
        self.works(self.other, new, there)

        # Rotated there with grace: both work here until it is over.
        st, b, _ = self.other.api("POST", "/v1/api-keys/%s/rotate" % key_id,
                                  {"grace_seconds": 3600}, headers=self.hdr)
        self.assertEqual(st, 200, b)
        newer = b.get("secret") or b.get("key")
        self.works(self.srv, new, here, 1)
        self.works(self.srv, newer, here, 1)

        # Deleted there: refused here, by either secret.
        st, b, _ = self.other.api("DELETE", "/v1/api-keys/" + key_id, headers=self.hdr)
        self.assertEqual(st, 204, b)
        self.refused(self.srv, newer, here, "no such key")
        self.refused(self.srv, new, here, "no such key")
        self.refused(self.other, newer, there, "no such key")

    def test_token_revoked_on_one_is_refused_at_once_on_the_other(self):
        here, there = self.srv.connection(), self.other.connection()
        c = new_client(self.srv)
        a, b = token(self.srv, c), token(self.srv, c)
        for t in (a, b):
            self.works(self.other, t["access_token"], there)
            self.works(self.srv, t["access_token"], here)

        # An access token revoked here: refused there; its sibling still works.
        st, body, _ = form_post(self.srv, "/oauth/revoke", {"token": a["access_token"]},
                                basic=(c["client_id"], c["client_secret"]))
        self.assertEqual(st, 200, body)
        self.refused(self.other, a["access_token"], there, "revoked")
        self.works(self.other, b["access_token"], there, 1)

        # A refresh token revoked there ends its grant: b's access token is refused here.
        st, body, _ = form_post(self.other, "/oauth/revoke", {"token": b["refresh_token"]},
                                basic=(c["client_id"], c["client_secret"]))
        self.assertEqual(st, 200, body)
        self.refused(self.srv, b["access_token"], here, "revoked")

        # The client deleted there: its tokens are refused here.
        t = token(self.srv, c)
        self.works(self.srv, t["access_token"], here)
        st, body, _ = self.other.api("DELETE", "/v1/oauth-clients/" + c["id"])
        self.assertEqual(st, 204, body)
        self.refused(self.srv, t["access_token"], here, "revoked")


if __name__ == "__main__":
    unittest.main()
