"""Strict HTTP framing (issue 10): request-smuggling forms (two Content-Lengths,
Content-Length with Transfer-Encoding, other transfer codings, obsolete line
folding) answer 400 and close; an announced body over the cap answers 413 before
it is sent; oversize heads and URIs get the JSON error of the contract. Every
answer is read until the server closes the connection, so a second (smuggled)
request that was answered would show up as a second status line. Every error
answer, the HTTP layer's own included, is the contract's JSON error."""
import json
import socket
import time
import unittest

from harness import Server

READ_TIMEOUT = 10  # seconds; every read below waits for an expected event


def exchange(port, raw, timeout=READ_TIMEOUT):
    """Sends raw bytes, then reads until the server closes the connection.
    Returns (everything read, closed) where closed is False when the server
    kept the connection open past the timeout."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    data = b""
    closed = False
    deadline = time.monotonic() + timeout
    try:
        try:
            s.sendall(raw)
        except OSError:
            pass  # the server may close before it has read everything
        while time.monotonic() < deadline:
            s.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                got = s.recv(65536)
            except socket.timeout:
                break
            except ConnectionResetError:
                closed = True
                break
            if not got:
                closed = True
                break
            data += got
    finally:
        s.close()
    return data, closed


def parse_answers(data):
    """Splits what was read into answers: [(status, headers, body)]."""
    answers = []
    while data:
        head, sep, rest = data.partition(b"\r\n\r\n")
        if not sep:
            raise AssertionError("truncated answer: %r" % data[:300])
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ")[1])
        headers = {}
        for line in lines[1:]:
            k, _, v = line.partition(":")
            headers[k.strip().lower()] = v.strip()
        n = int(headers.get("content-length", "0"))
        answers.append((status, headers, rest[:n]))
        data = rest[n:]
    return answers


class StrictHttp(unittest.TestCase):
    def setUp(self):
        self.srv = Server(args=["--allow-http"], test=self)
        self.srv.start()
        self.auth = b"Authorization: Bearer " + self.srv.root_key.encode() + b"\r\n"

    def assert_refused(self, raw, status, type_=None, msg=None):
        """One JSON error answer with that status, then the connection closed."""
        data, closed = exchange(self.srv.port, raw)
        answers = parse_answers(data)
        self.assertEqual(len(answers), 1, "expected one answer, got %r" % data[:2000])
        got, headers, body = answers[0]
        self.assertEqual(got, status, data[:500])
        self.assertTrue(headers.get("content-type", "").startswith("application/json"),
                        data[:500])
        err = json.loads(body)["error"]
        self.assertIsInstance(err["message"], str)
        if type_ is not None:
            self.assertEqual(err["type"], type_, body)
        if msg is not None:
            self.assertIn(msg, err["message"])
        self.assertEqual(headers.get("connection", "").lower(), "close", data[:500])
        self.assertTrue(closed, "the server kept the connection open: %r" % data[:500])
        return err

    def post(self, headers, body=b""):
        return (b"POST /v1/accounts HTTP/1.1\r\nHost: x\r\n" + self.auth +
                b"Content-Type: application/json\r\n" + headers + b"\r\n" + body)

    SMUGGLED = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"

    def test_two_different_content_lengths_are_400(self):
        body = b'{"name":"a"}'
        self.assert_refused(self.post(b"Content-Length: %d\r\nContent-Length: %d\r\n"
                                      % (len(body), len(body) + len(self.SMUGGLED)),
                                      body + self.SMUGGLED), 400, "invalid_request",
                            "Content-Length")

    def test_two_equal_content_lengths_are_400(self):
        body = b'{"name":"a"}'
        self.assert_refused(self.post(b"Content-Length: %d\r\ncontent-length: %d\r\n"
                                      % (len(body), len(body)), body), 400,
                            "invalid_request", "Content-Length")

    def test_heads_refused_before_the_handler_answer_json(self):
        # Under libmicrohttpd these were answered by the library with HTML
        # bodies; every one is now the contract's JSON error, the connection is
        # closed and the smuggled request behind it never answered.
        body = b'{"name":"a"}'
        cases = [
            (self.post(b"Content-Length: %d, %d\r\n" % (len(body), len(body)), body), 400,
             "invalid_request", "Content-Length"),
            (self.post(b"Content-Length: 5x\r\n", body), 400, "invalid_request",
             "Content-Length"),
            (self.post(b"Content-Length: 99999999999999999999999\r\n", body), 413,
             "payload_too_large", None),
            (self.post(b"Transfer-Encoding: chunked\r\n", b"zz\r\n" + body + b"\r\n0\r\n\r\n"),
             400, "invalid_request", "chunk"),
            (self.post(b"Transfer-Encoding: chunked\r\n", b"1" * 17 + b"\r\n" + body), 413,
             "payload_too_large", None),
            (self.post(b"Transfer-Encoding: chunked\r\n", b"5\r\nabcdeXY0\r\n\r\n"), 400,
             "invalid_request", "CRLF"),
            (b"GET /healthz HTTP/1.1\r\nHost: x\r\nno colon here\r\n\r\n", 400,
             "invalid_request", "colon"),
            (b"GET /healthz HTTP/2.0\r\nHost: x\r\n\r\n", 505, "http_version_not_supported",
             "HTTP/2.0"),
            (b"GET /healthz HTTP/1.2\r\nHost: x\r\n\r\n", 505, "http_version_not_supported",
             None),
            (b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"b" * 70000 + b"\r\n\r\n", 431,
             "header_too_large", None),
            (b"GARBAGE\r\n\r\n", 400, "invalid_request", "request line"),
            (b"GET /healthz\r\n\r\n", 400, "invalid_request", "request line"),
            (b"GET /healthz HTTP/1.1\r\n\r\n", 400, "invalid_request", "Host"),
            (b"GET /healthz HTTP/1.1\nHost: x\n\n", 400, "invalid_request", "LF"),
            (b"GET /healthz HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n", 400, "invalid_request",
             "Host"),
            (b"GET /healthz HTTP/1.1\r\nHost: x\r\nX: a\x00b\r\n\r\n", 400,
             "invalid_request", None),
            (b"GET /v1/" + b"a" * 70000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414,
             "uri_too_long", None),
        ]
        for raw, status, type_, msg in cases:
            with self.subTest(raw=raw[:120]):
                self.assert_refused(raw + self.SMUGGLED, status, type_, msg)

    def test_a_chunk_announced_over_the_cap_is_413_at_once(self):
        # The size line alone is sent, and the client waits: the answer comes
        # from the size, before any of the chunk's data (the body deadline is
        # 30 s, the read below ends with the answer and the close).
        for size in (b"ffffffffffffffff", b"40001", b"ffffffffffffffff;ext=1",
                     b"0000000000000000000000ffffff"):
            with self.subTest(size=size):
                err = self.assert_refused(self.post(b"Transfer-Encoding: chunked\r\n",
                                                    size + b"\r\n"), 413,
                                          "payload_too_large", "256 KiB")
                self.assertIn("larger than", err["message"])

    def test_chunks_adding_up_over_the_cap_are_413_at_the_size_that_passes_it(self):
        chunk = b"x" * 0x20000
        raw = self.post(b"Transfer-Encoding: chunked\r\n",
                        b"20000\r\n" + chunk + b"\r\n20000\r\n" + chunk + b"\r\n1\r\n")
        self.assert_refused(raw, 413, "payload_too_large", "256 KiB")

    def test_expect_100_continue_gets_continue_then_the_answer(self):
        body = b'{"name":"continue-ok"}'
        s = socket.create_connection(("127.0.0.1", self.srv.port), timeout=READ_TIMEOUT)
        self.addCleanup(s.close)
        s.sendall(self.post(b"Content-Length: %d\r\nExpect: 100-continue\r\n" % len(body)))
        got = b""
        while b"\r\n\r\n" not in got:
            chunk = s.recv(4096)
            self.assertTrue(chunk, "closed before 100 Continue")
            got += chunk
        self.assertTrue(got.startswith(b"HTTP/1.1 100 Continue\r\n\r\n"), got)
        s.sendall(body)
        got = got[len(b"HTTP/1.1 100 Continue\r\n\r\n"):]
        while not got.rstrip().endswith(b"}"):
            chunk = s.recv(4096)
            self.assertTrue(chunk, "closed before the answer: %r" % got)
            got += chunk
        self.assertEqual([a[0] for a in parse_answers(got)], [201], got[:500])

    def test_http_1_0_closes_unless_keep_alive(self):
        data, closed = exchange(self.srv.port, b"GET /healthz HTTP/1.0\r\n\r\n")
        self.assertEqual([a[0] for a in parse_answers(data)], [200], data[:500])
        self.assertTrue(closed)
        data, _ = exchange(self.srv.port,
                           b"GET /healthz HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"
                           b"GET /healthz HTTP/1.0\r\n\r\n")
        answers = parse_answers(data)
        self.assertEqual([a[0] for a in answers], [200, 200], data[:500])
        self.assertEqual(answers[0][1].get("connection", "").lower(), "keep-alive")

    def test_content_length_with_chunked_is_400_and_smuggled_request_unanswered(self):
        self.assert_refused(self.post(b"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n",
                                      b"0\r\n\r\n" + self.SMUGGLED), 400, "invalid_request",
                            "Transfer-Encoding")

    def test_chunked_before_content_length_is_400(self):
        self.assert_refused(self.post(b"Transfer-Encoding: chunked\r\nContent-Length: 40\r\n",
                                      b"0\r\n\r\n" + self.SMUGGLED), 400, "invalid_request")

    def test_transfer_codings_other_than_chunked_are_400(self):
        for te in (b"gzip, chunked", b"chunked, chunked", b"identity", b"xchunked",
                   b"chunked;x=1", b"gzip"):
            with self.subTest(te=te):
                self.assert_refused(self.post(b"Transfer-Encoding: " + te + b"\r\n",
                                              b"0\r\n\r\n" + self.SMUGGLED), 400,
                                    "invalid_request", "Transfer-Encoding")

    def test_two_transfer_encodings_are_400(self):
        self.assert_refused(self.post(b"Transfer-Encoding: chunked\r\n"
                                      b"Transfer-Encoding: chunked\r\n",
                                      b"0\r\n\r\n" + self.SMUGGLED), 400, "invalid_request")

    def test_obsolete_line_folding_is_400(self):
        body = b'{"name":"a"}'
        for fold in (b"X-Note: a\r\n b\r\n", b"X-Note: a\r\n\tb c\r\n",
                     b"Content-Type: application/json\r\n ; charset=utf-8\r\n",
                     b"X-Note: a\r\n Transfer-Encoding: chunked\r\n"):
            with self.subTest(fold=fold):
                self.assert_refused(self.post(fold + b"Content-Length: %d\r\n" % len(body),
                                              body + self.SMUGGLED), 400, "invalid_request",
                                    "folding")

    def test_announced_body_over_the_cap_is_413_before_it_is_sent(self):
        # Only the head is sent: the answer must come without the body.
        self.assert_refused(self.post(b"Content-Length: %d\r\n" % (256 * 1024 + 1)), 413,
                            "payload_too_large", "256 KiB")

    def test_announced_body_far_over_the_cap_is_413(self):
        self.assert_refused(self.post(b"Content-Length: 18446744073709551615\r\n"), 413,
                            "payload_too_large")

    def test_long_uri_is_414_json(self):
        raw = b"GET /v1/" + b"a" * 6000 + b" HTTP/1.1\r\nHost: x\r\n\r\n"
        self.assert_refused(raw, 414, "uri_too_long")

    def test_large_head_is_431_json(self):
        raw = (b"GET /healthz HTTP/1.1\r\nHost: x\r\n" +
               b"".join(b"X-Pad-%d: %s\r\n" % (i, b"p" * 1000) for i in range(16)) + b"\r\n")
        self.assert_refused(raw, 431, "header_too_large")

    def test_one_huge_header_line_is_431_json(self):
        raw = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"b" * 20000 + b"\r\n\r\n"
        self.assert_refused(raw, 431, "header_too_large")

    def test_well_formed_requests_still_pass(self):
        body = b'{"name":"strict-ok"}'
        data, _ = exchange(self.srv.port,
                           self.post(b"Content-Length: %d\r\nConnection: close\r\n" % len(body),
                                     body))
        self.assertEqual([a[0] for a in parse_answers(data)], [201], data[:500])
        body = b'{"name":"strict-ok-2"}'
        chunked = b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body)
        data, _ = exchange(self.srv.port,
                           self.post(b"Transfer-Encoding: chunked\r\nConnection: close\r\n",
                                     chunked))
        self.assertEqual([a[0] for a in parse_answers(data)], [201], data[:500])
        # Keep-alive and pipelining of well-formed requests keep working.
        two = (b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
               b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        data, _ = exchange(self.srv.port, two)
        self.assertEqual([a[0] for a in parse_answers(data)], [200, 200], data[:500])


if __name__ == "__main__":
    unittest.main()
