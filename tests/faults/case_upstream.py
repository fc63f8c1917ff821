"""Case 8: an upstream service that fails, every way /upstream distinguishes.

A fake upstream (a raw socket server in this process, so that it can misbehave exactly) is
switched between behaviours while one server instance calls it through /upstream:

  - down:      nothing listens (the fake's port, closed): 502
  - reset:     the head and part of the body, then a reset (SO_LINGER 0): 502
  - stall:     reads the request and never answers, past --upstream-timeout: 504
  - garbage:   bytes that are not HTTP: 502
  - huge:      a 10 MB body, declared and sent: 502, the rest unread
  - drops:     answers the first request of a connection, and closes the connection without
               an answer when a second one arrives on it (the race of a keep-alive timeout):
               the call on that pooled connection must be retried on a new one: 200, always
  - good:      answers /io properly: 200

For each failing behaviour: 5 requests of /upstream?calls=5, each answered with the right
status and a JSON error; then the descriptors of the server process (/proc/PID/fd) must be
back to what they were plus the pooled upstream connections the server reports (a failed
call never leaks a socket or leaves one pooled), and a switch to `good` must give 200s (no
pooled connection was left in a bad state). Every model, every mode (the workers of a
pre-forked server are counted the same way).
"""

import os
import socket
import struct
import threading
import time

from tests.conformance.harness import check
from tests.faults.common import expect, fail, log, request, start_instance, stats, worker_pids

BAD = [("reset", 502), ("stall", 504), ("garbage", 502), ("huge", 502), ("down", 502)]
ROUNDS = 5
CALLS = 5


class FakeUpstream:
    """A listening socket and a thread per connection; `mode` says how to answer."""

    def __init__(self):
        self.mode = "good"
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(1024)
        self.port = self.sock.getsockname()[1]
        self.stop = threading.Event()
        self.conns = []
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self):
        return "http://127.0.0.1:%d" % self.port

    def _accept(self):
        while not self.stop.is_set():
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            self.conns.append(c)
            threading.Thread(target=self._serve, args=(c,), daemon=True).start()

    def _read_request(self, c, buf):
        while b"\r\n\r\n" not in buf:
            data = c.recv(4096)
            if not data:
                return None
            buf += data
        head, _, rest = buf.partition(b"\r\n\r\n")
        return head, rest

    def _serve(self, c):
        buf = b""
        served = 0
        try:
            while not self.stop.is_set():
                got = self._read_request(c, buf)
                if got is None:
                    return
                (head, buf) = got
                if self.mode == "drops" and served > 0:
                    return          # closed, with the request unanswered
                served += 1
                if not self._answer(c, self.mode):
                    return
        except OSError:
            pass
        finally:
            try:
                c.close()
            except OSError:
                pass

    def _answer(self, c, mode):
        """Answers one request; False when the connection is finished."""
        body = b'{"waited_ms":0}'
        ok = (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
              % (len(body), body))
        if mode in ("good", "drops"):
            c.sendall(ok)
            return True
        if mode == "reset":
            c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n" + b"x" * 100)
            c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            return False
        if mode == "garbage":
            c.sendall(b"this is not HTTP at all\r\n\r\n")
            return False
        if mode == "huge":
            c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % (10 << 20))
            chunk = b"y" * 65536
            for _ in range(160):
                c.sendall(chunk)        # fails once the server has given up and closed
            return False
        self.stop.wait(60)              # stall
        return False

    def close(self):
        """Down: the listening socket and every connection closed."""
        self.stop.set()
        self.sock.close()
        for c in self.conns:
            try:
                c.shutdown(socket.SHUT_RDWR)
                c.close()
            except OSError:
                pass


def open_fds(srv):
    total = 0
    for pid in worker_pids(srv):
        try:
            total += len(os.listdir("/proc/%d/fd" % pid))
        except OSError:
            pass
    return total


def upstream_sockets(port):
    """Sockets some process still holds that are connected (or connecting) to `port`: the
    server's pooled and in-use upstream connections, in every worker process. An orphaned
    socket (closed, lingering in FIN_WAIT or TIME_WAIT) has inode 0 and is not counted."""
    n = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as f:
                rows = f.read().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            cols = row.split()
            if int(cols[2].rsplit(":", 1)[1], 16) == port and cols[9] != "0":
                n += 1
    return n


def settle_fds(srv, fake, base, what):
    """Descriptors drain asynchronously (a thread's last close, a lingering client socket):
    poll until the server holds no more than `base` plus its upstream sockets, or a hang guard
    passes, then say what was seen."""
    deadline = time.monotonic() + 10
    while True:
        have, up = open_fds(srv), upstream_sockets(fake.port)
        if have - up <= base or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    expect(have - up <= base, "%s: the server holds %d descriptors (%d of them upstream "
           "connections), %d expected besides those: a leak" % (what, have, up, base))
    return up


@check("upstream.failures-leak-nothing")
def _(ctx):
    fake = FakeUpstream()
    srv = None
    try:
        srv = start_instance(ctx, "upstream-faults", ["--upstream", fake.url,
                                                      "--upstream-timeout", "1"])
        for i in range(3):          # warm: threads, pools and connections that stay
            resp = request(srv, "GET", "/upstream?calls=%d&ms=0" % CALLS)
            expect(resp.status == 200, "warm-up: %s" % resp.describe())
        base = open_fds(srv) - upstream_sockets(fake.port)
        for (mode, status) in BAD:
            fake.mode = mode
            if mode == "down":
                fake.close()        # nothing listens there any more
            for r in range(ROUNDS):
                resp = request(srv, "GET", "/upstream?calls=%d&ms=0" % CALLS)
                if resp.status != status or b'"error"' not in resp.body:
                    fail("upstream %s: expected %d with a JSON error, got %s"
                         % (mode, status, resp.describe()))
            up = settle_fds(srv, fake, base, "after the upstream's %s" % mode)
            log("upstream %s: %d x %d calls answered %d; descriptors back to %d + %d upstream"
                % (mode, ROUNDS, CALLS, status, base, up))
            if mode == "down":
                break
            fake.mode = "good"
            resp = request(srv, "GET", "/upstream?calls=%d&ms=0" % CALLS)
            expect(resp.status == 200, "upstream good again after %s: %s"
                   % (mode, resp.describe()))
    finally:
        if srv is not None:
            ctx.stop_server(srv)
        fake.close()


@check("upstream.stale-pooled-connection-retried")
def _(ctx):
    """An upstream that closes every connection after its answer: each call after the first
    finds its pooled connection closed, and must be retried on a new one, never failed."""
    fake = FakeUpstream()
    fake.mode = "drops"
    srv = None
    try:
        srv = start_instance(ctx, "upstream-drops", ["--upstream", fake.url])
        for i in range(20):
            resp = request(srv, "GET", "/upstream?calls=1&ms=0")
            expect(resp.status == 200, "call %d after the upstream closed the previous "
                   "connection: %s" % (i, resp.describe()))
        s = stats(srv)["gauges"]
        log("upstream drops: 20 calls, %s dials, %s retries"
            % (s.get("upstream_dials_total"), s.get("upstream_retries_total")))
        if len(worker_pids(srv)) == 1:     # one process answers /stats for all the calls
            expect(s.get("upstream_retries_total", 0) >= 1,
                   "no call was retried, yet the upstream closed every reused connection")
    finally:
        if srv is not None:
            ctx.stop_server(srv)
        fake.close()
