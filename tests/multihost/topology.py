"""Hosts for the multi-host tests: Linux network namespaces on one bridge
(Python 3 standard library only; needs root and iproute2's `ip`).

    topo = Topology()                        # namespace <tag>-net, bridge br0 198.18.0.1/24
    topo.add_host("db", "198.18.0.10")       # namespace <tag>-db, eth0 198.18.0.10/24
    proc = topo.spawn("db", argv, stdout=f)  # a process inside that host (a Popen)
    topo.prefix("db")                        # ["ip", "netns", "exec", "<tag>-db"]
    conn = topo.http("198.18.0.20", 8080)    # http.client connection from 198.18.0.1
    topo.cut("w1"); topo.heal("w1")          # the host's own end of its link down, up
    topo.teardown()                          # kill every process in the namespaces, delete them

Every name carries a tag unique to the run (`fhmh<pid>x<random>`), so two runs
never share a namespace, and the bridge lives in a namespace of its own, so
nothing is added to the machine's own network: two runs can use the same
addresses at once. Use addresses of 198.18.0.0/15 only (RFC 2544's benchmarking
range), one /24 for the whole topology.

The test process itself stays in its own namespace; its sockets to the hosts
are made inside the bridge's namespace (setns(2) in a short-lived thread), so
they come from the bridge's address. Processes in a host run through
`ip netns exec`, which execs the command: Popen.pid is the program's own pid.

Teardown kills every process found in the run's namespaces (`ip netns pids`),
not only those spawned here (pg_ctl's postmaster, for one), then deletes the
namespaces, which takes the veth pairs and the bridge with them. It runs from
teardown(), at interpreter exit, and, should the test process be killed
outright, from a watchdog process that notices its pipe closing.
"""
import atexit
import ctypes
import http.client
import ipaddress
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time

NET = ipaddress.ip_network("198.18.0.0/15")
BRIDGE_ADDR = "198.18.0.1"
PREFIX_LEN = 24
IP_TIMEOUT = 20  # seconds for one `ip` command
KILL_TIMEOUT = 20  # seconds for the processes of a namespace to be gone
NETNS_DIR = "/run/netns"
_CLONE_NEWNET = 0x40000000

_topologies = []
_libc = None


class TopologyError(RuntimeError):
    pass


def _ip(*args, check=True):
    try:
        p = subprocess.run(["ip"] + list(args), stdin=subprocess.DEVNULL,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                           timeout=IP_TIMEOUT)
    except subprocess.TimeoutExpired as e:
        raise TopologyError("ip %s timed out after %ss" % (" ".join(args), IP_TIMEOUT)) from e
    if check and p.returncode != 0:
        raise TopologyError("ip %s exited with %d: %s" % (" ".join(args), p.returncode,
                                                           p.stderr.strip()))
    return p


def check_support():
    """Raises TopologyError saying why network namespaces cannot be made here
    (not root, no `ip`, a kernel or container that refuses them)."""
    if not sys.platform.startswith("linux"):
        raise TopologyError("the multi-host tests need Linux network namespaces")
    if os.geteuid() != 0:
        raise TopologyError("the multi-host tests need root (ip netns add, veth, bridge)")
    if shutil.which("ip") is None:
        raise TopologyError("the multi-host tests need iproute2's `ip` "
                            "(apt-get install iproute2)")
    name = "fhmh%dprobe%s" % (os.getpid(), secrets.token_hex(2))
    p = _ip("netns", "add", name, check=False)
    if p.returncode != 0:
        raise TopologyError("`ip netns add` does not work here: %s" % p.stderr.strip())
    try:
        p = _ip("-n", name, "link", "add", "br0", "type", "bridge", check=False)
        if p.returncode != 0:
            raise TopologyError("cannot make a bridge in a network namespace: %s"
                                % p.stderr.strip())
    finally:
        _ip("netns", "del", name, check=False)


def _setns(path):
    global _libc
    if _libc is None:
        _libc = ctypes.CDLL(None, use_errno=True)
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        if _libc.setns(fd, _CLONE_NEWNET) != 0:
            e = ctypes.get_errno()
            raise OSError(e, "setns(%s): %s" % (path, os.strerror(e)))
    finally:
        os.close(fd)


