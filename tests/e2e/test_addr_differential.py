"""The address rules against Python's ipaddress: every boundary of every
special-purpose range (first, last, first-1, last+1 of each entry of
fluxhook's table and of Python's own), plus thousands of seeded random IPv4
and IPv6 addresses, go through addr_check() (the addr_verdict helper built
beside the unit tests) and through `is_global` of Debian's /usr/bin/python3.

fluxhook must block every address Python calls not global. Where Python calls
an address global and fluxhook blocks it, the address must fall in one of the
deliberate differences that docs/internals/dispatch.md lists (STRICTER below),
and each of those must actually show up, so the list stays exact."""
import ipaddress
import os
import random
import subprocess
import unittest

from harness import find_bin

SEED = 20261130
RANDOM_EACH = 4000  # uniform random addresses per family
INSIDE_EACH = 24  # random addresses inside each entry of the table
PYTHON = os.environ.get("FLUXHOOK_TEST_IS_GLOBAL_PYTHON", "/usr/bin/python3")
TIMEOUT = 60

# Runs in PYTHON: is_global of each address on stdin, and with "ranges" the
# networks Python's table lists (not global, and the global exceptions).
IS_GLOBAL = r"""
import ipaddress, sys
if sys.argv[1:] == ["ranges"]:
    for c in (ipaddress._IPv4Constants, ipaddress._IPv6Constants):
        for n in c._private_networks + getattr(c, "_private_networks_exceptions", []):
            print(n)
        print(getattr(c, "_public_network", ""))
else:
    for line in sys.stdin:
        print(int(ipaddress.ip_address(line.strip()).is_global))
"""

V4 = ipaddress.IPv4Network
V6 = ipaddress.IPv6Network

# Where fluxhook is deliberately stricter than is_global: (name, test of an
# address). The embedded forms are stricter only when their IPv4 address is
# blocked, which the test checks by asking fluxhook about that IPv4 address.
STRICTER = [
    ("multicast", lambda a: a.version == 4 and a in V4("224.0.0.0/4")
     or a.version == 6 and a in V6("ff00::/8")),
    ("6to4 relay anycast", lambda a: a.version == 4 and a in V4("192.88.99.0/24")),
    ("site-local", lambda a: a.version == 6 and a in V6("fec0::/10")),
    ("newer than Python's table", lambda a: a.version == 6 and any(
        a in V6(n) for n in ("3fff::/20", "5f00::/16", "100:0:0:1::/64"))),
    ("IPv4-compatible", lambda a: a.version == 6 and a in V6("::/96")),
    ("NAT64", lambda a: a.version == 6 and a in V6("64:ff9b::/96")),
    ("IPv4-mapped", lambda a: a.version == 6 and a in V6("::ffff:0:0/96")),
]
EMBEDDING = ("IPv4-compatible", "NAT64", "IPv4-mapped")


def helper():
    return os.path.join(os.path.dirname(find_bin()), "tests", "unit", "dispatch",
                        "addr_verdict")


def run_lines(argv, lines):
    p = subprocess.run(argv, input="".join(x + "\n" for x in lines), stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, text=True, timeout=TIMEOUT, check=True)
    out = p.stdout.splitlines()
    if len(out) != len(lines):
        raise AssertionError("%s answered %d lines for %d" % (argv[0], len(out), len(lines)))
    return out


def boundaries(net):
    """first, last, first-1 and last+1 of net (those that exist)."""
    top = 2 ** net.max_prefixlen
    cls = ipaddress.IPv4Address if net.version == 4 else ipaddress.IPv6Address
    first = int(net.network_address)
    last = int(net.broadcast_address)
    return [cls(v) for v in (first - 1, first, last, last + 1) if 0 <= v < top]


