"""Helpers shared by the fault cases: options, process trees, /stats across worker processes,
raw sockets, response checks and a few instance launchers.

The conformance suite's harness runs the cases (harness.check registers them, harness.main
starts the main instance, runs the checks, stops every instance and scans stderr for sanitizer
reports); this module adds what fault injection needs on top of it. Servers are started and
their process trees walked by workloads/runner/launch.py, as everywhere else.
"""

import json
import os
import shutil
import signal
import socket
import sqlite3
import struct
import subprocess
import sys
import threading
import time
import urllib.parse

from tests.conformance import harness, httpraw
from tests.conformance.harness import expect, fail, short  # noqa: F401 (expect: for the cases)
from workloads.runner import launch

HERE = os.path.dirname(os.path.abspath(__file__))
LIMITS = os.path.join(HERE, "limits.py")
JSON_HEADERS = [("Content-Type", "application/json")]
HANG_GUARD = 30.0       # seconds: only turns a hang into a failure, never a timing assertion


class Options:
    """The suite's own options (faults.py strips them before the harness sees argv)."""
    sanitized = False           # a sanitizer build: lighter load, no RSS bounds
    load_connections = None     # override the load test's connection count
    rounds = 4                  # disconnect rounds for the growth check


OPTS = Options()


def log(msg):
    """A comment line in the suite's output (what a server did, measured values)."""
    for line in str(msg).splitlines():
        print("#   %s" % line, flush=True)


def is_prefork(ctx):
    """--workers N / --cluster N: a supervising parent and N worker processes."""
    args = list(ctx.extra_args)
    for flag in ("--workers", "--cluster"):
        if flag in args:
            i = args.index(flag)
            if i + 1 < len(args) and args[i + 1] != "1":
                return True
        for a in args:
            if a.startswith(flag + "=") and a != flag + "=1":
                return True
    return False


# -- processes -------------------------------------------------------------------------------

def tree_pids(srv):
    """The server and its direct children (the workers of a pre-forked server)."""
    if not srv.running():
        return []
    return [srv.pid] + launch.children(srv.pid)


def worker_pids(srv):
    """The processes that serve requests: the workers of a pre-forked server, else itself."""
    kids = launch.children(srv.pid) if srv.running() else []
    return kids or ([srv.pid] if srv.running() else [])


def tree_usage(srv):
    """(rss_bytes, threads, fds) summed over the server's process tree."""
    total = [0, 0, 0]
    for pid in tree_pids(srv):
        u = launch.usage(pid)
        fds = launch.open_fds(pid)
        if u and fds is not None:
            total[0] += u[1]
            total[1] += u[2]
            total[2] += fds
    return tuple(total)


def mib(n):
    return "%.1f MiB" % (n / 1048576.0)


def wait_exit(srv, timeout):
    """Wait for the server process to exit; returns its status or None on timeout."""
    try:
        return srv.proc.wait(timeout)
    except subprocess.TimeoutExpired:
        return None


def kill_tree(srv, sig=signal.SIGKILL):
    """Signal the server's whole process group at once (servers run in their own session),
    so a pre-forked server's workers die with their parent, as in a crash or an OOM kill."""
    if srv.proc is None or srv.proc.poll() is not None:
        return
    try:
        os.killpg(srv.proc.pid, sig)
    except ProcessLookupError:
        pass
    srv.proc.wait()


def sanitizer_free(srv, what, ignore=()):
    reports = [m for m in srv.sanitizer_reports() if m not in ignore]
    if reports:
        fail("%s: sanitizer reports on stderr of %s: %s%s" % (what, srv.label, ", ".join(reports),
                                                             harness.stderr_excerpt(srv)))


# -- instances with a different launch -------------------------------------------------------

def reachable_binary(binary, workdir):
    """A copy of `binary` that a user other than root can execute.

    The checkout may live anywhere root can reach and nobody else can (a `mktemp -d`
    directory, /root: both mode 0700), so a server that drops root before its exec could not
    even find its own binary. The copy goes into the suite's work directory, which the cases
    that drop root open to everyone (mode 0755), and is made once per work directory."""
    bindir = os.path.join(workdir, "bin")
    copy = os.path.join(bindir, os.path.basename(binary))
    if not os.path.exists(copy):
        os.makedirs(bindir, exist_ok=True)
        os.chmod(bindir, 0o755)
        shutil.copy2(binary, copy)
        os.chmod(copy, 0o755)
    return copy


