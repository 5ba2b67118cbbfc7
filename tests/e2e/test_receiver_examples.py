"""The receiver examples of docs/receiving.md (examples/receivers/LANG/), each
built and run the way its header comment tells a user, against real
deliveries from a real `fluxhook serve`:

- a delivery signed with the receiver's secret is verified (200, and the
  delivery ends `delivered`); one signed with another secret is refused
  (401, and the delivery ends `failed`, not retried);
- a delivery captured on the way and sent again as it was is verified; sent
  with the body, either signature or the timestamp changed, or with a valid
  signature over a timestamp 10 minutes old, it is refused with 401 and a
  line naming the check that failed;
- during a secret rotation (the receiver holds the new and the old secret)
  deliveries keep verifying, before and after the rotation; the C example,
  which holds one secret, shows why: X-Workflux-Signature changes at once;
- the Python example handles an event once: fluxhook's retry of a delivery
  it already took answers 200 and is reported as a duplicate.

Every toolchain comes from Debian (scripts/setup.sh --test): python3, nodejs,
golang-go, ruby, php-cli, default-jdk-headless, mono-mcs; the C example links
libfluxhook-verify installed from the release build (test_receiver_kit.Kit).
A missing toolchain fails the test, naming the package.
"""
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import unittest

from apiutil import standard_signatures
from example_receiver import ExampleReceiver
from harness import Server, clean_env
from receiver import Receiver as CaptureReceiver
from test_receiver_kit import Kit, guide_signature

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
EXAMPLES = os.path.join(ROOT, "examples", "receivers")

SECRET = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD"
OTHER_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
NEW_SECRET = "whsec_qXSeWv0w3oJ9pWAKBZ7nZRT4Jx1zGNNb"
EVENT = "conversation.started"
# The request headers a receiver looks at, as fluxhook sent them.
KEPT = ("x-workflux-signature", "x-workflux-event", "x-workflux-event-id",
        "x-workflux-delivery", "x-workflux-attempt", "webhook-id", "webhook-timestamp",
        "webhook-signature")

state = {}


def setUpModule():
    srv = Server(args=["--allow-http", "--allow-networks", "127.0.0.0/8"])
    srv.start()
    state["server"] = srv
    # One real delivery, captured on the way: the tampering tests start from it.
    cap = CaptureReceiver()
    state["capture"] = cap
    status, ep, _ = srv.api("POST", "/v1/endpoints", {"url": cap.url, "secret": SECRET})
    assert status == 201, ep
    status, sent, _ = srv.api("POST", "/v1/endpoints/%s/test" % ep["id"], {"event": EVENT})
    assert status == 202, sent
    req = cap.wait_for(1, timeout=30)[0]
    state["captured"] = ({k: v for k, v in req.headers.items() if k in KEPT}, req.body)


def tearDownModule():
    if "capture" in state:
        state["capture"].close()
    srv = state.get("server")
    if srv is not None:
        srv.stop()
        report = srv.sanitizer_report()
        if report:
            raise AssertionError("sanitizer report in the server log:\n" + report)
    Kit.cleanup()


def need(tool, package):
    if shutil.which(tool) is None:
        raise AssertionError("%s is not installed: apt-get install %s "
                             "(scripts/setup.sh --test does)" % (tool, package))


def run_build(argv, cwd, env=None):
    p = subprocess.run(argv, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       text=True, timeout=300)
    if p.returncode != 0:
        raise AssertionError("%s failed:\n%s" % (" ".join(argv), p.stdout))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Example:
    """How to build and start one language's example. build() returns
    (argv, env, ready regex or None)."""

    multi_secret = True  # WEBHOOK_SECRET may list several secrets

    def __init__(self, tmp):
        self.tmp = tmp

    def path(self, name):
        return os.path.join(EXAMPLES, self.lang, name)


class Python(Example):
    lang = "python"

    def build(self):
        return [sys.executable, self.path("receiver.py"), "0"], clean_env(), None


class Node(Example):
    lang = "node"

    def build(self):
        need("node", "nodejs")
        return ["node", self.path("receiver.js"), "0"], clean_env(), None


class Go(Example):
    lang = "go"

    def build(self):
        need("go", "golang-go")
        exe = os.path.join(self.tmp, "receiver")
        env = clean_env({"GOCACHE": os.path.join(self.tmp, "gocache"),
                         "GOPATH": os.path.join(self.tmp, "gopath"), "GOFLAGS": "-mod=mod"})
        run_build(["go", "build", "-o", exe, "receiver.go"], os.path.dirname(self.path("x")),
                  env)
        return [exe, "0"], clean_env(), None


