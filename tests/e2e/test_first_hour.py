"""The first hour of a new user, as the screen tells it: `make run` builds
quietly and prints one block (dashboard URL, admin key, the two exports, what
to do next); following it, `fluxhook listen --forward-to` passes a delivery
that `fluxhook trigger` made to the developer's own small app, which
verifies it, and `fluxhook verify` checks the request listen captured.

The whole session is written to tests/artifacts/first-hour.txt, commands and
output as they ran, so that the transcript stays true. `make run` uses the
release build (build/fluxhook), and so do the commands here. The test moves
the port and the data directory (RUN_LISTEN=127.0.0.1:0, RUN_DIR) so that it
cannot meet another server; a user types plain `make run`."""
import json
import os
import re
import select
import shlex
import signal
import subprocess
import sys
import time
import unittest

from cliutil import free_port
from harness import ROOT, clean_env, mkdtemp

BIN = os.path.join(ROOT, "build", "fluxhook")
ARTIFACT = os.path.join(ROOT, "tests", "artifacts", "first-hour.txt")

# The developer's app: a plain HTTP server that checks X-Workflux-Signature as the
# receiving guide says (HMAC-SHA256 of the body, keyed with the whole secret) and
# answers 200 {"ok":true}, or 401.
APP = r'''
import hashlib, hmac, http.server, os, sys
SECRET = os.environ["WEBHOOK_SECRET"].encode()
class App(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        want = hmac.new(SECRET, body, hashlib.sha256).hexdigest()
        ok = hmac.compare_digest(want, self.headers.get("X-Workflux-Signature", ""))
        out = b'{"ok":true}' if ok else b'{"ok":false}'
        print("app: %s %s %s" % (self.path, self.headers["X-Workflux-Event-Id"],
                                 "verified, answering 200" if ok else "NOT verified, answering 401"),
              flush=True)
        self.send_response(200 if ok else 401)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)
    def log_message(self, *a):
        pass
http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), App).serve_forever()
'''


class Lines:
    """A child's stdout read line by line, with a deadline per wait."""

    def __init__(self, proc):
        self.proc = proc
        self.buf = b""
        self.seen = []

    def until(self, pred, timeout=120, what="a line"):
        deadline = time.monotonic() + timeout
        while True:
            while b"\n" in self.buf:
                line, self.buf = self.buf.split(b"\n", 1)
                text = line.decode("utf-8", "replace")
                self.seen.append(text)
                if pred(text):
                    return text
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError("timed out waiting for %s; so far:\n%s"
                                     % (what, "\n".join(self.seen)))
            r, _, _ = select.select([self.proc.stdout], [], [], left)
            if r:
                chunk = os.read(self.proc.stdout.fileno(), 65536)
                if not chunk:
                    raise AssertionError("the process ended (%s) before %s; so far:\n%s"
                                         % (self.proc.wait(), what, "\n".join(self.seen)))
                self.buf += chunk


