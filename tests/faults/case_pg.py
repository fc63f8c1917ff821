"""Case 7: PostgreSQL's own faults, in the PostgreSQL runs only (a pg mode: --db @pg).

The cases run their servers on a private cluster of their own (workloads/runner/pg.py, started
once for the run, about two seconds), so that they can stop, crash and restart PostgreSQL
without touching the cluster the other suites share.

  - restart-under-load: writers (POST and PUT of their own items, one /updates?queries=20
    stream) and readers run while PostgreSQL is stopped (fast shutdown), started again, then
    crashed (immediate shutdown: recovery from the WAL) and started again. While it is down
    every request is answered, with 503 and Retry-After: 1 where it needs the database, never
    a 500 or a hang; /json is still served. Service comes back without restarting the server.
    Read back at the end with psql: every acknowledged write is there, and nothing older than
    it (a write that was answered 503 may or may not have been applied: its request does not
    know whether its COMMIT made it).
  - terminate-backend: pg_terminate_backend of every session of the server, idle and then
    under load: each broken session costs at most the one operation that was using it (a 503),
    and the server reconnects by itself.
  - unreachable-at-start: no server behind a Unix socket, nothing listening on a loopback port,
    a database that does not exist, and a password in a URI: exit status 1 and exactly one line
    on stderr (the password never in it), no start-up line.
"""

import json
import os
import socket
import subprocess
import tempfile
import threading
import time

from tests.conformance import httpraw
from tests.conformance.harness import check
from tests.faults.case_disk import expect_refusal, launch_or_refuse
from tests.faults.common import (HANG_GUARD, JSON_HEADERS, connect, expect, fail, is_proper_503,
                                 log, request, start_instance)
from workloads.runner import pg

_cluster_lock = threading.Lock()


def cluster(ctx):
    """The private cluster of this run's PostgreSQL cases (started on first use; removed when
    the suite exits, even when it is interrupted)."""
    with _cluster_lock:
        c = getattr(ctx, "_faults_pg_cluster", None)
        if c is None:
            # Not under ctx.workdir: PostgreSQL runs as another user, which must reach it.
            base = tempfile.mkdtemp(prefix="triad-faults-pg-")
            os.rmdir(base)
            t0 = time.monotonic()
            try:
                c = pg.start_private(base, "test")
            except (pg.PgError, OSError, subprocess.TimeoutExpired) as e:
                fail("cannot start a private PostgreSQL cluster: %s" % e)
            log("private cluster in %s, started in %.1f s" % (base, time.monotonic() - t0))
            ctx._faults_pg_cluster = c
        return c


def new_database(ctx, name):
    c = cluster(ctx)
    if not c.running():
        c.start()
    pg.psql(c.conninfo(), "CREATE DATABASE %s" % pg.ident(name))
    return c.conninfo(name)


def start_on(ctx, label, info):
    """A server on the database `info` (the run's --db @pg gives way to it)."""
    return start_instance(ctx, label, db_path=info)


def pg_gauges(srv):
    """The pool's gauges from /stats (evloop and coro; {} for threaded)."""
    try:
        resp = request(srv, "GET", "/stats", [("Connection", "close")], timeout=10)
        g = json.loads(resp.body).get("gauges", {})
    except (OSError, httpraw.ProtocolError, ValueError):
        return {}
    return {k: v for (k, v) in g.items() if k.startswith("pg_")}


# -- restart under load ------------------------------------------------------------------------