class Ruby(Example):
    lang = "ruby"

    def build(self):
        need("ruby", "ruby")
        return ["ruby", self.path("receiver.rb"), "0"], clean_env(), None


class Php(Example):
    lang = "php"

    def build(self):
        need("php", "php-cli")
        return (["php", "-S", "127.0.0.1:0", self.path("receiver.php")], clean_env(),
                r"Development Server \(http://127\.0\.0\.1:(\d+)\) started")


class Java(Example):
    lang = "java"

    def build(self):
        need("javac", "default-jdk-headless")
        out = os.path.join(self.tmp, "classes")
        run_build(["javac", "-Xlint:all", "-Werror", "-d", out, self.path("Receiver.java")],
                  self.tmp)
        return ["java", "-cp", out, "Receiver", "0"], clean_env(), None


class CSharp(Example):
    lang = "csharp"

    def build(self):
        need("mcs", "mono-mcs")
        exe = os.path.join(self.tmp, "receiver.exe")
        run_build(["mcs", "-warnaserror", "-out:" + exe, self.path("Receiver.cs")], self.tmp)
        # HttpListener cannot take port 0: the port is picked here.
        return ["mono", exe, str(free_port())], clean_env(), None


class C(Example):
    lang = "c"
    multi_secret = False  # examples/receivers/c/receiver.c takes one secret

    def build(self):
        kit = Kit.get()  # installs libfluxhook-verify and builds receiver.c against it
        return [kit.receiver, "0"], dict(kit.env), None


class ExampleTest:
    """The tests every example passes; one TestCase per language below."""

    example = None

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="fluxhook-examples-")
        cls.built = cls.example(cls.tmp).build()

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def start(self, secrets=SECRET):
        argv, env, ready = self.built
        env = dict(env, WEBHOOK_SECRET=secrets)
        kw = {"ready": ready} if ready else {}
        return ExampleReceiver(argv, env, self, cwd=self.tmp, **kw)

    def api(self, method, path, body=None, status=200):
        s, obj, _ = state["server"].api(method, path, body)
        self.assertEqual(s, status, obj)
        return obj

    def endpoint(self, r, secret):
        url = "http://127.0.0.1:%d/hook" % r.port
        return self.api("POST", "/v1/endpoints", {"url": url, "secret": secret}, 201)

    def send_test(self, ep):
        return self.api("POST", "/v1/endpoints/%s/test" % ep["id"], {"event": EVENT}, 202)

    def wait_status(self, dlv_id, want):
        def done():
            return self.api("GET", "/v1/deliveries/" + dlv_id)["status"] == want
        state["server"].wait_for(done, timeout=30, what="delivery %s to be %s" % (dlv_id, want))

    def refused(self, r, body, headers, *words):
        status, _ = r.post(body, headers)
        line = r.line()
        self.assertEqual(status, 401, line)
        self.assertIn(" not verified: ", line)
        for w in words:
            self.assertIn(w, line)
        return line

    def test_real_deliveries(self):
        r = self.start()
        good = self.endpoint(r, SECRET)
        bad = self.endpoint(r, OTHER_SECRET)

        sent = self.send_test(good)
        self.assertEqual(r.line(), "delivery event=%s attempt=1 verified" % sent["event_id"])
        self.wait_status(sent["delivery_id"], "delivered")

        sent = self.send_test(bad)
        line = r.line()
        self.assertTrue(line.startswith("delivery event=%s attempt=1 not verified: "
                                        "X-Workflux-Signature: " % sent["event_id"]), line)
        self.assertIn("does not match", line)
        self.wait_status(sent["delivery_id"], "failed")  # 401: failed at once, no retry

    def test_tampered_refused(self):
        r = self.start()
        headers, body = state["captured"]
        event_id = headers["x-workflux-event-id"]

        # As fluxhook sent it (within the 5 minute tolerance): verified.
        status, _ = r.post(body, headers)
        self.assertEqual(status, 200)
        self.assertEqual(r.line(), "delivery event=%s attempt=1 verified" % event_id)

        # One byte of the body changed.
        self.refused(r, body.replace(b"conv", b"conw", 1), headers, "does not match")
        # X-Workflux-Signature made with another secret; webhook-signature intact.
        h = dict(headers, **{"x-workflux-signature": guide_signature(body.decode(),
                                                                     OTHER_SECRET)})
        self.refused(r, body, h, "X-Workflux-Signature", "does not match")
        # webhook-signature made with another secret; X-Workflux-Signature intact.
        ts = int(headers["webhook-timestamp"])
        h = dict(headers, **{"webhook-signature": standard_signatures(
            OTHER_SECRET, event_id, str(ts), body)})
        self.refused(r, body, h, "webhook-signature", "does not match")
        # The timestamp moved by a second without signing again.
        h = dict(headers, **{"webhook-timestamp": str(ts - 1)})
        self.refused(r, body, h, "does not match")
        # Signed correctly, but 10 minutes ago: a replay.
        old = int(time.time()) - 600
        h = dict(headers, **{"webhook-timestamp": str(old), "webhook-signature":
                             standard_signatures(SECRET, event_id, str(old), body)})
        line = self.refused(r, body, h)
        self.assertRegex(line, r"webhook-timestamp: more than 300 s from now|too old")

    def test_rotation(self):
        if not self.example.multi_secret:
            # With the old secret only: webhook-signature still carries the old
            # secret's signature, but X-Workflux-Signature is the new one's at once.
            r = self.start(SECRET)
            ep = self.endpoint(r, SECRET)
            self.api("POST", "/v1/endpoints/%s/secret/rotate" % ep["id"], {"secret": NEW_SECRET})
            sent = self.send_test(ep)
            line = r.line()
            self.assertTrue(line.startswith("delivery event=%s attempt=1 not verified: "
                                            "X-Workflux-Signature: " % sent["event_id"]), line)
            return
        # The receiver learns the new secret first, then the endpoint rotates to it.
        r = self.start("%s %s" % (NEW_SECRET, SECRET))
        ep = self.endpoint(r, SECRET)
        sent = self.send_test(ep)
        self.assertEqual(r.line(), "delivery event=%s attempt=1 verified" % sent["event_id"])
        self.api("POST", "/v1/endpoints/%s/secret/rotate" % ep["id"], {"secret": NEW_SECRET})
        sent = self.send_test(ep)
        self.assertEqual(r.line(), "delivery event=%s attempt=1 verified" % sent["event_id"])
        self.wait_status(sent["delivery_id"], "delivered")