def limits_wrapper(uid=None, gid=None, fsize=None, address_space=None, nproc=None):
    """The command that applies resource limits or a user id and then execs the server (same
    pid): limits.py."""
    pre = [sys.executable, LIMITS]
    if uid is not None:
        pre += ["--uid", str(uid), "--gid", str(gid)]
    if fsize is not None:
        pre += ["--fsize", str(fsize)]
    if address_space is not None:
        pre += ["--as", str(address_space)]
    if nproc is not None:
        pre += ["--nproc", str(nproc)]
    return pre + ["--"]


def new_instance(ctx, label, more_args=(), db_path=None, **limits):
    """Like ctx.start_server but does not start it, and can go through limits.py (uid, fsize,
    address space, nproc). A server that runs as another user runs from a copy of the binary
    that user can reach (reachable_binary)."""
    (label, db_path) = ctx.new_instance_paths(label, db_path)
    args = list(ctx.extra_args) + list(more_args)
    binary = ctx.binary
    if limits.get("uid") is not None:
        binary = reachable_binary(binary, ctx.workdir)
    srv = launch.Server(binary, db_path, args, label=label, workdir=ctx.workdir,
                        wrapper=limits_wrapper(**limits) if limits else ())
    ctx.servers.append(srv)
    return srv


def start_instance(ctx, label, more_args=(), db_path=None, **limits):
    srv = new_instance(ctx, label, more_args, db_path, **limits)
    try:
        srv.start()
    except launch.StartupError as e:
        srv.kill()
        fail("%s did not start: %s%s" % (srv.label, e, harness.stderr_excerpt(srv)))
    return srv


# -- talking to a server ---------------------------------------------------------------------

def connect(srv, timeout=HANG_GUARD):
    return httpraw.Connection(srv.host, srv.port, timeout=timeout)


def request(srv, method, target, headers=None, body=None, timeout=HANG_GUARD):
    """One request on a fresh connection."""
    with connect(srv, timeout) as c:
        return c.request(method, target, headers, body)


