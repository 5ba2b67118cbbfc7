#!/usr/bin/env python3
"""A throwaway PostgreSQL 15 cluster for the tests (Python 3 standard library only).

    from pgcluster import PgCluster
    pg = PgCluster()
    pg.start()                    # initdb, settings, pg_ctl -w start
    pg.create_db("fh_1")
    url = pg.url("fh_1")          # postgres://postgres@127.0.0.1:PORT/fh_1
    pg.psql("SELECT 1", "fh_1")   # -> "1\\n"
    pg.kill9(); pg.start()        # a crash, then crash recovery
    standby = pg.add_standby()    # pg_basebackup -R, streaming
    standby.promote()
    pg.cleanup()                  # also at exit, whatever happens

By hand:  python3 tests/pgcluster.py start [--port N]   prints the URL and
keeps the cluster until SIGTERM or SIGINT.

The server runs as the `postgres` OS user (through runuser when this runs as
root); clients connect over TCP to 127.0.0.1 with trust authentication.
Every cluster is removed (processes and directory) by cleanup(), at
interpreter exit, and, should this process be killed outright, by a small
watchdog process that notices its pipe closing.
"""
import argparse
import atexit
import ctypes
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

PG_BIN = os.environ.get("FLUXHOOK_TEST_PG_BIN", "/usr/lib/postgresql/15/bin")
OS_USER = "postgres"
START_TIMEOUT = 90
STOP_TIMEOUT = 60
PORT_TRIES = 5

_clusters = []


def _bin(name):
    return os.path.join(PG_BIN, name)


def _client_env():
    """The environment for client programs: no PG* settings of the caller."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env["PGCONNECT_TIMEOUT"] = "10"
    return env


def _as_owner(argv):
    """argv run as the postgres OS user (the server refuses to run as root)."""
    if os.geteuid() == 0:
        return ["runuser", "-u", OS_USER, "--"] + argv
    return argv


def free_port(host="127.0.0.1"):
    """A TCP port nobody listens on right now (the server binds it soon after;
    start() tries another one if it was taken in between)."""
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(fam, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def _become_subreaper():
    """pg_ctl leaves the postmaster orphaned. As a child subreaper this process
    adopts it, so it can be reaped here instead of staying a zombie under an
    init that does not reap (as in some containers), which would also block a
    restart (its pid would still look alive in postmaster.pid)."""
    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
    except (OSError, AttributeError):
        pass


def _alive(pid):
    """Whether pid runs (a zombie does not count)."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            stat = f.read()
    except OSError:
        try:
            os.kill(pid, 0)
            return True
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
    return stat[stat.rindex(")") + 2:][:1] not in ("Z", "X")


def _reap(pids):
    """Collects the exit of those pids that are children of this process."""
    for pid in pids:
        try:
            os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            pass


def _pids_in(datadir):
    """The server processes of a cluster: every postgres process has its data
    directory as working directory."""
    real = os.path.realpath(datadir)
    pids = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            if os.readlink("/proc/%s/cwd" % name) == real:
                pids.append(int(name))
        except OSError:
            pass
    return [p for p in pids if p != os.getpid()]


def _kill_all(datadir, deadline):
    """SIGKILLs every process of the cluster and waits (until deadline) for them
    to be gone; returns the pids still running."""
    seen = set()
    while True:
        pids = [p for p in _pids_in(datadir) if _alive(p)]
        for p in pids:
            seen.add(p)
            try:
                os.kill(p, signal.SIGKILL)
            except ProcessLookupError:
                pass
        _reap(seen)
        left = [p for p in seen if _alive(p)]
        if not pids and not left:
            return []
        if time.monotonic() > deadline:
            return left
        time.sleep(0.02)


class PgError(RuntimeError):
    pass


