"""`fluxhook events ...` against a live server: publish with data from --data
JSON, @file and standard input, idempotency keys, catalog errors with their
field paths, list and show, and a bulk publish from a file of events."""
import json
import os
import tempfile
import unittest

from cliutil import CliCase, STARTED, table


class CliEventsTest(CliCase):
    def tmpfile(self, text):
        fd, path = tempfile.mkstemp(prefix="fluxhook-cli-")
        with os.fdopen(fd, "w") as f:
            f.write(text)
        self.addCleanup(os.unlink, path)
        return path

    def test_publish_data_sources(self):
        p = self.cli("events", "publish", "conversation.started", "--data", json.dumps(STARTED))
        self.assertRegex(p.stdout, r"^published evt_\S+ conversation.started to 0 endpoint\(s\)\n$")
        first = p.stdout.split()[1]
        ev = self.cli_json("events", "show", first)
        self.assertEqual(ev["data"], STARTED)
        path = self.tmpfile(json.dumps(dict(STARTED, conversation_id="from-file")))
        a = self.cli_json("events", "publish", "conversation.started", "--data", "@" + path)
        self.assertEqual(self.srv.api("GET", "/v1/events/" + a["id"])[1]["data"]["conversation_id"],
                         "from-file")
        b = self.cli_json("events", "publish", "conversation.started", "--data", "@-",
                          input=json.dumps(dict(STARTED, conversation_id="from-stdin")))
        self.assertEqual(self.srv.api("GET", "/v1/events/" + b["id"])[1]["data"]["conversation_id"],
                         "from-stdin")
        c = self.cli_json("events", "publish", "user.message", "--data",
                          '{"conversation_id":"c","message_id":"m","user_id":"u","content":"hi"}',
                          "--timestamp", "2024-01-01T12:00:00Z")
        self.assertEqual(c["timestamp"], "2024-01-01T12:00:00Z")
        # The answer to --json is the API's 202 answer.
        self.assertEqual(set(c), {"id", "event", "timestamp", "deliveries"})

    def test_idempotency_key(self):
        a = self.cli_json("events", "publish", "conversation.started", "--data",
                          json.dumps(STARTED), "--idempotency-key", "order-42")
        b = self.cli_json("events", "publish", "conversation.started", "--data",
                          json.dumps(STARTED), "--idempotency-key", "order-42")
        self.assertEqual(a["id"], b["id"])
        _, page, _ = self.srv.api("GET", "/v1/events")
        self.assertEqual(len(page["data"]), 1)

    def test_catalog_errors_list_every_path(self):
        p = self.cli("events", "publish", "conversation.started", "--data",
                     '{"conversation_id": 5}', status=1)
        self.assertIn("HTTP 422", p.stderr)
        for path in ("data.conversation_id", "data.agent_id", "data.channel"):
            self.assertRegex(p.stderr, r"(?m)^  %s: \S" % path.replace(".", r"\."))
        self.assertEqual(p.stdout, "")
        # Bad JSON never reaches the server: a usage error.
        p = self.cli("events", "publish", "conversation.started", "--data", "{nope", status=2)
        self.assertIn("--data: not JSON", p.stderr)
        self.assertIn("usage: fluxhook events publish", p.stderr)
        p = self.cli("events", "publish", "conversation.started", "--data", "@/nonexistent/x",
                     status=2)
        self.assertIn("cannot open '/nonexistent/x'", p.stderr)
        self.cli("events", "publish", status=2)

    def test_list_and_show(self):
        ids = [self.cli_json("events", "publish", "conversation.started", "--data",
                             json.dumps(dict(STARTED, conversation_id="c%d" % i)))["id"]
               for i in range(3)]
        self.cli("events", "publish", "user.message", "--data",
                 '{"conversation_id":"c","message_id":"m","user_id":"u","content":"hi"}')
        rows = table(self.cli("events", "list", "--type", "conversation.started").stdout)
        self.assertEqual([r["ID"] for r in rows], ids[::-1])
        self.assertEqual({r["EVENT"] for r in rows}, {"conversation.started"})
        _, api_list, _ = self.srv.api("GET", "/v1/events?limit=2")
        p = self.cli("events", "list", "--limit", "2", "--json")
        self.assertEqual(json.loads(p.stdout), api_list)
        p = self.cli("events", "list", "--limit", "2")
        self.assertIn("more: --after " + api_list["next"], p.stderr)
        self.assertEqual(len(table(p.stdout)), 2)
        _, api_one, _ = self.srv.api("GET", "/v1/events/" + ids[0])
        self.assertEqual(self.cli_json("events", "show", ids[0]), api_one)
        shown = self.cli("events", "show", ids[0]).stdout
        self.assertRegex(shown, r"(?m)^event\s+conversation\.started$")
        self.assertIn('"conversation_id":"c0"', shown)
        self.cli("events", "show", "evt_nope", status=1)

    def test_bulk_publish_from_file(self):
        lines = [json.dumps({"event": "conversation.started",
                             "data": dict(STARTED, conversation_id="bulk-%d" % i)})
                 for i in range(25)]
        lines.insert(10, '{"event": "conversation.started", "data": {}}')
        lines.insert(5, "")
        lines.insert(3, "not json")
        path = self.tmpfile("\n".join(lines) + "\n")
        p = self.cli("events", "publish", "--file", path, status=1)
        self.assertIn("published 25 events, 2 refused", p.stdout)
        self.assertIn("line 4: not JSON", p.stderr)
        self.assertRegex(p.stderr, r"line 13: .*HTTP 422")
        self.assertIn("  data.agent_id: ", p.stderr)
        # Not a terminal: no progress bar drawn.
        self.assertNotIn("\r", p.stderr)
        _, page, _ = self.srv.api("GET", "/v1/events?limit=100")
        got = sorted(e["data"]["conversation_id"] for e in page["data"])
        self.assertEqual(got, sorted("bulk-%d" % i for i in range(25)))
        good = self.tmpfile("\n".join(ln for ln in lines if ln.startswith('{"event"')
                                      and "bulk-" in ln) + "\n")
        p = self.cli("events", "publish", "--file", good, "--json")
        answers = [json.loads(ln) for ln in p.stdout.splitlines()]
        self.assertEqual(len(answers), 25)
        self.assertTrue(all(a["id"].startswith("evt_") for a in answers))
        p = self.cli("events", "publish", "--file", "-", input=lines[0] + "\n")
        self.assertIn("published 1 events, 0 refused", p.stdout)
        self.cli("events", "publish", "x", "--file", good, status=2)

    def test_bulk_publish_in_batches_with_keys(self):
        # 1,201 lines: three POST /v1/events/batch; a key repeated across batches
        # publishes once, and a refused line is named by its number in its batch.
        lines = [json.dumps({"event": "conversation.started",
                             "data": dict(STARTED, conversation_id="b-%d" % i),
                             "idempotency_key": "key-%d" % (i % 1100)})
                 for i in range(1200)]
        lines.insert(700, json.dumps({"event": "conversation.started", "data": {}}))
        path = self.tmpfile("\n".join(lines) + "\n")
        p = self.cli("events", "publish", "--file", path, "--json", status=1)
        answers = [json.loads(ln) for ln in p.stdout.splitlines()]
        self.assertEqual(len(answers), 1200)
        self.assertEqual(sum(1 for a in answers if a["status"] == 202), 1100)
        self.assertEqual(sum(1 for a in answers if a["status"] == 200), 100)
        self.assertEqual(answers[1100]["id"], answers[0]["id"])
        self.assertRegex(p.stderr, r"line 701: .*HTTP 422")
        self.assertIn("published 1200 events, 1 refused", p.stderr)
        _, page, _ = self.srv.api("GET", "/v1/events?limit=500")
        self.assertEqual(len(page["data"]), 500)
        self.assertIsNotNone(page["next"])


if __name__ == "__main__":
    unittest.main()