def call_in_netns(netns, fn, *args):
    """fn(*args) run in a new thread that first enters network namespace netns
    (only that thread moves: the network namespace is per thread); returns its
    value or raises its exception. A socket made there stays in that namespace
    whichever thread uses it afterwards."""
    box = {}

    def run():
        try:
            _setns(os.path.join(NETNS_DIR, netns))
            box["value"] = fn(*args)
        except BaseException as e:  # handed to the caller
            box["error"] = e

    t = threading.Thread(target=run, name="netns-" + netns, daemon=True)
    t.start()
    t.join()
    if "error" in box:
        raise box["error"]
    return box["value"]


class NetnsHTTPConnection(http.client.HTTPConnection):
    """An http.client connection whose socket is made in network namespace netns."""

    def __init__(self, netns, host, port, timeout=10):
        super().__init__(host, port, timeout=timeout)
        self.netns = netns

    def connect(self):
        s = call_in_netns(self.netns, socket.socket, socket.AF_INET, socket.SOCK_STREAM)
        try:
            s.settimeout(self.timeout)
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            s.connect((self.host, self.port))
        except BaseException:
            s.close()
            raise
        self.sock = s


def _netns_of_tag(tag):
    p = _ip("netns", "list", check=False)
    names = [line.split()[0] for line in p.stdout.splitlines() if line.strip()]
    return [n for n in names if n == tag + "-net" or n.startswith(tag + "-")]


def _netns_pids(netns):
    p = _ip("netns", "pids", netns, check=False)
    return [int(x) for x in p.stdout.split() if x.isdigit() and int(x) != os.getpid()]


def _reap(pids):
    """Collects the exit of those pids that are children of this process
    (pg_ctl's postmaster is one when this process is a subreaper), so that they
    do not stay zombies."""
    for pid in pids:
        try:
            os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            pass


def destroy(tag, reap=True):
    """Kills every process in the namespaces of run tag, then deletes them.
    Returns a list of problems (empty when all went)."""
    problems = []
    names = _netns_of_tag(tag)
    deadline = time.monotonic() + KILL_TIMEOUT
    for ns in names:
        while True:
            pids = _netns_pids(ns)
            if not pids:
                break
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            if reap:
                _reap(pids)
            if time.monotonic() > deadline:
                problems.append("processes %s outlived SIGKILL in %s" % (pids, ns))
                break
            time.sleep(0.02)
    # Hosts first: their veth ends go, then the bridge's namespace.
    for ns in sorted(names, key=lambda n: n == tag + "-net"):
        p = _ip("netns", "del", ns, check=False)
        if p.returncode != 0:
            problems.append("ip netns del %s: %s" % (ns, p.stderr.strip()))
    return problems


class Host:
    def __init__(self, name, netns, addr, ifname, peer):
        self.name = name
        self.netns = netns
        self.addr = addr
        self.ifname = ifname  # its side of the link, in its namespace
        self.peer = peer  # the bridge's side, in the bridge's namespace


