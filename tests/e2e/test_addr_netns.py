"""The dispatcher never connects to a 6to4, Teredo or NAT64 literal that
embeds 127.0.0.1: each such delivery fails at once as blocked, with the
registry name as its reason, and a listener on 127.0.0.1 receives nothing.

The whole test runs in a network namespace of its own with only loopback up
(this process enters it before it makes any socket or thread, so the server,
the listener and the API calls are all inside), so no packet can leave the
machine whatever the code does. Needs root and iproute2, as the multi-host
tests do, whose namespace helpers it uses."""
import os
import secrets
import socket
import sys
import threading
import time
import unittest

import test_deliver_address_rules as rules
from harness import Server

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "multihost"))
import topology  # noqa: E402  (tests/multihost)

ANSWER = b"HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n"

# (host of the URL, the address the error names, the reason): each embeds 127.0.0.1.
LOOPBACK_FORMS = [
    ("[2002:7f00:1::1]", "2002:7f00:1::1", "6to4"),
    ("[2001:0:7f00:1::80ff:fffe]", "2001:0:7f00:1::80ff:fffe", "Teredo"),  # server and client
    ("[64:ff9b::7f00:1]", "64:ff9b::7f00:1", "loopback"),  # NAT64, judged by its IPv4
    ("[64:ff9b:1::7f00:1]", "64:ff9b:1::7f00:1", "NAT64 local-use"),
    ("[::ffff:7f00:1]", "::ffff:127.0.0.1", "loopback"),
    ("[::7f00:1]", "::127.0.0.1", "loopback"),  # IPv4-compatible
]


class Listener:
    """A TCP listener on 127.0.0.1 that counts connections and bytes, and
    answers each connection with a bare 204 once it has read a request head."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.1)
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        self.data = b""
        self.lock = threading.Lock()
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while not self.stopped.is_set():
            try:
                conn, _ = self.sock.accept()
            except socket.timeout:
                continue
            with self.lock:
                self.connections += 1
            self._serve(conn)

    def _serve(self, conn):
        conn.settimeout(5)
        got = b""
        deadline = time.monotonic() + 5
        try:
            while b"\r\n\r\n" not in got and time.monotonic() < deadline:
                chunk = conn.recv(65536)
                if not chunk:
                    break
                got += chunk
                with self.lock:
                    self.data += chunk
            conn.sendall(ANSWER)
        except OSError:
            pass
        conn.close()

    def seen(self):
        with self.lock:
            return self.connections, self.data

    def close(self):
        self.stopped.set()
        self.thread.join(5)
        self.sock.close()


class AddrNetns(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        if os.geteuid() != 0:
            raise AssertionError("this test needs root to make a network namespace")
        cls.netns = "fhaddr%d%s" % (os.getpid(), secrets.token_hex(2))
        cls.home = os.open("/proc/self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
        topology._ip("netns", "add", cls.netns)
        try:
            topology._ip("-n", cls.netns, "link", "set", "lo", "up")
            topology._setns(os.path.join(topology.NETNS_DIR, cls.netns))
        except BaseException:
            topology._ip("netns", "del", cls.netns, check=False)
            raise
        links = topology._ip("-o", "link", "show").stdout.split("\n")
        cls.links = [line.split(":")[1].strip() for line in links if line.strip()]

    @classmethod
    def tearDownClass(cls):
        try:
            topology._setns("/proc/self/fd/%d" % cls.home)
        finally:
            os.close(cls.home)
            topology._ip("netns", "del", cls.netns, check=False)

    # One endpoint for a URL alone, one event: (endpoint, delivery once it has ended).
    call = rules.DeliverAddressRules.call
    create = rules.DeliverAddressRules.create
    deliver = rules.DeliverAddressRules.deliver

    def expect_blocked(self, srv, port, host, addr, why):
        _, d = self.deliver(srv, "http://%s:%d/hook" % (host, port))
        self.assertEqual(d["status"], "failed", d)
        self.assertEqual(d["attempts_made"], 1, d)  # blocked is never retried
        a = d["attempts"][0]
        self.assertIsNone(a["status_code"])
        self.assertIn("address %s is blocked (%s)" % (addr, why), a["error"])

    def server(self, args):
        srv = Server(args=["--allow-http", "--retry-schedule", "0ms,50ms,50ms"] + args, test=self)
        return srv.start()

    def test_only_loopback_is_up(self):
        self.assertEqual(self.links, ["lo"])

    def test_embedded_loopback_never_connected(self):
        rc = Listener()
        self.addCleanup(rc.close)
        srv = self.server([])
        for host, addr, why in LOOPBACK_FORMS:
            with self.subTest(host=host):
                self.expect_blocked(srv, rc.port, host, addr, why)
        self.assertEqual(srv.stop(), 0)
        # Allowing 127.0.0.0/8 allows that IPv4 address, not the tunnels that embed it.
        srv = self.server(["--allow-networks", "127.0.0.0/8"])
        for host, addr, why in LOOPBACK_FORMS[:2]:
            with self.subTest(host=host, allow="127.0.0.0/8"):
                self.expect_blocked(srv, rc.port, host, addr, why)
        self.assertEqual(rc.seen(), (0, b""))
        # The listener does hear a delivery that may reach it; any connection
        # from the blocked ones before this one ends would be counted too.
        _, d = self.deliver(srv, "http://127.0.0.1:%d/hook" % rc.port)
        self.assertEqual(d["status"], "delivered", d)
        connections, data = rc.seen()
        self.assertEqual(connections, 1)
        self.assertTrue(data.startswith(b"POST /hook HTTP/1.1\r\n"), data[:100])


if __name__ == "__main__":
    unittest.main()
