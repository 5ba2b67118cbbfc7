"""An example receiver (examples/receivers/LANG/) running as a process, for the
end-to-end tests (Python 3 standard library only).

    r = ExampleReceiver(["python3", "receiver.py", "0"], env, test=self)
    r.port                        # from its "listening on 127.0.0.1:N" line
    r.line()                      # its next "delivery ..." line
    status, text = r.post(body, headers)

Every example prints "listening on 127.0.0.1:N" once it listens (php -S prints
its own "Development Server (http://127.0.0.1:N) started": pass ready=), then
one line per request: "delivery event=E attempt=N verified" or
"delivery event=E attempt=N not verified: WHY". Other lines (a server's own
log) are skipped.
"""
import http.client
import queue
import re
import subprocess
import threading

LINE_TIMEOUT = 30
READY = r"^listening on 127\.0\.0\.1:(\d+)$"


class ExampleReceiver:
    def __init__(self, argv, env, test, cwd=None, ready=READY, start_timeout=60):
        self.argv = argv
        self.proc = subprocess.Popen(argv, env=env, cwd=cwd, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                     errors="replace")
        test.addCleanup(self.stop)
        self.output = []
        self.lines = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        ready_re = re.compile(ready)
        while True:
            line = self._next(start_timeout, "its listening line")
            m = ready_re.search(line)
            if m:
                self.port = int(m.group(1))
                break

    def _read(self):
        for line in self.proc.stdout:
            line = line.rstrip("\n")
            self.output.append(line)
            self.lines.put(line)
        self.lines.put(None)

    def _next(self, timeout, what):
        try:
            line = self.lines.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError("%s printed nothing within %ss waiting for %s; output:\n%s"
                                 % (self.argv[0], timeout, what, "\n".join(self.output)))
        if line is None:
            raise AssertionError("%s exited with %s waiting for %s; output:\n%s"
                                 % (self.argv[0], self.proc.wait(), what,
                                    "\n".join(self.output)))
        return line

    def line(self, timeout=LINE_TIMEOUT):
        """The next "delivery ..." line."""
        while True:
            line = self._next(timeout, "a delivery line")
            if line.startswith("delivery "):
                return line

    def post(self, body, headers, path="/hook"):
        """POSTs body (bytes) with headers; returns (status, text)."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            conn.request("POST", path, body=body,
                         headers=dict({"Content-Type": "application/json"}, **headers))
            resp = conn.getresponse()
            return resp.status, resp.read().decode("utf-8", "replace")
        finally:
            conn.close()

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self._reader.join(10)  # it ends at the pipe's end of file
        if not self._reader.is_alive():
            self.proc.stdout.close()
