"""The multi-host topology itself: hosts reach each other and the test's own
sockets, a cut host is off the network until healed, and nothing is left
behind, not even when the test process is killed outright.

    cd tests/multihost && python3 -m unittest -v test_topology
"""
import os
import signal
import subprocess
import sys
import time
import unittest

import topology

HERE = os.path.dirname(os.path.abspath(__file__))

# Run inside a host: connect to ADDR:PORT, print "ok" or the errno's name.
PROBE = """
import errno, socket, sys
s = socket.socket()
s.settimeout(5)
try:
    s.connect((sys.argv[1], int(sys.argv[2])))
    print("ok")
except OSError as e:
    print(errno.errorcode.get(e.errno, "timeout"))
"""

# Run as a separate test process: a topology with a process in it, then wait.
ORPHAN = """
import subprocess, sys, time
sys.path.insert(0, %r)
import topology
t = topology.Topology()
t.add_host("a", "198.18.0.2")
t.spawn("a", ["sleep", "300"])
print(t.tag, flush=True)
time.sleep(300)
"""


def namespaces(tag):
    p = subprocess.run(["ip", "netns", "list"], stdout=subprocess.PIPE, text=True, check=True)
    return [line.split()[0] for line in p.stdout.splitlines() if line.startswith(tag + "-")]


def alive(pid):
    """Whether pid runs (a zombie does not count)."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            stat = f.read()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2:][:1] not in ("Z", "X")


def wait_until(pred, timeout, what):
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise AssertionError("timed out after %ss waiting for %s" % (timeout, what))
        time.sleep(0.05)


class TopologyTest(unittest.TestCase):

    def test_hosts_cut_heal_teardown(self):
        topo = topology.Topology()
        self.addCleanup(topo.teardown)
        a = topo.add_host("a", "198.18.0.2")
        topo.add_host("b", "198.18.0.3")
        with self.assertRaises(ValueError):
            topo.add_host("c", "10.0.0.1")  # outside 198.18.0.0/15
        self.assertEqual(sorted(namespaces(topo.tag)),
                         sorted([topo.netns, a.netns, topo.host("b").netns]))

        srv = topo.spawn("a", [sys.executable, "-m", "http.server", "--bind", a.addr, "8000"],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

        def answers():
            try:
                c = topo.http(a.addr, 8000, timeout=2)
                c.request("GET", "/")
                ok = c.getresponse().status == 200
                c.close()
                return ok
            except OSError:
                return False
        wait_until(answers, 30, "a's server answering the bridge's address")

        def probe():
            p = topo.run("b", [sys.executable, "-c", PROBE, a.addr, "8000"])
            return p.stdout.strip()
        self.assertEqual(probe(), "ok")
        # The machine's own namespace has no route to the hosts.
        p = subprocess.run(["ip", "route", "get", a.addr], stdout=subprocess.PIPE, text=True)
        self.assertNotIn("br0", p.stdout)

        topo.cut("b")
        self.assertFalse(topo.link_up("b"))
        self.assertEqual(probe(), "ENETUNREACH")
        topo.heal("b")
        self.assertTrue(topo.link_up("b"))
        self.assertEqual(probe(), "ok")

        tag = topo.tag
        topo.teardown()
        self.assertEqual(namespaces(tag), [])
        self.assertIsNotNone(srv.poll())
        topo.teardown()  # twice is fine

    def test_killed_test_process_leaves_nothing(self):
        p = subprocess.Popen([sys.executable, "-c", ORPHAN % HERE], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
        self.addCleanup(p.stderr.close)
        self.addCleanup(p.stdout.close)
        self.addCleanup(p.wait)
        self.addCleanup(lambda: p.poll() is None and p.kill())
        tag = p.stdout.readline().strip()
        self.assertTrue(tag.startswith("fhmh"), p.stderr.read() if not tag else tag)
        ns = namespaces(tag)
        self.assertEqual(len(ns), 2)
        # Popen returns once `ip netns exec` is forked; it enters the
        # namespace a moment later.
        def pids_in_a():
            return subprocess.run(["ip", "netns", "pids", tag + "-a"], stdout=subprocess.PIPE,
                                  text=True).stdout.split()
        wait_until(lambda: len(pids_in_a()) == 1, 30, "the process to enter host a")
        pids = pids_in_a()
        self.assertEqual(len(pids), 1)
        p.send_signal(signal.SIGKILL)
        p.wait()
        # Its watchdog notices and removes the namespaces and the process.
        wait_until(lambda: namespaces(tag) == [], 30, "the namespaces of %s to go" % tag)
        wait_until(lambda: not alive(int(pids[0])), 30,
                   "the process in the killed run's host to go")


if __name__ == "__main__":
    unittest.main()
