"""Many keep-alive clients at once: every request gets its own answer, the
server counts them all, and the store holds exactly what was accepted."""
import threading
import unittest

from harness import Server

CLIENTS = 16
PER_CLIENT = 40
ROUNDS = 40  # concurrent PATCH + rotation pairs
DATA = {"conversation_id": "c1", "message_id": "m1", "user_id": "u1", "content": "hi"}


class ApiConcurrency(unittest.TestCase):
    def test_parallel_keep_alive_clients(self):
        srv = Server(args=["--role", "api"], test=self)
        srv.start()
        status, ep, _ = srv.api("POST", "/v1/endpoints", {"url": "https://example.com/hook"})
        self.assertEqual(status, 201, ep)
        results = [[] for _ in range(CLIENTS)]

        def client(i):
            conn = srv.connection()
            try:
                for j in range(PER_CLIENT):
                    if j % 4 == 3:
                        # A bad request in between must not disturb the connection.
                        st, body, _ = srv.api("POST", "/v1/events", raw=b"{nope", conn=conn)
                        results[i].append(("bad", st, None))
                        continue
                    st, body, _ = srv.api("POST", "/v1/events",
                                          {"event": "user.message",
                                           "data": dict(DATA, content="%d-%d" % (i, j))},
                                          conn=conn)
                    results[i].append(("pub", st, body.get("id") if isinstance(body, dict)
                                       else body))
            finally:
                conn.close()

        threads = [threading.Thread(target=client, args=(i,)) for i in range(CLIENTS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(300)
        published = set()
        for rs in results:
            self.assertEqual(len(rs), PER_CLIENT)
            for kind, st, ident in rs:
                if kind == "bad":
                    self.assertEqual(st, 400)
                else:
                    self.assertEqual(st, 202, ident)
                    published.add(ident)
        expected = CLIENTS * (PER_CLIENT - PER_CLIENT // 4)
        self.assertEqual(len(published), expected)

        # Every accepted event is stored once, with its delivery.
        seen, cursor = set(), None
        for _ in range(expected // 100 + 3):
            path = "/v1/events?limit=100" + ("&after=" + cursor if cursor else "")
            st, page, _ = srv.api("GET", path)
            self.assertEqual(st, 200, page)
            seen.update(e["id"] for e in page["data"])
            cursor = page["next"]
            if cursor is None:
                break
        self.assertEqual(seen, published)
        st, text, _ = srv.api("GET", "/metrics", key=False)
        self.assertIn('fluxhook_deliveries{status="pending"} %d' % expected, text)
        self.assertEqual(srv.stop(), 0)

    def test_concurrent_patch_and_rotation_on_two_servers_keep_both(self):
        """A PATCH on one server and a rotation on another, at the same moment,
        on one store: neither change undoes the other (each is one atomic
        change of its own fields, not a read-modify-write of the whole row)."""
        a = Server(args=["--role", "api"], test=self)
        a.start()
        b = Server(args=["--role", "api"], db=a.db, root_key=a.root_key, test=self)
        b.start()
        st, ep, _ = a.api("POST", "/v1/endpoints", {"url": "https://example.com/hook"})
        self.assertEqual(st, 201, ep)
        path = "/v1/endpoints/" + ep["id"]
        for i in range(ROUNDS):
            out = {}

            def patch():
                out["patch"] = a.api("PATCH", path, {"description": "round %d" % i})

            def rotate():
                out["rotate"] = b.api("POST", path + "/secret/rotate", {"grace_seconds": 0})

            threads = [threading.Thread(target=patch), threading.Thread(target=rotate)]
            for t in threads:
                t.start()
            for t in threads:
                t.join(60)
            self.assertEqual(out["patch"][0], 200, out["patch"][1])
            self.assertEqual(out["rotate"][0], 200, out["rotate"][1])
            st, got, _ = a.api("GET", path)
            self.assertEqual(got["description"], "round %d" % i)
            st, sec, _ = a.api("GET", path + "/secret")
            self.assertEqual(sec["secret"], out["rotate"][1]["secret"], "round %d" % i)


if __name__ == "__main__":
    unittest.main()
