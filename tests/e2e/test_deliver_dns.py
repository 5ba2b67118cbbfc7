"""DNS faults: a name that does not exist (NXDOMAIN), a resolver that fails
(SERVFAIL) and a resolver that never answers are retryable failures, and a
name that hangs never delays deliveries to other endpoints.

The test runs its own DNS server on a loopback address, port 53, and starts
`fluxhook serve` in a private mount namespace (`unshare -m`) whose
/etc/resolv.conf names only that server: nothing outside the test is asked."""
import os
import random
import socket
import struct
import threading
import time
import unittest

from harness import Server, mkdtemp
from receiver import Receiver

DATA = {"conversation_id": "c-1", "message_id": "m-1", "user_id": "u-1", "content": "hi"}
SCHEDULE = "0ms,200ms,400ms,600ms,800ms"


class DnsServer:
    """A UDP DNS server on (addr, 53) answering A queries by name:
    ok.fluxhook.test -> 127.0.0.1, nx.* -> NXDOMAIN, fail.* -> SERVFAIL,
    hang.* -> no answer ever. Records every name asked."""

    def __init__(self, addr):
        self.addr = addr
        self.asked = []
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((addr, 53))
        self.sock.settimeout(0.2)
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    @staticmethod
    def _qname(msg):
        labels, i = [], 12
        while i < len(msg) and msg[i] != 0:
            n = msg[i]
            labels.append(msg[i + 1:i + 1 + n].decode("ascii", "replace"))
            i += 1 + n
        return ".".join(labels).lower(), i + 5  # end of the question

    def _answer(self, msg, name, qend):
        qtype = struct.unpack("!H", msg[qend - 4:qend - 2])[0]
        head = msg[:2]
        question = msg[12:qend]
        first = name.split(".", 1)[0]
        if first == "nx":
            return head + struct.pack("!HHHHH", 0x8183, 1, 0, 0, 0) + question
        if first == "fail":
            return head + struct.pack("!HHHHH", 0x8182, 1, 0, 0, 0) + question
        if first == "ok" and qtype == 1:
            answer = struct.pack("!HHHIH", 0xC00C, 1, 1, 5, 4) + socket.inet_aton("127.0.0.1")
            return head + struct.pack("!HHHHH", 0x8180, 1, 1, 0, 0) + question + answer
        # ok.* asked for AAAA (or anything else): no such record.
        return head + struct.pack("!HHHHH", 0x8180, 1, 0, 0, 0) + question

    def _serve(self):
        while not self._stop.is_set():
            try:
                msg, peer = self.sock.recvfrom(512)
            except socket.timeout:
                continue
            except OSError:
                return
            if len(msg) < 17:
                continue
            name, qend = self._qname(msg)
            self.asked.append(name)
            if name.split(".", 1)[0] == "hang":
                continue
            self.sock.sendto(self._answer(msg, name, qend), peer)

    def close(self):
        self._stop.set()
        self.thread.join(5)
        self.sock.close()


class DeliverDns(unittest.TestCase):

    def setUp(self):
        if os.geteuid() != 0:
            self.fail("needs root: it binds port 53 and makes a mount namespace")
        # A loopback address of its own, so parallel runs never share port 53.
        self.dns_addr = "127.53.%d.%d" % (random.randint(0, 255), random.randint(1, 254))
        self.dns = DnsServer(self.dns_addr)
        self.addCleanup(self.dns.close)
        d = mkdtemp()
        self.resolv = os.path.join(d, "resolv.conf")
        with open(self.resolv, "w") as f:
            f.write("nameserver %s\noptions timeout:1 attempts:1\n" % self.dns_addr)

    def serve(self):
        srv = Server(args=["--allow-http", "--allow-networks", "127.0.0.0/8",
                           "--retry-schedule", SCHEDULE, "--attempt-timeout", "3s"],
                     test=self)
        # serve runs in a mount namespace of its own where /etc/resolv.conf is ours.
        argv = srv.command()
        srv.command = lambda: ["unshare", "-m", "sh", "-c",
                               'mount --bind "$0" /etc/resolv.conf && exec "$@"',
                               self.resolv] + argv
        srv.start()
        return srv

    def endpoint(self, srv, url):
        st, ep, _ = srv.api("POST", "/v1/endpoints", {"url": url})
        self.assertEqual(st, 201, ep)
        return ep["id"]

    def publish(self, srv):
        st, body, _ = srv.api("POST", "/v1/events", {"event": "user.message", "data": DATA})
        self.assertEqual(st, 202, body)
        return body["id"]

    def attempts(self, srv, endpoint_id, n):
        """Waits until the endpoint's only delivery has n attempts; returns them."""
        def got():
            st, ds, _ = srv.api("GET", "/v1/deliveries?endpoint_id=" + endpoint_id)
            if st != 200 or not ds["data"]:
                return None
            st, d, _ = srv.api("GET", "/v1/deliveries/" + ds["data"][0]["id"])
            return d["attempts"] if st == 200 and len(d["attempts"]) >= n else None
        return srv.wait_for(got, timeout=30, interval=0.1,
                            what="%d attempts to endpoint %s" % (n, endpoint_id))

    def test_dns_failures_are_retried(self):
        rc = Receiver()
        self.addCleanup(rc.close)
        srv = self.serve()
        port = int(rc.url.split(":")[2].split("/")[0])
        self.endpoint(srv, "http://ok.fluxhook.test:%d/hook" % port)
        nx = self.endpoint(srv, "http://nx.fluxhook.test:%d/hook" % port)
        fail = self.endpoint(srv, "http://fail.fluxhook.test:%d/hook" % port)
        ev = self.publish(srv)
        # The resolver works: the name that resolves is delivered...
        rc.wait_for(1, timeout=10)
        self.assertEqual(rc.requests[0].headers["x-workflux-event-id"], ev)
        self.assertIn("ok.fluxhook.test", self.dns.asked)
        # ...and the two that do not are retried through the schedule.
        for ep in (nx, fail):
            for a in self.attempts(srv, ep, 2):
                self.assertIsNone(a["status_code"], a)
                self.assertTrue(a["error"], a)
        self.assertIn("nx.fluxhook.test", self.dns.asked)
        self.assertIn("fail.fluxhook.test", self.dns.asked)

    def test_hanging_resolver_does_not_delay_others(self):
        rc = Receiver()
        self.addCleanup(rc.close)
        srv = self.serve()
        port = int(rc.url.split(":")[2].split("/")[0])
        hang = self.endpoint(srv, "http://hang.fluxhook.test:%d/hook" % port)
        self.publish(srv)
        srv.wait_for(lambda: any(n.startswith("hang.") for n in self.dns.asked), timeout=10,
                     what="the hanging name asked")
        # While that lookup hangs, deliveries to another endpoint go out at once.
        self.endpoint(srv, "http://127.0.0.1:%d/hook" % port)
        ids, sent = [], {}
        for _ in range(5):
            t = time.time()
            ev = self.publish(srv)
            ids.append(ev)
            sent[ev] = t
        reqs = rc.wait_for(5, timeout=10)
        got = {r.headers["x-workflux-event-id"]: r.at for r in reqs}
        self.assertEqual(set(ids), set(got))
        for ev in ids:
            self.assertLess(got[ev] - sent[ev], 1.0, "delivery of %s waited" % ev)
        # The hanging lookup ends as a failed attempt that will be retried, not a stuck one.
        at = self.attempts(srv, hang, 1)
        self.assertIsNone(at[0]["status_code"], at[0])
        self.assertTrue(at[0]["error"], at[0])


if __name__ == "__main__":
    unittest.main()
