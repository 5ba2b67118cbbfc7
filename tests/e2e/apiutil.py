"""Helpers for the REST API scenarios (test_api_*.py): a server with a fast
retry schedule that may deliver to loopback, receivers, and short calls.
Python 3 standard library only."""
import base64
import hashlib
import hmac
import json
import socket
import time
import unittest

from harness import Server
from receiver import Receiver

SERVE_ARGS = ["--allow-http", "--allow-networks", "127.0.0.0/8",
              "--retry-schedule", "0ms,100ms,200ms"]

# The guide's example payloads: what POST /v1/endpoints/{id}/test must send.
GUIDE_SAMPLES = {
    "conversation.started": {
        "conversation_id": "conv-123", "agent_id": "agent-123",
        "agent_name": "Customer Support Agent", "channel": "chat", "user_id": "user-456",
        "user_email": "user@example.com", "initial_message": "Hello, I need help"},
    "conversation.completed": {
        "conversation_id": "conv-123", "agent_id": "agent-123", "duration_seconds": 300,
        "messages_count": 8, "resolution_rate": 1.0, "satisfaction_score": 5,
        "was_escalated": False},
    "agent.response": {
        "conversation_id": "conv-123", "agent_id": "agent-123", "message_id": "msg-789",
        "content": "I can help you with that...", "response_time_ms": 1200,
        "confidence_score": 0.95},
    "integration.sync": {
        "integration_id": "int-456", "integration_type": "salesforce", "sync_type": "full",
        "records_synced": 150, "duration_seconds": 45, "status": "success"},
}

ALL_TYPES = ["conversation.started", "conversation.completed", "conversation.escalated",
             "agent.response", "user.message", "escalation.triggered", "integration.sync",
             "integration.error", "agent.updated"]

DONE = ("delivered", "failed")


def standard_signatures(secret, msg_id, timestamp, body):
    """The Standard Webhooks signature ("v1,<base64>") that secret gives."""
    key = base64.b64decode(secret[len("whsec_"):])
    mac = hmac.new(key, b"%s.%s.%s" % (msg_id.encode(), timestamp.encode(), body),
                   hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode()


def announce_body(srv, path, length, until=b"\r\n\r\n"):
    """Sends only the head of a POST announcing a body of length bytes (and its
    first byte); returns what the server answered, read until `until` came or
    it closed the connection."""
    s = socket.create_connection(("127.0.0.1", srv.port), timeout=30)
    try:
        s.sendall(b"POST " + path.encode() + b" HTTP/1.1\r\nHost: x\r\n"
                  b"Authorization: Bearer " + srv.root_key.encode() + b"\r\n"
                  b"Content-Type: application/json\r\n"
                  b"Content-Length: %d\r\n\r\n{" % length)
        data = b""
        while until not in data:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
    finally:
        s.close()
    return data


def metric(srv, name):
    """The value of the /metrics line that starts with name (labels included)."""
    status, text, _ = srv.api("GET", "/metrics", key=False)
    assert status == 200, text
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError("no %s in /metrics" % name)


def rfc3339(t):
    """A Unix time (float seconds) as RFC 3339 UTC with milliseconds."""
    ms = int(t * 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ms // 1000)) + ".%03dZ" % (ms % 1000)


class ApiCase(unittest.TestCase):
    """One fresh server per test, stopped (and checked for sanitizer reports) after it."""

    serve_args = SERVE_ARGS

    def setUp(self):
        self.srv = Server(args=list(self.serve_args), test=self)
        self.srv.start()

    def receiver(self, responses=None, default=200):
        rc = Receiver(responses=responses or [], default=default)
        self.addCleanup(rc.close)
        return rc

    def call(self, method, path, body=None, status=200, **kw):
        """One API call that must answer status; returns the parsed body."""
        st, b, _ = self.srv.api(method, path, body, **kw)
        self.assertEqual(st, status, "%s %s %s -> %s %s" % (method, path, body, st, b))
        return b

    def error(self, method, path, body=None, status=400, **kw):
        """A call that must fail with status; returns the "error" object."""
        b = self.call(method, path, body, status, **kw)
        self.assertIsInstance(b, dict, b)
        self.assertIn("error", b)
        self.assertIsInstance(b["error"].get("type"), str)
        self.assertIsInstance(b["error"].get("message"), str)
        return b["error"]

    def paths(self, err):
        """The paths of an error's fields."""
        return [f["path"] for f in err.get("fields") or []]

    def endpoint(self, url, key=None, **fields):
        body = dict(url=url)
        body.update(fields)
        return self.call("POST", "/v1/endpoints", body, 201, key=key)

    def publish(self, event, data, status=202, key=None, idem=None, timestamp=None):
        body = {"event": event, "data": data}
        if timestamp is not None:
            body["timestamp"] = timestamp
        headers = {"Idempotency-Key": idem} if idem is not None else None
        return self.call("POST", "/v1/events", body, status, key=key, headers=headers)

    def deliveries(self, key=None, **query):
        q = "&".join("%s=%s" % kv for kv in query.items())
        return self.call("GET", "/v1/deliveries?" + q, key=key)["data"]

    def delivery(self, dlv_id, key=None):
        return self.call("GET", "/v1/deliveries/" + dlv_id, key=key)

    def wait_status(self, dlv_id, statuses=DONE, timeout=15, key=None):
        """Polls a delivery until its status is one of statuses; returns it."""
        box = {}

        def done():
            box["d"] = self.delivery(dlv_id, key=key)
            return box["d"]["status"] in statuses
        self.srv.wait_for(done, timeout=timeout,
                          what="delivery %s to become %s" % (dlv_id, "/".join(statuses)))
        return box["d"]

    def wait_event_deliveries(self, event_id, n, statuses=DONE, key=None, timeout=15):
        """Waits until the event has n deliveries all in statuses; returns them."""
        box = {}

        def done():
            ds = self.deliveries(key=key, event_id=event_id)
            box["ds"] = ds
            return len(ds) == n and all(d["status"] in statuses for d in ds)
        self.srv.wait_for(done, timeout=timeout,
                          what="%d deliveries of %s to end" % (n, event_id))
        return box["ds"]

    def assert_settled(self, rc, endpoint_id, n, timeout=15):
        """Asserts that the receiver rc of endpoint_id got exactly n requests,
        without sleeping: first waits until every delivery of the endpoint has
        ended (delivered or failed, so none is left to send), then compares the
        receiver's count with the attempts the store recorded. The receiver logs
        a request before it answers and the store records an attempt after the
        answer, so every request already counts by then; one sent late or never
        recorded makes the two disagree."""
        box = {}

        def ended():
            ds = self.deliveries(endpoint_id=endpoint_id, limit=500)
            box["ds"] = ds
            return all(d["status"] in DONE for d in ds)
        self.srv.wait_for(ended, timeout=timeout,
                          what="every delivery of %s to end" % endpoint_id)
        made = sum(d["attempts_made"] for d in box["ds"])
        self.assertEqual(made, n, box["ds"])
        self.assertEqual(len(rc.requests), n)

    def new_account(self, name="other"):
        """A second account and a key for it; returns (account id, key secret)."""
        acct = self.call("POST", "/v1/accounts", {"name": name}, 201)
        k = self.call("POST", "/v1/accounts/%s/api-keys" % acct["id"], {"name": "k"}, 201)
        secret = k.get("secret") or k.get("key")
        self.assertTrue(secret, k)
        return acct["id"], secret

    def json_body(self, req):
        return json.loads(req.body)
