"""The receiver kit: libfluxhook-verify, its header and pkg-config file, as
`meson install` lays them out, and examples/receivers/c/receiver.c built against them with
the line the man page gives:

    cc examples/receivers/c/receiver.c $(pkg-config --cflags --libs fluxhook-verify)

The install goes to a temporary DESTDIR (so the build directory's prefix is
left alone); PKG_CONFIG_SYSROOT_DIR points pkg-config into it, and
LD_LIBRARY_PATH the loader. The build directory is $FLUXHOOK_BUILD_DIR, else
the one of $FLUXHOOK_RELEASE_BIN, else build/.
"""
import base64
import hashlib
import hmac
import json
import os
import shutil
import subprocess
import tempfile
import time
import unittest

from example_receiver import ExampleReceiver

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))

SECRET = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD"
OTHER_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


def build_dir():
    d = os.environ.get("FLUXHOOK_BUILD_DIR")
    if d:
        return d
    b = os.environ.get("FLUXHOOK_RELEASE_BIN")
    if b:
        return os.path.dirname(b)
    return os.path.join(ROOT, "build")


def guide_signature(payload, secret):
    """The guide's verify_webhook_signature computes exactly this."""
    return hmac.new(secret.encode(), payload.encode(), hashlib.sha256).hexdigest()


