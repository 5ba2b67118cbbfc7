"""Publishes answered from the store's completion (on SQLite they run on the
HTTP loops and wait for their commit without a thread): pipelined requests
on one connection, publishes among other requests, are answered in order;
clients that go away while their publish commits leave the server whole
(the sanitizers watch the log), and their events are stored all the same;
many connections publishing at once each get their own answers; a server
stopped while publishes are under way exits cleanly and keeps every one it
answered."""
import json
import socket
import threading
import time
import unittest

from apiutil import ApiCase, GUIDE_SAMPLES

STARTED = GUIDE_SAMPLES["conversation.started"]
READ_TIMEOUT = 15  # seconds; every read waits for an expected answer


def read_answers(s, n, timeout=READ_TIMEOUT):
    """Reads n answers from socket s: [(status, headers, body)]."""
    data = b""
    answers = []
    deadline = time.monotonic() + timeout
    while len(answers) < n:
        head, sep, rest = data.partition(b"\r\n\r\n")
        if sep:
            lines = head.decode("latin-1").split("\r\n")
            headers = {}
            for line in lines[1:]:
                k, _, v = line.partition(":")
                headers[k.strip().lower()] = v.strip()
            length = int(headers.get("content-length", "0"))
            if len(rest) >= length:
                answers.append((int(lines[0].split(" ")[1]), headers, rest[:length]))
                data = rest[length:]
                continue
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError("%d of %d answers after %ds: %r"
                                 % (len(answers), n, timeout, data[:300]))
        s.settimeout(left)
        got = s.recv(65536)
        if not got:
            raise AssertionError("closed after %d of %d answers" % (len(answers), n))
        data += got
    return answers


