"""Every event type reaches a real receiver: the stored envelope byte for byte,
every header of CONTRACT §2, both signatures verified the receiver's way."""
import json
import time
import unittest

from apiutil import ALL_TYPES, ApiCase, GUIDE_SAMPLES, standard_signatures
from guide import verify_webhook_signature

SAMPLES = dict(GUIDE_SAMPLES)
SAMPLES.update({
    "conversation.escalated": {
        "conversation_id": "conv-123", "agent_id": "agent-123", "reason": "asked for a human",
        "priority": "high"},
    "user.message": {
        "conversation_id": "conv-123", "message_id": "msg-1", "user_id": "user-456",
        "content": "h\u00e9llo \u2713 \"quoted\" \\ back", "channel": "chat",
        "future_field": {"nested": [1, 2.5, None, True]}},
    "escalation.triggered": {
        "escalation_id": "esc-1", "conversation_id": "conv-123", "reason": "angry",
        "priority": "urgent", "requested_by": "user"},
    "integration.error": {
        "integration_id": "int-456", "integration_type": "salesforce", "error_code": "E42",
        "error_message": "token expired", "retryable": True},
    "agent.updated": {
        "agent_id": "agent-123", "updated_fields": ["name", "prompt"],
        "agent_name": "Support", "updated_by": "admin"},
})
VERSION = None


class DeliverEventTypes(ApiCase):

    def raw_get(self, path):
        conn = self.srv.connection()
        try:
            conn.request("GET", path, headers={"Authorization": "Bearer " + self.srv.root_key})
            r = conn.getresponse()
            return r.status, r.read()
        finally:
            conn.close()

    def test_each_type_delivered_signed_and_identical(self):
        self.assertEqual(sorted(SAMPLES), sorted(ALL_TYPES))
        rc_a = self.receiver()
        rc_b = self.receiver()
        ep_a = self.endpoint(rc_a.url)
        ep_b = self.endpoint(rc_b.url, event_types=ALL_TYPES)
        secrets = {ep_a["id"]: ep_a["secret"], ep_b["id"]: ep_b["secret"]}
        version = self.srv.run_cli("version").stdout.split()[-1]

        t0 = int(time.time())
        published = {}
        for typ in ALL_TYPES:
            ev = self.publish(typ, SAMPLES[typ])
            self.assertEqual(ev["deliveries"], 2)
            published[ev["id"]] = typ
        reqs_a = rc_a.wait_for(len(ALL_TYPES), timeout=20)
        reqs_b = rc_b.wait_for(len(ALL_TYPES), timeout=20)
        t1 = int(time.time()) + 1

        for rc, reqs, ep in ((rc_a, reqs_a, ep_a), (rc_b, reqs_b, ep_b)):
            self.assertEqual(len(reqs), len(ALL_TYPES))
            seen = set()
            for req in reqs:
                h = req.headers
                evt_id = h["x-workflux-event-id"]
                self.assertIn(evt_id, published)
                seen.add(evt_id)
                typ = published[evt_id]
                self.assertEqual(req.method, "POST")
                self.assertEqual(req.path, "/hook")
                # The stored envelope, exactly.
                status, raw = self.raw_get("/v1/events/" + evt_id)
                self.assertEqual(status, 200)
                stored = json.loads(raw)
                env = json.loads(req.body)
                self.assertEqual(list(env), ["id", "event", "timestamp", "data"])
                self.assertEqual(env, {k: stored[k] for k in ("id", "event", "timestamp",
                                                              "data")})
                self.assertEqual(env["data"], json.loads(json.dumps(SAMPLES[typ])))
                # Headers of CONTRACT §2.
                self.assertEqual(h["content-type"], "application/json")
                self.assertEqual(h["user-agent"], "fluxhook/" + version)
                self.assertEqual(h["x-workflux-event"], typ)
                self.assertEqual(h["x-workflux-attempt"], "1")
                self.assertEqual(h["webhook-id"], evt_id)
                self.assertNotIn("expect", h)
                self.assertEqual(int(h["content-length"]), len(req.body))
                ts = int(h["webhook-timestamp"])
                self.assertTrue(t0 <= ts <= t1, (t0, ts, t1))
                # X-Workflux-Signature, checked by the guide's own function.
                self.assertTrue(verify_webhook_signature(req.body.decode("utf-8"),
                                                         h["x-workflux-signature"],
                                                         secrets[ep["id"]]))
                self.assertFalse(verify_webhook_signature(req.body.decode("utf-8"),
                                                          h["x-workflux-signature"],
                                                          secrets[ep["id"]] + "x"))
                # webhook-signature, recomputed.
                self.assertEqual(h["webhook-signature"],
                                 standard_signatures(secrets[ep["id"]], evt_id,
                                                     h["webhook-timestamp"], req.body))
                # The delivery id names this (event, endpoint) pair.
                ds = self.deliveries(event_id=evt_id, endpoint_id=ep["id"])
                self.assertEqual(len(ds), 1)
                self.assertEqual(h["x-workflux-delivery"], ds[0]["id"])
            self.assertEqual(seen, set(published))

        # Both endpoints got the same bytes for each event.
        by_a = {r.headers["x-workflux-event-id"]: r.body for r in reqs_a}
        by_b = {r.headers["x-workflux-event-id"]: r.body for r in reqs_b}
        self.assertEqual(by_a, by_b)
        delivery_ids = {r.headers["x-workflux-delivery"] for r in reqs_a + reqs_b}
        self.assertEqual(len(delivery_ids), 2 * len(ALL_TYPES))
        for evt_id in published:
            for d in self.wait_event_deliveries(evt_id, 2):
                self.assertEqual(d["status"], "delivered")
                self.assertEqual(d["attempts_made"], 1)

    def test_get_event_shows_the_delivered_bytes(self):
        """GET /v1/events/{id} serves the envelope as stored, so its bytes (up to
        the fields it adds after data) are the bytes every receiver got."""
        rc = self.receiver()
        self.endpoint(rc.url)
        for typ in ("agent.response", "user.message", "conversation.completed"):
            self.publish(typ, SAMPLES[typ])
        for req in rc.wait_for(3, timeout=20):
            status, raw = self.raw_get("/v1/events/" + req.headers["x-workflux-event-id"])
            self.assertEqual(status, 200)
            self.assertTrue(raw.startswith(req.body[:-1]),
                            "delivered body is not the envelope GET shows:\n%r\n%r"
                            % (req.body, raw))


if __name__ == "__main__":
    unittest.main()