class Load:
    """Writers and readers with their own keep-alive connections. Every answer must be a 2xx
    or a proper 503; each write's fate is recorded: acknowledged, or maybe (503, no answer)."""

    ITEM_WRITERS = 4
    READERS = 2

    def __init__(self, srv):
        self.srv = srv
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.bad = []
        self.acks = 0
        self.counts = {}
        # items: per writer, the items it owns: id -> [(value, acknowledged)] in write order
        self.items = [dict() for _ in range(self.ITEM_WRITERS)]
        self.maybe_created = set()          # names of POSTs answered 503 (applied or not)
        # World: one /updates stream, so its writes are in one order: [(rows or None)]
        self.updates = []
        self.threads = []

    def count(self, what):
        with self.lock:
            self.counts[what] = self.counts.get(what, 0) + 1

    def call(self, conn, method, target, body=None):
        """(response or None, conn): None when no answer came (the request may have been
        applied). A wrong answer is recorded and stops the load."""
        try:
            if conn is None:
                conn = connect(self.srv, timeout=HANG_GUARD)
            resp = conn.request(method, target, JSON_HEADERS if body else None, body)
        except (OSError, httpraw.ProtocolError) as e:
            # PostgreSQL's faults must never cost a client its answer or its connection.
            if conn is not None:
                conn.close()
            self.bad.append("%s %s: no answer: %s: %s" % (method, target, type(e).__name__, e))
            self.stop.set()
            return (None, None)
        if resp.has_token("Connection", "close"):
            conn.close()
            conn = None
        if resp.status == 503:
            if not is_proper_503(resp):
                self.bad.append("%s %s: a 503 without Retry-After: 1: %s"
                                % (method, target, resp.describe()))
                self.stop.set()
            self.count("503 %s %s" % (method, target.split("?")[0].rsplit("/", 1)[0]))
            time.sleep(0.01)    # the database is away: do not spin
        elif resp.status >= 300:
            self.bad.append("%s %s: %s" % (method, target, resp.describe()))
            self.stop.set()
        else:
            self.count("%d %s" % (resp.status, method))
        return (resp, conn)

    def item_writer(self, w):
        conn, seq, mine = None, 0, self.items[w]
        while not self.stop.is_set():
            seq += 1
            value = ("p%d-%d" % (w, seq), seq)
            body = json.dumps({"name": value[0], "qty": value[1]}).encode()
            if not mine or seq % 3 == 0:
                (resp, conn) = self.call(conn, "POST", "/items", body)
                if resp is not None and resp.status == 201:
                    obj = json.loads(resp.body)
                    if (obj["name"], obj["qty"]) != value:
                        self.bad.append("POST answered %s for %r" % (resp.body, value))
                    with self.lock:
                        mine[obj["id"]] = [(value, True)]
                        self.acks += 1
                elif resp is not None and resp.status == 503:
                    with self.lock:
                        self.maybe_created.add(value[0])
                continue
            item_id = sorted(mine)[seq % len(mine)]
            (resp, conn) = self.call(conn, "PUT", "/items/%d" % item_id, body)
            acked = resp is not None and resp.status == 200
            if acked and json.loads(resp.body) != {"id": item_id, "name": value[0],
                                                   "qty": value[1]}:
                self.bad.append("PUT /items/%d answered %s for %r" % (item_id, resp.body, value))
            with self.lock:
                mine[item_id].append((value, acked))
                self.acks += acked

    def update_writer(self):
        conn = None
        while not self.stop.is_set():
            (resp, conn) = self.call(conn, "GET", "/updates?queries=20")
            rows = None
            if resp is not None and resp.status == 200:
                rows = {r["id"]: r["randomNumber"] for r in json.loads(resp.body)}
            with self.lock:
                self.updates.append(rows)
                self.acks += rows is not None

    def reader(self, k):
        conn = None
        targets = ["/db", "/queries?queries=5", "/fortunes", "/json", "/items?limit=5"]
        n = 0
        while not self.stop.is_set():
            n += 1
            target = targets[(n + k) % len(targets)]
            (resp, conn) = self.call(conn, "GET", target)
            if target == "/json" and resp is not None and resp.status != 200:
                self.bad.append("GET /json needs no database, answered %s" % resp.describe())
                self.stop.set()

    def start(self):
        fns = [(self.item_writer, (w,)) for w in range(self.ITEM_WRITERS)]
        fns += [(self.update_writer, ())] + [(self.reader, (k,)) for k in range(self.READERS)]
        self.threads = [threading.Thread(target=f, args=a, daemon=True) for (f, a) in fns]
        for t in self.threads:
            t.start()

    def finish(self):
        self.stop.set()
        for t in self.threads:
            t.join(HANG_GUARD + 5)
        expect(not any(t.is_alive() for t in self.threads), "a load thread did not finish")

    def wait(self, pred, what, deadline=HANG_GUARD):
        end = time.monotonic() + deadline
        while not pred():
            if self.bad:
                fail("%s: %s" % (what, "; ".join(self.bad[:5])))
            if time.monotonic() > end:
                fail("%s: not within %d s; answers so far %s" % (what, deadline, self.counts))
            time.sleep(0.02)

    def n503(self):
        with self.lock:
            return sum(v for (k, v) in self.counts.items() if k.startswith("503"))