class PgCluster:
    """One PostgreSQL cluster in a temporary directory.

    port   the TCP port; default: a free one
    host   the listen and connect address (loopback)
    root   where the temporary directory is made; default: the system's
    prefix argv put before every command the cluster runs, server and clients
           alike, such as ["ip", "netns", "exec", "fh-db"] to serve on host
           inside that network namespace; needs port (a free one is looked
           for in this process's namespace, not the prefix's)
    trust  CIDRs whose clients may connect (trust authentication) besides
           loopback's, such as ["198.18.0.0/24"] when other hosts connect
    """

    def __init__(self, port=None, host="127.0.0.1", root=None, prefix=None, trust=()):
        if prefix and port is None:
            raise ValueError("PgCluster: a prefix needs a port")
        self.host = host
        self.port = port
        self.prefix = list(prefix or [])
        self.trust = list(trust)
        self._fixed_port = port is not None
        self.root = root
        self.dir = None
        self.datadir = None
        self.log_path = None
        self.standbys = []
        self.primary = None
        self._initialized = False
        self._watchdog = None
        self._pm_pid = None
        _clusters.append(self)

    # --- lifecycle ---

    def _make_dir(self):
        self.dir = tempfile.mkdtemp(prefix="fluxhook-pg-", dir=self.root)
        self.datadir = os.path.join(self.dir, "data")
        self.log_path = os.path.join(self.dir, "postgres.log")
        if os.geteuid() == 0:
            pw = pwd.getpwnam(OS_USER)
            os.chown(self.dir, pw.pw_uid, pw.pw_gid)
        os.chmod(self.dir, 0o700)
        self._start_watchdog()

    def _start_watchdog(self):
        """A process in its own session that removes the cluster when this
        process is gone without cleaning up (SIGKILL, a hard timeout)."""
        self._watchdog = subprocess.Popen(
            [sys.executable, os.path.abspath(__file__), "_watchdog", self.dir],
            stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True, close_fds=True)

    def _stop_watchdog(self):
        w, self._watchdog = self._watchdog, None
        if w is None:
            return
        try:
            w.stdin.close()
        except OSError:
            pass
        try:
            w.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            w.kill()
            w.wait()

    def _run(self, argv, timeout=STOP_TIMEOUT, check=True, owner=False):
        cmd = self.prefix + (_as_owner(argv) if owner else argv)
        try:
            p = subprocess.run(cmd, env=_client_env(), stdin=subprocess.DEVNULL,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               timeout=timeout, cwd=self.dir or "/")
        except subprocess.TimeoutExpired as e:
            raise PgError("%s timed out after %ss" % (" ".join(cmd), timeout)) from e
        if check and p.returncode != 0:
            raise PgError("%s exited with %d:\n%s%s%s" % (
                " ".join(cmd), p.returncode, p.stdout, p.stderr, self._log_tail()))
        return p

    def _log_tail(self, chars=3000):
        try:
            with open(self.log_path, errors="replace") as f:
                text = f.read()
        except (OSError, TypeError):
            return ""
        return "\n--- %s ---\n%s" % (self.log_path, text[-chars:])

    def _settings(self):
        return {
            "listen_addresses": "'%s'" % self.host,
            "port": str(self.port),
            "unix_socket_directories": "'%s'" % self.dir,
            "max_connections": "300",
            "wal_level": "replica",
            "max_wal_senders": "5",
            "hot_standby": "on",
            "fsync": "on",
            "synchronous_commit": "on",
            "full_page_writes": "on",
            "shared_buffers": "128MB",
            "logging_collector": "off",
            "log_line_prefix": "'%m [%p] %d '",
            "log_min_messages": "warning",
            "log_connections": "off",
            "log_lock_waits": "on",
            "dynamic_shared_memory_type": "posix",
        }

    def _write_settings(self):
        """Writes the settings to fluxhook_tests.conf, which postgresql.conf
        includes (written again on every start: the port may change)."""
        conf = os.path.join(self.datadir, "postgresql.conf")
        mine = os.path.join(self.datadir, "fluxhook_tests.conf")
        with open(mine, "w") as f:
            f.write("# written by tests/pgcluster.py\n")
            f.write("".join("%s = %s\n" % kv for kv in self._settings().items()))
        if os.geteuid() == 0:
            pw = pwd.getpwnam(OS_USER)
            os.chown(mine, pw.pw_uid, pw.pw_gid)
        with open(conf) as f:
            included = "include 'fluxhook_tests.conf'" in f.read()
        if not included:
            with open(conf, "a") as f:
                f.write("\ninclude 'fluxhook_tests.conf'\n")

    def _initdb(self):
        self._make_dir()
        self._run([_bin("initdb"), "-D", self.datadir, "-A", "trust", "-U", "postgres",
                   "-E", "UTF8", "--locale=C", "--no-sync", "--no-instructions"],
                  timeout=START_TIMEOUT, owner=True)
        if self.trust:
            with open(os.path.join(self.datadir, "pg_hba.conf"), "a") as f:
                f.write("# written by tests/pgcluster.py\n")
                for net in self.trust:
                    f.write("host all all %s trust\nhost replication all %s trust\n"
                            % (net, net))
        self._initialized = True

    def start(self):
        """Creates the cluster (on the first call) and starts the server; returns
        once it accepts connections. After stop() or kill9() it starts the same
        data directory again (crash recovery after kill9)."""
        _become_subreaper()
        try:
            if not self._initialized:
                self._initdb()
            self._start_server()
        except BaseException:
            self.cleanup()
            raise
        return self

    def _start_server(self):
        tries = 1 if self._fixed_port else PORT_TRIES
        for i in range(tries):
            if self.port is None or (i > 0 and not self._fixed_port):
                self.port = free_port(self.host)
            self._write_settings()
            self._drop_stale_lock()
            p = self._run([_bin("pg_ctl"), "start", "-D", self.datadir, "-l", self.log_path,
                           "-w", "-t", str(START_TIMEOUT)],
                          timeout=START_TIMEOUT + 30, owner=True, check=False)
            if p.returncode == 0:
                break
            busy = "could not bind" in self._log_tail(6000) or "in use" in p.stderr
            if not busy or i == tries - 1:
                raise PgError("pg_ctl start exited with %d:\n%s%s%s"
                              % (p.returncode, p.stdout, p.stderr, self._log_tail()))
            _kill_all(self.datadir, time.monotonic() + STOP_TIMEOUT)
        self._pm_pid = self.postmaster_pid()
        self._wait_ready()

    def _drop_stale_lock(self):
        """A postmaster.pid left by a killed server whose pid is a zombie keeps
        the server from starting; it is stale, so it goes."""
        pid = self.postmaster_pid()
        if pid is not None and not _alive(pid):
            try:
                os.unlink(os.path.join(self.datadir, "postmaster.pid"))
            except FileNotFoundError:
                pass

    def _wait_ready(self):
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            p = self._run([_bin("pg_isready"), "-q", "-h", self.host, "-p", str(self.port),
                           "-U", "postgres", "-d", "postgres", "-t", "5"], check=False)
            if p.returncode == 0:
                return
            if time.monotonic() > deadline:
                raise PgError("the server on port %d did not accept connections within %ss%s"
                              % (self.port, START_TIMEOUT, self._log_tail()))
            time.sleep(0.05)

    def postmaster_pid(self):
        """The pid in postmaster.pid, or None."""
        try:
            with open(os.path.join(self.datadir, "postmaster.pid")) as f:
                return int(f.readline().strip())
        except (OSError, ValueError, TypeError):
            return None

    def running(self):
        pid = self.postmaster_pid()
        return pid is not None and _alive(pid)

    def stop(self, mode="fast"):
        """pg_ctl stop -m fast|smart|immediate; waits for the server to be gone."""
        if mode not in ("fast", "smart", "immediate"):
            raise ValueError("mode: fast, smart or immediate")
        if not self.running():
            self._reap_postmaster()
            return
        self._run([_bin("pg_ctl"), "stop", "-D", self.datadir, "-m", mode, "-w",
                   "-t", str(STOP_TIMEOUT)], timeout=STOP_TIMEOUT + 30, owner=True)
        self._reap_postmaster()

    def _reap_postmaster(self):
        pid, self._pm_pid = self._pm_pid, None
        if pid is None:
            return
        deadline = time.monotonic() + STOP_TIMEOUT
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.01)
        _reap([pid])

    def restart(self, mode="fast"):
        """stop(mode) then start() on the same port and data."""
        self.stop(mode)
        self._start_server()

    def kill9(self):
        """A crash: SIGKILL to the postmaster, then to every other process of the
        cluster (so none lingers on after its parent), and waits until all are
        gone. start() then runs crash recovery."""
        pid = self.postmaster_pid()
        if pid is not None and _alive(pid):
            os.kill(pid, signal.SIGKILL)
        left = _kill_all(self.datadir, time.monotonic() + STOP_TIMEOUT)
        if left:
            raise PgError("processes of %s outlived SIGKILL: %s" % (self.datadir, left))
        self._reap_postmaster()

    def cleanup(self):
        """Stops the server (and its standbys) and removes the directory. Safe
        to call more than once."""
        for s in list(self.standbys):
            s.cleanup()
        if self.dir is None:
            return
        if self.datadir and os.path.isdir(self.datadir):
            try:
                if self.running():
                    self.stop("immediate")
            except (PgError, OSError):
                pass
            _kill_all(self.datadir, time.monotonic() + STOP_TIMEOUT)
            self._reap_postmaster()
        shutil.rmtree(self.dir, ignore_errors=True)
        self.dir = None
        self._initialized = False
        self._stop_watchdog()
        if self.primary is not None and self in self.primary.standbys:
            self.primary.standbys.remove(self)

    # --- clients ---

    def url(self, dbname="postgres"):
        host = "[%s]" % self.host if ":" in self.host else self.host
        return "postgres://postgres@%s:%d/%s" % (host, self.port, dbname)

    def _conn_args(self):
        return ["-h", self.host, "-p", str(self.port), "-U", "postgres"]

    def psql(self, sql, db="postgres"):
        """Runs sql (stops at the first error, which raises PgError); returns the
        unaligned, tuples-only output."""
        p = self._run([_bin("psql"), "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1"]
                      + self._conn_args() + ["-d", db, "-c", sql])
        return p.stdout

    def create_db(self, name):
        self._run([_bin("createdb")] + self._conn_args() + [name])
        return self.url(name)

    def drop_db(self, name):
        """Drops the database, ending its sessions first; no error when it is gone."""
        self._run([_bin("dropdb")] + self._conn_args() + ["--if-exists", "--force", name])

    # --- replication ---

    def add_standby(self):
        """A streaming standby made with pg_basebackup -R from this (running)
        cluster, started and accepting (read-only) connections."""
        s = PgCluster(host=self.host, root=self.root)
        s.primary = self
        self.standbys.append(s)
        if self.prefix:
            # Inside the prefix's namespace: the next ports after the primary's.
            s.prefix = self.prefix
            s.port = self.port + len(self.standbys)
            s._fixed_port = True
        _become_subreaper()
        try:
            s._make_dir()
            s._run([_bin("pg_basebackup"), "-D", s.datadir, "-R", "-X", "stream",
                    "--checkpoint=fast", "--no-sync"] + self._conn_args(),
                   timeout=START_TIMEOUT, owner=True)
            s._initialized = True
            s._start_server()
        except BaseException:
            s.cleanup()
            raise
        return s

    def promote(self):
        """Ends recovery on a standby; returns once it accepts writes."""
        self._run([_bin("pg_ctl"), "promote", "-D", self.datadir, "-w",
                   "-t", str(START_TIMEOUT)], timeout=START_TIMEOUT + 30, owner=True)
        deadline = time.monotonic() + START_TIMEOUT
        while self.psql("SELECT pg_is_in_recovery()").strip() != "f":
            if time.monotonic() > deadline:
                raise PgError("still in recovery %ss after promote%s"
                              % (START_TIMEOUT, self._log_tail()))
            time.sleep(0.05)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.cleanup()


