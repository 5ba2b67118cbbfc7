"""Connections to a receiver are kept and reused: deliveries one after
another ride the connections already open (one per dispatcher thread at
most), whatever framing the answers use (Content-Length, chunked). A
request on a reused connection that the receiver closes before any byte of
an answer goes once more on a fresh connection within the same attempt, as
a receiver closing an idle keep-alive connection must not cost a retry;
one that closes a fresh connection that way is a failed attempt."""
import socket
import threading
import time
import unittest

from apiutil import ApiCase

DATA = {"conversation_id": "c-1", "message_id": "m-1", "user_id": "u-1", "content": "hi"}
IO_TIMEOUT = 30  # seconds any socket call of the receiver may block


class KeepAliveReceiver:
    """A TCP listener on loopback that reads whole HTTP requests on each
    connection and answers them with `answer` (raw bytes, keeping the
    connection), except that request number `drop_at` on a connection (None:
    never) is read and then the connection closed without a byte."""

    def __init__(self, answer, drop_at=None):
        self.answer = answer
        self.drop_at = drop_at
        self.requests = []  # (connection number, request number on it, X-Workflux-Delivery)
        self.cond = threading.Condition()
        self.stopped = threading.Event()
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.url = "http://127.0.0.1:%d/hook" % self.port
        self.conns = []
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self):
        n = 0
        while not self.stopped.is_set():
            try:
                c, _ = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            n += 1
            c.settimeout(IO_TIMEOUT)
            self.conns.append(c)
            threading.Thread(target=self._serve, args=(c, n), daemon=True).start()

    @staticmethod
    def _read_request(c, buf):
        """Reads one request; returns (its head, what is left after it), or
        (None, None) when the peer closed."""
        while b"\r\n\r\n" not in buf:
            d = c.recv(65536)
            if not d:
                return None, None
            buf += d
        head, rest = buf.split(b"\r\n\r\n", 1)
        length = 0
        for line in head.split(b"\r\n")[1:]:
            k, _, v = line.partition(b":")
            if k.strip().lower() == b"content-length":
                length = int(v.strip())
        while len(rest) < length:
            d = c.recv(65536)
            if not d:
                return None, None
            rest += d
        return head, rest[length:]

    def _serve(self, c, conn_no):
        buf = b""
        k = 0
        try:
            while not self.stopped.is_set():
                head, buf = self._read_request(c, buf)
                if head is None:
                    return
                k += 1
                dlv = None
                for line in head.split(b"\r\n")[1:]:
                    name, _, v = line.partition(b":")
                    if name.lower() == b"x-workflux-delivery":
                        dlv = v.strip().decode()
                with self.cond:
                    self.requests.append((conn_no, k, dlv))
                    self.cond.notify_all()
                if k == self.drop_at:
                    return  # closed without a byte of an answer
                c.sendall(self.answer)
        except OSError:
            return
        finally:
            c.close()

    def close(self):
        self.stopped.set()
        self.sock.close()
        self.thread.join(5)
        for c in self.conns:
            try:
                c.close()
            except OSError:
                pass


CHUNKED = (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
           b"4;x=y\r\nthan\r\n3\r\nks!\r\n0\r\nX-Trailer: 1\r\n\r\n")
LENGTH = b"HTTP/1.1 200 OK\r\nContent-Length: 7\r\nX-Seen: 1\r\n\r\nthanks!"


class DeliverKeepAlive(ApiCase):
    serve_args = ["--allow-http", "--allow-networks", "127.0.0.0/8",
                  "--retry-schedule", "0ms,100ms,100ms", "--attempt-timeout", "5s"]

    def receiver(self, answer, drop_at=None):
        rc = KeepAliveReceiver(answer, drop_at)
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
        dropped = [dlv for _, k, dlv in rc.requests if k == 2]
        self.assertTrue(dropped, "no request rode a reused connection: %s" % rc.requests)
        for dlv in dropped:
            # The same request went out again, first on a fresh connection.
            again = [k for _, k, other in rc.requests if other == dlv and k == 1]
            self.assertEqual(len(again), 1, rc.requests)

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