def standard_signature(secret, msg_id, ts, payload):
    key = base64.b64decode(secret[len("whsec_"):])
    mac = hmac.new(key, ("%s.%s.%s" % (msg_id, ts, payload)).encode(), hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode()


class Kit:
    """Installs the build directory into a temporary DESTDIR and builds the
    example receiver there, once per test process."""

    _made = None

    @classmethod
    def get(cls):
        if cls._made is None:
            cls._made = cls()
        return cls._made

    def __init__(self):
        self.build = build_dir()
        if not os.path.isfile(os.path.join(self.build, "build.ninja")):
            raise unittest.SkipTest("no meson build directory at %s" % self.build)
        opts = json.loads(subprocess.run(["meson", "introspect", "--buildoptions", self.build],
                                         check=True, stdout=subprocess.PIPE, text=True).stdout)
        opt = {o["name"]: o["value"] for o in opts}
        if opt.get("b_sanitize", "none") != "none":
            # A sanitizer build's library needs the sanitizer runtime in the
            # program too: that is not the receiver's plain cc line.
            raise unittest.SkipTest("%s is a sanitizer build (b_sanitize=%s)"
                                    % (self.build, opt["b_sanitize"]))
        self.tmp = tempfile.mkdtemp(prefix="fluxhook-kit-")
        self.destdir = os.path.join(self.tmp, "dest")
        subprocess.run(["meson", "install", "-C", self.build, "--no-rebuild", "--quiet",
                        "--destdir", self.destdir], check=True, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, text=True)
        prefix = self.destdir + opt["prefix"]
        libdir = opt["libdir"]
        if os.path.isabs(libdir):
            libdir = os.path.relpath(libdir, opt["prefix"])
        self.libdir = os.path.join(prefix, libdir)
        self.prefix = prefix
        self.env = dict(os.environ,
                        PKG_CONFIG_PATH=os.path.join(self.libdir, "pkgconfig"),
                        PKG_CONFIG_SYSROOT_DIR=self.destdir,
                        LD_LIBRARY_PATH=self.libdir)
        self.receiver = os.path.join(self.tmp, "receiver")
        p = subprocess.run(["sh", "-c", 'cc examples/receivers/c/receiver.c '
                            '$(pkg-config --cflags --libs fluxhook-verify) -o "$1"', "sh",
                            self.receiver], cwd=ROOT, env=self.env, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True)
        if p.returncode != 0:
            raise AssertionError("building examples/receivers/c/receiver.c failed:\n" + p.stdout)

    @classmethod
    def cleanup(cls):
        if cls._made is not None:
            shutil.rmtree(cls._made.tmp, ignore_errors=True)
            cls._made = None


class Receiver(ExampleReceiver):
    """The example receiver, running on an ephemeral loopback port."""

    def __init__(self, kit, secret, test):
        super().__init__([kit.receiver, "0"], dict(kit.env, WEBHOOK_SECRET=secret), test)

    def post(self, body, headers):
        return super().post(body.encode(), headers)


def signed_headers(secret, event_id, body, attempt=1, ts=None):
    ts = int(time.time()) if ts is None else ts
    return {
        "X-Workflux-Signature": guide_signature(body, secret),
        "X-Workflux-Event": "conversation.started",
        "X-Workflux-Event-Id": event_id,
        "X-Workflux-Attempt": str(attempt),
        "webhook-id": event_id,
        "webhook-timestamp": str(ts),
        "webhook-signature": standard_signature(secret, event_id, ts, body),
    }


BODY = json.dumps({"id": "evt_kit1", "event": "conversation.started",
                   "timestamp": "2024-01-01T12:00:00Z",
                   "data": {"conversation_id": "conv-123", "agent_id": "agent-123",
                            "channel": "chat", "user_email": "user@example.com",
                            "initial_message": "Hello, I need help \u00e9"}},
                  separators=(",", ":"), ensure_ascii=False)


def tearDownModule():
    Kit.cleanup()


class ReceiverKitTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.kit = Kit.get()

    def test_installed_layout(self):
        k = self.kit
        self.assertTrue(os.path.isfile(os.path.join(k.prefix, "include", "fluxhook", "verify.h")))
        self.assertTrue(os.path.isfile(os.path.join(k.libdir, "pkgconfig",
                                                    "fluxhook-verify.pc")))
        self.assertTrue(os.path.exists(os.path.join(k.libdir, "libfluxhook-verify.so")))
        self.assertTrue(os.access(os.path.join(k.prefix, "bin", "fluxhook"), os.X_OK))
        self.assertTrue(os.path.isfile(os.path.join(k.prefix, "share", "man", "man3",
                                                    "fluxhook-verify.3")))
        # The library exports its three functions and nothing else.
        nm = subprocess.run(["nm", "-D", "--defined-only",
                             os.path.join(k.libdir, "libfluxhook-verify.so")],
                            check=True, stdout=subprocess.PIPE, text=True).stdout
        names = sorted(line.split()[-1] for line in nm.splitlines() if " T " in line)
        self.assertEqual(names, ["fluxhook_verify_signature", "fluxhook_verify_standard",
                                 "fluxhook_verify_strerror"])

    def test_valid_delivery_200_tampered_401(self):
        r = Receiver(self.kit, SECRET, self)
        headers = signed_headers(SECRET, "evt_kit1", BODY)
        status, _ = r.post(BODY, headers)
        self.assertEqual(status, 200)
        self.assertEqual(r.line(), "delivery event=evt_kit1 attempt=1 verified")

        tampered = BODY.replace("agent-123", "agent-124")
        status, _ = r.post(tampered, headers)
        self.assertEqual(status, 401)
        line = r.line()
        self.assertTrue(line.startswith("delivery event=evt_kit1 attempt=1 not verified: "),
                        line)
        self.assertIn("does not match", line)

        # Signed with another secret: refused.
        status, _ = r.post(BODY, signed_headers(OTHER_SECRET, "evt_kit2", BODY, attempt=2))
        self.assertEqual(status, 401)
        self.assertIn("event=evt_kit2 attempt=2 not verified", r.line())

    def test_standard_webhooks_checks(self):
        r = Receiver(self.kit, SECRET, self)
        # Stale: the X-Workflux-Signature is fine, the timestamp an hour old.
        headers = signed_headers(SECRET, "evt_old", BODY, ts=int(time.time()) - 3600)
        status, _ = r.post(BODY, headers)
        self.assertEqual(status, 401)
        line = r.line()
        self.assertIn("event=evt_old attempt=1 not verified: webhook-signature:", line)
        self.assertIn("too old", line)

        # Rotation: the old secret's signature and then the new one.
        ts = int(time.time())
        headers = signed_headers(SECRET, "evt_rot", BODY, ts=ts)
        headers["webhook-signature"] = "%s %s" % (
            standard_signature(OTHER_SECRET, "evt_rot", ts, BODY), headers["webhook-signature"])
        status, _ = r.post(BODY, headers)
        self.assertEqual(status, 200)
        self.assertEqual(r.line(), "delivery event=evt_rot attempt=1 verified")

        # Only the Standard Webhooks headers, no X-Workflux-Signature.
        headers = signed_headers(SECRET, "evt_std", BODY)
        del headers["X-Workflux-Signature"]
        status, _ = r.post(BODY, headers)
        self.assertEqual(status, 200)
        self.assertEqual(r.line(), "delivery event=evt_std attempt=1 verified")

        # No signature at all.
        status, _ = r.post(BODY, {"X-Workflux-Event-Id": "evt_none"})
        self.assertEqual(status, 401)
        self.assertIn("event=evt_none attempt=- not verified: no signature headers", r.line())


@unittest.skipUnless(os.path.exists(os.path.join(HERE, "harness.py")),
                     "tests/e2e/harness.py (the fluxhook serve harness) does not exist yet")
class ServeToReceiverTest(unittest.TestCase):
    """fluxhook serve delivers to the example receiver, which verifies."""

    @classmethod
    def setUpClass(cls):
        cls.kit = Kit.get()

    def test_serve_delivery_verified(self):
        from harness import Server

        r = Receiver(self.kit, SECRET, self)
        srv = Server(args=["--allow-http", "--allow-networks", "127.0.0.0/8"], test=self)
        srv.start()
        url = "http://127.0.0.1:%d/hook" % r.port
        status, ep, _ = srv.api("POST", "/v1/endpoints", {"url": url, "secret": SECRET})
        self.assertEqual(status, 201, ep)
        self.assertEqual(ep["secret"], SECRET)
        # A second endpoint on the same receiver, with a secret it does not know.
        status, other, _ = srv.api("POST", "/v1/endpoints", {"url": url,
                                                             "secret": OTHER_SECRET})
        self.assertEqual(status, 201, other)

        status, ev, _ = srv.api("POST", "/v1/events", {
            "event": "conversation.started",
            "data": {"conversation_id": "conv-123", "agent_id": "agent-123", "channel": "chat"}})
        self.assertEqual(status, 202, ev)
        self.assertEqual(ev["deliveries"], 2)
        lines = sorted([r.line(), r.line()])
        self.assertEqual(lines[0], "delivery event=%s attempt=1 not verified: "
                                   "X-Workflux-Signature: signature does not match" % ev["id"])
        self.assertEqual(lines[1], "delivery event=%s attempt=1 verified" % ev["id"])

        def status_of(ep_id):
            s, page, _ = srv.api("GET", "/v1/deliveries?endpoint_id=%s&event_id=%s"
                                 % (ep_id, ev["id"]))
            self.assertEqual(s, 200, page)
            return page["data"][0]["status"] if page["data"] else None

        # 200 delivers; 401 fails at once, without retry (CONTRACT §3).
        srv.wait_for(lambda: status_of(ep["id"]) == "delivered", timeout=30,
                     what="the verified delivery to be delivered")
        srv.wait_for(lambda: status_of(other["id"]) == "failed", timeout=30,
                     what="the refused delivery to be failed")


def readme_kit_lines():
    """The README's receiver-kit commands, as written (the block after the
    "receiver-kit: tested" marker)."""
    with open(os.path.join(ROOT, "README.md")) as f:
        text = f.read()
    block = text.split("<!-- receiver-kit: tested -->", 1)[1].split("```sh\n", 1)[1]
    return [l for l in block.split("```", 1)[0].splitlines() if l.strip()]


@unittest.skipUnless(os.path.exists(os.path.join(HERE, "harness.py")), "no harness.py")
class ReadmeKitTest(unittest.TestCase):
    """The README's commands, run as written with HOME a temporary directory:
    make install into $HOME/.local, both cc lines, then each program, with
    no LD_LIBRARY_PATH, verifying a real delivery from fluxhook serve."""

    def test_readme_commands(self):
        from harness import Server

        if not os.path.isfile(os.path.join(build_dir(), "build.ninja")):
            raise unittest.SkipTest("no release build directory at %s" % build_dir())
        lines = readme_kit_lines()
        self.assertEqual(lines[0], "make install PREFIX=$HOME/.local")
        self.assertTrue(lines[-1].startswith("WEBHOOK_SECRET=whsec_... ./receiver "))
        home = tempfile.mkdtemp(prefix="fluxhook-home-")
        self.addCleanup(shutil.rmtree, home, True)
        work = os.path.join(home, "work")
        shutil.copytree(os.path.join(ROOT, "examples"), os.path.join(work, "examples"))
        env = {k: v for k, v in os.environ.items()
               if k not in ("LD_LIBRARY_PATH", "PKG_CONFIG_PATH", "PKG_CONFIG_SYSROOT_DIR",
                            "MAKEFLAGS", "MAKELEVEL")}
        env["HOME"] = home
        # make runs in the source tree; the cc lines where a user keeps examples/.
        script = "set -e\ncd %s\n%s\ncd %s\n%s\n" % (
            ROOT, lines[0], work, "\n".join(lines[1:-1]))
        p = subprocess.run(["sh", "-c", script], env=env, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True, timeout=900)
        self.assertEqual(p.returncode, 0, p.stdout[-4000:])
        prefix = os.path.join(home, ".local")
        for f in ("libfluxhook-verify.a", "libfluxhook-verify.so.0"):
            self.assertTrue(os.path.exists(os.path.join(prefix, "lib", f)), f)
        ldd = subprocess.run(["ldd", os.path.join(work, "receiver")], env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True).stdout
        self.assertIn("libfluxhook-verify.so.0 => %s/lib/" % prefix, ldd)
        for prog in ("receiver", "receiver-static"):
            with self.subTest(program=prog):
                kit = type("K", (), {})()
                kit.env = dict(env, WEBHOOK_SECRET=SECRET)
                kit.receiver = os.path.join(work, prog)
                r = Receiver(kit, SECRET, self)
                srv = Server(args=["--dev"], test=self)
                srv.start()
                st, ep, _ = srv.api("POST", "/v1/endpoints", {
                    "url": "http://127.0.0.1:%d/hook" % r.port, "secret": SECRET})
                self.assertEqual(st, 201, ep)
                st, ev, _ = srv.api("POST", "/v1/events", {
                    "event": "conversation.started",
                    "data": {"conversation_id": "c-1", "agent_id": "a-1", "channel": "chat"}})
                self.assertEqual(st, 202, ev)
                self.assertEqual(r.line(), "delivery event=%s attempt=1 verified" % ev["id"])


if __name__ == "__main__":
    unittest.main()