@atexit.register
def _cleanup_all():
    for c in reversed(list(_clusters)):
        try:
            c.cleanup()
        except Exception as e:  # keep cleaning the others
            print("pgcluster: cleanup of %s failed: %s" % (c.dir, e), file=sys.stderr)


def _watchdog(top):
    """Waits for the owner's pipe to close, then removes what the owner left."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    sys.stdin.buffer.read()
    data = os.path.join(top, "data")
    if not os.path.isdir(top):
        return 0
    if os.path.isfile(os.path.join(data, "postmaster.pid")):
        subprocess.run(_as_owner([_bin("pg_ctl"), "stop", "-D", data, "-m", "immediate",
                                  "-w", "-t", "30"]),
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=60,
                       env=_client_env(), cwd="/")
    if os.path.isdir(data):
        _kill_all(data, time.monotonic() + 30)
    shutil.rmtree(top, ignore_errors=True)
    return 0


def main(argv=None):
    ap = argparse.ArgumentParser(description="A throwaway PostgreSQL cluster for the tests.")
    sub = ap.add_subparsers(dest="cmd", required=True)
    st = sub.add_parser("start", help="start a cluster, print its URL, keep it until "
                                      "SIGTERM or SIGINT")
    st.add_argument("--port", type=int)
    st.add_argument("--host", default="127.0.0.1")
    st.add_argument("--standby", action="store_true", help="also start a streaming standby")
    wd = sub.add_parser("_watchdog")
    wd.add_argument("dir")
    a = ap.parse_args(argv)
    if a.cmd == "_watchdog":
        return _watchdog(a.dir)

    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM, signal.SIGINT})
    pg = PgCluster(port=a.port, host=a.host)
    try:
        pg.start()
        print(pg.url(), flush=True)
        if a.standby:
            s = pg.add_standby()
            print(s.url(), flush=True)
        print("pgcluster: data in %s, log in %s; SIGTERM or Ctrl-C stops it"
              % (pg.dir, pg.log_path), file=sys.stderr, flush=True)
        signal.sigwait({signal.SIGTERM, signal.SIGINT})
    finally:
        pg.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
