"""Rate limits per credential and per account: a burst answers 429 with
Retry-After and RateLimit-Limit / -Remaining / -Reset; a publish refused
with 429 stores nothing (every 202 is an event, nothing else is); other
credentials and accounts keep their own buckets; 0 turns limits off."""
import unittest

from harness import Server

BURST_MAX = 400  # a burst never sends more requests than this


class RateLimit(unittest.TestCase):
    def start(self, *args):
        srv = Server(args=list(args), test=self)
        srv.start()
        return srv

    def new_key(self, srv, account="acct_default", **body):
        st, k, _ = srv.api("POST", "/v1/accounts/%s/api-keys" % account, body)
        self.assertEqual(st, 201, k)
        return k["secret"]

    def burst(self, srv, key, method="GET", path="/v1/endpoints", body=None):
        """Sends requests on one connection until one answers 429 (at most BURST_MAX).
        Returns (answers before it, the 429 answer)."""
        conn = srv.connection()
        answers = []
        try:
            for _ in range(BURST_MAX):
                got = srv.api(method, path, body, key=key, conn=conn)
                if got[0] == 429:
                    return answers, got
                answers.append(got)
        finally:
            conn.close()
        self.fail("no 429 within %d requests" % BURST_MAX)

    def test_burst_answers_429_with_the_headers(self):
        srv = self.start("--rate-limit", "20", "--rate-limit-account", "0")
        key = self.new_key(srv)
        st, _, h = srv.api("GET", "/v1/endpoints", key=key)
        self.assertEqual(st, 200)
        self.assertEqual(h["RateLimit-Limit"], "20")
        self.assertEqual(h["RateLimit-Remaining"], "19")
        self.assertEqual(h["RateLimit-Reset"], "1")
        before, (st, body, h) = self.burst(srv, key)
        self.assertGreaterEqual(len(before), 18)
        self.assertEqual(body["error"]["type"], "rate_limited")
        self.assertIn("20 requests per second for this credential", body["error"]["message"])
        self.assertGreaterEqual(int(h["Retry-After"]), 1)
        self.assertEqual(h["RateLimit-Limit"], "20")
        self.assertEqual(h["RateLimit-Remaining"], "0")
        self.assertEqual(h["RateLimit-Reset"], "1")
        # Another key has its own bucket.
        self.assertEqual(srv.api("GET", "/v1/endpoints", key=self.new_key(srv))[0], 200)
        # The limited key is served again once its bucket refills (bounded wait).
        srv.wait_for(lambda: srv.api("GET", "/v1/endpoints", key=key)[0] == 200, timeout=10,
                     what="the bucket to refill", interval=0.1)

    def test_a_refused_publish_stores_nothing(self):
        srv = self.start("--rate-limit", "10", "--rate-limit-account", "0")
        key = self.new_key(srv)
        event = {"event": "conversation.started",
                 "data": {"conversation_id": "c1", "agent_id": "a1", "channel": "web"}}
        accepted, (st, body, _) = self.burst(srv, key, "POST", "/v1/events", event)
        self.assertEqual(st, 429, body)
        self.assertTrue(all(a[0] == 202 for a in accepted), accepted[-1:])
        ids = {a[1]["id"] for a in accepted}
        # The root key (its own bucket) reads every stored event: exactly the 202s.
        st, page, _ = srv.api("GET", "/v1/events?limit=500")
        self.assertEqual(st, 200)
        self.assertEqual({e["id"] for e in page["data"]}, ids)

    def test_account_limit_spans_its_credentials(self):
        srv = self.start("--rate-limit", "1000", "--rate-limit-account", "15")
        st, acct, _ = srv.api("POST", "/v1/accounts", {"name": "busy"})
        keys = [self.new_key(srv, acct["id"]) for _ in range(3)]
        conn = srv.connection()
        seen = None
        for i in range(BURST_MAX):
            got = srv.api("GET", "/v1/endpoints", key=keys[i % 3], conn=conn)
            if got[0] == 429:
                seen = (i, got)
                break
        conn.close()
        self.assertIsNotNone(seen, "no 429 within %d requests" % BURST_MAX)
        i, (st, body, h) = seen
        self.assertGreaterEqual(i, 13)
        self.assertIn("15 requests per second for this account", body["error"]["message"])
        self.assertEqual(h["RateLimit-Limit"], "15")
        # Another account is not slowed by this one.
        self.assertEqual(srv.api("GET", "/v1/endpoints", key=self.new_key(srv))[0], 200)

    def test_oauth_tokens_are_limited_too(self):
        from oauthutil import new_client, token
        srv = self.start("--rate-limit", "10", "--rate-limit-account", "0")
        t = token(srv, new_client(srv))["access_token"]
        _, (st, body, h) = self.burst(srv, t)
        self.assertEqual(h["RateLimit-Limit"], "10")

    def test_defaults_and_off(self):
        srv = self.start()
        st, _, h = srv.api("GET", "/v1/endpoints")
        self.assertEqual(h["RateLimit-Limit"], "10000")
        srv.stop()
        srv = self.start("--rate-limit", "0", "--rate-limit-account", "0")
        st, _, h = srv.api("GET", "/v1/endpoints")
        self.assertEqual(st, 200)
        self.assertIsNone(h.get("RateLimit-Limit"))
        p = srv.run_cli("serve", "-n", "--rate-limit", "-3")
        self.assertEqual(p.returncode, 2)
        self.assertIn("--rate-limit", p.stderr)


if __name__ == "__main__":
    unittest.main()
