"""The API's error answers: 413, 415, 400 with a position, 404, 405, and the
shape of every error body."""
import socket
import unittest

from apiutil import announce_body
from harness import Server


def error_of(test, status, body, want_status, want_type):
    test.assertEqual(status, want_status, body)
    test.assertIsInstance(body, dict, body)
    test.assertEqual(set(body), {"error"}, body)
    err = body["error"]
    test.assertEqual(err["type"], want_type, body)
    test.assertIsInstance(err["message"], str)
    test.assertTrue(err["message"], body)
    return err


class ApiErrors(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.srv = Server(args=["--allow-http"])
        cls.srv.start()

    @classmethod
    def tearDownClass(cls):
        code = cls.srv.stop()
        report = cls.srv.sanitizer_report()
        if code != 0 or report:
            raise AssertionError("serve exited %s\n%s" % (code, report))

    def test_body_over_256_kib_is_413(self):
        big = b'{"name":"' + b"x" * (256 * 1024) + b'"}'
        status, body, headers = self.srv.api("POST", "/v1/accounts", raw=big)
        err = error_of(self, status, body, 413, "payload_too_large")
        self.assertIn("256 KiB", err["message"])
        self.assertEqual(headers["Content-Type"], "application/json")

    def test_body_just_under_the_cap_is_read(self):
        name = "n" * (256 * 1024 - 200)
        status, body, _ = self.srv.api("POST", "/v1/accounts", {"name": name})
        # Read whole and judged on its content (the name is too long), not its size.
        error_of(self, status, body, 422, "validation_failed")

    def test_huge_announced_body_is_refused_without_reading_it(self):
        data = announce_body(self.srv, "/v1/accounts", 10000000000)
        self.assertTrue(data.startswith(b"HTTP/1.1 413"), data[:200])

    def test_chunked_body_over_the_cap_is_413(self):
        s = socket.create_connection(("127.0.0.1", self.srv.port), timeout=30)
        chunk = b"x" * 65536
        try:
            s.sendall(b"POST /v1/accounts HTTP/1.1\r\nHost: x\r\n"
                      b"Authorization: Bearer " + self.srv.root_key.encode() + b"\r\n"
                      b"Content-Type: application/json\r\n"
                      b"Transfer-Encoding: chunked\r\n\r\n")
            for _ in range(6):
                s.sendall(b"%x\r\n" % len(chunk) + chunk + b"\r\n")
            s.sendall(b"0\r\n\r\n")
            data = b""
            while b"\r\n\r\n" not in data:
                got = s.recv(4096)
                if not got:
                    break
                data += got
        finally:
            s.close()
        self.assertTrue(data.startswith(b"HTTP/1.1 413"), data[:200])

    def test_wrong_content_type_is_415(self):
        status, body, _ = self.srv.api("POST", "/v1/accounts", raw=b'{"name":"a"}',
                                       headers={"Content-Type": "text/plain"})
        err = error_of(self, status, body, 415, "unsupported_media_type")
        self.assertIn("application/json", err["message"])
        status, body, _ = self.srv.api("POST", "/v1/accounts", raw=b'{"name":"a"}',
                                       headers={"Content-Type": None})
        error_of(self, status, body, 415, "unsupported_media_type")

    def test_json_with_charset_is_accepted(self):
        status, body, _ = self.srv.api("POST", "/v1/accounts", raw=b'{"name":"cs"}',
                                       headers={"Content-Type": "application/json; charset=utf-8"})
        self.assertEqual(status, 201, body)

    def test_malformed_json_names_the_position(self):
        status, body, _ = self.srv.api("POST", "/v1/accounts", raw=b'{\n  "name": "a",\n  oops}')
        err = error_of(self, status, body, 400, "invalid_request")
        self.assertRegex(err["message"], r"^malformed JSON at line 3 column \d+: ")

    def test_body_must_be_an_object(self):
        for raw in (b"[1,2]", b'"x"', b"42"):
            status, body, _ = self.srv.api("POST", "/v1/accounts", raw=raw)
            err = error_of(self, status, body, 400, "invalid_request")
            self.assertIn("object", err["message"])

    def test_empty_body_where_one_is_required(self):
        status, body, _ = self.srv.api("POST", "/v1/accounts", raw=b"")
        error_of(self, status, body, 400, "invalid_request")

    def test_wrong_member_type_names_the_field(self):
        status, body, _ = self.srv.api("POST", "/v1/accounts", {"name": 7})
        err = error_of(self, status, body, 400, "invalid_request")
        self.assertEqual(err["fields"][0]["path"], "name")
        self.assertTrue(err["fields"][0]["problem"])

    def test_unknown_path_is_404(self):
        for path in ("/v1/nope", "/v1/endpoints/ep_x/nope", "/v1", "/v1/endpoints/", "/nope.txt"):
            status, body, headers = self.srv.api("GET", path)
            error_of(self, status, body, 404, "not_found")
            self.assertEqual(headers["Cache-Control"], "no-store")

    def test_unknown_path_needs_no_key_to_be_404(self):
        status, body, _ = self.srv.api("GET", "/v1/nope", key=False)
        error_of(self, status, body, 404, "not_found")

    def test_wrong_method_is_405_with_allow(self):
        status, body, headers = self.srv.api("PUT", "/v1/endpoints", {"url": "x"})
        err = error_of(self, status, body, 405, "method_not_allowed")
        self.assertEqual(headers["Allow"], "POST, GET")
        self.assertIn("PUT", err["message"])
        status, body, headers = self.srv.api("POST", "/v1/endpoints/ep_1")
        error_of(self, status, body, 405, "method_not_allowed")
        self.assertEqual(headers["Allow"], "GET, PATCH, DELETE")
        status, body, headers = self.srv.api("DELETE", "/healthz")
        error_of(self, status, body, 405, "method_not_allowed")
        self.assertEqual(headers["Allow"], "GET")

    def test_success_headers(self):
        status, body, headers = self.srv.api("GET", "/v1/accounts/acct_default")
        self.assertEqual(status, 200, body)
        self.assertEqual(headers["Content-Type"], "application/json")
        self.assertEqual(headers["Cache-Control"], "no-store")

    def test_server_keeps_answering_on_one_connection(self):
        conn = self.srv.connection()
        try:
            for i in range(20):
                status, _, _ = self.srv.api("GET", "/v1/nope%d" % i, conn=conn)
                self.assertEqual(status, 404)
                status, _, _ = self.srv.api("POST", "/v1/accounts", raw=b"{bad", conn=conn)
                self.assertEqual(status, 400)
                status, _, _ = self.srv.api("GET", "/healthz", conn=conn)
                self.assertEqual(status, 200)
        finally:
            conn.close()


if __name__ == "__main__":
    unittest.main()
