"""A webhook receiver for the end-to-end tests (Python 3 standard library only).

    from receiver import Receiver, TestCA
    rc = Receiver(responses=[503, 503, 200], default=200, tls=None)  # or tls=TestCA(dir)
    rc.url                  # "http://127.0.0.1:PORT/hook" (https:// with tls)
    rc.requests             # [Request(method, path, headers (lower-case dict), body, at)]
    rc.wait_for(n, timeout=10)   # waits for n requests, returns rc.requests
    rc.set_responses([...])
    rc.close()

Each request takes the next item of `responses`, then `default`. An item is an
int status, or a dict with any of:
    status   int (200)
    headers  dict of extra response headers
    body     bytes (b"")
    delay    seconds to wait before answering
    hang     True: never answer (the connection stays open until close())
    stall    True: send the status line and headers (Content-Length of the
             whole body plus 1000), then part of the body, then stall
    close    True: close the connection without answering
Requests are recorded when they arrive, before the answer.
"""
import collections
import http.server
import os
import socket
import ssl
import subprocess
import threading
import time

Request = collections.namedtuple("Request", "method path headers body at")


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "test-receiver"
    sys_version = ""

    def log_message(self, fmt, *args):  # quiet
        pass

    def _serve(self):
        rc = self.server.receiver
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n) if n > 0 else b""
        req = Request(self.command, self.path,
                      {k.lower(): v for k, v in self.headers.items()}, body, time.time())
        item = rc._record(req)
        if isinstance(item, int):
            item = {"status": item}
        if item.get("delay"):
            rc._stopped.wait(item["delay"])
        if item.get("hang"):
            rc._stopped.wait()
            self.close_connection = True
            return
        if item.get("close"):
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return
        status = item.get("status", 200)
        payload = item.get("body", b"")
        if isinstance(payload, str):
            payload = payload.encode()
        self.send_response(status)
        for k, v in (item.get("headers") or {}).items():
            self.send_header(k, str(v))
        if item.get("stall"):
            self.send_header("Content-Length", str(len(payload) + 1000))
            self.end_headers()
            self.wfile.write(payload)
            self.wfile.flush()
            rc._stopped.wait()
            self.close_connection = True
            return
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_POST = _serve
    do_GET = _serve
    do_PUT = _serve


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, receiver, ssl_context):
        self.receiver = receiver
        self.ssl_context = ssl_context
        super().__init__(("127.0.0.1", 0), _Handler)

    def get_request(self):
        sock, addr = self.socket.accept()
        if self.ssl_context is not None:
            # The handshake runs in the request's thread, on its first read.
            sock = self.ssl_context.wrap_socket(sock, server_side=True,
                                                do_handshake_on_connect=False)
        self.receiver._track(sock)
        return sock, addr

    def handle_error(self, request, client_address):
        # A client that drops the connection or refuses our certificate is
        # part of some scenarios; record it rather than print a traceback.
        self.receiver.errors += 1


class Receiver:
    def __init__(self, responses=None, default=200, tls=None, path="/hook"):
        self._lock = threading.Condition()
        self._responses = list(responses or [])
        self.default = default
        self._requests = []
        self._socks = []
        self._stopped = threading.Event()
        self.errors = 0
        ctx = None
        if tls is not None:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(tls.cert_file, tls.key_file)
        self._server = _Server(self, ctx)
        self.port = self._server.server_address[1]
        scheme = "https" if tls is not None else "http"
        self.url = "%s://127.0.0.1:%d%s" % (scheme, self.port, path)
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()

    def _track(self, sock):
        with self._lock:
            self._socks.append(sock)

    def _record(self, req):
        with self._lock:
            self._requests.append(req)
            item = self._responses.pop(0) if self._responses else self.default
            self._lock.notify_all()
            return item

    @property
    def requests(self):
        """The requests so far, in arrival order (a copy)."""
        with self._lock:
            return list(self._requests)

    def set_responses(self, responses, default=None):
        """Replaces the queue of answers (and the default when given)."""
        with self._lock:
            self._responses = list(responses)
            if default is not None:
                self.default = default

    def wait_for(self, n, timeout=10):
        """Waits until n requests arrived; returns them all. Fails on timeout."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while len(self._requests) < n:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError("receiver %s got %d requests, expected %d within %ss"
                                         % (self.url, len(self._requests), n, timeout))
                self._lock.wait(left)
            return list(self._requests)

    def close(self):
        """Stops serving and drops every connection (hung ones too)."""
        if self._stopped.is_set():
            return
        self._stopped.set()
        self._server.shutdown()
        self._server.server_close()
        with self._lock:
            socks = list(self._socks)
        for s in socks:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            try:
                s.close()
            except OSError:
                pass
        self._thread.join(5)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _openssl(*args, cwd):
    subprocess.run(["openssl"] + list(args), cwd=cwd, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


class TestCA:
    """A throwaway CA and a server certificate for 127.0.0.1 and localhost,
    made with the openssl command in directory d.

    ca_file    the CA certificate (PEM), for `serve --ca-file`
    cert_file  the server certificate (PEM), signed by the CA
    key_file   its key
    """

    def __init__(self, d):
        os.makedirs(d, exist_ok=True)
        self.dir = d
        self.ca_file = os.path.join(d, "ca.pem")
        self.ca_key = os.path.join(d, "ca.key")
        self.cert_file = os.path.join(d, "server.pem")
        self.key_file = os.path.join(d, "server.key")
        ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
        _openssl("req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.pem", "-days", "2",
                 "-subj", "/CN=fluxhook test CA",
                 "-addext", "basicConstraints=critical,CA:TRUE",
                 "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=d)
        _openssl("req", *ec, "-keyout", "server.key", "-out", "server.csr",
                 "-subj", "/CN=localhost", cwd=d)
        with open(os.path.join(d, "server.ext"), "w") as f:
            f.write("basicConstraints=critical,CA:FALSE\n"
                    "keyUsage=critical,digitalSignature,keyEncipherment\n"
                    "extendedKeyUsage=serverAuth\n"
                    "subjectAltName=IP:127.0.0.1,DNS:localhost\n")
        _openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
                 "-CAcreateserial", "-out", "server.pem", "-days", "2",
                 "-extfile", "server.ext", cwd=d)
