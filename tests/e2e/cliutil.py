"""Helpers for the command-line scenarios (test_cli_*.py): a live server, the
client commands run against it, and a parser for their tables.
Python 3 standard library only."""
import json
import os
import re
import select
import signal
import socket
import subprocess
import threading
import time
import unittest

from harness import Server, clean_env

SERVE_ARGS = ["--allow-http", "--allow-networks", "127.0.0.0/8",
              "--retry-schedule", "0ms,100ms,200ms"]
SECRET = "whsec_dGVzdHRlc3R0ZXN0dGVzdHRlc3R0ZXN0dGVzdA=="
SANITIZER_MARKS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:")
STARTED = {"conversation_id": "conv-1", "agent_id": "agent-1", "channel": "chat"}


def table(text):
    """Rows of a table printed by the CLI, as dicts keyed by heading. Columns
    start where the headings start (headings are separated by 2+ spaces)."""
    lines = [ln for ln in text.splitlines() if ln.strip()]
    if not lines:
        return []
    head = lines[0]
    cols = [(m.start(), m.group()) for m in re.finditer(r"\S+(?: \S+)*", head)]
    rows = []
    for ln in lines[1:]:
        row = {}
        for i, (start, name) in enumerate(cols):
            end = cols[i + 1][0] if i + 1 < len(cols) else len(ln)
            row[name] = ln[start:end].strip()
        rows.append(row)
    return rows


def free_port():
    """A loopback port that nothing listens on (bound, then closed)."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class CliCase(unittest.TestCase):
    """A live server per test, and shortcuts to run the CLI against it."""

    serve_args = SERVE_ARGS

    def setUp(self):
        self.srv = Server(args=self.serve_args, test=self)
        self.srv.start()

    def cli(self, *args, status=0, input=None, env=None):
        """Runs fluxhook args..., asserts the exit status and no sanitizer report."""
        p = self.srv.run_cli(*args, input=input, env=env)
        out = "exit %d\nstdout:\n%s\nstderr:\n%s" % (p.returncode, p.stdout, p.stderr)
        self.assertEqual(p.returncode, status, out)
        for m in SANITIZER_MARKS:
            self.assertNotIn(m, p.stderr, out)
        return p

    def cli_json(self, *args, status=0, input=None):
        """Runs fluxhook args... --json and parses its stdout."""
        p = self.cli(*args, "--json", status=status, input=input)
        return json.loads(p.stdout)

    def cli_on_terminal(self, *args, answer):
        """Runs fluxhook args... with a terminal as standard input that has answer
        typed into it; returns (exit status, stdout bytes, stderr bytes)."""
        import pty
        master, slave = pty.openpty()
        try:
            env = clean_env({"FLUXHOOK_URL": self.srv.url, "FLUXHOOK_API_KEY": self.srv.root_key})
            proc = subprocess.Popen([self.srv.bin, *args], stdin=slave, stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, env=env)
            os.write(master, answer)
            out, err = proc.communicate(timeout=60)
        finally:
            os.close(slave)
            os.close(master)
        return proc.returncode, out, err

    def endpoint(self, url, *extra):
        """Creates an endpoint through the CLI; returns the API's object."""
        return self.cli_json("endpoints", "create", "--url", url, *extra)


class Listener:
    """`fluxhook listen` as a child process whose stdout is collected."""

    def __init__(self, test, *args):
        env = clean_env({})
        self.proc = subprocess.Popen(
            [os.environ.get("FLUXHOOK_BIN") or test.srv.bin, "listen", "--port", "0", *args],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        self.lines = []
        self.stopped = None
        self.lock = threading.Lock()
        first = self.proc.stdout.readline()
        m = re.match(r"listen: listening url=(http://127\.0\.0\.1:\d+)$", first.strip())
        if m is None:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError("listen did not start: %r %s" % (first, self.proc.stderr.read()))
        self.url = m.group(1)
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()
        test.addCleanup(self._stop_checked, test)

    def _stop_checked(self, test):
        """The cleanup: stops listen and fails the test on a sanitizer report."""
        _, err = self.stop()
        for m in SANITIZER_MARKS:
            if m in err:
                test.fail("sanitizer report from fluxhook listen:\n" + err)

    def _read(self):
        for line in self.proc.stdout:
            with self.lock:
                self.lines.append(line)

    def text(self):
        with self.lock:
            return "".join(self.lines)

    def wait_for(self, pred, timeout=15, what="listen output"):
        """Polls until pred(text) holds; fails with the output on timeout."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if pred(self.text()):
                return self.text()
            time.sleep(0.05)
        raise AssertionError("timed out waiting for %s; output:\n%s" % (what, self.text()))

    def stop(self, sig=signal.SIGINT):
        """Sends sig, waits; returns (exit status, stderr). Once only: later calls
        return the first answer."""
        if self.stopped is not None:
            return self.stopped
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            rc = self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = self.proc.wait()
        self.thread.join(timeout=10)
        err = self.proc.stderr.read()
        self.proc.stdout.close()
        self.proc.stderr.close()
        self.stopped = (rc, err)
        return self.stopped


def run_on_tty(argv, env):
    """Runs argv with stdout and stderr on a pseudo-terminal; returns (status, output)."""
    import pty
    master, slave = pty.openpty()
    p = subprocess.Popen(argv, stdout=slave, stderr=slave, stdin=subprocess.DEVNULL, env=env)
    os.close(slave)
    chunks = []
    while True:
        r, _, _ = select.select([master], [], [], 30)
        if not r:
            break
        try:
            data = os.read(master, 65536)
        except OSError:
            break
        if not data:
            break
        chunks.append(data)
    os.close(master)
    rc = p.wait(timeout=30)
    return rc, b"".join(chunks).decode(errors="replace")
