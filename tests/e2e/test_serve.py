"""fluxhook serve: first start and its root key, FLUXHOOK_* twins, --check,
bad flags, roles and signals."""
import os
import re
import signal
import socket
import stat
import unittest

from harness import STORE, Server, mkdtemp, new_db, run_bin, store_created


class FirstStart(unittest.TestCase):
    def test_generated_root_key_printed_once_and_kept_0600(self):
        srv = Server(root_key=False, test=self)
        srv.start()
        path = os.path.join(srv.data_dir(), "root.key")
        st = os.stat(path)
        self.assertEqual(stat.S_IMODE(st.st_mode), 0o600)
        key = srv.root_key
        self.assertRegex(key, r"^fhk_[A-Za-z0-9_-]{43}$")
        self.assertEqual(srv.stdout_text().count(key), 1)
        self.assertIn(path.split("/")[-1], srv.stdout_text())
        self.assertNotIn(key, srv.log_text())
        self.assertIn("root.key", srv.log_text())
        status, body, _ = srv.api("GET", "/v1/accounts/acct_default", key=key)
        self.assertEqual(status, 200, body)
        status, body, _ = srv.api("GET", "/v1/accounts", key=key)
        self.assertEqual(status, 200, body)
        self.assertEqual([a["id"] for a in body["data"]], ["acct_default"])
        self.assertEqual(srv.stop(), 0)

        # A second start on the same store neither prints nor rewrites the key.
        srv.start()
        self.assertEqual(srv.stdout_text().count(key), 1)
        self.assertEqual(os.stat(path).st_mtime_ns, st.st_mtime_ns)
        with open(path) as f:
            self.assertEqual(f.read().strip(), key)
        self.assertEqual(srv.api("GET", "/v1/accounts/acct_default", key=key)[0], 200)
        self.assertIn("root.key", srv.log_since_start())
        self.assertEqual(srv.stop(), 0)

    def test_root_key_from_environment(self):
        key = "fhk_from_the_environment_0123456789"
        srv = Server(root_key=key, test=self)
        srv.start()
        self.assertEqual(srv.api("GET", "/v1/accounts", key=key)[0], 200)
        self.assertNotIn(key, srv.stdout_text())
        self.assertNotIn(key, srv.log_text())
        self.assertFalse(os.path.exists(os.path.join(srv.data_dir(), "root.key")))
        self.assertIn("FLUXHOOK_ROOT_KEY", srv.log_text())
        self.assertEqual(srv.stop(), 0)

    def test_root_key_from_environment_only_counts_on_first_start(self):
        srv = Server(root_key="fhk_first_key_0123456789abcdef", test=self)
        srv.start()
        self.assertEqual(srv.stop(), 0)
        srv.env["FLUXHOOK_ROOT_KEY"] = "fhk_second_key_0123456789abcdef"
        srv.start()
        self.assertEqual(srv.api("GET", "/v1/accounts", key="fhk_first_key_0123456789abcdef")[0],
                         200)
        self.assertEqual(srv.api("GET", "/v1/accounts",
                                 key="fhk_second_key_0123456789abcdef")[0], 401)

    def test_too_short_root_key_is_refused(self):
        p = run_bin("serve", "--listen", "127.0.0.1:0", "--db", new_db(),
                    env={"FLUXHOOK_ROOT_KEY": "short"})
        self.assertEqual(p.returncode, 2, p.stderr)
        self.assertIn("FLUXHOOK_ROOT_KEY", p.stderr)

    def test_creates_the_directory_of_the_database(self):
        if STORE != "sqlite":
            self.skipTest("the directory of a database file: sqlite only")
        d = mkdtemp()
        db = "sqlite:%s/deep/er/fluxhook.db" % d
        srv = Server(db=db, root_key=False, test=self)
        srv.start()
        self.assertTrue(os.path.exists(os.path.join(d, "deep", "er", "fluxhook.db")))
        self.assertTrue(os.path.exists(os.path.join(d, "deep", "er", "root.key")))
        self.assertEqual(srv.stop(), 0)


