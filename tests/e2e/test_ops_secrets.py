"""Endpoint secrets sealed at rest (AES-256-GCM under a master key kept outside
the database): the store's files (SQLite: the database and its WAL; PostgreSQL:
a pg_dump and the raw columns) hold no "whsec_" after endpoints are created and
rotated; a wrong master key refuses to start with a clear message; clear-text
secrets of an older store are sealed at the first start with a key; and
`fluxhook db rekey` seals every secret again under a new key while the server
keeps delivering, every delivery signed right."""
import base64
import hashlib
import hmac
import os
import shutil
import subprocess
import unittest

import harness
from apiutil import ApiCase, SERVE_ARGS, standard_signatures
from harness import Server, run_bin, psql
from loadgen import Publisher


def key_id(path):
    """The key id fluxhook gives the first key of a key file: HMAC-SHA256 of a
    fixed label under the key, first 4 bytes in hex (the receiver-side
    computation, written from the format's description)."""
    with open(path) as f:
        first = f.read().split()[0]
    mac = hmac.new(bytes.fromhex(first), b"fluxhook master key id", hashlib.sha256).digest()
    return mac[:4].hex()


def raw_secrets(srv):
    """Every (secret, prev_secret) as stored, straight from the database."""
    if srv.db.startswith("sqlite:"):
        out = subprocess.run(["sqlite3", srv.db[7:], "SELECT secret, coalesce(prev_secret, '') "
                              "FROM endpoints"], stdout=subprocess.PIPE, text=True,
                             check=True).stdout
    else:
        out = psql(srv.db, "SELECT secret, coalesce(prev_secret, '') FROM endpoints")
    return [tuple(line.split("|")) for line in out.splitlines() if line]


def stored_bytes(srv):
    """All the bytes the store keeps: the SQLite file and its WAL, or a pg_dump."""
    if srv.db.startswith("sqlite:"):
        data = b""
        for suffix in ("", "-wal"):
            p = srv.db[7:] + suffix
            if os.path.exists(p):
                with open(p, "rb") as f:
                    data += f.read()
        return data
    p = subprocess.run([os.path.join(harness.PG_BIN, "pg_dump"), "-d", srv.db],
                       env=harness._pg_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=120)
    if p.returncode != 0:
        raise AssertionError("pg_dump: %s" % p.stderr.decode())
    return p.stdout


class SealedTest(ApiCase):

    def setUp(self):
        self.dir = harness.mkdtemp()
        self.key = os.path.join(self.dir, "master.key")
        self.serve_args = SERVE_ARGS + ["--master-key-file", self.key]
        super().setUp()

    def test_no_secret_in_the_store_files(self):
        rc = self.receiver()
        eps = [self.endpoint(rc.url) for _ in range(4)]
        self.assertEqual(os.stat(self.key).st_mode & 0o777, 0o600)
        secrets = {ep["id"]: ep["secret"] for ep in eps}
        for ep in eps[:2]:
            rot = self.call("POST", "/v1/endpoints/%s/secret/rotate" % ep["id"], {})
            self.assertEqual(rot["previous"]["secret"], secrets[ep["id"]])
            secrets[ep["id"]] = rot["secret"]
        for ep in eps:
            got = self.call("GET", "/v1/endpoints/%s/secret" % ep["id"])
            self.assertEqual(got["secret"], secrets[ep["id"]])
        ev = self.publish("user.message", {"conversation_id": "c", "message_id": "m",
                                           "user_id": "u", "content": "hi"})
        self.wait_event_deliveries(ev["id"], 4, ("delivered",))
        for req in rc.wait_for(4):
            h = req.headers
            entries = h["webhook-signature"].split(" ")
            want = [standard_signatures(s, h["webhook-id"], h["webhook-timestamp"], req.body)
                    for s in secrets.values()]
            self.assertTrue(set(entries) & set(want), entries)
        kid = key_id(self.key)
        rows = raw_secrets(self.srv)
        self.assertEqual(len(rows), 4)
        for cur, prev in rows:
            self.assertTrue(cur.startswith("fhk1.%s." % kid), cur)
            self.assertTrue(prev == "" or prev.startswith("fhk1.%s." % kid), prev)
        data = stored_bytes(self.srv)
        self.assertGreater(len(data), 0)
        self.assertNotIn(b"whsec_", data)
        for s in secrets.values():
            self.assertNotIn(s[6:].encode(), data)
        # Still none once the server is down (SQLite checkpoints the WAL on close).
        self.srv.stop()
        self.assertNotIn(b"whsec_", stored_bytes(self.srv))

    def test_wrong_master_key_refuses_to_start(self):
        ep = self.endpoint("https://a.example.com/")
        self.srv.stop()
        other = os.path.join(self.dir, "other.key")
        with open(other, "w") as f:
            f.write(os.urandom(32).hex() + "\n")
        for how in (["--master-key-file", other], None):
            args = [a for a in SERVE_ARGS] + (how or [])
            env = {} if how else {"FLUXHOOK_MASTER_KEY": os.urandom(32).hex()}
            bad = Server(args=args, env=env, db=self.srv.db, test=self)
            bad.start(wait=False)
            code = bad.proc.wait(timeout=60)
            self.assertEqual(code, 1, bad.log_tail())
            text = bad.log_text()
            self.assertIn("wrong master key: this store's secrets are sealed with master key id "
                          "%s" % key_id(self.key), text)
            self.assertNotIn("serve: listening", text)
        # A key file that does not exist is not made for a store sealed with another.
        missing = os.path.join(self.dir, "missing.key")
        bad = Server(args=SERVE_ARGS + ["--master-key-file", missing], db=self.srv.db, test=self)
        bad.start(wait=False)
        self.assertEqual(bad.proc.wait(timeout=60), 1, bad.log_tail())
        self.assertFalse(os.path.exists(missing))
        # The right key still opens everything.
        self.srv.start()
        self.assertEqual(self.call("GET", "/v1/endpoints/%s/secret" % ep["id"])["secret"],
                         ep["secret"])

    def test_clear_text_secrets_are_sealed_at_start(self):
        ep = self.endpoint("https://a.example.com/")
        self.srv.stop()
        # A store of an older fluxhook: its secret in clear, no key check yet.
        clear = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
        sql = ("UPDATE endpoints SET secret = '%s', prev_secret = NULL WHERE id = '%s'; "
               "DELETE FROM master_key_check;" % (clear, ep["id"]))
        if self.srv.db.startswith("sqlite:"):
            subprocess.run(["sqlite3", self.srv.db[7:], sql], check=True)
        else:
            psql(self.srv.db, sql)
        self.assertEqual(raw_secrets(self.srv)[0][0], clear)
        self.srv.start()
        self.assertIn("sealed_now=1", self.srv.log_since_start())
        self.assertTrue(raw_secrets(self.srv)[0][0].startswith("fhk1.%s." % key_id(self.key)))
        self.assertEqual(self.call("GET", "/v1/endpoints/%s/secret" % ep["id"])["secret"], clear)
        # The clear text is gone from the files too, not only from the row.
        self.srv.stop()
        self.assertNotIn(b"whsec_", stored_bytes(self.srv))


