"""`fluxhook verify` (CONTRACT §5): checks a body the way a receiver must.
Exit 0 when valid, 1 when not, 2 on bad usage; the reason on stderr."""
import base64
import hashlib
import hmac
import os
import subprocess
import tempfile
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
BIN = os.environ.get("FLUXHOOK_BIN") or os.path.join(ROOT, "build-asan", "fluxhook")

SECRET = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD"
BODY = ('{"id":"evt_1","event":"conversation.started","timestamp":"2024-01-01T12:00:00Z",'
        '"data":{"conversation_id":"conv-123","agent_id":"agent-123","channel":"chat",'
        '"initial_message":"Hello, I need help"}}')


def guide_signature(payload, secret):
    """What the guide's verify_webhook_signature compares with."""
    return hmac.new(secret.encode(), payload.encode(), hashlib.sha256).hexdigest()


def standard_signature(secret, msg_id, ts, payload):
    key = base64.b64decode(secret[len("whsec_"):])
    mac = hmac.new(key, ("%s.%s.%s" % (msg_id, ts, payload)).encode(), hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode()


def run(*args, stdin=None, env=None):
    e = {k: v for k, v in os.environ.items() if not k.startswith("FLUXHOOK_")}
    e.update(env or {})
    return subprocess.run([BIN, "verify"] + list(args), input=stdin, env=e,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=60)


class VerifyCliTest(unittest.TestCase):
    def setUp(self):
        fd, self.path = tempfile.mkstemp(prefix="fluxhook-verify-")
        with os.fdopen(fd, "w") as f:
            f.write(BODY)
        self.addCleanup(os.unlink, self.path)
        self.sig = guide_signature(BODY, SECRET)

    def std_args(self, ts=None, secret=SECRET, body=BODY):
        ts = int(time.time()) if ts is None else ts
        return ["--webhook-id", "evt_1", "--webhook-timestamp", str(ts),
                "--webhook-signature", standard_signature(secret, "evt_1", ts, body)]

    def test_workflux_signature(self):
        p = run("--secret", SECRET, "--signature", self.sig, self.path)
        self.assertEqual((p.returncode, p.stdout), (0, "X-Workflux-Signature: valid\n"), p.stderr)
        p = run("--secret", SECRET, "--signature", self.sig, stdin=BODY)
        self.assertEqual(p.returncode, 0, p.stderr)
        p = run("--secret", SECRET, "--signature", self.sig.upper(), "-", stdin=BODY)
        self.assertEqual(p.returncode, 0, p.stderr)
        p = run("--signature", self.sig, self.path, env={"FLUXHOOK_SECRET": SECRET})
        self.assertEqual(p.returncode, 0, p.stderr)

    def test_workflux_signature_invalid(self):
        p = run("--secret", SECRET, "--signature", self.sig, stdin=BODY + " ")
        self.assertEqual(p.returncode, 1)
        self.assertEqual(p.stdout, "")
        self.assertIn("X-Workflux-Signature: does not match the body", p.stderr)
        p = run("--secret", SECRET + "x", "--signature", self.sig, self.path)
        self.assertEqual(p.returncode, 1)
        p = run("--secret", SECRET, "--signature", "sha256=" + self.sig, self.path)
        self.assertEqual(p.returncode, 1)
        self.assertIn("expected 64 hex digits", p.stderr)

    def test_standard_webhooks(self):
        p = run("--secret", SECRET, *self.std_args(), self.path)
        self.assertEqual((p.returncode, p.stdout), (0, "webhook-signature: valid\n"), p.stderr)
        # Both schemes at once: both checked, both reported.
        p = run("--secret", SECRET, "--signature", self.sig, *self.std_args(), self.path)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(p.stdout, "X-Workflux-Signature: valid\nwebhook-signature: valid\n")

    def test_standard_webhooks_stale(self):
        old = int(time.time()) - 1500
        p = run("--secret", SECRET, "--signature", self.sig, *self.std_args(ts=old), self.path)
        self.assertEqual(p.returncode, 1)
        self.assertEqual(p.stdout, "X-Workflux-Signature: valid\n")
        self.assertRegex(p.stderr, r"webhook-timestamp: 1[45]\d\d s old, more than the "
                                   r"tolerance of 300 s")
        p = run("--secret", SECRET, "--tolerance", "1h", *self.std_args(ts=old), self.path)
        self.assertEqual(p.returncode, 0, p.stderr)
        future = int(time.time()) + 1000
        p = run("--secret", SECRET, *self.std_args(ts=future), self.path)
        self.assertEqual(p.returncode, 1)
        self.assertIn("s in the future, more than the tolerance of 300 s", p.stderr)

    def test_standard_webhooks_invalid(self):
        other = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
        p = run("--secret", SECRET, *self.std_args(secret=other), self.path)
        self.assertEqual(p.returncode, 1)
        self.assertIn("webhook-signature: no v1 signature matches", p.stderr)
        args = self.std_args()
        args[5] = "v2," + args[5][3:]
        p = run("--secret", SECRET, *args, self.path)
        self.assertEqual(p.returncode, 1)
        self.assertIn("found no v1 entry", p.stderr)
        args = self.std_args()
        args[3] = "yesterday"
        p = run("--secret", SECRET, *args, self.path)
        self.assertEqual(p.returncode, 1)
        self.assertIn("webhook-timestamp: expected Unix seconds, got 'yesterday'", p.stderr)
        p = run("--secret", "not-a-whsec", *self.std_args(), self.path)
        self.assertEqual(p.returncode, 1)
        self.assertIn("the secret is not 'whsec_' followed by base64", p.stderr)

    def test_bad_usage(self):
        cases = [
            ["--signature", self.sig, self.path],                      # no secret
            ["--secret", SECRET, self.path],                           # nothing to check
            ["--secret", SECRET, "--webhook-id", "evt_1", self.path],  # partial
            ["--secret", SECRET, "--signature", self.sig, "--tolerance", "5 minutes", self.path],
            ["--secret", SECRET, "--signature", self.sig, self.path, self.path],
            ["--secret", SECRET, "--signature", self.sig, self.path + ".missing"],
            ["--secret", SECRET, "--signature", self.sig, "--frobnicate", self.path],
        ]
        for args in cases:
            with self.subTest(args=args):
                p = run(*args, stdin="")
                self.assertEqual(p.returncode, 2, p.stderr)
                self.assertEqual(p.stdout, "")
                self.assertTrue(p.stderr.startswith("fluxhook verify: "), p.stderr)

    def test_help(self):
        p = run("--help")
        self.assertEqual(p.returncode, 0)
        self.assertIn("usage: fluxhook verify --secret S", p.stdout)
        self.assertIn("--webhook-signature SIGS", p.stdout)


if __name__ == "__main__":
    unittest.main()
