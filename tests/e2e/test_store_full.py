"""A full disk under the SQLite store: publishing answers 503 with Retry-After
(never a 202 it cannot keep), /healthz reports the store failing, nothing
half-written stays, and once space returns the same server takes events
again by itself; every event answered 202 is stored and delivered.

The store lives on a small tmpfs mounted in this process's own mount
namespace (unshare), so the mount goes away with the process whatever
happens. Needs root; sqlite only."""
import ctypes
import os
import sqlite3
import subprocess
import unittest

from apiutil import SERVE_ARGS, ApiCase
from harness import STORE, Server, mkdtemp

CLONE_NEWNS = 0x00020000
TMPFS_SIZE = "4m"  # room for the store (8 KiB pages) and its WAL, then the filler
DEADLINE = 15  # seconds for every wait below


def private_mounts():
    """Moves this process into a mount namespace of its own, with no
    propagation back to the host. Returns why not, or None."""
    if os.geteuid() != 0:
        return "needs root (mount)"
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.unshare(CLONE_NEWNS) != 0:
        return "unshare(CLONE_NEWNS): " + os.strerror(ctypes.get_errno())
    p = subprocess.run(["mount", "--make-rprivate", "/"], stderr=subprocess.PIPE, text=True)
    return None if p.returncode == 0 else "mount --make-rprivate /: " + p.stderr


def fill(directory):
    """Writes a filler file until the file system is full; returns its path."""
    path = os.path.join(directory, "filler")
    chunk = b"\0" * 4096
    with open(path, "wb", buffering=0) as f:
        for _ in range(1 << 20):  # far more than the tmpfs holds
            try:
                f.write(chunk)
            except OSError:
                break
        else:
            raise AssertionError("the tmpfs never filled")
    return path


class StoreFull(ApiCase):
    @classmethod
    def setUpClass(cls):
        if STORE != "sqlite":
            raise unittest.SkipTest("sqlite only: a file system under the store")
        why = private_mounts()
        if why is not None:
            raise unittest.SkipTest(why)

    def setUp(self):
        self.mnt = mkdtemp()
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=" + TMPFS_SIZE, "tmpfs", self.mnt],
                       check=True)
        self.addCleanup(subprocess.run, ["umount", "-l", self.mnt])
        self.db = os.path.join(self.mnt, "fluxhook.db")
        self.srv = Server(args=list(SERVE_ARGS), db="sqlite:" + self.db, test=self)
        self.srv.start()

    def post(self, n):
        return self.srv.api("POST", "/v1/events", {
            "event": "user.message",
            "data": {"conversation_id": "c-%d" % n, "message_id": "m-%d" % n,
                     "user_id": "u-1", "content": "hello %d" % n}})

    def healthz(self):
        status, body, headers = self.srv.api("GET", "/healthz", key=False)
        return status, body, headers

    def test_full_disk(self):
        rc = self.receiver()
        self.endpoint(rc.url)
        acked = []
        for n in range(5):
            status, body, _ = self.post(n)
            self.assertEqual(status, 202, body)
            acked.append(body["id"])
        rc.wait_for(5, timeout=DEADLINE)
        self.srv.wait_for(lambda: all(d["status"] == "delivered" for d in self.deliveries()),
                          timeout=DEADLINE, what="the first deliveries to be recorded")

        filler = fill(self.mnt)
        refused = 0
        for n in range(5, 15):
            status, body, headers = self.post(n)
            self.assertNotEqual(status, 202, "a 202 the store could not keep: %s" % body)
            self.assertEqual(status, 503, body)
            self.assertEqual(body["error"]["type"], "unavailable", body)
            self.assertEqual(headers.get("Retry-After"), "2")
            refused += 1
        status, body, headers = self.healthz()
        self.assertEqual(status, 503, "%s\n%s" % (body, self.srv.log_tail()))
        self.assertEqual(body["status"], "unavailable", body)
        self.assertEqual(headers.get("Retry-After"), "2")
        self.assertIn("writes to '%s' failing" % self.db, self.srv.log_since_start())

        # Space returns: the same process recovers by itself, first /healthz.
        os.unlink(filler)
        self.srv.wait_for(lambda: self.healthz()[0] == 200, timeout=DEADLINE,
                          what="/healthz to answer 200 once space returned")
        self.assertIn("writes to '%s' succeed again" % self.db, self.srv.log_since_start())
        for n in range(15, 20):
            status, body, _ = self.post(n)
            self.assertEqual(status, 202, body)
            acked.append(body["id"])

        # Exactly the acknowledged events are stored (none of the refused
        # ones half-written), and each reached the receiver.
        listed = self.call("GET", "/v1/events?limit=500")["data"]
        self.assertEqual(sorted(e["id"] for e in listed), sorted(acked))
        for eid in acked:
            self.call("GET", "/v1/events/" + eid)
        rc.wait_for(len(acked), timeout=DEADLINE)
        self.srv.wait_for(
            lambda: set(acked) <= {r.headers.get("x-workflux-event-id") for r in rc.requests},
            timeout=DEADLINE, what="every acknowledged event to be delivered")
        self.srv.stop()
        with sqlite3.connect(self.db) as db:
            self.assertEqual(db.execute("PRAGMA integrity_check").fetchone()[0], "ok")
            self.assertEqual(db.execute("SELECT count(*) FROM events").fetchone()[0], len(acked))
        print("full disk: %d acknowledged, %d refused with 503, 0 lost" % (len(acked), refused))


if __name__ == "__main__":
    unittest.main()