class RekeyTest(unittest.TestCase):

    def test_rekey_under_delivery_load(self):
        d = harness.mkdtemp()
        key = os.path.join(d, "master.key")
        old_copy = os.path.join(d, "old.key")
        new = os.path.join(d, "new.key")
        srv = Server(args=SERVE_ARGS + ["--master-key-file", key], test=self)
        srv.start()
        shutil.copy(key, old_copy)
        rcs, eps = [], []
        for _ in range(3):
            from receiver import Receiver
            rc = Receiver(default=200)
            self.addCleanup(rc.close)
            st, ep, _ = srv.api("POST", "/v1/endpoints", {"url": rc.url})
            self.assertEqual(st, 201, ep)
            rcs.append(rc)
            eps.append(ep)
        # One endpoint rotated with a grace period: its previous secret is sealed too.
        st, rot, _ = srv.api("POST", "/v1/endpoints/%s/secret/rotate" % eps[0]["id"], {})
        self.assertEqual(st, 200, rot)
        secrets = [rot["secret"], eps[1]["secret"], eps[2]["secret"]]

        pub = Publisher(srv, rate=40, limit=120)
        pub.start()
        self.addCleanup(pub.stop)
        srv.wait_for(lambda: len(pub.acked) >= 60, timeout=60, what="60 events published")
        p = run_bin("db", "rekey", "--db", srv.db, "--master-key-file", key,
                    "--new-key-file", new, "--settle", "1s", timeout=120)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("master key %s -> %s" % (key_id(old_copy), key_id(new)), p.stdout)
        self.assertIn("now holds the new key alone", p.stdout)
        during = len(pub.acked)
        srv.wait_for(lambda: len(pub.acked) >= during + 60, timeout=60,
                     what="60 more events published after the rekey")
        pub.stop()
        pub.join(30)
        acked = set(pub.acked)
        self.assertEqual(pub.refused, [])

        for rc, secret in zip(rcs, secrets):
            def all_in(rc=rc):
                return acked <= {r.headers["x-workflux-event-id"] for r in rc.requests}
            srv.wait_for(all_in, timeout=90, what="every acknowledged event at each receiver")
            for r in rc.requests:
                h = r.headers
                want = standard_signatures(secret, h["webhook-id"], h["webhook-timestamp"],
                                           r.body)
                self.assertIn(want, h["webhook-signature"].split(" "))
        st, failed, _ = srv.api("GET", "/v1/deliveries?status=failed")
        self.assertEqual(failed["data"], [])
        log = srv.log_text()
        self.assertNotIn("cannot open the secret", log)
        self.assertIn("keyring: read '%s' again" % key, log)

        kid = key_id(new)
        self.assertEqual(key_id(key), kid)
        for cur, prev in raw_secrets(srv):
            self.assertTrue(cur.startswith("fhk1.%s." % kid), cur)
            self.assertTrue(prev == "" or prev.startswith("fhk1.%s." % kid), prev)
        srv.stop()
        self.assertEqual(os.stat(key).st_mode & 0o777, 0o600)
        # The old key no longer opens the store; the rewritten file does.
        bad = Server(args=SERVE_ARGS + ["--master-key-file", old_copy], db=srv.db, test=self)
        bad.start(wait=False)
        self.assertEqual(bad.proc.wait(timeout=60), 1, bad.log_tail())
        self.assertIn("wrong master key", bad.log_text())
        srv.start()
        st, got, _ = srv.api("GET", "/v1/endpoints/%s/secret" % eps[0]["id"])
        self.assertEqual(got["secret"], secrets[0])
        self.assertEqual(got["previous"]["secret"], eps[0]["secret"])


if __name__ == "__main__":
    unittest.main()
