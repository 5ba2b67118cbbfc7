"""A fluxhook receiver in Python 3, standard library only.

    WEBHOOK_SECRET=whsec_... python3 receiver.py 9000

It listens on 127.0.0.1:PORT (0 picks a free port; the first line printed,
"listening on 127.0.0.1:N", says which). For each POST it checks both
signatures fluxhook sends, X-Workflux-Signature and the Standard Webhooks
webhook-signature, prints one line

    delivery event=evt_... attempt=1 verified
    delivery event=evt_... attempt=2 not verified: webhook-timestamp: ...

and answers 200 when both verify, 401 when not. WEBHOOK_SECRET may hold
several secrets separated by spaces (while you rotate: the new one and the
old one); each signature must then verify with one of them. A verified event is handled
once: its id (X-Workflux-Event-Id) is recorded in the same SQLite transaction
as the work, so a second delivery of it answers 200 and does nothing
("verified, duplicate"). Set WEBHOOK_DB=FILE to keep the ids across restarts.
"""
import base64
import hashlib
import hmac
import http.server
import json
import os
import sqlite3
import sys
import time

TOLERANCE_SECONDS = 5 * 60  # how far webhook-timestamp may be from now


def verify_workflux(secret, body, signature):
    """X-Workflux-Signature: lowercase hex HMAC-SHA256 of the raw body, keyed
    with the whole secret string ("whsec_" included). Returns None when it
    matches, else what is wrong."""
    if not signature:
        return "X-Workflux-Signature: missing"
    expected = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected.encode(), signature.strip().lower().encode()):
        return "X-Workflux-Signature: does not match"
    return None


def verify_standard(secret, msg_id, timestamp, signatures, body, now=None):
    """webhook-signature (Standard Webhooks): "v1," + base64 HMAC-SHA256 of
    "webhook-id.webhook-timestamp.body", keyed with the base64-decoded part
    of the secret after "whsec_". Several space-separated signatures arrive
    while a secret rotation runs: any one matching is enough. Returns None
    when valid, else what is wrong."""
    if not msg_id or not timestamp or not signatures:
        return "webhook-signature: missing webhook-id, webhook-timestamp or webhook-signature"
    if not timestamp.isdigit():
        return "webhook-timestamp: not a number"
    now = time.time() if now is None else now
    if abs(now - int(timestamp)) > TOLERANCE_SECONDS:
        return "webhook-timestamp: more than %d s from now" % TOLERANCE_SECONDS
    key = base64.b64decode(secret[len("whsec_"):])
    signed = ("%s.%s." % (msg_id, timestamp)).encode() + body
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest())
    for entry in signatures.split():
        version, _, sig = entry.partition(",")
        if version == "v1" and hmac.compare_digest(expected, sig.encode()):
            return None
    return "webhook-signature: does not match"


def handle_once(db, event_id, body):
    """Does the work for an event unless its id was seen: the id is inserted in
    the same transaction as the work, so a crash in between leaves neither.
    Returns False for a duplicate."""
    with db:  # one transaction: commits on success, rolls back on an exception
        cur = db.execute("INSERT OR IGNORE INTO processed_events (event_id) VALUES (?)",
                         (event_id,))
        if cur.rowcount == 0:
            return False
        event = json.loads(body)
        # Your work goes here, inside the transaction, e.g. store event["data"].
        db.execute("UPDATE processed_events SET event_type = ? WHERE event_id = ?",
                   (event["event"], event_id))
    return True


def verify_delivery(secrets, headers, body):
    """Both checks, each passing with any one of secrets. Returns None or
    what is wrong (as found with the first secret)."""
    checks = (lambda s: verify_workflux(s, body, headers.get("X-Workflux-Signature")),
              lambda s: verify_standard(s, headers.get("webhook-id"),
                                        headers.get("webhook-timestamp"),
                                        headers.get("webhook-signature"), body))
    for check in checks:
        problems = [check(s) for s in secrets]
        if None not in problems:
            return problems[0]
    return None


class Handler(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        event_id = self.headers.get("X-Workflux-Event-Id") or "-"
        attempt = self.headers.get("X-Workflux-Attempt") or "-"
        # Check the raw bytes as they arrived, before parsing any JSON.
        problem = verify_delivery(self.server.secrets, self.headers, body)
        if problem:
            print("delivery event=%s attempt=%s not verified: %s" % (event_id, attempt, problem),
                  flush=True)
            self.answer(401, b"invalid signature\n")
            return
        fresh = handle_once(self.server.db, event_id, body)
        print("delivery event=%s attempt=%s verified%s"
              % (event_id, attempt, "" if fresh else ", duplicate"), flush=True)
        self.answer(200, b"ok\n")

    def answer(self, status, text):
        self.send_response(status)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(text)))
        self.end_headers()
        self.wfile.write(text)

    def log_message(self, fmt, *args):
        pass  # one line per delivery is printed above


def main():
    secrets = os.environ.get("WEBHOOK_SECRET", "").split()
    if len(sys.argv) != 2 or not secrets or not all(s.startswith("whsec_") for s in secrets):
        sys.exit("usage: WEBHOOK_SECRET=whsec_... python3 receiver.py PORT")
    server = http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), Handler)
    server.secrets = secrets
    server.db = sqlite3.connect(os.environ.get("WEBHOOK_DB", ":memory:"))
    server.db.execute("CREATE TABLE IF NOT EXISTS processed_events "
                      "(event_id TEXT PRIMARY KEY, event_type TEXT)")
    print("listening on 127.0.0.1:%d" % server.server_address[1], flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