def _case(example):
    name = "Test" + example.__name__ + "Example"
    return type(name, (ExampleTest, unittest.TestCase), {"example": example})


TestPythonExample = _case(Python)
TestNodeExample = _case(Node)
TestGoExample = _case(Go)
TestRubyExample = _case(Ruby)
TestPhpExample = _case(Php)
TestJavaExample = _case(Java)
TestCSharpExample = _case(CSharp)
TestCExample = _case(C)


class TestPythonIdempotency(unittest.TestCase):
    """The worked example of docs/receiving.md: an event is handled once."""

    def test_retry_is_a_duplicate(self):
        srv = state["server"]
        r = ExampleReceiver([sys.executable, os.path.join(EXAMPLES, "python", "receiver.py"),
                             "0"], clean_env({"WEBHOOK_SECRET": SECRET}), self)
        status, ep, _ = srv.api("POST", "/v1/endpoints", {
            "url": "http://127.0.0.1:%d/hook" % r.port, "secret": SECRET})
        self.assertEqual(status, 201, ep)
        status, sent, _ = srv.api("POST", "/v1/endpoints/%s/test" % ep["id"], {"event": EVENT})
        self.assertEqual(status, 202, sent)
        self.assertEqual(r.line(), "delivery event=%s attempt=1 verified" % sent["event_id"])

        def delivered(attempts):
            s, d, _ = srv.api("GET", "/v1/deliveries/" + sent["delivery_id"])
            return s == 200 and d["status"] == "delivered" and d["attempts_made"] == attempts
        srv.wait_for(lambda: delivered(1), timeout=30, what="the delivery to be delivered")

        # fluxhook delivers the same event again (as after a lost answer): attempt 2.
        status, body, _ = srv.api("POST", "/v1/deliveries/%s/retry" % sent["delivery_id"])
        self.assertEqual(status, 202, body)
        self.assertEqual(r.line(), "delivery event=%s attempt=2 verified, duplicate"
                         % sent["event_id"])
        srv.wait_for(lambda: delivered(2), timeout=30, what="the retried delivery to be delivered")


if __name__ == "__main__":
    unittest.main()