def verify_read_back(session, load, world_before):
    """Every acknowledged write is stored, or a later write that may have been applied."""
    stored = {i: (n, q) for (i, n, q) in session.query("SELECT id, name, qty FROM items")}
    problems = []
    acked_ids = set()
    for mine in load.items:
        for (item_id, writes) in mine.items():
            acked_ids.add(item_id)
            last = max(k for (k, (_v, acked)) in enumerate(writes) if acked)
            allowed = [v for (v, _a) in writes[last:]]     # the last acknowledged, or later
            if stored.get(item_id) not in allowed:
                problems.append("item %d holds %r; acknowledged %r, later writes %r"
                                % (item_id, stored.get(item_id), writes[last][0],
                                   allowed[1:][:3]))
    extra = [(i, v) for (i, v) in stored.items()
             if i not in acked_ids and v[0] not in load.maybe_created]
    if extra:
        problems.append("items no POST explains: %s" % extra[:5])
    world = dict(session.query("SELECT id, randomNumber FROM World"))
    last_write = {}                 # row -> index of the last /updates that wrote it
    for (k, rows) in enumerate(load.updates):
        for wid in (rows or {}):
            last_write[wid] = k
    maybe = [k for (k, rows) in enumerate(load.updates) if rows is None]
    unexplained = 0
    for (wid, v) in world.items():
        k = last_write.get(wid)
        want = world_before[wid] if k is None else load.updates[k][wid]
        if v == want:
            continue
        later_maybe = [m for m in maybe if k is None or m > k]
        if not later_maybe:
            problems.append("World row %d holds %d, its last acknowledged write %d and no "
                            "unacknowledged /updates came after it: a lost write" % (wid, v, want))
        unexplained += 1
    expect(unexplained <= 20 * len(maybe),
           "%d World rows hold values no acknowledged /updates wrote, more than the %d "
           "unacknowledged /updates could have" % (unexplained, len(maybe)))
    expect(not problems, "acknowledged writes lost:\n  " + "\n  ".join(problems[:10]))
    return (len(stored), unexplained, len(maybe))


@check("pg.restart-under-load")
def _(ctx):
    info = new_database(ctx, "restart_under_load")
    c = cluster(ctx)
    srv = start_on(ctx, "pg-restart", info)
    pid = srv.pid
    session = pg.Session(info)
    load = Load(srv)
    report = []
    try:
        world_before = dict(session.query("SELECT id, randomNumber FROM World"))
        session.close()         # its session would not survive the restarts anyway
        load.start()
        for (rnd, mode) in enumerate(("fast", "immediate")):
            acks = load.acks
            load.wait(lambda: load.acks >= acks + 100, "round %d: 100 writes acknowledged "
                      "before PostgreSQL stops" % (rnd + 1))
            t0 = time.monotonic()
            c.stop(mode)
            base = load.n503()
            load.wait(lambda: load.n503() >= base + 20, "round %d: 503s while PostgreSQL is "
                      "down (%s shutdown)" % (rnd + 1, mode))
            resp = request(srv, "GET", "/json")
            expect(resp.status == 200, "GET /json while PostgreSQL is down: %s" % resp.describe())
            down = time.monotonic() - t0
            c.start()
            t1 = time.monotonic()
            acks = load.acks
            load.wait(lambda: load.acks >= acks + 50, "round %d: writes acknowledged again "
                      "after PostgreSQL came back" % (rnd + 1))
            report.append("%s shutdown: %d 503s in %.1f s down, writes acknowledged again "
                          "%.1f s after the restart" % (mode, load.n503() - base, down,
                                                        time.monotonic() - t1))
        load.finish()
        expect(not load.bad, "; ".join(load.bad[:5]))
        expect(srv.running() and srv.pid == pid, "the server did not survive the restarts")
        resp = request(srv, "GET", "/db")
        expect(resp.status == 200, "GET /db after the restarts: %s" % resp.describe())
        gauges = pg_gauges(srv)
        session = pg.Session(info)
        (nitems, unexplained, maybe) = verify_read_back(session, load, world_before)
        log("; ".join(report))
        log("answers %s; %d items stored; %d World rows from %d unacknowledged /updates; "
            "pool %s" % (dict(sorted(load.counts.items())), nitems, unexplained, maybe,
                         gauges or "(no pool gauges: one connection per thread)"))
    finally:
        load.stop.set()
        session.close()
        if not c.running():
            c.start()
    ctx.stop_server(srv)