class FirstHourTest(unittest.TestCase):
    def setUp(self):
        if not os.access(BIN, os.X_OK):
            raise unittest.SkipTest("no release build at build/fluxhook (make builds it)")
        self.dir = mkdtemp(prefix="fluxhook-first-hour-")
        self.env = {k: v for k, v in clean_env().items() if k not in ("MAKEFLAGS", "MAKELEVEL",
                                                                       "MFLAGS")}
        self.log = []
        self.procs = []

    def tearDown(self):
        for p in reversed(self.procs):
            if p.poll() is None:
                try:
                    os.killpg(p.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
                try:
                    p.wait(30)
                except subprocess.TimeoutExpired:
                    os.killpg(p.pid, signal.SIGKILL)
                    p.wait()
            for f in (p.stdout, p.stderr):
                if f is not None:
                    f.close()

    def say(self, text):
        self.log.append(text.rstrip("\n"))

    def start(self, argv, env, shown=None, stderr=subprocess.DEVNULL):
        self.say("$ " + (shown or " ".join(shlex.quote(a) for a in argv)) + " &")
        p = subprocess.Popen(argv, env=env, cwd=self.dir, stdout=subprocess.PIPE, stderr=stderr,
                             stdin=subprocess.DEVNULL, start_new_session=True)
        self.procs.append(p)
        return p

    def run_shown(self, argv, env, shown=None, status=0):
        self.say("$ " + (shown or " ".join(shlex.quote(a) for a in argv)))
        p = subprocess.run(argv, env=env, cwd=self.dir, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, text=True,
                           timeout=120)
        self.say(p.stdout)
        self.assertEqual(p.returncode, status, p.stdout)
        return p.stdout

    def test_first_hour(self):
        run_dir = os.path.join(self.dir, "var")
        # 1. make run: a quiet build, then the block.
        make = self.start(["make", "--no-print-directory", "-C", ROOT, "run",
                           "RUN_DIR=" + run_dir, "RUN_LISTEN=127.0.0.1:0"], self.env,
                          shown="make run", stderr=subprocess.PIPE)
        out = Lines(make)
        out.until(lambda l: "fluxhook trigger conversation.started" in l, what="the block")
        block = "\n".join(out.seen)
        self.say(block)
        self.say("")
        self.assertTrue(out.seen[0].startswith("building fluxhook (the output goes to "), block)
        self.assertNotIn("ninja", block)
        self.assertNotIn("Compiling", block)
        self.assertLess(len(out.seen), 30, block)
        self.assertIn("DEVELOPMENT MODE (--dev): http:// and loopback receivers are allowed.",
                      block)
        url = re.search(r"(?m)^  Dashboard   (http://127\.0\.0\.1:\d+)/$", block).group(1)
        key = re.search(r"(?m)^  Admin key   (fhk_\S+)$", block).group(1)
        exports = re.findall(r"(?m)^    (export \S+=.*)$", block)
        self.assertEqual(exports, ["export FLUXHOOK_URL=" + url,
                                   "export FLUXHOOK_API_KEY=$(cat %s/root.key)" % run_dir])
        with open(os.path.join(run_dir, "root.key")) as f:
            self.assertEqual(f.read().strip(), key)
        import urllib.request
        with urllib.request.urlopen(url + "/", timeout=30) as r:
            self.assertEqual(r.status, 200)

        # 2. The two exports, as the block gives them.
        self.say("# in another terminal, as the block says:")
        for e in exports:
            self.say("$ " + e)
        env = dict(self.env, FLUXHOOK_URL=url, FLUXHOOK_API_KEY=key,
                   PATH=os.path.dirname(BIN) + os.pathsep + self.env.get("PATH", ""))

        # 3. listen, forwarding to the app's port; the endpoint points at listen.
        app_port = free_port()
        listen = self.start([BIN, "listen", "--port", "0", "--forward-to",
                             "http://127.0.0.1:%d/webhooks" % app_port, "--print", "json"], env,
                            shown="fluxhook listen --port 0 --forward-to "
                                  "http://127.0.0.1:%d/webhooks --print json | tee capture.jsonl"
                                  % app_port)
        lo = Lines(listen)
        first = lo.until(lambda l: l.startswith("listen: listening url="), what="listen")
        listen_url = first.split("=", 1)[1]
        lo.until(lambda l: l.startswith("listen: forwarding"), what="listen's forwarding line")
        self.say("\n".join(lo.seen))
        self.say("")
        ep = self.run_shown([BIN, "endpoints", "create", "--url", listen_url + "/"], env,
                            shown="fluxhook endpoints create --url %s/" % listen_url)
        secret = re.search(r"(?m)^secret\s+(whsec_\S+)$", ep).group(1)

        # 4. The developer's app, with the endpoint's secret.
        app_file = os.path.join(self.dir, "app.py")
        with open(app_file, "w") as f:
            f.write(APP)
        app = self.start([sys.executable, app_file, str(app_port)],
                         dict(env, WEBHOOK_SECRET=secret),
                         shown="WEBHOOK_SECRET=%s python3 app.py %d   # your app" % (secret,
                                                                                  app_port))
        deadline = time.monotonic() + 30
        import socket
        while True:
            try:
                socket.create_connection(("127.0.0.1", app_port), timeout=1).close()
                break
            except OSError:
                self.assertLess(time.monotonic(), deadline, "the app did not start")
                time.sleep(0.05)

        # 5. trigger, and what listen and the app printed.
        trig = self.run_shown([BIN, "trigger", "conversation.started"], env,
                              shown="fluxhook trigger conversation.started")
        ev_id = re.search(r"event (evt_\w+)", trig).group(1)
        captured = lo.until(lambda l: l.startswith("{"), what="the captured request")
        self.say("# listen printed (and tee kept in capture.jsonl):")
        self.say(captured)
        with open(os.path.join(self.dir, "capture.jsonl"), "w") as f:
            f.write("\n".join(lo.seen) + "\n")
        cap = json.loads(captured)
        self.assertEqual((cap["answer"], cap["app"]), (200, 200))
        self.assertEqual(json.loads(cap["body"])["id"], ev_id)
        al = Lines(app)
        said = al.until(lambda l: l.startswith("app: "), what="the app's line")
        self.say("# your app printed:")
        self.say(said)
        self.assertEqual(said, "app: /webhooks %s verified, answering 200" % ev_id)
        self.say("")

        # 6. The delivery in words, and the capture verified.
        deadline = time.monotonic() + 30
        while True:
            p = subprocess.run([BIN, "deliveries", "list", "--json"], env=env,
                               stdout=subprocess.PIPE, text=True, timeout=60)
            if json.loads(p.stdout)["data"][0]["status"] == "delivered":
                break
            self.assertLess(time.monotonic(), deadline, "not delivered")
            time.sleep(0.1)
        lst = self.run_shown([BIN, "deliveries", "list"], env, shown="fluxhook deliveries list")
        self.assertIn("delivered — 200 on attempt 1 of 5", lst)
        ver = self.run_shown([BIN, "verify", "--secret", secret, "--request", "capture.jsonl"],
                             env, shown="fluxhook verify --secret %s --request capture.jsonl"
                                        % secret)
        self.assertEqual(ver, "X-Workflux-Signature: valid\nwebhook-signature: valid\n")

        # 7. Ctrl-C on make run stops the server cleanly (make itself reports the interrupt).
        os.killpg(make.pid, signal.SIGINT)
        make.wait(60)
        err = make.stderr.read().decode("utf-8", "replace")
        self.assertIn("warn serve: DEVELOPMENT MODE (--dev)", err)
        self.assertIn("serve: stopped", err)

        os.makedirs(os.path.dirname(ARTIFACT), exist_ok=True)
        with open(ARTIFACT, "w") as f:
            f.write("# The first hour of a new user: written by tests/e2e/test_first_hour.py\n"
                    "# (the test moves make run's port and data directory; a user types\n"
                    "# plain `make run`, with the dashboard on http://127.0.0.1:8080/).\n\n")
            f.write("\n".join(self.log).replace(self.dir, "~") + "\n")


if __name__ == "__main__":
    unittest.main()