def parse(resp, what):
    try:
        return json.loads(resp.body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as e:
        fail("%s: body is not JSON (%s): %s" % (what, e, resp.describe()))


def stats(srv):
    """GET /stats on a fresh connection that the server closes after the answer."""
    resp = request(srv, "GET", "/stats", [("Connection", "close")])
    if resp.status != 200:
        fail("GET /stats: %s" % resp.describe())
    return parse(resp, "GET /stats")


def in_flight(s):
    return s["requests"]["in_flight"]


def connections(s):
    return s["gauges"].get("connections", -1)


def expect_200(resp, what, body=None):
    if resp.status != 200:
        fail("%s: expected 200, got %s" % (what, resp.describe()))
    if body is not None and resp.body != body:
        fail("%s: expected body %r, got %r" % (what, body, resp.body[:300]))


def is_proper_503(resp):
    return resp.status == 503 and resp.header("Retry-After") == "1"


def poll_workers(srv, pred, what, deadline=HANG_GUARD, any_worker=False):
    """Poll /stats on fresh connections until every worker process (every pid of a pre-forked
    server; the server itself otherwise) has most recently answered with pred(stats) true, or
    with any_worker, until one has. Returns {pid: stats}. The deadline is a hang guard."""
    end = time.monotonic() + deadline
    latest = {}
    while True:
        if not srv.running():
            fail("%s: the server exited (%s)%s" % (what, launch.describe_status(srv.proc.poll()),
                                                   harness.stderr_excerpt(srv)))
        try:
            s = stats(srv)
        except (OSError, httpraw.ProtocolError) as e:
            # A server at its connection limit may close a new connection at once.
            if time.monotonic() > end:
                fail("%s: GET /stats failed: %s: %s" % (what, type(e).__name__, e))
            time.sleep(0.05)
            continue
        latest[s["pid"]] = s
        workers = worker_pids(srv)
        if any_worker and pred(s):
            return {s["pid"]: s}
        if all(w in latest and pred(latest[w]) for w in workers):
            return {w: latest[w] for w in workers}
        if time.monotonic() > end:
            fail("%s: not reached within %d s; latest /stats per pid: %s"
                 % (what, deadline, short({p: {"in_flight": in_flight(v),
                                               "connections": connections(v)}
                                           for (p, v) in latest.items()}, 600)))
        time.sleep(0.02)


def wait_quiet(srv, what, deadline=HANG_GUARD):
    """No request in flight but the /stats asking, and no connection open but its own, in
    every worker process."""
    return poll_workers(srv, lambda s: in_flight(s) == 1 and connections(s) == 1,
                        "%s: requests.in_flight back to 1 and gauges.connections back to 1"
                        % what, deadline)


def wait_in_flight(srv, n, deadline=5.0):
    """Best effort: wait until about n requests (besides /stats) are in flight, summed over the
    worker processes. Shapes a scenario (abandon requests once the server holds them); asserts
    nothing. A /stats that is not answered within a second ends the wait: in the threaded
    model /stats queues behind the very requests it would count. Returns the largest sum
    seen."""
    time.sleep(0.2)
    end = time.monotonic() + deadline
    latest = {}
    best = 0
    while time.monotonic() < end and srv.running():
        try:
            resp = request(srv, "GET", "/stats", [("Connection", "close")], timeout=1.0)
            s = parse(resp, "GET /stats")
        except (OSError, httpraw.ProtocolError):
            break
        if resp.status != 200:
            break
        latest[s["pid"]] = in_flight(s) - 1
        best = max(best, sum(latest.values()))
        if best >= n and all(p in latest for p in worker_pids(srv)):
            break
        time.sleep(0.02)
    return best


def fresh_requests_work(srv, what):
    """A new client is served: /json, /db and a write (the pool and the database are free)."""
    expect_200(request(srv, "GET", "/json"), "%s: GET /json" % what,
               b'{"message":"Hello, World!"}')
    expect_200(request(srv, "GET", "/db"), "%s: GET /db" % what)
    resp = request(srv, "POST", "/items", JSON_HEADERS, b'{"name":"fresh","qty":1}')
    if resp.status != 201:
        fail("%s: POST /items: expected 201, got %s" % (what, resp.describe()))


def raw_socket(srv, rcvbuf=None, timeout=HANG_GUARD):
    s = socket.socket(socket.AF_INET6 if ":" in srv.host else socket.AF_INET, socket.SOCK_STREAM)
    if rcvbuf:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    s.settimeout(timeout)
    s.connect((srv.host, srv.port))
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def close_socket(s, reset=False):
    """Close; with reset, SO_LINGER 0 makes the close send an RST instead of a FIN."""
    try:
        if reset:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        s.close()
    except OSError:
        pass


# -- the database file -----------------------------------------------------------------------

def db_connect(path, readonly=True):
    if readonly:
        uri = "file:%s?mode=ro" % urllib.parse.quote(os.path.abspath(path))
        return sqlite3.connect(uri, uri=True, timeout=30, isolation_level=None)
    return sqlite3.connect(path, timeout=30, isolation_level=None)


def db_query(path, sql, params=()):
    conn = db_connect(path)
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


def world_table(path):
    return dict(db_query(path, "SELECT id, randomNumber FROM World"))


def items_table(path):
    return {i: (n, q) for (i, n, q) in db_query(path, "SELECT id, name, qty FROM items")}


def copy_db(src, dst_dir, name="triad.db"):
    os.makedirs(dst_dir, exist_ok=True)
    dst = os.path.join(dst_dir, name)
    shutil.copyfile(src, dst)
    return dst


_template_lock = threading.Lock()


def template_db(ctx):
    """A seeded database made by this server once per run (start, stop), to copy from."""
    with _template_lock:
        path = getattr(ctx, "_faults_template", None)
        if path:
            return path
        srv = start_instance(ctx, "template")
        ctx.stop_server(srv)
        ctx._faults_template = srv.db_path
        return srv.db_path


# -- linearizable register check --------------------------------------------------------------

class Register:
    """The acknowledged writes to one value (a World row, an item): (sent, acked, value) with
    monotonic times. After the run, the stored value must be one a linearizable store could
    hold: an acknowledged write that no other acknowledged write started after."""

    def __init__(self, initial=None):
        self.initial = initial
        self.writes = []

    def add(self, sent, acked, value):
        self.writes.append((sent, acked, value))

    def candidates(self):
        if not self.writes:
            return {self.initial}
        last_ack_start = max(s for (s, _a, _v) in self.writes)
        return {v for (_s, a, v) in self.writes if a >= last_ack_start}

    def superseded(self):
        """Values that a later acknowledged write must have replaced."""
        return {v for (_s, _a, v) in self.writes} - self.candidates()