class Topology:
    """One bridge in a namespace of its own, and hosts linked to it."""

    def __init__(self, bridge_addr=BRIDGE_ADDR):
        check_support()
        self.tag = "fhmh%dx%s" % (os.getpid(), secrets.token_hex(3))
        self.netns = self.tag + "-net"
        self.bridge_addr = bridge_addr
        self.network = ipaddress.ip_network("%s/%d" % (bridge_addr, PREFIX_LEN), strict=False)
        if not self.network.subnet_of(NET):
            raise ValueError("addresses of %s only, not %s" % (NET, self.network))
        self.hosts = {}
        self.procs = []
        self._lock = threading.Lock()
        self._down = False
        _topologies.append(self)
        self._watchdog = subprocess.Popen(
            [sys.executable, os.path.abspath(__file__), "_watchdog", self.tag],
            stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True, close_fds=True)
        try:
            _ip("netns", "add", self.netns)
            self._up_lo(self.netns)
            _ip("-n", self.netns, "link", "add", "br0", "type", "bridge")
            _ip("-n", self.netns, "addr", "add", "%s/%d" % (bridge_addr, PREFIX_LEN),
                "dev", "br0")
            _ip("-n", self.netns, "link", "set", "br0", "up")
        except BaseException:
            self.teardown()
            raise

    @staticmethod
    def _up_lo(netns):
        _ip("-n", netns, "link", "set", "lo", "up")

    def add_host(self, name, addr):
        """A namespace <tag>-<name> whose eth0 has addr, linked to the bridge."""
        a = ipaddress.ip_address(addr)
        if a not in self.network or str(a) == self.bridge_addr:
            raise ValueError("%s: give an address of %s other than the bridge's"
                             % (addr, self.network))
        if name in self.hosts or any(h.addr == str(a) for h in self.hosts.values()):
            raise ValueError("host %s or address %s is taken" % (name, addr))
        peer = "v-" + name
        if len(peer) > 15 or not name.isalnum():
            raise ValueError("host names: letters and digits, at most 13")
        h = Host(name, "%s-%s" % (self.tag, name), str(a), "eth0", peer)
        try:
            _ip("netns", "add", h.netns)
            self.hosts[name] = h
            self._up_lo(h.netns)
            # Both ends are made in their namespaces at once: nothing in the
            # machine's own namespace, not even for a moment.
            _ip("-n", self.netns, "link", "add", peer, "type", "veth",
                "peer", "name", h.ifname, "netns", h.netns)
            _ip("-n", self.netns, "link", "set", peer, "master", "br0")
            _ip("-n", self.netns, "link", "set", peer, "up")
            _ip("-n", h.netns, "addr", "add", "%s/%d" % (h.addr, PREFIX_LEN), "dev", h.ifname)
            _ip("-n", h.netns, "link", "set", h.ifname, "up")
        except BaseException:
            self.teardown()
            raise
        return h

    def host(self, name):
        return self.hosts[name]

    def prefix(self, name):
        """The argv prefix that runs a command inside host name."""
        return ["ip", "netns", "exec", self.hosts[name].netns]

    def spawn(self, name, argv, **popen_kw):
        """Starts argv inside host name (subprocess.Popen keywords pass through);
        the process is killed at teardown at the latest."""
        popen_kw.setdefault("stdin", subprocess.DEVNULL)
        p = subprocess.Popen(self.prefix(name) + list(argv), **popen_kw)
        with self._lock:
            self.procs.append(p)
        return p

    def run(self, name, argv, timeout=60):
        """Runs argv inside host name to its end; returns the CompletedProcess."""
        return subprocess.run(self.prefix(name) + list(argv), stdin=subprocess.DEVNULL,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              timeout=timeout)

    def http(self, addr, port, timeout=10):
        """An http.client connection to addr:port from the bridge's address."""
        return NetnsHTTPConnection(self.netns, addr, port, timeout=timeout)

    # --- faults ---

    def cut(self, name):
        """Takes host name off the network: its own end of the link goes down
        (its connections stall; new ones fail with 'network unreachable')."""
        h = self.hosts[name]
        _ip("-n", h.netns, "link", "set", h.ifname, "down")

    def heal(self, name):
        """Brings host name's end of the link up again and waits (bounded) for it
        to carry traffic."""
        h = self.hosts[name]
        _ip("-n", h.netns, "link", "set", h.ifname, "up")
        deadline = time.monotonic() + 10
        while not self.link_up(name):
            if time.monotonic() > deadline:
                raise TopologyError("%s: link of %s not up 10 s after heal" % (h.ifname, name))
            time.sleep(0.02)

    def link_up(self, name):
        h = self.hosts[name]
        p = _ip("-n", h.netns, "-o", "link", "show", h.ifname, check=False)
        head = p.stdout.split(">", 1)[0]
        return ",UP" in head and "LOWER_UP" in head

    # --- the end ---

    def teardown(self):
        """Kills every process in the run's namespaces and deletes them; safe to
        call more than once. Raises TopologyError if something stayed."""
        if self._down:
            return
        self._down = True
        with self._lock:
            procs = list(self.procs)
        for p in procs:
            if p.poll() is None:
                try:
                    p.kill()
                except ProcessLookupError:
                    pass
        for p in procs:
            try:
                p.wait(KILL_TIMEOUT)
            except subprocess.TimeoutExpired:
                pass
        problems = destroy(self.tag)
        w, self._watchdog = self._watchdog, None
        if w is not None:
            try:
                w.stdin.close()
            except OSError:
                pass
            try:
                w.wait(KILL_TIMEOUT + IP_TIMEOUT)
            except subprocess.TimeoutExpired:
                w.kill()
                w.wait()
        if problems:
            raise TopologyError("teardown of %s: %s" % (self.tag, "; ".join(problems)))


@atexit.register
def _teardown_all():
    for t in reversed(list(_topologies)):
        try:
            t.teardown()
        except Exception as e:  # keep tearing down the others
            print("topology: %s" % e, file=sys.stderr)


def _watchdog(tag):
    """Waits for the owner's pipe to close, then removes what the owner left."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    sys.stdin.buffer.read()
    destroy(tag, reap=False)
    return 0


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "_watchdog":
        sys.exit(_watchdog(sys.argv[2]))
    print("usage: (imported by the multi-host tests)", file=sys.stderr)
    sys.exit(2)
