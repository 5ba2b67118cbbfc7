"""The receiver host of the multi-host tests (Python 3 standard library only).

As a program, run inside the receiver's namespace:

    receiver_host.py --listen 198.18.0.40:8000 --log deliveries.jsonl \\
                     --secrets secrets.json [--delay /slow=0.5]

it answers every POST with 200 and appends one JSON line per request, written
when the request has arrived, before the answer:

    {"t": unix time, "path": "/a", "peer": "198.18.0.31", "id": body id,
     "webhook_id": ..., "event_id": X-Workflux-Event-Id, "delivery": X-Workflux-Delivery,
     "attempt": X-Workflux-Attempt, "sig": whether X-Workflux-Signature verifies}

The signature is checked with the guide's own verify_webhook_signature
(tests/e2e/guide.py) against the secret of the path in secrets.json
({"/a": "whsec_...", ...}). `--delay PATH=SECONDS` answers that path late, so
attempts stay in flight. GET /ready answers 200 and is not logged.

In the tests, DeliveryLog reads that file as it grows.
"""
import argparse
import http.server
import json
import os
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                "e2e"))
from guide import verify_webhook_signature  # noqa: E402


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "multihost-receiver"
    sys_version = ""

    def log_message(self, fmt, *args):  # quiet
        pass

    def _answer(self, status):
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_GET(self):
        self._answer(200 if self.path == "/ready" else 404)

    def do_POST(self):
        srv = self.server
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n) if n > 0 else b""
        text = body.decode("utf-8", "replace")
        try:
            body_id = json.loads(text).get("id")
        except (ValueError, AttributeError):
            body_id = None
        secret = srv.secrets.get(self.path)
        sig = self.headers.get("X-Workflux-Signature") or ""
        rec = {
            "t": time.time(),
            "path": self.path,
            "peer": self.client_address[0],
            "id": body_id,
            "webhook_id": self.headers.get("webhook-id"),
            "event_id": self.headers.get("X-Workflux-Event-Id"),
            "delivery": self.headers.get("X-Workflux-Delivery"),
            "attempt": self.headers.get("X-Workflux-Attempt"),
            "sig": bool(secret) and verify_webhook_signature(text, sig, secret),
        }
        srv.record(rec)
        delay = srv.delays.get(self.path)
        if delay:
            time.sleep(delay)
        self._answer(200)


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 512

    def __init__(self, addr, log_path, secrets, delays):
        self.secrets = secrets
        self.delays = delays
        self._lock = threading.Lock()
        self._log = open(log_path, "a", buffering=1)
        super().__init__(addr, _Handler)

    def record(self, rec):
        line = json.dumps(rec, separators=(",", ":")) + "\n"
        with self._lock:
            self._log.write(line)
            self._log.flush()


class DeliveryLog:
    """Reads the receiver's log as it grows: poll() returns the records added
    since the last call (whole lines only)."""

    def __init__(self, path):
        self.path = path
        self._offset = 0
        self._partial = b""

    def poll(self):
        try:
            with open(self.path, "rb") as f:
                f.seek(self._offset)
                chunk = f.read()
        except FileNotFoundError:
            return []
        self._offset += len(chunk)
        data = self._partial + chunk
        lines = data.split(b"\n")
        self._partial = lines.pop()
        return [json.loads(line) for line in lines if line.strip()]


def main(argv=None):
    ap = argparse.ArgumentParser(description="the multi-host tests' receiver")
    ap.add_argument("--listen", required=True, help="ADDR:PORT")
    ap.add_argument("--log", required=True)
    ap.add_argument("--secrets", required=True, help="JSON file {path: secret}")
    ap.add_argument("--delay", action="append", default=[], help="PATH=SECONDS")
    a = ap.parse_args(argv)
    host, port = a.listen.rsplit(":", 1)
    with open(a.secrets) as f:
        secrets = json.load(f)
    delays = {}
    for d in a.delay:
        path, seconds = d.split("=", 1)
        delays[path] = float(seconds)
    srv = _Server((host, int(port)), a.log, secrets, delays)
    print("receiver: listening on %s" % a.listen, flush=True)
    srv.serve_forever(poll_interval=0.1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
