"""A steady publish load for the fault tests (Python 3 standard library only).

    pub = Publisher(srv, rate=100, limit=60)   # events/s; stops by itself after limit s
    pub.start(); ...; pub.wait_acked(100); ...; pub.stop()
    pub.acked     ids answered 202, in order
    pub.refused   (status, Retry-After) of every other answer
    pub.errors    requests that got no answer (server down, connection broken)
"""
import http.client
import json
import threading
import time

DATA = {"conversation_id": "c-1", "message_id": "m-1", "user_id": "u-1", "content": "hi"}


class Publisher(threading.Thread):
    """Publishes user.message events at about `rate` per second to srv until
    stop() or `limit` seconds; a request without a 202 is not acknowledged."""

    def __init__(self, srv, rate=100, limit=60):
        super().__init__(daemon=True)
        self.srv = srv
        self.rate = rate
        self.limit = limit
        self.acked = []
        self.refused = []
        self.errors = 0
        self.lock = threading.Lock()
        self.halt = threading.Event()

    def run(self):
        deadline = time.monotonic() + self.limit
        conn = None
        hdrs = {"Authorization": "Bearer " + self.srv.root_key,
                "Content-Type": "application/json"}
        body = json.dumps({"event": "user.message", "data": DATA})
        while not self.halt.is_set() and time.monotonic() < deadline:
            t0 = time.monotonic()
            try:
                if conn is None:
                    conn = http.client.HTTPConnection("127.0.0.1", self.srv.port, timeout=30)
                conn.request("POST", "/v1/events", body=body, headers=hdrs)
                r = conn.getresponse()
                payload = r.read()
                with self.lock:
                    if r.status == 202:
                        self.acked.append(json.loads(payload)["id"])
                    else:
                        self.refused.append((r.status, r.getheader("Retry-After")))
            except (OSError, http.client.HTTPException):
                self.errors += 1
                if conn is not None:
                    conn.close()
                conn = None
            self.halt.wait(max(0.0, 1.0 / self.rate - (time.monotonic() - t0)))
        if conn is not None:
            conn.close()

    def stop(self):
        self.halt.set()
        self.join(60)

    def count(self):
        with self.lock:
            return len(self.acked)

    def wait_acked(self, n, timeout=30):
        """Waits until n more events than now are acknowledged."""
        target = self.count() + n
        deadline = time.monotonic() + timeout
        while self.count() < target:
            if time.monotonic() > deadline:
                raise AssertionError("publishing did not resume: %d acked, wanted %d"
                                     % (self.count(), target))
            time.sleep(0.02)
