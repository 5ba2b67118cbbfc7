"""Enable and replay move a large backlog in chunks: kill -9 the server as the
first of them arrive at the receiver, start it again on the same store, and
the rest still come (the enable is resumed and the replay goes on at start):
every held delivery arrives, every replayed one arrives again, none is left
held."""
import collections
import http.client
import json
import threading
import unittest

from harness import Server
from receiver import Receiver

N = 5000  # deliveries: several chunks (the first is 100, none more than 2,000)
DATA = {"conversation_id": "c-1", "message_id": "m-1", "user_id": "u-1", "content": "hi"}


class DeliverCrashChunks(unittest.TestCase):

    def setUp(self):
        self.rc = Receiver(default=200)
        self.addCleanup(self.rc.close)
        self.srv = Server(args=["--allow-http", "--allow-networks", "127.0.0.0/8",
                                "--attempt-timeout", "2s", "--lease", "3s"], test=self)
        self.srv.start()

    def call_cut(self, path, body):
        """POSTs in a thread; returns (thread, result: {"status"} or {"error"})."""
        out = {}
        port, key = self.srv.port, self.srv.root_key

        def run():
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
            try:
                conn.request("POST", path, body=json.dumps(body),
                             headers={"Authorization": "Bearer " + key,
                                      "Content-Type": "application/json"})
                r = conn.getresponse()
                out["status"], out["body"] = r.status, r.read()
            except (OSError, http.client.HTTPException) as e:
                out["error"] = repr(e)
            finally:
                conn.close()
        t = threading.Thread(target=run)
        t.start()
        return t, out

    def crash_when_arriving(self, before, path, body):
        """Calls path, kill -9s the server as soon as a delivery beyond `before`
        arrives, starts it again; returns what the call got."""
        t, out = self.call_cut(path, body)
        self.rc.wait_for(before + 1, timeout=60)
        self.srv.kill9()
        t.join(30)
        self.assertFalse(t.is_alive())
        self.srv.start()
        return out

    def arrivals(self):
        return collections.Counter(r.headers["x-workflux-event-id"] for r in self.rc.requests)

    def test_enable_and_replay_cut_short_finish_after_restart(self):
        st, ep, _ = self.srv.api("POST", "/v1/endpoints", {"url": self.rc.url, "enabled": False})
        self.assertEqual(st, 201, ep)
        ids = []
        for _ in range(N // 500):
            st, b, _ = self.srv.api("POST", "/v1/events/batch",
                                    {"events": [{"event": "user.message", "data": DATA}] * 500})
            self.assertEqual(st, 200, b.get("error"))
            self.assertEqual({r["status"] for r in b["results"]}, {202})
            ids += [r["id"] for r in b["results"]]
        self.assertEqual(len(set(ids)), N)
        st, b, _ = self.srv.api("GET", "/v1/endpoints/" + ep["id"])
        self.assertEqual(b["held"], N)

        # Enable, crashed as the first chunk's deliveries arrive.
        out = self.crash_when_arriving(0, "/v1/endpoints/%s/enable" % ep["id"], {})
        if "status" in out:  # it finished first: then its answer was whole
            self.assertEqual(json.loads(out["body"])["resumed"], N, out)
        self.srv.wait_for(lambda: set(ids) <= set(self.arrivals()), timeout=180,
                          what="every held delivery at the receiver", interval=0.2)
        st, b, _ = self.srv.api("GET", "/v1/endpoints/" + ep["id"])
        self.assertEqual((b["status"], b["held"]), ("enabled", 0))

        # Replay them all, crashed as the first replayed ones arrive.
        def delivered():
            st, b, _ = self.srv.api("GET", "/v1/deliveries?status=pending&limit=1")
            return st == 200 and b["data"] == []
        self.srv.wait_for(delivered, timeout=60, what="nothing pending", interval=0.2)
        seen = len(self.rc.requests)
        out = self.crash_when_arriving(seen, "/v1/endpoints/%s/replay" % ep["id"],
                                       {"since": "2000-01-01T00:00:00Z"})
        if "status" in out:
            self.assertEqual(json.loads(out["body"]), {"replayed": N}, out)

        def replayed():
            got = self.arrivals()
            return all(got[i] >= 2 for i in ids)
        self.srv.wait_for(replayed, timeout=180, what="every delivery again at the receiver",
                          interval=0.2)
        for status in ("failed", "held"):
            st, b, _ = self.srv.api("GET", "/v1/deliveries?status=%s&limit=10" % status)
            self.assertEqual(st, 200, b)
            self.assertEqual(b["data"], [], "deliveries %s after the crashes" % status)
        self.assertEqual(self.srv.stop(), 0)


if __name__ == "__main__":
    unittest.main()
