"""fluxhook db copy from SQLite into PostgreSQL, and db migrate on PostgreSQL.

A SQLite store is filled through a real `fluxhook serve` (delivered, failed,
pending, held and delivering deliveries with their attempts, a rotated
secret, an idempotency key, a second account and its key), copied into a
fresh PostgreSQL database, and read back through a server on PostgreSQL:
everything answers the same, the key still answers as a duplicate, the
delivery that was under way is taken again once its lease runs out, and
enabling the disabled endpoint delivers what it held.

Needs a PostgreSQL server: $FLUXHOOK_TEST_PG_URL (tests/run.py starts one;
by hand: python3 tests/pgcluster.py start). Without it the tests fail, saying so.
"""
import hashlib
import hmac
import os
import re
import sqlite3
import unittest

from harness import Server, mkdtemp, new_pg_db, psql, run_bin
from receiver import Receiver

ARGS = ["--allow-http", "--allow-networks", "127.0.0.0/8", "--retry-schedule", "0s,1h,1h",
        "--attempt-timeout", "10s", "--lease", "12s"]


def need_postgres(test):
    if not os.environ.get("FLUXHOOK_TEST_PG_URL"):
        test.fail("FLUXHOOK_TEST_PG_URL is not set: these tests need a PostgreSQL server "
                  "(tests/run.py starts one; by hand: python3 tests/pgcluster.py start, then "
                  "export FLUXHOOK_TEST_PG_URL=<the URL it prints>)")


def message(i):
    return {"event": "user.message",
            "data": {"conversation_id": "conv-%d" % i, "message_id": "msg-%d" % i,
                     "user_id": "user-1", "content": "caf\u00e9 \\ \"quoted\"\n\ttab %d" % i}}


def report(stdout):
    """{name: (source, target)} from the table db copy prints."""
    rows = {}
    for line in stdout.splitlines():
        m = re.fullmatch(r"(\S+(?: \S+)?)\s+(\d+)\s+(\d+)(?:\s+differs)?", line.strip())
        if m:
            rows[m.group(1)] = (int(m.group(2)), int(m.group(3)))
    return rows


