"""The shared end-to-end harness: starts the real `fluxhook serve` on an
ephemeral loopback port and talks to its API (Python 3 standard library only).

    from harness import Server
    srv = Server(args=["--allow-http", "--allow-networks", "127.0.0.0/8"], test=self)
    srv.start()
    status, body, headers = srv.api("POST", "/v1/endpoints", {"url": ...})
    srv.stop()

The binary is $FLUXHOOK_BIN (tests/run.py sets it to build-asan/fluxhook),
else build-asan/fluxhook, else build/fluxhook.

The store backend is $FLUXHOOK_TEST_STORE: "sqlite" (the default; a file in
the Server's temporary directory) or "postgres" (a fresh database per
Server in the cluster of $FLUXHOOK_TEST_PG_URL, which tests/run.py starts;
the databases are dropped when the test process exits). STORE names it;
new_db() makes one more store of that backend, and a test of behaviour only
SQLite has says so with self.skipTest("... sqlite only"). Every Server is stopped at the
latest when the test ends (pass test=self, or call srv.stop() in
tearDown / addCleanup) and, as a safety net, when the Python process exits.
"""
import atexit
import base64
import http.client
import json
import os
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.parse
import uuid

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
START_TIMEOUT = float(os.environ.get("FLUXHOOK_TEST_START_TIMEOUT", "60"))
STOP_TIMEOUT = 30.0
SANITIZER_MARKS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:")

STORE = os.environ.get("FLUXHOOK_TEST_STORE") or "sqlite"
PG_BIN = os.environ.get("FLUXHOOK_TEST_PG_BIN", "/usr/lib/postgresql/15/bin")

_live = set()
_tmpdirs = []
_pg_dbs = []


def find_bin():
    """The fluxhook binary under test."""
    b = os.environ.get("FLUXHOOK_BIN")
    if b:
        return b
    for d in ("build-asan", "build"):
        p = os.path.join(ROOT, d, "fluxhook")
        if os.access(p, os.X_OK):
            return p
    raise RuntimeError("no fluxhook binary: set FLUXHOOK_BIN or build build-asan/")


def new_api_key():
    """A key in fluxhook's own format: fhk_ + base64url of 32 random bytes."""
    return "fhk_" + base64.urlsafe_b64encode(secrets.token_bytes(32)).decode().rstrip("=")


def mkdtemp(prefix="fluxhook-e2e-"):
    """A temporary directory removed when the test process exits."""
    d = tempfile.mkdtemp(prefix=prefix)
    _tmpdirs.append(d)
    return d


# The master key every server of this test process shares on PostgreSQL: the
# processes of one test share a database, so they need one key (on SQLite each
# store gets its own master.key file beside it on first start).
TEST_MASTER_KEY = secrets.token_hex(32)


