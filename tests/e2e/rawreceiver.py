"""RawReceiver: a TCP listener on loopback for end-to-end tests that need
answers no HTTP server library would send (garbage, resets, hangs, closes
at a chosen request of a keep-alive connection)."""
import socket
import struct
import threading
import time

OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
IO_TIMEOUT = 30  # seconds any socket call of the receiver may block


class RawReceiver:
    """A TCP listener on loopback that reads whole HTTP requests and answers
    each with the next raw item of `answers` (then `default`): bytes to send
    before closing, "reset" (close with an RST), or "keepalive" (answer 200
    and keep the connection; a second request on it is never answered)."""

    def __init__(self, answers, default=OK, keep=False, drop_at=None):
        self.answers = list(answers)
        self.default = default
        self.keep = keep  # True: every answer of bytes keeps the connection, not only OK
        self.drop_at = drop_at  # request number on a connection read, then closed without a byte
        self.requests = []  # (connection number, request number on it, arrival time)
        self.deliveries = []  # X-Workflux-Delivery of each request, in the same order
        self.cond = threading.Condition()
        self.stopped = threading.Event()
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.url = "http://127.0.0.1:%d/hook" % self.port
        self.conns = []
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self):
        n = 0
        while not self.stopped.is_set():
            try:
                c, _ = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            n += 1
            c.settimeout(IO_TIMEOUT)
            self.conns.append(c)
            threading.Thread(target=self._serve, args=(c, n), daemon=True).start()

    def _read_request(self, c, buf):
        """Reads one request (head and Content-Length body); returns what is
        left after it, or None when the peer closed."""
        while b"\r\n\r\n" not in buf:
            d = c.recv(65536)
            if not d:
                return None
            buf += d
        head, rest = buf.split(b"\r\n\r\n", 1)
        length = 0
        self.last_delivery = None
        for line in head.split(b"\r\n")[1:]:
            k, _, v = line.partition(b":")
            if k.strip().lower() == b"content-length":
                length = int(v.strip())
            if k.strip().lower() == b"x-workflux-delivery":
                self.last_delivery = v.strip().decode()
        while len(rest) < length:
            d = c.recv(65536)
            if not d:
                return None
            rest += d
        return rest[length:]

    def _serve(self, c, conn_no):
        buf = b""
        k = 0
        try:
            while not self.stopped.is_set():
                buf = self._read_request(c, buf)
                if buf is None:
                    return
                k += 1
                with self.cond:
                    self.requests.append((conn_no, k, time.time()))
                    self.deliveries.append(self.last_delivery)
                    item = self.answers.pop(0) if self.answers else self.default
                    self.cond.notify_all()
                if k == self.drop_at:
                    return  # closed without a byte of an answer
                if item == "keepalive":
                    if k == 1:
                        c.sendall(OK)
                        continue
                    self.stopped.wait(IO_TIMEOUT)  # the reused connection hangs
                    return
                if item == "reset":
                    c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    return
                c.sendall(item)
                if item is not OK and not self.keep:
                    return
        except OSError:
            return
        finally:
            c.close()

    def wait_for(self, n, timeout=15):
        with self.cond:
            self.cond.wait_for(lambda: len(self.requests) >= n, timeout)
            return list(self.requests)

    def close(self):
        self.stopped.set()
        self.sock.close()
        self.thread.join(5)
        for c in self.conns:
            try:
                c.close()
            except OSError:
                pass