# -- pg_terminate_backend ----------------------------------------------------------------------

def terminate_sessions(info):
    """pg_terminate_backend of every session of triad's servers on the database; returns how
    many there were."""
    dbname = pg.dbname_of(info)
    out = pg.psql(info, "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE "
                        "datname = %s AND application_name = 'triad'" % pg.literal(dbname))
    return int(out[0])


@check("pg.terminate-backend")
def _(ctx):
    info = new_database(ctx, "terminate_backend")
    srv = start_on(ctx, "pg-terminate", info)
    seen = []
    try:
        # Idle: sessions opened by a few requests, then cut while nothing uses them.
        for _ in range(20):
            expect(request(srv, "GET", "/db").status == 200, "GET /db before the cut")
        killed = terminate_sessions(info)
        expect(killed >= 1, "no session of the server to terminate")
        n503 = 0
        with connect(srv) as conn:
            for k in range(killed + 20):
                resp = conn.request("GET", "/queries?queries=2")
                if is_proper_503(resp):
                    n503 += 1
                elif resp.status != 200:
                    fail("GET /queries after pg_terminate_backend: %s" % resp.describe())
        expect(n503 <= killed, "%d requests refused after %d idle sessions were cut: each cut "
               "session may cost one operation" % (n503, killed))
        seen.append("idle: %d sessions cut, %d requests answered 503" % (killed, n503))
        # Under load: cut them while requests use them.
        session = pg.Session(info)
        try:
            world_before = dict(session.query("SELECT id, randomNumber FROM World"))
        finally:
            session.close()
        load = Load(srv)
        load.start()
        try:
            load.wait(lambda: load.acks >= 50, "writes acknowledged before the cut")
            killed = terminate_sessions(info)
            acks = load.acks
            load.wait(lambda: load.acks >= acks + 100, "writes acknowledged after the cut")
        finally:
            load.finish()
        expect(not load.bad, "; ".join(load.bad[:5]))
        expect(load.n503() <= killed, "%d requests refused after %d busy sessions were cut"
               % (load.n503(), killed))
        session = pg.Session(info)
        try:
            now = pg.activity(session, pg.dbname_of(info))[0]
            verify_read_back(session, load, world_before)
        finally:
            session.close()
        expect(now >= 1, "no session of the server after the cut: it did not reconnect")
        seen.append("under load: %d sessions cut, %d requests answered 503, %d open again"
                    % (killed, load.n503(), now))
        log("; ".join(seen) + "; pool %s" % (pg_gauges(srv) or "(one connection per thread)"))
    finally:
        ctx.stop_server(srv)


# -- unreachable at start-up -------------------------------------------------------------------

def free_loopback_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


@check("pg.unreachable-at-start")
def _(ctx):
    port = free_loopback_port()
    missing = tempfile.mkdtemp(prefix="triad-faults-nopg-")
    cases = [
        ("no server on the socket", pg.conninfo(host=missing, port=pg.PORT, user="postgres",
                                                 dbname="triad")),
        ("nothing on the port", pg.conninfo(host="127.0.0.1", port=port, user="postgres",
                                            dbname="triad")),
        ("a password in a URI", "postgresql://triad:s3cr3t-pw@127.0.0.1:%d/triad" % port),
        ("no such database", cluster(ctx).conninfo("no_such_database")),
    ]
    try:
        for (what, info) in cases:
            (srv, started) = launch_or_refuse(ctx, "pg-unreachable", info)
            if started:
                ctx.stop_server(srv)
                fail("%s: the server started on %s" % (what, info))
            line = expect_refusal(ctx, srv, what)
            expect("s3cr3t-pw" not in line, "%s: the password is on stderr: %r" % (what, line))
            expect(not srv.stdout_lines, "%s: output on stdout: %r" % (what, srv.stdout_lines))
            log("%s: exit 1, %s" % (what, line))
    finally:
        os.rmdir(missing)