def clean_env(extra=None):
    """os.environ without FLUXHOOK_* settings (so the caller's shell cannot leak
    into a test), plus sanitizer defaults, plus extra (a value None removes)."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("FLUXHOOK_") or k in ("FLUXHOOK_BIN", "FLUXHOOK_RELEASE_BIN")}
    env.setdefault("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=0")
    env.setdefault("UBSAN_OPTIONS", "print_stacktrace=1:halt_on_error=1")
    for k, v in (extra or {}).items():
        if v is None:
            env.pop(k, None)
        else:
            env[k] = str(v)
    return env


def _pg_url(dbname):
    """$FLUXHOOK_TEST_PG_URL with its database replaced by dbname."""
    base = os.environ.get("FLUXHOOK_TEST_PG_URL")
    if not base:
        raise RuntimeError("FLUXHOOK_TEST_STORE=postgres needs FLUXHOOK_TEST_PG_URL "
                           "(tests/run.py starts a cluster; or: python3 tests/pgcluster.py start)")
    u = urllib.parse.urlsplit(base)
    return urllib.parse.urlunsplit((u.scheme, u.netloc, "/" + dbname, u.query, ""))


def _pg_env():
    return {k: v for k, v in os.environ.items() if not k.startswith("PG")}


def psql(url, sql, timeout=60):
    """Runs sql on the postgres database at url (stops at the first error, which
    raises AssertionError); returns the unaligned, tuples-only output."""
    p = subprocess.run([os.path.join(PG_BIN, "psql"), "-X", "-q", "-A", "-t", "-v",
                        "ON_ERROR_STOP=1", "-d", url, "-c", sql], env=_pg_env(),
                       stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       text=True, timeout=timeout)
    if p.returncode != 0:
        raise AssertionError("psql %s: %s" % (sql, p.stderr))
    return p.stdout


def new_pg_db():
    """A new empty database in the test cluster (dropped at exit); returns its URL."""
    name = "fh_%d_%d_%s" % (os.getpid(), len(_pg_dbs), uuid.uuid4().hex[:8])
    p = subprocess.run([os.path.join(PG_BIN, "createdb"), "--maintenance-db",
                        _pg_url("postgres"), name], env=_pg_env(), stdin=subprocess.DEVNULL,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=60)
    if p.returncode != 0:
        raise RuntimeError("createdb %s: %s" % (name, p.stderr))
    _pg_dbs.append(name)
    return _pg_url(name)


def new_db(directory=None):
    """A store URL for a new, empty store of the backend under test: a sqlite
    file in directory (default: a new temporary one), or a new database."""
    if STORE == "postgres":
        return new_pg_db()
    if STORE != "sqlite":
        raise RuntimeError("FLUXHOOK_TEST_STORE: sqlite or postgres, not %r" % STORE)
    return "sqlite:" + os.path.join(directory or mkdtemp(), "fluxhook.db")


def store_created(db):
    """Whether serve created its store at db: the sqlite file exists, or the
    postgres database has tables."""
    if db.startswith("sqlite:"):
        return os.path.exists(db[len("sqlite:"):])
    n = psql(db, "SELECT count(*) FROM pg_tables "
                 "WHERE schemaname NOT IN ('pg_catalog', 'information_schema')")
    return int(n) > 0


@atexit.register
def _drop_pg_dbs():
    # Registered before _reap below, so it runs after it: no server uses them now.
    if not _pg_dbs or os.environ.get("FLUXHOOK_KEEP_TMP"):
        return
    script = "".join('DROP DATABASE IF EXISTS "%s" WITH (FORCE);\n' % n for n in _pg_dbs)
    try:
        subprocess.run([os.path.join(PG_BIN, "psql"), "-X", "-q", "-d", _pg_url("postgres")],
                       input=script, env=_pg_env(), stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, text=True, timeout=120)
    except (OSError, subprocess.TimeoutExpired):
        pass


def _has_flag(args, name):
    return any(a == name or a.startswith(name + "=") for a in args)


class LogFile:
    """Reading a process's log file (self.log_path): shared by Server and the
    multihost suite's processes."""

    def log_text(self):
        """Everything the server logged (stderr) so far, over all its starts."""
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""

    def log_tail(self, chars=4000):
        """The end of the log without the per-request debug lines, for failure messages."""
        lines = [l for l in self.log_text().splitlines() if "api: request method=" not in l]
        return "\n".join(lines)[-chars:]

    def sanitizer_report(self):
        """The first sanitizer report in the log, or ""."""
        text = self.log_text()
        for m in SANITIZER_MARKS:
            i = text.find(m)
            if i >= 0:
                return text[max(0, i - 200):i + 4000]
        return ""