class LoopPublishTest(ApiCase):

    def raw_request(self, method, path, body=None, headers=()):
        lines = ["%s %s HTTP/1.1" % (method, path), "Host: x",
                 "Authorization: Bearer " + self.srv.root_key]
        lines += list(headers)
        data = b""
        if body is not None:
            data = json.dumps(body).encode()
            lines += ["Content-Type: application/json", "Content-Length: %d" % len(data)]
        return ("\r\n".join(lines) + "\r\n\r\n").encode() + data

    def test_pipelined_answers_in_order(self):
        event = {"event": "conversation.started", "data": STARTED}
        reqs = [
            self.raw_request("POST", "/v1/events", event, ["Idempotency-Key: pipe-1"]),
            self.raw_request("POST", "/v1/events", event, ["Idempotency-Key: pipe-1"]),
            self.raw_request("POST", "/v1/events", {"event": "no.such", "data": {}}),
            self.raw_request("GET", "/v1/events?limit=1"),
            self.raw_request("POST", "/v1/events/batch", {"events": [event, event]}),
            self.raw_request("POST", "/v1/events", event),
            self.raw_request("GET", "/healthz"),
        ]
        s = socket.create_connection(("127.0.0.1", self.srv.port), timeout=READ_TIMEOUT)
        try:
            s.sendall(b"".join(reqs))
            answers = read_answers(s, len(reqs))
        finally:
            s.close()
        self.assertEqual([a[0] for a in answers], [202, 200, 422, 200, 200, 202, 200],
                         [a[2][:200] for a in answers])
        first = json.loads(answers[0][2])
        self.assertEqual(json.loads(answers[1][2])["id"], first["id"])
        self.assertEqual(answers[0][1]["location"], "/v1/events/" + first["id"])
        self.assertEqual(json.loads(answers[3][2])["data"][0]["id"], first["id"])
        batch = json.loads(answers[4][2])["results"]
        self.assertEqual([r["status"] for r in batch], [202, 202])
        last = json.loads(answers[5][2])
        self.assertEqual(self.call("GET", "/v1/events/" + last["id"])["id"], last["id"])

    def test_client_gone_while_publishing(self):
        # Each client sends a publish and closes at once, many times over:
        # the answers go nowhere, the events are stored all the same.
        event = {"event": "conversation.started", "data": STARTED}
        n = 40
        for i in range(n):
            s = socket.create_connection(("127.0.0.1", self.srv.port), timeout=READ_TIMEOUT)
            s.sendall(self.raw_request("POST", "/v1/events", event,
                                       ["Idempotency-Key: gone-%d" % i]))
            # Closed at once: the server sees the end of the stream while the
            # publish commits, and its answer meets a closed socket.
            s.close()
        # The publishes were read before the clients left; nothing tells when
        # they commit, so wait (bounded) for all n, then each key must
        # answer the event stored for it (200), not publish anew (202).
        deadline = time.monotonic() + READ_TIMEOUT
        stored = 0
        while time.monotonic() < deadline:
            stored = len(self.call("GET", "/v1/events?limit=100")["data"])
            if stored >= n:
                break
            time.sleep(0.05)
        self.assertEqual(stored, n)
        statuses = [self.srv.api("POST", "/v1/events", event,
                                 headers={"Idempotency-Key": "gone-%d" % i})[0]
                    for i in range(n)]
        self.assertEqual(statuses, [200] * n)

    def test_many_connections_each_answered(self):
        event = {"event": "conversation.started", "data": STARTED}
        conns, per = 16, 25
        results = {}
        errors = []

        def client(c):
            try:
                s = socket.create_connection(("127.0.0.1", self.srv.port), timeout=READ_TIMEOUT)
                ids = []
                try:
                    for i in range(per):
                        s.sendall(self.raw_request("POST", "/v1/events", event,
                                                   ["Idempotency-Key: c%d-%d" % (c, i)]))
                        st, _, body = read_answers(s, 1)[0]
                        if st != 202:
                            errors.append((c, i, st, body[:200]))
                            return
                        ids.append(json.loads(body)["id"])
                finally:
                    s.close()
                results[c] = ids
            except Exception as e:  # reported below
                errors.append((c, repr(e)))

        threads = [threading.Thread(target=client, args=(c,)) for c in range(conns)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        self.assertEqual(errors, [])
        ids = [i for c in range(conns) for i in results[c]]
        self.assertEqual(len(set(ids)), conns * per)
        # Every answer names its own event: the key it was sent with finds it again.
        for c in (0, conns - 1):
            for i in (0, per - 1):
                st, b, _ = self.srv.api("POST", "/v1/events", event,
                                        headers={"Idempotency-Key": "c%d-%d" % (c, i)})
                self.assertEqual((st, b["id"]), (200, results[c][i]))

    def test_half_closed_client_is_answered_then_closed(self):
        # A client sends its request and half-closes at once: the end of its
        # stream may reach the server with the request, before the answer is
        # made. It gets the answer, then the server's end; the bounded read
        # fails if the connection were left open until its idle timeout (60 s).
        event = {"event": "conversation.started", "data": STARTED}
        for req in (self.raw_request("POST", "/v1/events", event),
                    self.raw_request("GET", "/healthz")):
            s = socket.create_connection(("127.0.0.1", self.srv.port), timeout=READ_TIMEOUT)
            try:
                s.sendall(req)
                s.shutdown(socket.SHUT_WR)
                st, headers, _ = read_answers(s, 1)[0]
                self.assertIn(st, (200, 202))
                s.settimeout(READ_TIMEOUT)
                self.assertEqual(s.recv(65536), b"")
            finally:
                s.close()

    def test_requests_in_pieces_and_after_a_pause(self):
        # Each read of the server empties the socket and waits for the next
        # edge: a head and a body that come in pieces, a request that comes
        # while the connection is idle after an answer, and a body larger
        # than one read (a batch of 200 events, about 50 KiB) are all read.
        event = {"event": "conversation.started", "data": STARTED}
        req = self.raw_request("POST", "/v1/events", event)
        cut = req.index(b"\r\n\r\n")
        pieces = [req[:10], req[10:cut], req[cut:cut + 4], req[cut + 4:cut + 30],
                  req[cut + 30:]]
        big = self.raw_request("POST", "/v1/events/batch", {"events": [event] * 200})
        self.assertGreater(len(big), 32 * 1024)
        s = socket.create_connection(("127.0.0.1", self.srv.port), timeout=READ_TIMEOUT)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            for piece in pieces:
                s.sendall(piece)
                time.sleep(0.05)  # separate segments, so separate reads
            self.assertEqual(read_answers(s, 1)[0][0], 202)
            time.sleep(0.3)  # the connection is idle, its socket read empty
            s.sendall(req)
            self.assertEqual(read_answers(s, 1)[0][0], 202)
            s.sendall(big)
            st, _, body = read_answers(s, 1)[0]
            self.assertEqual(st, 200, body[:200])
            self.assertEqual([r["status"] for r in json.loads(body)["results"]], [202] * 200)
            s.sendall(req + req)
            self.assertEqual([a[0] for a in read_answers(s, 2)], [202, 202])
        finally:
            s.close()

    def test_stop_while_publishing(self):
        # The server stops (SIGTERM) while 16 connections publish: it exits
        # cleanly, and every publish it answered 202 is there after a restart.
        event = {"event": "conversation.started", "data": STARTED}
        conns, per = 16, 400
        answered = {}
        lock = threading.Lock()
        enough = threading.Event()

        def client(c):
            try:
                s = socket.create_connection(("127.0.0.1", self.srv.port), timeout=READ_TIMEOUT)
            except OSError:
                return
            try:
                for i in range(per):
                    key = "stop-%d-%d" % (c, i)
                    s.sendall(self.raw_request("POST", "/v1/events", event,
                                               ["Idempotency-Key: " + key]))
                    st, _, body = read_answers(s, 1)[0]
                    if st != 202:
                        return
                    with lock:
                        answered[key] = json.loads(body)["id"]
                        if len(answered) >= 200:
                            enough.set()
            except (OSError, AssertionError):
                return  # the server went away mid-request: that publish was not answered
            finally:
                s.close()

        threads = [threading.Thread(target=client, args=(c,)) for c in range(conns)]
        for t in threads:
            t.start()
        self.assertTrue(enough.wait(60), "fewer than 200 publishes answered in 60 s")
        self.assertEqual(self.srv.stop(), 0)
        for t in threads:
            t.join(60)
        self.srv.start()
        with lock:
            done = dict(answered)
        for key, event_id in done.items():
            st, b, _ = self.srv.api("POST", "/v1/events", event, headers={"Idempotency-Key": key})
            self.assertEqual((st, b["id"]), (200, event_id), key)


if __name__ == "__main__":
    unittest.main()