class Copy(unittest.TestCase):
    def setUp(self):
        need_postgres(self)
        self.receivers = {}
        for name, default in (("ok", {"status": 200, "body": b"thanks"}),
                              ("gone", {"status": 410, "body": b"gone \x00\xff\xfe\r\n\\."}),
                              ("retry", 503), ("off", 200)):
            self.receivers[name] = Receiver(default=default)
        self.receivers["slow"] = Receiver(responses=[{"hang": True}], default=200)
        for r in self.receivers.values():
            self.addCleanup(r.close)

    def wait_status(self, srv, want, timeout=30):
        """Waits until the deliveries by status are want ({status: n})."""
        def counts():
            status, body, _ = srv.api("GET", "/v1/deliveries?limit=500")
            self.assertEqual(status, 200, body)
            got = {}
            for d in body["data"]:
                got[d["status"]] = got.get(d["status"], 0) + 1
            return got == want and got
        return srv.wait_for(counts, timeout=timeout, what="deliveries %s" % want)

    def fill(self, srv):
        """Endpoints, events and deliveries of every status; returns the endpoint ids."""
        eps = {}
        for name, types in (("ok", ["user.message", "conversation.started"]),
                            ("gone", ["user.message"]), ("retry", ["user.message"]),
                            ("off", ["user.message"]), ("slow", ["conversation.started"])):
            body = {"url": self.receivers[name].url, "event_types": types,
                    "description": "the %s one" % name}
            if name == "off":
                body["enabled"] = False
            status, ep, _ = srv.api("POST", "/v1/endpoints", body)
            self.assertEqual(status, 201, ep)
            eps[name] = ep["id"]
        status, rot, _ = srv.api("POST", "/v1/endpoints/%s/secret/rotate" % eps["ok"],
                                 {"grace_seconds": 86400})
        self.assertEqual(status, 200, rot)

        status, acct, _ = srv.api("POST", "/v1/accounts", {"name": "second"})
        self.assertEqual(status, 201, acct)
        status, key, _ = srv.api("POST", "/v1/accounts/%s/api-keys" % acct["id"],
                                 {"name": "copied"})
        self.assertIn(status, (200, 201), key)
        self.other_key = key.get("key") or key.get("secret")
        self.assertTrue(self.other_key, key)

        for i in range(3):
            headers = {"Idempotency-Key": "order-1"} if i == 0 else None
            status, ev, _ = srv.api("POST", "/v1/events", message(i), headers=headers)
            self.assertEqual(status, 202, ev)
            self.assertEqual(ev["deliveries"], 4)
            if i == 0:
                self.keyed = ev["id"]
        status, dup, _ = srv.api("POST", "/v1/events", message(9),
                                 headers={"Idempotency-Key": "order-1"})
        self.assertEqual((status, dup["id"]), (200, self.keyed))
        self.wait_status(srv, {"delivered": 3, "failed": 3, "pending": 3, "held": 3})
        return eps

    def snapshot(self, srv, eps):
        """What the API answers about everything, as comparable values."""
        snap = {}
        for path in ("/v1/events?limit=500", "/v1/deliveries?limit=500", "/v1/endpoints",
                     "/v1/accounts", "/v1/event-types"):
            status, body, _ = srv.api("GET", path)
            self.assertEqual(status, 200, (path, body))
            snap[path] = body
        for d in snap["/v1/deliveries?limit=500"]["data"]:
            path = "/v1/deliveries/" + d["id"]
            status, snap[path], _ = srv.api("GET", path)
            self.assertEqual(status, 200, snap[path])
        for e in snap["/v1/events?limit=500"]["data"]:
            path = "/v1/events/" + e["id"]
            status, snap[path], _ = srv.api("GET", path)
            self.assertEqual(status, 200, snap[path])
        for ep in eps.values():
            for path in ("/v1/endpoints/" + ep, "/v1/endpoints/%s/secret" % ep):
                status, snap[path], _ = srv.api("GET", path)
                self.assertEqual(status, 200, snap[path])
        status, snap["other account"], _ = srv.api("GET", "/v1/endpoints", key=self.other_key)
        self.assertEqual(status, 200, snap["other account"])
        return snap

    def test_copy_then_serve_on_postgres(self):
        sq = Server(args=ARGS, db="sqlite:%s/fluxhook.db" % mkdtemp(), test=self)
        sq.start()
        eps = self.fill(sq)
        # The last one hangs at the receiver; the server dies with it under way.
        status, started, _ = sq.api("POST", "/v1/events", {
            "event": "conversation.started",
            "data": {"conversation_id": "c-9", "agent_id": "a-1", "channel": "chat"}})
        self.assertEqual(status, 202, started)
        self.receivers["slow"].wait_for(1)
        self.receivers["ok"].wait_for(4)
        self.wait_status(sq, {"delivered": 4, "failed": 3, "pending": 3, "held": 3,
                              "delivering": 1})
        sq.kill9()

        # Read it back without a dispatcher, so nothing moves while we look.
        sq_api = Server(args=ARGS + ["--role", "api"], db=sq.db, root_key=sq.root_key, test=self)
        sq_api.start()
        before = self.snapshot(sq_api, eps)
        self.assertEqual(sq_api.stop(), 0)
        slow = [d for d in before["/v1/deliveries?limit=500"]["data"]
                if d["status"] == "delivering"]
        self.assertEqual(len(slow), 1)

        pg = new_pg_db()
        p = run_bin("db", "copy", "--from", sq.db, "--to", pg, timeout=300)
        self.assertEqual(p.returncode, 0, p.stderr)
        rows = report(p.stdout)
        want = {"accounts": 2, "api_keys": 2, "endpoints": 5, "endpoint_types": 6, "events": 4,
                "idempotency_keys": 1, "deliveries": 14, "attempts": 10,
                "deliveries pending": 3, "deliveries delivering": 1,
                "deliveries delivered": 4, "deliveries failed": 3, "deliveries held": 3}
        for name, n in want.items():
            self.assertEqual(rows.get(name), (n, n), (name, p.stdout))
        self.assertIn("the counts match", p.stdout)
        # The source is only read.
        self.assertEqual(psql(pg, "SELECT count(*) FROM deliveries").strip(), "14")

        # The copy keeps the secrets sealed: it opens with the SQLite store's master key.
        key = ["--master-key-file", os.path.join(os.path.dirname(sq.db[7:]), "master.key")]
        pg_api = Server(args=ARGS + ["--role", "api"] + key, db=pg, root_key=sq.root_key,
                        test=self)
        pg_api.start()
        after = self.snapshot(pg_api, eps)
        for path in before:
            self.assertEqual(after[path], before[path], path)
        # Event bodies and kept response bodies byte for byte.
        con = sqlite3.connect("file:%s?mode=ro" % sq.db[len("sqlite:"):], uri=True)
        try:
            for sql, pgsql in (
                    ("SELECT id, body FROM events ORDER BY id",
                     "SELECT id, encode(sha256(body), 'hex') FROM events ORDER BY id"),
                    ("SELECT delivery_id || '/' || n, response_body FROM attempts "
                     "WHERE response_body IS NOT NULL ORDER BY 1",
                     "SELECT delivery_id || '/' || n, encode(sha256(response_body), 'hex') "
                     "FROM attempts WHERE response_body IS NOT NULL ORDER BY 1")):
                want = ["%s|%s" % (k, hashlib.sha256(v).hexdigest())
                        for k, v in con.execute(sql)]
                self.assertEqual(psql(pg, pgsql).split(), want, sql)
        finally:
            con.close()

        # The idempotency key still answers, with the first event.
        status, dup, _ = pg_api.api("POST", "/v1/events", message(7),
                                    headers={"Idempotency-Key": "order-1"})
        self.assertEqual((status, dup["id"]), (200, self.keyed), dup)
        status, fresh, _ = pg_api.api("POST", "/v1/events", message(8),
                                      headers={"Idempotency-Key": "order-2"})
        self.assertEqual(status, 202, fresh)

        # A worker of the new store takes the delivery under way once its lease ran out,
        # signing with the copied secret.
        worker = Server(args=ARGS + ["--role", "worker"] + key, db=pg, root_key=sq.root_key,
                        test=self)
        worker.start()
        reqs = self.receivers["slow"].wait_for(2, timeout=60)
        self.assertEqual(reqs[1].headers["x-workflux-delivery"], slow[0]["id"])
        self.assertEqual(reqs[1].body, reqs[0].body)
        secret = before["/v1/endpoints/%s/secret" % eps["slow"]]["secret"]
        self.assertEqual(reqs[1].headers["x-workflux-signature"],
                         hmac.new(secret.encode(), reqs[1].body, hashlib.sha256).hexdigest())
        pg_api.wait_for(lambda: pg_api.api("GET", "/v1/deliveries/" + slow[0]["id"])[1]
                        ["status"] == "delivered", timeout=30, what="the leased delivery")

        # Enabling the disabled endpoint delivers what it held: the copied deliveries and
        # the one published on PostgreSQL.
        status, body, _ = pg_api.api("POST", "/v1/endpoints/%s/enable" % eps["off"], {})
        self.assertEqual(status, 200, body)
        reqs = self.receivers["off"].wait_for(4, timeout=30)
        self.assertEqual(sorted(r.headers["x-workflux-event-id"] for r in reqs),
                         sorted([e["id"] for e in before["/v1/events?limit=500"]["data"]
                                 if e["event"] == "user.message"] + [fresh["id"]]))

        # A second copy finds data there and writes nothing.
        p = run_bin("db", "copy", "--from", sq.db, "--to", pg, timeout=300)
        self.assertEqual(p.returncode, 1, p.stderr)
        self.assertIn("not empty", p.stderr)
        self.assertIn("accounts 2", p.stderr)
        self.assertIn("nothing was copied", p.stderr)
        self.assertEqual(psql(pg, "SELECT count(*) FROM accounts").strip(), "2")
        self.assertEqual(worker.stop(), 0)
        self.assertEqual(pg_api.stop(), 0)

    def test_a_replay_cut_short_goes_on_after_the_copy(self):
        # A replay of the "ok" endpoint's delivered deliveries that a crash cut
        # short after its first chunk: its record is left in the SQLite store.
        sq = Server(args=ARGS, db="sqlite:%s/fluxhook.db" % mkdtemp(), test=self)
        sq.start()
        status, ep, _ = sq.api("POST", "/v1/endpoints", {"url": self.receivers["ok"].url})
        self.assertEqual(status, 201, ep)
        for i in range(4):
            self.assertEqual(sq.api("POST", "/v1/events", message(i))[0], 202)
        self.receivers["ok"].wait_for(4)
        self.wait_status(sq, {"delivered": 4})
        status, dl, _ = sq.api("GET", "/v1/deliveries?limit=500")
        ids = sorted(d["id"] for d in dl["data"])
        self.assertEqual(sq.stop(), 0)
        con = sqlite3.connect(sq.db[len("sqlite:"):])
        try:
            with con:
                con.execute("INSERT INTO replays (endpoint_id, from_status, from_status2, "
                            "next_id, until_id, created_at) VALUES (?, 'delivered', "
                            "'delivered', ?, ?, 1)", (ep["id"], ids[1], ids[3]))
        finally:
            con.close()

        pg = new_pg_db()
        p = run_bin("db", "copy", "--from", sq.db, "--to", pg, timeout=300)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(report(p.stdout).get("replays"), (1, 1), p.stdout)
        self.assertEqual(psql(pg, "SELECT endpoint_id || ' ' || array_to_string(statuses, ',') "
                                  "|| ' ' || next_id || ' ' || until_id FROM replays").strip(),
                         "%s delivered %s %s" % (ep["id"], ids[1], ids[3]))

        # The server on the copy goes on with it at start: [ids[1], ids[3]) again.
        key = ["--master-key-file", os.path.join(os.path.dirname(sq.db[7:]), "master.key")]
        srv = Server(args=ARGS + key, db=pg, root_key=sq.root_key, test=self)
        srv.start()
        reqs = self.receivers["ok"].wait_for(6, timeout=30)
        self.assertEqual(sorted(r.headers["x-workflux-delivery"] for r in reqs[4:]), ids[1:3])
        srv.wait_for(lambda: psql(pg, "SELECT count(*) FROM replays").strip() == "0",
                     timeout=30, what="the replay's record gone")
        self.assertEqual(srv.stop(), 0)

    def test_refuses_a_target_a_server_started_on(self):
        sq = Server(args=ARGS, db="sqlite:%s/fluxhook.db" % mkdtemp(), test=self)
        sq.start()
        self.assertEqual(sq.stop(), 0)
        pg = new_pg_db()
        first = Server(db=pg, test=self)
        first.start()  # creates acct_default and its key
        self.assertEqual(first.stop(), 0)
        p = run_bin("db", "copy", "--from", sq.db, "--to", pg)
        self.assertEqual(p.returncode, 1, p.stderr)
        self.assertIn("accounts 1", p.stderr)
        self.assertIn("api_keys 1", p.stderr)

    def test_unreachable_target_exits_3(self):
        sq = Server(db="sqlite:%s/fluxhook.db" % mkdtemp(), test=self)
        sq.start()
        self.assertEqual(sq.stop(), 0)
        p = run_bin("db", "copy", "--from", sq.db, "--to", "postgres://postgres@127.0.0.1:1/x")
        self.assertEqual(p.returncode, 3, p.stderr)
        self.assertIn("cannot be reached", p.stderr)