class Server(LogFile):
    """One `fluxhook serve` process.

    args      extra flags for serve (--listen and --db are added unless given)
    env       extra environment (a value None removes the variable)
    db        store URL; default: a fresh store of the backend under test (a
              sqlite file in this Server's directory, or a new postgres
              database). Pass another Server's .db to share its store.
    root_key  the admin key of acct_default, set as $FLUXHOOK_ROOT_KEY;
              None: a new random key; False: do not set it (serve generates
              one; .root_key is then read from the root.key file)
    test      a unittest.TestCase: stop this server in its cleanup and fail the
              test when the server log shows a sanitizer report
    log_level error|warn|info|debug (FLUXHOOK_LOG_LEVEL); default debug
    defaults  False: do not add --listen and --db (to test their FLUXHOOK_* twins)
    """

    def __init__(self, args=None, env=None, db=None, root_key=None, test=None,
                 log_level="debug", bin=None, defaults=True):
        self.bin = bin or find_bin()
        self.args = list(args or [])
        self.env = dict(env or {})
        self.dir = mkdtemp()
        self.db = db or new_db(self.dir)
        self.root_key = new_api_key() if root_key is None else (root_key or None)
        self._set_root_key = root_key is not False
        self.log_level = log_level
        self.proc = None
        self.port = None
        self.url = None
        self.starts = 0
        self.log_path = os.path.join(self.dir, "serve.log")
        self.stdout_path = os.path.join(self.dir, "serve.out")
        self._log_offset = 0
        self.defaults = defaults
        if test is not None:
            test.addCleanup(self._cleanup, test)

    # --- process ---

    def command(self):
        """The argv that start() runs."""
        argv = [self.bin, "serve"]
        if self.defaults and not _has_flag(self.args, "--listen"):
            argv += ["--listen", "127.0.0.1:%d" % (self.port or 0)]
        if self.defaults and not _has_flag(self.args, "--db"):
            argv += ["--db", self.db]
        return argv + self.args

    def environ(self):
        """The environment that start() passes."""
        extra = {"FLUXHOOK_LOG_LEVEL": self.log_level}
        if self._set_root_key and self.root_key:
            extra["FLUXHOOK_ROOT_KEY"] = self.root_key
        if self.db.startswith("postgres") and not _has_flag(self.args, "--master-key-file"):
            extra["FLUXHOOK_MASTER_KEY"] = TEST_MASTER_KEY
        extra.update(self.env)
        return clean_env(extra)

    def start(self, wait=True):
        """Starts serve and, with wait, returns once /healthz answers. A restart
        (after stop() or kill9()) binds the same port again."""
        if self.proc is not None and self.proc.poll() is None:
            raise RuntimeError("server already running")
        # Each start appends to the same log; log_text() shows all of them.
        with open(self.log_path, "ab") as f:
            self._log_offset = f.tell()
        log = open(self.log_path, "ab")
        out = open(self.stdout_path, "ab")
        try:
            self.proc = subprocess.Popen(self.command(), env=self.environ(), cwd=self.dir,
                                         stdin=subprocess.DEVNULL, stdout=out, stderr=log)
        finally:
            log.close()
            out.close()
        _live.add(self)
        self.starts += 1
        if wait:
            self._wait_listening()
        return self

    def _wait_listening(self):
        deadline = time.monotonic() + START_TIMEOUT
        marker = "serve: listening url="
        while True:
            text = self._log_since_start()
            i = text.find(marker)
            if i >= 0 and "\n" in text[i:]:
                line = text[i + len(marker):].split("\n", 1)[0].split()[0]
                u = urllib.parse.urlsplit(line)
                self.port = u.port
                self.url = "http://%s:%d" % (u.hostname if ":" not in u.hostname
                                             else "[%s]" % u.hostname, u.port)
                break
            code = self.proc.poll()
            if code is not None:
                raise AssertionError("fluxhook serve exited with %d before listening:\n%s"
                                     % (code, self.log_tail()))
            if time.monotonic() > deadline:
                raise AssertionError("fluxhook serve did not log '%s' within %ss:\n%s"
                                     % (marker, START_TIMEOUT, self.log_tail()))
            time.sleep(0.02)
        self.wait_for(self._healthy, timeout=START_TIMEOUT, what="GET /healthz answering 200")
        if self.root_key is None:
            self.root_key = self.read_root_key_file()

    def _healthy(self):
        try:
            status, _, _ = self.api("GET", "/healthz", key=False, timeout=5)
            return status == 200
        except OSError:
            if self.proc.poll() is not None:
                raise AssertionError("fluxhook serve exited with %d:\n%s"
                                     % (self.proc.returncode, self.log_tail()))
            return False

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self, sig=signal.SIGTERM, timeout=STOP_TIMEOUT):
        """Sends sig (SIGTERM), waits, returns the exit code (None if it never ran)."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                _live.discard(self)
                raise AssertionError("fluxhook serve did not exit within %ss of signal %d:\n%s"
                                     % (timeout, sig, self.log_tail()))
        _live.discard(self)
        return self.proc.returncode

    def kill9(self):
        """Crashes the server (SIGKILL) and waits for it to be gone."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        _live.discard(self)

    def restart(self):
        """stop() then start(); returns the exit code of the stop."""
        code = self.stop()
        self.start()
        return code

    def _cleanup(self, test):
        if self.running():
            try:
                self.stop()
            except AssertionError:
                pass
        bad = self.sanitizer_report()
        if bad:
            test.fail("sanitizer report in the server log:\n" + bad)

    # --- output ---

    def _log_since_start(self):
        try:
            with open(self.log_path, "rb") as f:
                f.seek(self._log_offset)
                return f.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""

    def log_since_start(self):
        """What the server logged since its latest start."""
        return self._log_since_start()

    def stdout_text(self):
        """Everything the server printed on stdout (the root key on a first start)."""
        try:
            with open(self.stdout_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""

    def data_dir(self):
        """Where serve writes a generated root.key: beside a sqlite: file, else
        ./var of its working directory."""
        if self.db.startswith("sqlite:"):
            return os.path.dirname(os.path.abspath(os.path.join(self.dir, self.db[7:])))
        return os.path.join(self.dir, "var")

    def read_root_key_file(self):
        p = os.path.join(self.data_dir(), "root.key")
        with open(p) as f:
            return f.read().strip()

    # --- HTTP ---

    def connection(self, timeout=30):
        """A new keep-alive http.client connection to the server."""
        u = urllib.parse.urlsplit(self.url)
        return http.client.HTTPConnection(u.hostname, u.port, timeout=timeout)

    def api(self, method, path, body=None, key=None, headers=None, raw=None, timeout=30,
            conn=None):
        """Sends one request. body (dict/list) is sent as JSON; raw (bytes/str) is
        sent as is. key: None = root key, False or "" = no Authorization.
        headers: extra headers (a value None removes a default one).
        Content-Type defaults to application/json when there is a body.
        Returns (status, parsed JSON or text, headers (case-insensitive))."""
        hdrs = {}
        if key is None:
            key = self.root_key
        if key:
            hdrs["Authorization"] = "Bearer " + key
        data = None
        if raw is not None:
            data = raw.encode() if isinstance(raw, str) else raw
        elif body is not None:
            data = json.dumps(body).encode()
        if data is not None:
            hdrs["Content-Type"] = "application/json"
        for k, v in (headers or {}).items():
            for old in [h for h in hdrs if h.lower() == k.lower()]:
                del hdrs[old]
            if v is not None:
                hdrs[k] = v
        own = conn is None
        if own:
            conn = self.connection(timeout)
        try:
            conn.request(method, path, body=data, headers=hdrs)
            resp = conn.getresponse()
            payload = resp.read()
            status = resp.status
            rh = resp.headers
        finally:
            if own:
                conn.close()
        text = payload.decode("utf-8", "replace")
        ctype = rh.get("Content-Type", "")
        parsed = text
        if "json" in ctype and text:
            try:
                parsed = json.loads(text)
            except ValueError:
                parsed = text
        return status, parsed, rh

    def wait_for(self, pred, timeout=10, what="condition", interval=0.02):
        """Polls pred() until it returns something true (and returns that);
        fails with `what` after timeout seconds."""
        deadline = time.monotonic() + timeout
        while True:
            v = pred()
            if v:
                return v
            if time.monotonic() > deadline:
                raise AssertionError("timed out after %ss waiting for %s\nserver log tail:\n%s"
                                     % (timeout, what, self.log_tail()))
            time.sleep(interval)

    # --- the client commands ---

    def run_cli(self, *args, env=None, input=None, timeout=60):
        """Runs `$FLUXHOOK_BIN args...` with FLUXHOOK_URL and FLUXHOOK_API_KEY set
        for this server. Returns the CompletedProcess (text stdout/stderr)."""
        extra = {"FLUXHOOK_URL": self.url, "FLUXHOOK_API_KEY": self.root_key}
        extra.update(env or {})
        return subprocess.run([self.bin] + [str(a) for a in args], env=clean_env(extra),
                              input=input, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True, timeout=timeout, cwd=self.dir)


def run_bin(*args, env=None, input=None, timeout=60, cwd=None):
    """Runs the binary with a clean FLUXHOOK_* environment plus env (on
    PostgreSQL with the test's master key, unless env gives one, so that a
    serve started here makes no key file in the working directory)."""
    env = dict(env or {})
    if STORE == "postgres":
        env.setdefault("FLUXHOOK_MASTER_KEY", TEST_MASTER_KEY)
    return subprocess.run([find_bin()] + [str(a) for a in args], env=clean_env(env),
                          input=input, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True, timeout=timeout, cwd=cwd)


@atexit.register
def _reap():
    for s in list(_live):
        try:
            s.kill9()
        except Exception:
            pass
    if not os.environ.get("FLUXHOOK_KEEP_TMP"):
        for d in _tmpdirs:
            shutil.rmtree(d, ignore_errors=True)
