"""Answers that are not HTTP, and connections that fail, are transport
failures: retried on the schedule, each attempt recorded with its
error_class and a plain message (never curl's "bad URL"). A refused port is
`connect`; an attempt that hangs on a reused keep-alive connection is
`timeout`, not a connect timeout."""
import socket
import unittest

from apiutil import ApiCase
from rawreceiver import OK, RawReceiver

DATA = {"conversation_id": "c-1", "message_id": "m-1", "user_id": "u-1", "content": "hi"}


class DeliverErrorClass(ApiCase):
    serve_args = ["--allow-http", "--allow-networks", "127.0.0.0/8",
                  "--retry-schedule", "0ms,100ms,100ms", "--attempt-timeout", "1s"]

    def raw(self, answers, default=OK):
        rc = RawReceiver(answers, default)
        self.addCleanup(rc.close)
        return rc

    def send_one(self, url):
        """A new endpoint for url, alone in being subscribed, and one event for it."""
        for old in self.call("GET", "/v1/endpoints")["data"]:
            self.call("DELETE", "/v1/endpoints/" + old["id"], status=204)
        ep = self.endpoint(url)
        ev = self.publish("user.message", DATA)
        self.assertEqual(ev["deliveries"], 1)
        return ep, ev

    def check_garbled(self, answer, eclass, message, prefix=False):
        """Two garbled answers, then a good one: the delivery is retried on
        the schedule and each garbled attempt says what went wrong (message,
        or what it starts with when prefix)."""
        rc = self.raw([answer, answer])
        ep, ev = self.send_one(rc.url)
        d = self.wait_event_deliveries(ev["id"], 1)[0]
        self.assertEqual(d["status"], "delivered", d)
        self.assertEqual(d["attempts_made"], 3)
        reqs = rc.wait_for(3)
        self.assertEqual(len(reqs), 3)
        for prev, cur in zip(reqs, reqs[1:]):
            self.assertGreaterEqual(cur[2] - prev[2], 0.09)  # the schedule's 100 ms
        a1, a2, a3 = self.delivery(d["id"])["attempts"]
        for a in (a1, a2):
            self.assertIsNone(a["status_code"], a)
            self.assertEqual(a["error_class"], eclass, a)
            self.assertEqual(a["error"][:len(message)] if prefix else a["error"], message, a)
            self.assertNotIn("URL", a["error"])
        self.assertEqual(a3["status_code"], 200)
        self.assertIsNone(a3["error"])
        self.assertNotIn("error_class", a3)  # absent when an answer came (CONTRACT §6)
        self.assertEqual(self.call("GET", "/v1/endpoints/" + ep["id"])["status"], "enabled")

    def test_bad_status_line(self):
        self.check_garbled(b"HTTP/1.1 abc OK\r\n\r\n", "protocol",
                           "the receiver's answer is not HTTP: bad status line")

    def test_http09_answer(self):
        self.check_garbled(b"thanks, got it\n", "protocol",
                           "the receiver's answer is not HTTP: bad status line")

    def test_binary_garbage(self):
        self.check_garbled(bytes(range(256)) * 4, "protocol",
                           "the receiver's answer is not HTTP: bad status line")

    def test_header_without_colon(self):
        self.check_garbled(b"HTTP/1.1 200 OK\r\nthis is no header\r\n\r\n", "protocol",
                           "the receiver's answer is not HTTP: malformed status line or header")

    def test_closed_in_the_middle_of_the_headers(self):
        # A 200 status line does not decide while its header block never ended.
        self.check_garbled(b"HTTP/1.1 200 OK\r\nContent-Le", "reset",
                           "the connection closed in the middle of the answer's headers")

    def test_closed_without_answer(self):
        self.check_garbled(b"", "reset", "the receiver closed the connection without answering")

    def test_reset(self):
        self.check_garbled("reset", "reset", "the connection broke before an answer", prefix=True)

    def test_refused_port_is_connect(self):
        probe = socket.socket()
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
        probe.close()
        ep, ev = self.send_one("http://127.0.0.1:%d/hook" % port)
        d = self.wait_event_deliveries(ev["id"], 1)[0]
        self.assertEqual(d["status"], "failed", d)
        self.assertEqual(d["attempts_made"], 3)  # retried through the whole schedule
        for a in self.delivery(d["id"])["attempts"]:
            self.assertIsNone(a["status_code"])
            self.assertEqual(a["error_class"], "connect")
            self.assertEqual(a["error"],
                             "cannot connect to 127.0.0.1 port %d: connection refused" % port)

    def test_hang_on_reused_connection_is_timeout(self):
        # Each connection's first request gets 200 and stays open; a second
        # request on one is never answered. Events go one after another until
        # one rides a reused connection (the dispatcher has 2 threads, each
        # with its own connections: at most the third does).
        rc = self.raw([], default="keepalive")
        ep, ev = self.send_one(rc.url)
        hung = None
        for i in range(3):
            if i > 0:
                ev = self.publish("user.message", DATA)
            d = self.wait_event_deliveries(ev["id"], 1)[0]
            first = self.delivery(d["id"])["attempts"][0]
            if first["status_code"] is None:
                hung = first
                break
        self.assertIsNotNone(hung, "no request went over a reused connection: %s"
                             % rc.requests)
        self.assertTrue(any(k == 2 for _, k, _ in rc.requests), rc.requests)
        self.assertEqual(hung["error_class"], "timeout", hung)
        self.assertEqual(hung["error"], "timeout after 1000 ms without an answer")
        self.assertGreaterEqual(hung["duration_ms"], 900)


if __name__ == "__main__":
    unittest.main()
