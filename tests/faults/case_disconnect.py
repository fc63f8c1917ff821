"""Case 1: clients that disconnect mid-request, mid-response and while their request is
suspended (waiting on a timer, a fan-out, the pool or a locked database).

Afterwards the server must be as it was: requests.in_flight back to 1 (the /stats request
itself) and gauges.connections back to 1 in every worker process, a fresh client served, no
growth of memory, threads or descriptors across repeated rounds, and (at the harness's clean
shutdown) no LeakSanitizer report. With --max-inflight 4, abandoned requests must give back
their admission slots.
"""

import socket
import time

from tests.conformance.harness import check
from tests.faults.common import (HANG_GUARD, OPTS, close_socket, connect, connections, db_connect,
                                 expect, fail, fresh_requests_work, is_proper_503, log, mib,
                                 raw_socket, start_instance, stats, tree_usage, wait_in_flight,
                                 wait_quiet, worker_pids)


def host_header(srv):
    return "%s:%d" % (srv.host, srv.port)


# -- the ways to abandon a request ------------------------------------------------------------

# Partial requests: (name, bytes). Each is sent, then the client closes.
PARTIAL_REQUESTS = [
    ("half a head", b"GET /queries?queries=20 HTTP/1.1\r\nHost: x\r\nUser-Agent: faults\r\n"
                    b"Accept: */"),
    ("half a body", b"POST /items HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                    b"Content-Length: 100\r\n\r\n{\"name\":\"half a body\",\"qty\":"),
    ("half a chunked body", b"POST /items HTTP/1.1\r\nHost: x\r\nContent-Type: application/json"
                            b"\r\nTransfer-Encoding: chunked\r\n\r\n20\r\n{\"name\":\"half\","),
    ("a head announcing a body never sent", b"PUT /items/1 HTTP/1.1\r\nHost: x\r\n"
                                            b"Content-Type: application/json\r\n"
                                            b"Content-Length: 40\r\n\r\n"),
]


def open_partial(srv, data):
    s = raw_socket(srv)
    s.sendall(data)
    return s


def half_close_mid_head(srv):
    """The client sends half a head, shuts down its sending side and waits: the server must
    close (or answer with an error) by the head deadline at the latest. Returns the seconds
    it took (for the report)."""
    s = raw_socket(srv)
    t0 = time.monotonic()
    try:
        s.sendall(PARTIAL_REQUESTS[0][1])
        s.shutdown(socket.SHUT_WR)
        data = b""
        while True:
            try:
                chunk = s.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            data += chunk
        if data and not data.startswith(b"HTTP/1.1 4"):
            fail("after half a request head and a half-close, the server sent %r" % data[:200])
    except socket.timeout:
        fail("after half a request head and a half-close, the server neither answered nor "
             "closed the connection within %d s" % HANG_GUARD)
    finally:
        close_socket(s)
    return time.monotonic() - t0


def wait_connections(srv, n, deadline=5.0):
    """Best effort: wait until the server holds about n connections besides /stats's own
    (summed over worker processes), so that a close is a close of a connection the server
    knows. Shapes the scenario; asserts nothing."""
    end = time.monotonic() + deadline
    latest = {}
    while time.monotonic() < end:
        st = stats(srv)
        latest[st["pid"]] = connections(st) - 1
        if sum(latest.values()) >= n:
            return
        time.sleep(0.02)


MID_RESPONSE_TARGETS = ("/queries?queries=500", "/cached-queries?count=500", "/fortunes",
                        "/updates?queries=20")


def open_mid_response(srv, pipelined):
    """A client with a small receive buffer pipelines requests for large responses and reads
    a few bytes: the server is left writing into a full socket."""
    s = raw_socket(srv, rcvbuf=4096)
    reqs = b""
    for k in range(pipelined):
        target = MID_RESPONSE_TARGETS[k % len(MID_RESPONSE_TARGETS)]
        reqs += ("GET %s HTTP/1.1\r\nHost: %s\r\n\r\n" % (target, host_header(srv))).encode()
    s.sendall(reqs)
    s.recv(64)
    return s


def open_suspended(srv, target, method="GET", body=None):
    s = raw_socket(srv)
    head = "%s %s HTTP/1.1\r\nHost: %s\r\n" % (method, target, host_header(srv))
    if body is not None:
        head += "Content-Type: application/json\r\nContent-Length: %d\r\n" % len(body)
    s.sendall(head.encode() + b"\r\n" + (body or b""))
    return s


# -- the scenarios, each ending with the server quiet and serving --------------------------------

def scenario_mid_request(srv, n, reset=True):
    """n clients per kind of partial request leave. With reset=False they close with a FIN,
    which some models only notice at the head or body deadline (see disconnect.mid-request),
    so the batch scenarios on the main instance reset."""
    socks = [open_partial(srv, data) for _k in range(n) for (_name, data) in PARTIAL_REQUESTS]
    wait_connections(srv, len(socks))
    for s in socks:
        close_socket(s, reset)


def scenario_mid_response(srv, n):
    socks = [open_mid_response(srv, 24) for _k in range(n)]
    # Let the server fill the sockets (shapes the scenario; nothing is asserted about time).
    time.sleep(0.3)
    for (k, s) in enumerate(socks):
        close_socket(s, reset=k % 2 == 0)
    # One large response, closed right after its first bytes.
    for reset in (False, True):
        s = raw_socket(srv, rcvbuf=4096)
        s.sendall(("GET /queries?queries=500 HTTP/1.1\r\nHost: %s\r\n\r\n"
                   % host_header(srv)).encode())
        s.recv(16)
        close_socket(s, reset)


def scenario_suspended(srv, n_io, n_fanout):
    socks = [open_suspended(srv, "/io?ms=1500") for _k in range(n_io)]
    socks += [open_suspended(srv, "/fanout?calls=50&ms=1500") for _k in range(n_fanout)]
    wait_in_flight(srv, len(socks))
    for (k, s) in enumerate(socks):
        close_socket(s, reset=k % 2 == 0)


def scenario_db_locked(srv, n_updates, n_items, tag):
    """The test holds the database's write lock, so /updates and POST /items wait in sqlite's
    busy handler (or in the pool's queue behind the ones that do); their clients leave; the
    lock is released well inside the busy timeout, and the requests finish for nobody.
    No /stats polling while the lock is held: with --db-on-loop the loop itself is waiting."""
    locker = db_connect(srv.db_path, readonly=False)
    socks = []
    try:
        locker.execute("BEGIN IMMEDIATE")
        socks += [open_suspended(srv, "/updates?queries=50") for _k in range(n_updates)]
        for k in range(n_items):
            body = ('{"name":"abandoned-%s-%d","qty":%d}' % (tag, k, k)).encode()
            socks.append(open_suspended(srv, "/items", "POST", body))
        time.sleep(0.5)     # the requests reach the server and block
        for (k, s) in enumerate(socks):
            close_socket(s, reset=k % 2 == 0)
        time.sleep(0.3)
    finally:
        try:
            locker.execute("ROLLBACK")
        finally:
            locker.close()
    return socks


def check_abandoned_items(srv):
    """Abandoned POSTs were either committed whole or not at all."""
    conn = db_connect(srv.db_path)
    try:
        rows = conn.execute("SELECT id, name, qty FROM items WHERE name LIKE 'abandoned-%'"
                            ).fetchall()
        ok = conn.execute("PRAGMA quick_check").fetchone()[0]
    finally:
        conn.close()
    for (i, name, qty) in rows:
        expect(name.rsplit("-", 1)[1] == str(qty),
               "item %d: name %r with qty %d: a torn write of an abandoned POST" % (i, name, qty))
    expect(ok == "ok", "PRAGMA quick_check after abandoned writes: %s" % ok)


def after(srv, what):
    wait_quiet(srv, what)
    fresh_requests_work(srv, what)


def release_seconds(srv, data, how):
    """One client sends a partial request and leaves (how: "fin" or "rst" once the server holds
    the connection, or "fin-at-once", closing right after sending, so that the FIN arrives
    with the data). Returns the seconds until every worker is quiet again, 0.0 if the server
    released the connection before /stats ever showed it, or None if that is unknown (a
    pre-forked server whose /stats kept coming from the other worker)."""
    s = open_partial(srv, data)
    seen = how != "fin-at-once" and connection_seen(srv, 2.0)
    close_socket(s, reset=how == "rst")
    t0 = time.monotonic()
    if how == "fin-at-once":
        seen = connection_seen(srv, 0.5)
        if not seen and len(worker_pids(srv)) == 1:
            return 0.0
    wait_quiet(srv, "a client left (%s) after %r" % (how, data[:40]))
    return time.monotonic() - t0 if seen else None


def connection_seen(srv, deadline):
    """Best effort: /stats shows a connection besides its own within deadline seconds."""
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        if connections(stats(srv)) >= 2:
            return True
        time.sleep(0.01)
    return False


@check("disconnect.mid-request")
def _(ctx):
    """Clients leave after part of a head or a body, with a FIN or a reset. On an instance with
    the shortest head and body deadlines (1 s): every connection must be released, at once or
    at its deadline at the latest; which one is reported. Then 40 at once, on the main
    instance."""
    srv = start_instance(ctx, "mid-request", ["--idle-timeout", "1", "--read-timeout", "1"])
    try:
        report = []
        for (name, data) in PARTIAL_REQUESTS:
            took = [(how, release_seconds(srv, data, how)) for how in ("rst", "fin",
                                                                      "fin-at-once")]
            report.append("%s: %s" % (name, ", ".join(
                "%s %s" % (how, "%.1f s" % t if t is not None else "n/a") for (how, t) in took)))
        report.append("half a head, then a half-close: %.1f s" % half_close_mid_head(srv))
        log("connection released after the client left (deadlines 1 s; ~0 s: noticed at "
            "once, 1-2 s: held until the deadline sweep):\n  " + "\n  ".join(report))
        after(srv, "after clients left mid-request")
    finally:
        ctx.stop_server(srv)
    scenario_mid_request(ctx.server, 10)
    after(ctx.server, "after 40 requests abandoned mid-head and mid-body (reset)")


@check("disconnect.mid-response")
def _(ctx):
    scenario_mid_response(ctx.server, 8)
    after(ctx.server, "after 10 clients left in the middle of large responses")


@check("disconnect.while-suspended")
def _(ctx):
    scenario_suspended(ctx.server, 20, 10)
    after(ctx.server, "after 20 /io?ms=1500 and 10 /fanout?calls=50&ms=1500 abandoned")


@check("disconnect.while-db-locked")
def _(ctx):
    scenario_db_locked(ctx.server, 30, 10, "a")
    after(ctx.server, "after 30 /updates?queries=50 and 10 POST /items abandoned while the "
          "database was write-locked")
    check_abandoned_items(ctx.server)


def settle(srv, base, what, deadline=30.0):
    """Threads and descriptors of the tree come back to the baseline (+ slack); returns the
    last usage. Threads of a thread-per-connection server exit after their connection closes,
    so this polls (hang guard only)."""
    end = time.monotonic() + deadline
    while True:
        u = tree_usage(srv)
        if u[1] <= base[1] + 4 and u[2] <= base[2] + 4:
            return u
        if time.monotonic() > end:
            fail("%s: threads %d -> %d, descriptors %d -> %d (after every client left)"
                 % (what, base[1], u[1], base[2], u[2]))
        time.sleep(0.1)


@check("disconnect.repeated-rounds")
def _(ctx):
    """All the above, again and again: nothing may accumulate."""
    srv = ctx.server
    rounds = max(2, OPTS.rounds)
    base = None
    for r in range(rounds):
        scenario_mid_request(srv, 4)
        scenario_mid_response(srv, 4)
        scenario_suspended(srv, 10, 5)
        scenario_db_locked(srv, 10, 5, "r%d" % r)
        after(srv, "round %d" % (r + 1))
        if r == 0:
            base = tree_usage(srv)      # the first round warms pools, caches, arenas
    final = settle(srv, base, "after %d rounds" % rounds)
    grow = final[0] - base[0]
    log("usage after round 1: rss %s, %d threads, %d fds; after round %d: rss %s, %d threads, "
        "%d fds" % (mib(base[0]), base[1], base[2], rounds, mib(final[0]), final[1], final[2]))
    if not OPTS.sanitized:
        expect(grow < 32 << 20, "RSS grew by %s over %d rounds of abandoned requests"
               % (mib(grow), rounds - 1))
    check_abandoned_items(srv)


@check("disconnect.slots-freed")
def _(ctx):
    """--max-inflight 4: abandoned requests must give their admission slots back."""
    srv = start_instance(ctx, "max-inflight-4", ["--max-inflight", "4"])
    try:
        for rnd in range(2):
            socks = [open_suspended(srv, "/io?ms=1500") for _k in range(5)]
            socks += [open_suspended(srv, "/fanout?calls=20&ms=1500") for _k in range(3)]
            socks += [open_suspended(srv, "/updates?queries=50") for _k in range(2)]
            wait_in_flight(srv, 4)
            for (k, s) in enumerate(socks):
                close_socket(s, reset=k % 2 == 1)
            wait_quiet(srv, "round %d: 10 abandoned requests under --max-inflight 4" % (rnd + 1))
            conns = [connect(srv) for _k in range(4)]
            try:
                for c in conns:
                    c.send_request("GET", "/io?ms=100")
                for (k, c) in enumerate(conns):
                    resp = c.read_response()
                    if resp.status != 200:
                        fail("round %d: concurrent /io?ms=100 #%d of 4 after 10 abandoned "
                             "requests: %s%s" % (rnd + 1, k + 1, resp.describe(),
                                                 " (an admission slot was not given back)"
                                                 if is_proper_503(resp) else ""))
            finally:
                for c in conns:
                    c.close()
    finally:
        ctx.stop_server(srv)