class Flags(unittest.TestCase):
    def test_environment_twins(self):
        d = mkdtemp()
        db = new_db(d)
        srv = Server(defaults=False, db=db, test=self,
                     env={"FLUXHOOK_LISTEN": "127.0.0.1:0", "FLUXHOOK_DB": db,
                          "FLUXHOOK_ALLOW_HTTP": "1", "FLUXHOOK_ROLE": "api",
                          "FLUXHOOK_RETRY_SCHEDULE": "0ms,10ms",
                          "FLUXHOOK_ATTEMPT_TIMEOUT": "2s",
                          "FLUXHOOK_ALLOW_NETWORKS": "127.0.0.0/8"})
        srv.start()
        self.assertTrue(store_created(db))
        self.assertFalse(os.path.exists(os.path.join(srv.dir, "var", "fluxhook.db")))
        self.assertIn("role=api", srv.log_text())
        # --allow-http came from the environment: an http:// endpoint is accepted.
        status, body, _ = srv.api("POST", "/v1/endpoints", {"url": "http://127.0.0.1:9/x"})
        self.assertEqual(status, 201, body)
        self.assertEqual(srv.stop(), 0)

    def test_flag_wins_over_environment(self):
        p = run_bin("serve", "--check", "--role", "worker", env={"FLUXHOOK_ROLE": "boss",
                                                                "FLUXHOOK_DB": new_db()})
        self.assertEqual(p.returncode, 0, p.stderr)

    def test_bad_environment_value_names_the_twin(self):
        p = run_bin("serve", "--check", env={"FLUXHOOK_ROLE": "boss"})
        self.assertEqual(p.returncode, 2)
        self.assertIn("--role", p.stderr)
        self.assertIn("FLUXHOOK_ROLE", p.stderr)
        p = run_bin("serve", "--check", env={"FLUXHOOK_ALLOW_HTTP": "maybe"})
        self.assertEqual(p.returncode, 2)
        self.assertIn("FLUXHOOK_ALLOW_HTTP", p.stderr)

    def test_check(self):
        d = mkdtemp()
        db = new_db(d)
        for flag in ("--check", "-n"):
            p = run_bin("serve", flag, "--db", db, "--listen",
                        "[::1]:9999", "--retry-schedule", "0s,1m,5m", "--allow-http", cwd=d)
            self.assertEqual(p.returncode, 0, p.stderr)
            self.assertEqual(p.stdout, "configuration OK\n")
        # The store is not even created.
        self.assertFalse(store_created(db))
        self.assertEqual(os.listdir(d), [])

    def test_bad_flags_exit_2_naming_the_flag(self):
        cases = [
            (["--listen", "nonsense"], "--listen"),
            (["--listen", "127.0.0.1:99999"], "--listen"),
            (["--listen", "::1:80"], "--listen"),
            (["--db", "mysql://x"], "--db"),
            (["--db", "sqlite:"], "--db"),
            (["--retry-schedule", "1m,5x"], "--retry-schedule"),
            (["--attempt-timeout", "0s"], "--attempt-timeout"),
            (["--attempt-timeout", "soon"], "--attempt-timeout"),
            (["--lease", "10s"], "--lease"),  # not longer than the 15 s attempt timeout
            (["--lease", "20s", "--attempt-timeout", "20s"], "--lease"),
            (["--lease", "forever"], "--lease"),
            (["--allow-networks", "300.0.0.0/8"], "--allow-networks"),
            (["--ca-file", "/nonexistent/ca.pem"], "--ca-file"),
            (["--role", "boss"], "--role"),
            (["--http-threads", "-1"], "--http-threads"),
            (["--http-threads", "many"], "--http-threads"),
            (["--bogus"], "--bogus"),
            (["--listen"], "--listen"),
            (["extra"], "extra"),
        ]
        for args, name in cases:
            for check in (["--check"], []):
                p = run_bin("serve", *(check + args), timeout=30)
                self.assertEqual(p.returncode, 2, "%s: %s" % (args, p.stderr))
                self.assertIn(name, p.stderr, args)
                self.assertEqual(p.stdout, "", args)

    def test_help(self):
        p = run_bin("serve", "--help")
        self.assertEqual(p.returncode, 0)
        for flag in ("--listen", "--db", "--retry-schedule", "--attempt-timeout", "--lease",
                     "--allow-http", "--allow-networks", "--ca-file", "--role", "--check"):
            self.assertIn(flag, p.stdout)

    def test_port_in_use(self):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        try:
            p = run_bin("serve", "--listen", "127.0.0.1:%d" % s.getsockname()[1], "--db",
                        new_db(), "--role", "api",
                        env={"FLUXHOOK_ROOT_KEY": "fhk_0123456789abcdef0123"})
        finally:
            s.close()
        self.assertEqual(p.returncode, 1, p.stderr)
        self.assertIn("127.0.0.1:", p.stderr)


    def test_busy_port_creates_nothing_and_names_the_flag(self):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        port = s.getsockname()[1]
        d = mkdtemp()
        db = new_db(os.path.join(d, "data")) if STORE == "sqlite" else new_db()
        try:
            p = run_bin("serve", "--listen", "127.0.0.1:%d" % port, "--db", db, cwd=d)
        finally:
            s.close()
        self.assertEqual(p.returncode, 1, p.stderr)
        self.assertIn("fluxhook serve: --listen (or FLUXHOOK_LISTEN): cannot listen on "
                      "'127.0.0.1:%d': another program is listening on this port; stop it, or "
                      "pick another port such as --listen 127.0.0.1:8081" % port,
                      p.stderr)
        self.assertNotIn("input/output error", p.stderr)
        # Checked before anything was made: no store, no directory, no key file.
        self.assertFalse(store_created(db))
        self.assertEqual(os.listdir(d), [])
        self.assertEqual(p.stdout, "")

    def test_unwritable_data_dir_creates_nothing_and_names_the_flag(self):
        d = mkdtemp()
        blocker = os.path.join(d, "not-a-dir")
        with open(blocker, "w") as f:
            f.write("x")
        p = run_bin("serve", "--listen", "127.0.0.1:0", "--db",
                    "sqlite:%s/data/fluxhook.db" % blocker, cwd=d)
        self.assertEqual(p.returncode, 1, p.stderr)
        self.assertIn("fluxhook serve: --db (or FLUXHOOK_DB): '%s' is not a directory; choose "
                      "a place you may write, such as --db sqlite:./var/fluxhook.db" % blocker,
                      p.stderr)
        self.assertEqual(sorted(os.listdir(d)), ["not-a-dir"])
        if os.geteuid() != 0:  # root may write anywhere
            ro = os.path.join(d, "ro")
            os.mkdir(ro, 0o500)
            p = run_bin("serve", "--listen", "127.0.0.1:0", "--db", "sqlite:%s/f.db" % ro)
            self.assertEqual(p.returncode, 1, p.stderr)
            self.assertIn("cannot create files in the directory '%s'" % ro, p.stderr)
            self.assertEqual(os.listdir(ro), [])

    def test_store_that_cannot_open_names_the_flag(self):
        d = mkdtemp()
        junk = os.path.join(d, "junk.db")
        with open(junk, "w") as f:
            f.write("this is not a database\n")
        p = run_bin("serve", "--listen", "127.0.0.1:0", "--db", "sqlite:" + junk, cwd=d)
        self.assertEqual(p.returncode, 1, p.stderr)
        self.assertIn("fluxhook serve: --db (or FLUXHOOK_DB): cannot open the store 'sqlite:%s'"
                      % junk, p.stderr)
        self.assertEqual(sorted(os.listdir(d)), ["junk.db"])
        # Unreachable: tried again until --store-open-timeout, each try said.
        p = run_bin("serve", "--listen", "127.0.0.1:0", "--db",
                    "postgres://fluxhook@127.0.0.1:1/none?connect_timeout=5",
                    "--store-open-timeout", "1s", cwd=d)
        self.assertEqual(p.returncode, 1, p.stderr)
        self.assertIn("serve: opening the store failed (store unavailable; the lines above say "
                      "why), try 1; trying again in 100 ms", p.stderr)
        self.assertIn("cannot connect to postgres where=127.0.0.1:1/none", p.stderr)
        self.assertIn("fluxhook serve: --db (or FLUXHOOK_DB): cannot open the store "
                      "'postgres://...' (store unavailable; ", p.stderr)
        self.assertIn("check the host, port, database, user and password in the URL", p.stderr)
        self.assertEqual(sorted(os.listdir(d)), ["junk.db"])

    def test_dev_is_announced_and_changes_nothing_else(self):
        srv = Server(args=["--dev"], root_key=False, test=self)
        srv.start()
        self.assertIn("DEVELOPMENT MODE (--dev): http:// endpoint URLs and loopback receivers",
                      srv.log_text())
        out = srv.stdout_text()
        self.assertIn("DEVELOPMENT MODE (--dev)", out)
        self.assertIn("  Dashboard   %s/\n" % srv.url, out)
        self.assertIn("    export FLUXHOOK_URL=%s\n" % srv.url, out)
        self.assertIn("    export FLUXHOOK_API_KEY=$(cat ", out)
        st, b, _ = srv.api("POST", "/v1/endpoints", {"url": "http://127.0.0.1:9/x"})
        self.assertEqual(st, 201, b)
        plain = Server(test=self)
        plain.start()
        self.assertNotIn("DEVELOPMENT MODE", plain.log_text() + plain.stdout_text())
        self.assertEqual(plain.api("POST", "/v1/endpoints", {"url": "http://127.0.0.1:9/x"})[0],
                         400)

    def test_second_server_on_the_same_port_is_refused(self):
        first = Server(test=self)
        first.start()
        p = run_bin("serve", "--listen", "127.0.0.1:%d" % first.port, "--db",
                    new_db(), "--role", "api",
                    env={"FLUXHOOK_ROOT_KEY": "fhk_0123456789abcdef0123"})
        self.assertEqual(p.returncode, 1, p.stderr)
        self.assertIn("cannot listen", p.stderr)
        self.assertEqual(first.api("GET", "/healthz", key=False)[0], 200)


