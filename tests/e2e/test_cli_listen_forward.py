"""`fluxhook listen --forward-to URL` passes each delivery on to the
developer's app with the same headers and body, prints the app's answer and
answers the delivery with it; `--print headers|body|json` prints what
arrived, and a request captured with --print json is verified by
`fluxhook verify --request`."""
import json
import os
import subprocess

from cliutil import CliCase, Listener, SECRET, STARTED
from harness import clean_env, mkdtemp
from receiver import Receiver


class CliListenForwardTest(CliCase):
    def app(self, **kw):
        rc = Receiver(path="/webhooks", **kw)
        self.addCleanup(rc.close)
        return rc

    def publish(self):
        return self.cli_json("events", "publish", "conversation.started", "--data",
                             json.dumps(STARTED))

    def deliveries(self, ev):
        return self.srv.api("GET", "/v1/deliveries?event_id=" + ev["id"])[1]["data"]

    def test_forwards_same_headers_and_body_and_returns_the_answer(self):
        app = self.app(responses=[{"status": 201, "body": b'{"received":true}',
                                   "headers": {"Content-Type": "application/json"}}])
        fwd = app.url
        ln = Listener(self, "--secret", SECRET, "--forward-to", fwd)
        self.endpoint(ln.url + "/hook", "--secret", SECRET)
        ev = self.publish()
        out = ln.wait_for(lambda t: "  answer" in t, what="the forwarded delivery")
        got = app.wait_for(1)[0]
        d = self.deliveries(ev)[0]
        self.srv.wait_for(lambda: self.deliveries(ev)[0]["status"] == "delivered",
                          what="delivered with the app's 201")
        full = self.srv.api("GET", "/v1/deliveries/" + d["id"])[1]
        # The app saw what fluxhook sent: body byte for byte, every signature header.
        self.assertEqual(got.method, "POST")
        self.assertEqual(got.path, "/webhooks")
        self.assertEqual(json.loads(got.body)["id"], ev["id"])
        for h in ("x-workflux-signature", "webhook-id", "webhook-timestamp",
                  "webhook-signature", "x-workflux-event-id", "x-workflux-delivery",
                  "x-workflux-attempt", "content-type", "user-agent"):
            self.assertIn(h, got.headers, h)
        self.assertEqual(got.headers["x-workflux-delivery"], d["id"])
        self.assertTrue(got.headers["user-agent"].startswith("fluxhook/"))
        self.assertRegex(out, r"(?m)^  X-Workflux-Signature\s+verified$")
        self.assertRegex(out, r"(?m)^  forwarded to\s+%s$" % fwd)
        self.assertRegex(out, r'(?m)^  your app answered\s+201 in \d+ ms: \{"received":true\}$')
        self.assertRegex(out, r"(?m)^  answer\s+201$")
        # fluxhook recorded the app's answer as the delivery's.
        a = full["attempts"][0]
        self.assertEqual(a["status_code"], 201)
        self.assertEqual(a["response_body"], '{"received":true}')

    def test_app_errors_are_the_deliverys_answer(self):
        app = self.app(responses=[500, 200])
        ln = Listener(self, "--forward-to", app.url)
        self.endpoint(ln.url + "/hook")
        ev = self.publish()
        out = ln.wait_for(lambda t: t.count("  answer") == 2, what="a retry after the app's 500")
        self.assertEqual([l.split()[1] for l in out.splitlines() if l.startswith("  answer")],
                         ["500", "200"])
        self.srv.wait_for(lambda: self.deliveries(ev)[0]["status"] == "delivered",
                          what="delivered on attempt 2")
        self.assertEqual(self.deliveries(ev)[0]["attempts_made"], 2)

    def test_app_down_answers_502_and_says_why(self):
        app = self.app()
        url = app.url
        app.close()
        ln = Listener(self, "--forward-to", url)
        self.endpoint(ln.url + "/hook")
        ev = self.publish()
        out = ln.wait_for(lambda t: "  answer" in t, what="the failed forward")
        self.assertRegex(out, r"(?m)^  your app\s+FAILED: .*; answered 502$")
        self.assertRegex(out, r"(?m)^  answer\s+502$")
        self.srv.wait_for(lambda: self.deliveries(ev)[0]["attempts_made"] >= 1
                          and self.deliveries(ev)[0]["last_status_code"] == 502,
                          what="the 502 recorded")

    def test_print_headers_and_body(self):
        ln = Listener(self, "--print", "headers")
        self.endpoint(ln.url + "/hook", "--secret", SECRET)
        self.publish()
        out = ln.wait_for(lambda t: "  answer" in t)
        self.assertRegex(out, r"(?m)^  headers$")
        self.assertRegex(out, r"(?m)^    X-Workflux-Signature: [0-9a-f]{64}$")
        self.assertRegex(out, r"(?m)^    webhook-signature: v1,")
        ln2 = Listener(self, "--print", "body")
        self.endpoint(ln2.url + "/hook")
        ev = self.publish()
        out = ln2.wait_for(lambda t: "  answer" in t)
        body = [l for l in out.splitlines() if l.startswith("  body ")][0].split(None, 1)[1]
        self.assertEqual(json.loads(body)["id"], ev["id"])
        for bad in ("yaml", "json,body", "headers,"):
            p = self.srv.run_cli("listen", "--print", bad)
            self.assertEqual(p.returncode, 2, bad)
            self.assertIn("--print: expected headers, body, headers,body or json", p.stderr)
        p = self.srv.run_cli("listen", "--forward-to", "localhost:3000")
        self.assertEqual(p.returncode, 2)
        self.assertIn("--forward-to: expected your app's URL", p.stderr)

    def test_captured_block_verifies(self):
        ln = Listener(self, "--print", "headers,body")
        self.endpoint(ln.url + "/hook", "--secret", SECRET)
        ev = self.publish()
        out = ln.wait_for(lambda t: "  answer" in t, what="one block")
        self.assertRegex(out, r"(?m)^    X-Workflux-Event-Id: %s$" % ev["id"])
        path = os.path.join(mkdtemp(), "capture.txt")
        with open(path, "w") as f:
            f.write(out)
        p = self.cli("verify", "--secret", SECRET, "--request", path)
        self.assertEqual(p.stdout, "X-Workflux-Signature: valid\nwebhook-signature: valid\n")
        # The body line must hold the block's byte count: a changed one is refused.
        with open(path, "w") as f:
            f.write(out.replace("conv-1", "conv-22"))
        p = self.cli("verify", "--secret", SECRET, "--request", path, status=2)
        self.assertIn("or '--print headers,body' (a block with both)", p.stderr)
        with open(path, "w") as f:
            f.write(out.replace("conv-1", "conv-2"))
        p = self.cli("verify", "--secret", SECRET, "--request", path, status=1)
        self.assertIn("X-Workflux-Signature: does not match the body", p.stderr)

    def test_captured_request_verifies(self):
        app = self.app()
        ln = Listener(self, "--print", "json", "--forward-to", app.url)
        self.endpoint(ln.url + "/hook", "--secret", SECRET)
        ev = self.publish()
        out = ln.wait_for(lambda t: '"answer"' in t, what="one JSON line")
        line = [l for l in out.splitlines() if l.startswith("{")][0]
        cap = json.loads(line)
        self.assertEqual(json.loads(cap["body"])["id"], ev["id"])
        self.assertEqual((cap["method"], cap["path"], cap["answer"], cap["app"]),
                         ("POST", "/hook", 200, 200))
        d = mkdtemp()
        path = os.path.join(d, "capture.jsonl")
        with open(path, "w") as f:
            f.write(out)  # the listening line too: verify takes the last JSON line
        p = self.cli("verify", "--secret", SECRET, "--request", path)
        self.assertEqual(p.stdout, "X-Workflux-Signature: valid\nwebhook-signature: valid\n")
        # From standard input, as a pipe from listen would give it.
        p = subprocess.run([self.srv.bin, "verify", "--secret", SECRET, "--request", "-"],
                           input=line + "\n", env=clean_env(), stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True, timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr)
        # A changed body, or another secret, does not verify.
        bad = dict(cap, body=cap["body"].replace("conv-1", "conv-2"))
        with open(path, "w") as f:
            f.write(json.dumps(bad) + "\n")
        p = self.cli("verify", "--secret", SECRET, "--request", path, status=1)
        self.assertIn("X-Workflux-Signature: does not match the body", p.stderr)
        p = self.cli("verify", "--secret", "whsec_b3RoZXJvdGhlcm90aGVyb3RoZXJvdGhlcm90aGVy",
                     "--request", path, status=1)
        with open(path, "w") as f:
            f.write("listen: listening url=http://127.0.0.1:1\n")
        p = self.cli("verify", "--secret", SECRET, "--request", path, status=2)
        self.assertIn("holds no request captured by 'fluxhook listen --print json'", p.stderr)