class AddrDifferential(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.bin = helper()
        if not os.access(cls.bin, os.X_OK):
            raise AssertionError("no %s: build the unit tests (ninja -C build-asan)" % cls.bin)
        if not os.access(PYTHON, os.X_OK):
            raise AssertionError("no %s to compare with" % PYTHON)

    def table(self):
        out = subprocess.run([self.bin, "--ranges"], stdout=subprocess.PIPE, text=True,
                             timeout=TIMEOUT, check=True).stdout
        return [ipaddress.ip_network(line.split()[0]) for line in out.splitlines()]

    def python_table(self):
        out = subprocess.run([PYTHON, "-c", IS_GLOBAL, "ranges"], stdout=subprocess.PIPE,
                             text=True, timeout=TIMEOUT, check=True).stdout
        return [ipaddress.ip_network(line) for line in out.split()]

    def addresses(self, nets):
        """Every boundary of nets, random addresses inside each, embedded forms
        of the IPv4 boundaries, and uniform random addresses; no repeats."""
        rnd = random.Random(SEED)
        seen = set()
        for net in nets:
            seen.update(boundaries(net))
            for _ in range(INSIDE_EACH):
                off = rnd.randrange(net.num_addresses)
                seen.add(net.network_address + off)
        v4 = sorted(a for a in seen if a.version == 4)
        for a in v4:
            x = int(a)
            for prefix in ("::ffff:0:0", "::", "64:ff9b::", "64:ff9b:1::"):
                seen.add(ipaddress.IPv6Address(int(ipaddress.IPv6Address(prefix)) | x))
            seen.add(ipaddress.IPv6Address((0x2002 << 112) | (x << 80) | rnd.getrandbits(80)))
            seen.add(ipaddress.IPv6Address((0x20010000 << 96) | (x << 64) | (x ^ 0xffffffff)))
        for _ in range(RANDOM_EACH):
            seen.add(ipaddress.IPv4Address(rnd.getrandbits(32)))
            seen.add(ipaddress.IPv6Address(rnd.getrandbits(128)))
            # Global unicast 2000::/3 is where real IPv6 addresses are.
            seen.add(ipaddress.IPv6Address((1 << 125) | rnd.getrandbits(125)))
        return sorted(seen, key=lambda a: (a.version, int(a)))

    def test_against_is_global(self):
        nets = self.table() + self.python_table()
        self.assertGreater(len(nets), 60)
        addrs = self.addresses(nets)
        text = [str(a) for a in addrs]
        ours = run_lines([self.bin], text)
        theirs = run_lines([PYTHON, "-c", IS_GLOBAL], text)
        self.assertNotIn("bad", ours)
        blocked_v4 = {}
        looser = []
        unexplained = []
        hits = {name: 0 for name, _ in STRICTER}
        agree = 0
        for a, v, g in zip(addrs, ours, theirs):
            allowed = v == "ok"
            if allowed == (g == "1"):
                agree += 1
                continue
            if allowed:
                looser.append("%s: fluxhook allows, is_global is False" % a)
                continue
            name = next((n for n, test in STRICTER if test(a)), None)
            if name in EMBEDDING:
                blocked_v4[a] = ipaddress.IPv4Address(int(a) & 0xffffffff)
            if name is None:
                unexplained.append("%s: fluxhook blocks (%s), is_global is True" % (a, v))
            else:
                hits[name] += 1
        # An embedded form is stricter only because its IPv4 address is blocked.
        if blocked_v4:
            v4_text = [str(x) for x in blocked_v4.values()]
            for (a, x), v in zip(blocked_v4.items(), run_lines([self.bin], v4_text)):
                if v == "ok":
                    unexplained.append("%s: blocked, but its IPv4 %s is not" % (a, x))
        print("\naddr differential: %d addresses (seed %d), %d agree with is_global, "
              "stricter: %s" % (len(addrs), SEED, agree,
                                ", ".join("%s %d" % kv for kv in hits.items())))
        self.assertEqual(looser, [])
        self.assertEqual(unexplained[:20], [])
        self.assertEqual([n for n, k in hits.items() if k == 0], [],
                         "a documented difference that never shows up")
        self.assertGreater(len(addrs), 3 * RANDOM_EACH)

    def test_tunnels_blocked_whatever_they_embed(self):
        """6to4 and Teredo are blocked even around a public IPv4 address."""
        lines = ["2002:808:808::1", "2002:7f00:1::1", "2001:0:808:808::f7f7:f7f7",
                 "2001:0:7f00:1:0:0:80ff:fffe"]
        self.assertEqual(run_lines([self.bin], lines),
                         ["blocked 6to4"] * 2 + ["blocked Teredo"] * 2)


if __name__ == "__main__":
    unittest.main()