class Lifecycle(unittest.TestCase):
    def test_sigterm_and_sigint_exit_0(self):
        srv = Server(test=self)
        srv.start()
        self.assertEqual(srv.api("GET", "/healthz", key=False)[0], 200)
        self.assertEqual(srv.stop(signal.SIGTERM, timeout=15), 0)
        self.assertIn("serve: stopped", srv.log_text())
        srv.start()
        self.assertEqual(srv.stop(signal.SIGINT, timeout=15), 0)

    def test_sigterm_with_an_idle_keep_alive_connection(self):
        srv = Server(test=self)
        srv.start()
        conn = srv.connection()
        try:
            self.assertEqual(srv.api("GET", "/healthz", key=False, conn=conn)[0], 200)
            self.assertEqual(srv.stop(signal.SIGTERM, timeout=15), 0)
        finally:
            conn.close()

    def test_restart_after_kill9_keeps_data(self):
        srv = Server(test=self)
        srv.start()
        status, acct, _ = srv.api("POST", "/v1/accounts", {"name": "durable"})
        self.assertEqual(status, 201)
        srv.kill9()
        srv.start()
        status, body, _ = srv.api("GET", "/v1/accounts/" + acct["id"])
        self.assertEqual(status, 200, body)
        self.assertEqual(body["name"], "durable")

    def test_worker_role_serves_only_meta(self):
        srv = Server(args=["--role", "worker"], test=self)
        srv.start()
        self.assertEqual(srv.api("GET", "/healthz", key=False)[0], 200)
        status, text, _ = srv.api("GET", "/metrics", key=False)
        self.assertEqual(status, 200)
        self.assertIn("fluxhook_deliveries", text)
        status, body, _ = srv.api("GET", "/v1/endpoints")
        self.assertEqual(status, 404)
        self.assertIn("worker", body["error"]["message"])
        self.assertIn("role=worker", srv.log_text())
        self.assertEqual(srv.stop(), 0)

    def test_api_and_worker_share_a_store(self):
        api = Server(args=["--role", "api"], test=self)
        api.start()
        worker = Server(args=["--role", "worker"], db=api.db, root_key=api.root_key, test=self)
        worker.start()
        self.assertEqual(api.api("GET", "/v1/accounts")[0], 200)
        self.assertEqual(worker.stop(), 0)
        self.assertEqual(api.stop(), 0)

    def test_thread_pool(self):
        srv = Server(args=["--http-threads", "2"], test=self)
        srv.start()
        conn = srv.connection()
        try:
            for i in range(20):
                status, body, _ = srv.api("POST", "/v1/accounts", {"name": "p%d" % i}, conn=conn)
                self.assertEqual(status, 201, body)
        finally:
            conn.close()
        status, body, _ = srv.api("POST", "/v1/accounts", raw=b"x" * (300 * 1024))
        self.assertEqual(status, 413)
        self.assertEqual(srv.stop(), 0)

    def test_http_threads_auto(self):
        """By default (and with auto) one HTTP loop per core, at most 4; a number is taken as is."""
        want = min(os.cpu_count() or 1, 4)
        for args, threads in (([], want), (["--http-threads", "auto"], want),
                              (["--http-threads", "3"], 3)):
            srv = Server(args=args, test=self)
            srv.start()
            self.assertEqual(srv.api("GET", "/healthz")[0], 200)
            m = re.findall(r"api: connections .* threads=(\d+)", srv.log_since_start())
            self.assertEqual(m, [str(threads)], args)
            self.assertEqual(srv.stop(), 0)

    def test_ipv6_listen(self):
        try:
            s = socket.socket(socket.AF_INET6)
            s.bind(("::1", 0))
            s.close()
        except OSError:
            self.skipTest("no IPv6 loopback here")
        srv = Server(args=["--listen", "[::1]:0"], test=self)
        srv.start()
        self.assertTrue(srv.url.startswith("http://[::1]:"), srv.url)
        self.assertEqual(srv.api("GET", "/healthz", key=False)[0], 200)
        self.assertEqual(srv.stop(), 0)


if __name__ == "__main__":
    unittest.main()
