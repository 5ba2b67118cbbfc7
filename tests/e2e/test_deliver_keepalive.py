"""Connections to a receiver are kept and reused: deliveries one after
another ride the connections already open (one per dispatcher thread at
most), whatever framing the answers use (Content-Length, chunked). A
request on a reused connection that the receiver closes before any byte of
an answer goes once more on a fresh connection within the same attempt, as
a receiver closing an idle keep-alive connection must not cost a retry;
one that closes a fresh connection that way is a failed attempt."""
import unittest

from apiutil import ApiCase
from rawreceiver import RawReceiver

DATA = {"conversation_id": "c-1", "message_id": "m-1", "user_id": "u-1", "content": "hi"}
CHUNKED = (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
           b"4;x=y\r\nthan\r\n3\r\nks!\r\n0\r\nX-Trailer: 1\r\n\r\n")
LENGTH = b"HTTP/1.1 200 OK\r\nContent-Length: 7\r\nX-Seen: 1\r\n\r\nthanks!"


class DeliverKeepAlive(ApiCase):
    serve_args = ["--allow-http", "--allow-networks", "127.0.0.0/8",
                  "--retry-schedule", "0ms,100ms,100ms", "--attempt-timeout", "5s"]

    def receiver(self, answer, drop_at=None):
        rc = RawReceiver([], default=answer, keep=True, drop_at=drop_at)
        self.addCleanup(rc.close)
        for old in self.call("GET", "/v1/endpoints")["data"]:
            self.call("DELETE", "/v1/endpoints/" + old["id"], status=204)
        self.endpoint(rc.url)
        return rc

    def one_after_another(self, n):
        """n events, each published once the one before was delivered: their deliveries."""
        out = []
        for _ in range(n):
            ev = self.publish("user.message", DATA)
            self.assertEqual(ev["deliveries"], 1)
            d = self.wait_event_deliveries(ev["id"], 1)[0]
            out.append(self.delivery(d["id"]))
        return out

    def check_reused(self, answer):
        rc = self.receiver(answer)
        dlvs = self.one_after_another(6)
        for d in dlvs:
            self.assertEqual(d["status"], "delivered", d)
            self.assertEqual(len(d["attempts"]), 1, d)
            self.assertEqual(d["attempts"][0]["response_body"], "thanks!", d)
        self.assertEqual(len(rc.requests), 6, rc.requests)
        # Two dispatcher threads: at most two connections carried the six.
        self.assertLessEqual(len({conn for conn, _, _ in rc.requests}), 2, rc.requests)
        self.assertTrue(any(k > 1 for _, k, _ in rc.requests), rc.requests)

    def test_reused_with_content_length(self):
        self.check_reused(LENGTH)

    def test_reused_with_chunked_answers(self):
        self.check_reused(CHUNKED)
        d = self.call("GET", "/v1/deliveries")["data"][0]
        a = self.delivery(d["id"])["attempts"][0]
        # The head kept for the log is the answer's, not its trailers.
        self.assertEqual(a["response_headers"], [{"name": "Transfer-Encoding", "value": "chunked"}])

    def test_stale_reused_connection_sent_again_on_a_fresh_one(self):
        # Every connection answers its first request and drops its second.
        rc = self.receiver(LENGTH, drop_at=2)
        dlvs = self.one_after_another(6)
        for d in dlvs:
            self.assertEqual(d["status"], "delivered", d)
            self.assertEqual(len(d["attempts"]), 1, d)  # no attempt lost to the stale connection
            self.assertEqual(d["attempts"][0]["status_code"], 200, d)
        sent = [(k, dlv) for (_, k, _), dlv in zip(rc.requests, rc.deliveries)]
        dropped = [dlv for k, dlv in sent if k == 2]
        self.assertTrue(dropped, "no request rode a reused connection: %s" % sent)
        for dlv in dropped:
            # The same request went out again, first on a fresh connection.
            self.assertEqual([k for k, other in sent if other == dlv], [2, 1], sent)

    def test_fresh_connection_closed_is_a_failed_attempt(self):
        # A fresh connection that closes without a byte is no stale one: no second send.
        rc = self.receiver(LENGTH, drop_at=1)
        ev = self.publish("user.message", DATA)
        d = self.wait_event_deliveries(ev["id"], 1)[0]
        d = self.delivery(d["id"])
        self.assertEqual(d["status"], "failed", d)
        self.assertEqual(len(d["attempts"]), 3, d)
        for a in d["attempts"]:
            self.assertEqual(a["error"], "the receiver closed the connection without answering")
        self.assertEqual(len(rc.requests), 3, rc.requests)


if __name__ == "__main__":
    unittest.main()
