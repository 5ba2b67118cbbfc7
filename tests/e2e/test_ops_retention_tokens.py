"""Retention deletes OAuth and portal tokens that expired before its window
(and only those): a token still valid, or expired within the window, stays."""
import sqlite3
import unittest

from harness import Server, psql
from oauthutil import new_client, token


def count_tokens(srv):
    """The rows of the tokens table, read straight from the store."""
    if srv.db.startswith("sqlite:"):
        conn = sqlite3.connect("file:%s?mode=ro" % srv.db[len("sqlite:"):], uri=True, timeout=30)
        try:
            return conn.execute("SELECT count(*) FROM tokens").fetchone()[0]
        finally:
            conn.close()
    return int(psql(srv.db, "SELECT count(*) FROM tokens"))


class RetentionTokens(unittest.TestCase):

    def test_expired_tokens_go(self):
        # Access tokens live 1 s, refresh tokens 2 s; retention keeps 1 s.
        srv = Server(args=["--retention", "1s", "--oauth-token-ttl", "1s",
                           "--oauth-refresh-ttl", "2s"], test=self)
        srv.start()
        c = new_client(srv)
        for _ in range(3):
            token(srv, c)
        self.assertEqual(count_tokens(srv), 6)  # three access and three refresh tokens
        # Once each expired more than a window ago, a retention round deletes them.
        srv.wait_for(lambda: count_tokens(srv) == 0, timeout=20, what="expired tokens deleted")
        self.assertRegex(srv.log_text(), r"retention: deleted .*tokens=[1-6] ")
        # A new one stays while valid: the client still gets and uses tokens.
        t = token(srv, c)
        self.assertEqual(count_tokens(srv), 2)
        st, _, _ = srv.api("GET", "/v1/endpoints", key=t["access_token"])
        self.assertEqual(st, 200)


if __name__ == "__main__":
    unittest.main()