class Migrate(unittest.TestCase):
    def setUp(self):
        need_postgres(self)

    def test_a_missing_migration_below_the_newest_runs(self):
        # Branches number their migrations apart: a database may have recorded
        # a newer one than a migration merged later. That one still runs.
        pg = new_pg_db()
        self.assertEqual(run_bin("db", "migrate", "--db", pg).returncode, 0)
        psql(pg, "ALTER TABLE attempts DROP COLUMN error_class; "
                 "DELETE FROM schema_version WHERE version = 4")
        p = run_bin("db", "migrate", "--db", pg)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("applied 1 migration\n", p.stdout)
        self.assertIn("applied migration 004_attempt_error_class", p.stderr)
        self.assertEqual(psql(pg, "SELECT count(*) FROM information_schema.columns WHERE "
                                  "table_name = 'attempts' AND column_name = 'error_class'")
                         .strip(), "1")

    def test_fresh_database_twice(self):
        pg = new_pg_db()
        p = run_bin("db", "migrate", "--db", pg)
        self.assertEqual(p.returncode, 0, p.stderr)
        m = re.fullmatch(r"schema version (\d+): applied (\d+) migrations?\n", p.stdout)
        self.assertTrue(m, p.stdout)
        # The newest version, and one migration per file (numbers may have gaps).
        files = sorted(os.listdir(os.path.join(os.path.dirname(__file__), "..", "..", "src",
                                               "store", "pg", "migrations")))
        self.assertEqual((int(m.group(1)), int(m.group(2))), (int(files[-1][:3]), len(files)))
        self.assertEqual(psql(pg, "SELECT max(version) FROM schema_version").strip(), m.group(1))
        p = run_bin("db", "migrate", "--db", pg)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(p.stdout, "schema version %s: up to date, nothing to apply\n"
                         % m.group(1))
        # A migrated database is still empty: a copy may go into it.
        self.assertEqual(psql(pg, "SELECT count(*) FROM accounts").strip(), "0")

    def test_unreachable_database_exits_3(self):
        p = run_bin("db", "migrate", "--db", "postgres://postgres@127.0.0.1:1/nowhere")
        self.assertEqual(p.returncode, 3, p.stderr)
        self.assertIn("cannot be reached", p.stderr)
        self.assertEqual(p.stdout, "")


if __name__ == "__main__":
    unittest.main()
