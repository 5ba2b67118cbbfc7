"""Two serve processes sharing one store: every change one of them makes to an
endpoint (disable, enable, a new url, a rotated secret, deletion, a new
endpoint) is followed by the very next publish on the other, however many
publishes it made before (SQLite: the publishing writer keeps the fan-out and
the endpoints it hands off to in memory, and must notice another process's
commit). What a user sees: exactly the right deliveries, held or sent, to the
right url, signed with the right secret."""
import unittest

from apiutil import ApiCase, SERVE_ARGS, standard_signatures
from harness import Server

DATA = {"conversation_id": "c-1", "message_id": "m-1", "user_id": "u-1", "content": "hi"}


class SharedStore(ApiCase):

    serve_args = SERVE_ARGS

    def setUp(self):
        super().setUp()
        # The second process: the same store, its own writer, API and dispatcher.
        self.other = Server(args=list(SERVE_ARGS), db=self.srv.db, root_key=self.srv.root_key,
                            test=self)
        self.other.start()

    def on_other(self, method, path, body=None, status=200):
        st, b, _ = self.other.api(method, path, body)
        self.assertEqual(st, status, "%s %s %s -> %s %s" % (method, path, body, st, b))
        return b

    def publish_n(self, n):
        return [self.publish("user.message", DATA) for _ in range(n)]

    def statuses(self, ev):
        return [(d["endpoint_id"], d["status"]) for d in self.deliveries(event_id=ev["id"])]

    def test_changes_on_the_other_process_hold_at_the_next_publish(self):
        rc1, rc2, rc3 = self.receiver(), self.receiver(), self.receiver()
        ep = self.endpoint(rc1.url, event_types=["user.message"])
        for ev in self.publish_n(3):
            self.wait_event_deliveries(ev["id"], 1, ("delivered",))
        self.assertEqual(len(rc1.wait_for(3)), 3)

        # Disabled there: held here, from the next publish on.
        self.on_other("POST", "/v1/endpoints/%s/disable" % ep["id"], {})
        held = self.publish_n(2)
        for ev in held:
            self.assertEqual(self.statuses(ev), [(ep["id"], "held")])

        # A new url there, then enabled: the held ones and the next go to it.
        self.on_other("PATCH", "/v1/endpoints/" + ep["id"], {"url": rc2.url})
        self.on_other("POST", "/v1/endpoints/%s/enable" % ep["id"], {})
        for ev in held + self.publish_n(2):
            self.wait_event_deliveries(ev["id"], 1, ("delivered",))
        self.assertEqual(len(rc2.wait_for(4)), 4)

        # A secret rotated there without grace: the next is signed with the new one only.
        new = self.on_other("POST", "/v1/endpoints/%s/secret/rotate" % ep["id"],
                            {"grace_seconds": 0})
        secret = self.on_other("GET", "/v1/endpoints/%s/secret" % ep["id"])
        self.assertIsNone(secret["previous"], new)
        ev = self.publish("user.message", DATA)
        self.wait_event_deliveries(ev["id"], 1, ("delivered",))
        req = rc2.wait_for(5)[4]
        self.assertEqual(req.headers["x-workflux-event-id"], ev["id"])
        self.assertEqual(req.headers["webhook-signature"],
                         standard_signatures(secret["secret"], req.headers["webhook-id"],
                                             req.headers["webhook-timestamp"], req.body))

        # Deleted there: no delivery here; a new endpoint there: delivered here.
        self.on_other("DELETE", "/v1/endpoints/" + ep["id"], status=204)
        ev = self.publish("user.message", DATA)
        self.assertEqual(ev.get("deliveries", 0), 0, ev)
        self.assertEqual(self.statuses(ev), [])
        ep3 = self.on_other("POST", "/v1/endpoints", {"url": rc3.url}, 201)
        ev = self.publish("user.message", DATA)
        self.wait_event_deliveries(ev["id"], 1, ("delivered",))
        self.assertEqual(rc3.wait_for(1)[0].headers["x-workflux-event-id"], ev["id"])

        # Exactly these, each once: nothing was sent to a url or endpoint it no longer had.
        self.assert_settled(rc3, ep3["id"], 1)
        self.assertEqual(len(rc1.requests), 3)
        self.assertEqual(len(rc2.requests), 5)


if __name__ == "__main__":
    unittest.main()
