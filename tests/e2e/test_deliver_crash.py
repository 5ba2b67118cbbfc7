"""At least once across a crash: kill -9 the server during a burst of
publishes from several threads, start it again on the same store, and every
event that was answered 202 reaches every receiver (duplicates allowed,
losses never)."""
import http.client
import json
import threading
import time
import unittest

from harness import Server
from receiver import Receiver

THREADS = 4
PER_THREAD = 60
DATA = {"conversation_id": "c-1", "message_id": "m-1", "user_id": "u-1", "content": "hi"}


class DeliverCrash(unittest.TestCase):

    def publisher(self, srv, acked, lock, stop):
        """Publishes PER_THREAD events (bounded tries); records those answered 202."""
        conn = None
        sent = 0
        tries = 0
        body = json.dumps({"event": "user.message", "data": DATA})
        while sent < PER_THREAD and tries < PER_THREAD * 50 and not stop.is_set():
            tries += 1
            try:
                if conn is None:
                    conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=10)
                conn.request("POST", "/v1/events", body=body,
                             headers={"Authorization": "Bearer " + srv.root_key,
                                      "Content-Type": "application/json"})
                r = conn.getresponse()
                payload = r.read()
                if r.status == 202:
                    with lock:
                        acked.append(json.loads(payload)["id"])
                    sent += 1
                else:
                    time.sleep(0.02)
            except (OSError, http.client.HTTPException):
                # The server is down or restarting: this one was not accepted.
                if conn is not None:
                    conn.close()
                conn = None
                time.sleep(0.02)
        if conn is not None:
            conn.close()

    def test_kill9_during_burst_loses_nothing(self):
        # Slow answers keep attempts under way when the crash comes: their leases
        # must run out and the restarted server must claim them again.
        rcs = [Receiver(default={"status": 200, "delay": 0.05}) for _ in range(3)]
        for rc in rcs:
            self.addCleanup(rc.close)
        srv = Server(args=["--allow-http", "--allow-networks", "127.0.0.0/8",
                           "--attempt-timeout", "1s", "--lease", "5s",
                           "--retry-schedule", "0ms,100ms,200ms,400ms,800ms"], test=self)
        srv.start()
        for rc in rcs:
            st, b, _ = srv.api("POST", "/v1/endpoints", {"url": rc.url})
            self.assertEqual(st, 201, b)

        acked = []
        lock = threading.Lock()
        stop = threading.Event()
        threads = [threading.Thread(target=self.publisher, args=(srv, acked, lock, stop))
                   for _ in range(THREADS)]
        for t in threads:
            t.start()
        try:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                with lock:
                    if len(acked) >= THREADS * PER_THREAD // 3:
                        break
                time.sleep(0.005)
            srv.kill9()
            killed_at = len(acked)
            time.sleep(0.3)
            srv.start()
        finally:
            for t in threads:
                t.join(120)
            stop.set()
        self.assertGreater(killed_at, 0)
        self.assertEqual(len(acked), THREADS * PER_THREAD, "publishers did not finish")
        self.assertEqual(len(set(acked)), len(acked))

        want = set(acked)
        for rc in rcs:
            def arrived(rc=rc):
                return want <= {r.headers["x-workflux-event-id"] for r in rc.requests}
            srv.wait_for(arrived, timeout=90, what="every accepted event at %s" % rc.url,
                         interval=0.2)
            # Each copy that arrived carries a good envelope for its id.
            for r in rc.requests:
                self.assertEqual(json.loads(r.body)["id"], r.headers["x-workflux-event-id"])

        # Nothing is left failed or stuck in the store either.
        for status in ("failed", "held"):
            st, b, _ = srv.api("GET", "/v1/deliveries?status=%s&limit=500" % status)
            self.assertEqual(st, 200, b)
            self.assertEqual(b["data"], [], "deliveries %s after the crash" % status)
        self.assertEqual(srv.stop(), 0)


if __name__ == "__main__":
    unittest.main()
