"""Case 3: disk faults. A read-only database (directory and file, file only, and a file made
immutable while the server runs), a full disk (RLIMIT_FSIZE on the server process; a small
tmpfs when this user may mount one), a missing directory, a directory where the file should
be, garbage, a text file, corrupt and truncated databases, a garbage WAL, and a database with a
newer schema version.

Each must give either a clear one-line error at start-up and exit status 1 (not a crash, not a
hang), or, when the server starts, an answer to every request: 503 with Retry-After for writes
it cannot make, reads still served where the data is readable, and never a 500. A server that
started must still exit 0 on SIGTERM, and acknowledged writes must be there afterwards.
"""

import errno
import json
import os
import random
import sqlite3
import subprocess
import time

from tests.conformance import harness, httpraw
from tests.conformance.harness import check
from tests.faults.common import (JSON_HEADERS, copy_db, db_connect, db_query, expect, fail,
                                 is_proper_503, items_table, log, new_instance, request,
                                 sanitizer_free, start_instance, template_db, wait_exit)
from workloads.runner.launch import StartupError, describe_status

NOBODY = 65534
IS_ROOT = os.geteuid() == 0

READS = [("GET", "/json"), ("GET", "/db"), ("GET", "/queries?queries=5"), ("GET", "/fortunes"),
         ("GET", "/cached-queries?count=5"), ("GET", "/items?limit=5"), ("GET", "/items/1")]
WRITES = [("GET", "/updates?queries=5", None),
          ("POST", "/items", b'{"name":"disk fault","qty":1}'),
          ("PUT", "/items/1", b'{"name":"disk fault","qty":2}'),
          ("DELETE", "/items/999999", None)]


def launch_or_refuse(ctx, label, db_path, more_args=(), **launch):
    """Start an instance. Returns (srv, True) if it printed its start-up line, or (srv, False)
    if it exited first. A start that neither happens nor fails is a hang: a failure."""
    srv = new_instance(ctx, label, more_args, db_path, **launch)
    try:
        srv.start()
        return (srv, True)
    except StartupError as e:
        rc = wait_exit(srv, 10)
        if rc is None:
            srv.kill()
            fail("%s: neither started nor exited: %s%s" % (label, e, harness.stderr_excerpt(srv)))
        srv.returncode = rc
        return (srv, False)


def expect_refusal(ctx, srv, what):
    """Exit status 1 and exactly one line on stderr, naming the program."""
    rc = srv.proc.returncode
    sanitizer_free(srv, what)
    lines = [ln for ln in srv.stderr_text().splitlines() if ln.strip()]
    prog = "triad-%s" % ctx.model
    if rc != 1:
        fail("%s: refused to start with %s, expected exit status 1%s"
             % (what, describe_status(rc), harness.stderr_excerpt(srv)))
    expect(len(lines) == 1 and lines[0].startswith(prog + ": "),
           "%s: expected one line '%s: ...' on stderr, got %r" % (what, prog, lines[:5]))
    return lines[0]


def probe(srv, what, reads_must_work=False, writes_must_fail=False, acked=None):
    """Every read and write answered, never a 500; returns a one-line summary. Acknowledged
    item writes are recorded in acked ({id: (name, qty)})."""
    seen = []
    for (method, target) in READS:
        resp = answer(srv, method, target, None, what)
        ok = resp.status == 200 or (target == "/items/1" and resp.status == 404)
        if not ok and not is_proper_503(resp):
            fail("%s: %s %s: %s" % (what, method, target, resp.describe()))
        if reads_must_work and not ok:
            fail("%s: %s %s should still be served (the data is readable): %s"
                 % (what, method, target, resp.describe()))
        seen.append("%s %s %d" % (method, target, resp.status))
    for (method, target, body) in WRITES:
        resp = answer(srv, method, target, body, what)
        if not (200 <= resp.status < 300 or resp.status == 404 or is_proper_503(resp)):
            fail("%s: %s %s: %s" % (what, method, target, resp.describe()))
        if writes_must_fail and 200 <= resp.status < 300:
            fail("%s: %s %s succeeded on a database that cannot be written: %s"
                 % (what, method, target, resp.describe()))
        if acked is not None and resp.status in (200, 201) and method in ("POST", "PUT"):
            obj = json.loads(resp.body)
            acked[obj["id"]] = (obj["name"], obj["qty"])
        seen.append("%s %s %d" % (method, target, resp.status))
    return "; ".join(seen)


def answer(srv, method, target, body, what):
    try:
        return request(srv, method, target, JSON_HEADERS if body else None, body)
    except (OSError, httpraw.ProtocolError) as e:
        fail("%s: %s %s got no answer (%s: %s); server %s%s"
             % (what, method, target, type(e).__name__, e,
                "running" if srv.running() else describe_status(srv.proc.poll()),
                harness.stderr_excerpt(srv)))


def refuse_or_degrade(ctx, label, db_path, what, more_args=(), reads_must_work=False,
                      writes_must_fail=False, **launch):
    (srv, started) = launch_or_refuse(ctx, label, db_path, more_args, **launch)
    if not started:
        line = expect_refusal(ctx, srv, what)
        log("%s: refused to start, exit 1: %s" % (what, line))
        return None
    summary = probe(srv, what, reads_must_work, writes_must_fail)
    log("%s: started; %s" % (what, summary))
    ctx.stop_server(srv)
    return srv


def scenario_dir(ctx, name):
    d = os.path.join(ctx.workdir, "disk-" + name)
    os.makedirs(d, exist_ok=True)
    return d


def open_workdir(ctx):
    """Let an unprivileged server reach databases under the suite's private directory."""
    os.chmod(ctx.workdir, 0o755)


@check("disk.read-only-directory-and-file")
def _(ctx):
    d = scenario_dir(ctx, "ro-dir")
    db = copy_db(template_db(ctx), d)
    open_workdir(ctx)
    launch = {}
    if IS_ROOT:
        os.chmod(d, 0o755)
        os.chmod(db, 0o644)
        launch = {"uid": NOBODY, "gid": NOBODY}
    else:
        os.chmod(db, 0o444)
        os.chmod(d, 0o555)
    try:
        refuse_or_degrade(ctx, "ro-dir", db, "read-only directory and file",
                          reads_must_work=True, writes_must_fail=True, **launch)
    finally:
        os.chmod(d, 0o755)
        os.chmod(db, 0o644)


@check("disk.read-only-file")
def _(ctx):
    d = scenario_dir(ctx, "ro-file")
    db = copy_db(template_db(ctx), d)
    open_workdir(ctx)
    launch = {}
    if IS_ROOT:
        os.chown(d, NOBODY, NOBODY)     # the server may create -wal and -shm, not write the db
        os.chmod(db, 0o644)
        launch = {"uid": NOBODY, "gid": NOBODY}
    else:
        os.chmod(db, 0o444)
    try:
        refuse_or_degrade(ctx, "ro-file", db, "read-only file in a writable directory",
                          reads_must_work=True, writes_must_fail=True, **launch)
    finally:
        os.chmod(db, 0o644)


def chattr(flag, paths):
    """chattr FLAG on each path that exists (the WAL may come and go). False if any that
    exists failed."""
    ok = True
    for p in paths:
        if not os.path.exists(p):
            continue
        try:
            r = subprocess.run(["chattr", flag, p], capture_output=True, timeout=30)
        except (OSError, subprocess.TimeoutExpired):
            return False
        if r.returncode != 0 and os.path.exists(p):
            ok = False
    return ok


def create_item(srv, name, qty, what):
    resp = request(srv, "POST", "/items", JSON_HEADERS,
                   json.dumps({"name": name, "qty": qty}).encode())
    if resp.status == 201:
        return json.loads(resp.body)["id"]
    if not is_proper_503(resp):
        fail("%s: POST /items: %s" % (what, resp.describe()))
    return None


@check("disk.read-only-while-running")
def _(ctx):
    """chattr +i on the database, its WAL and their directory while the server runs: the disk
    went read-only under it. Writes get 503 (reads get 200 or 503); once writable again,
    writes work again."""
    d = scenario_dir(ctx, "immutable")
    db = copy_db(template_db(ctx), d)
    files = [d, db, db + "-wal"]    # the directory too: no new -wal either
    if not IS_ROOT or not chattr("-i", [db]):
        log("skipped: needs root and a file system with chattr +i")
        return
    srv = start_instance(ctx, "immutable", db_path=db)
    what = "database made immutable while running"
    acked = {}
    try:
        i = create_item(srv, "before", 1, what)
        expect(i is not None, "%s: a write before the fault was refused" % what)
        acked[i] = ("before", 1)
        expect(chattr("+i", files), "chattr +i failed")
        try:
            # Reads may fail too: a new sqlite connection (with --threads 0, every new client
            # connection's thread opens one) cannot create the -shm it needs to read a WAL
            # database in a directory that is now read-only.
            summary = probe(srv, what, writes_must_fail=True, acked=acked)
        finally:
            chattr("-i", files)
        # Writable again: some write must get through (bounded number of attempts).
        ok = None
        for k in range(50):
            ok = create_item(srv, "after-%d" % k, k, what + ", then writable again")
            if ok is not None:
                acked[ok] = ("after-%d" % k, k)
                break
            time.sleep(0.1)
        log("%s: %s; writes after chattr -i: %s" % (what, summary,
                                                     "accepted" if ok else "still refused"))
        expect(ok is not None, "%s: writes still refused after the file was writable again"
               % what)
    finally:
        chattr("-i", files)
        ctx.stop_server(srv)
    stored = items_table(db)
    for (i, v) in acked.items():
        expect(stored.get(i) == v, "%s: acknowledged item %d is %r, expected %r"
               % (what, i, stored.get(i), v))


def full_disk_writes(srv, what, acked):
    """Writes until the disk is full: returns (successes, refusals). Every answer a 2xx or a
    proper 503. One keep-alive connection (with --threads 0 a new connection is a new thread
    with its own sqlite connection, and closing the last one checkpoints and deletes the WAL),
    and names of 200 characters, so that the database file itself grows too."""
    ok = refused = 0
    conn = None
    try:
        for k in range(300):
            if conn is None:
                conn = httpraw.Connection(srv.host, srv.port)
            try:
                if k % 2:
                    resp = conn.request("GET", "/updates?queries=20")
                else:
                    name = ("fill-%d-" % k).ljust(200, "x")
                    resp = conn.request("POST", "/items", JSON_HEADERS,
                                        json.dumps({"name": name, "qty": k}).encode())
                    if resp.status == 201:
                        acked[json.loads(resp.body)["id"]] = (name, k)
            except (OSError, httpraw.ProtocolError) as e:
                fail("%s: write #%d got no answer (%s: %s); server %s%s"
                     % (what, k + 1, type(e).__name__, e,
                        "running" if srv.running() else
                        describe_status(srv.proc.poll()), harness.stderr_excerpt(srv)))
            if resp.has_token("Connection", "close"):
                conn.close()
                conn = None
            if 200 <= resp.status < 300:
                ok += 1
            elif is_proper_503(resp):
                refused += 1
                if refused >= 10:
                    break
            else:
                fail("%s: write #%d: %s" % (what, k + 1, resp.describe()))
    finally:
        if conn is not None:
            conn.close()
    return (ok, refused)


def after_full_disk(ctx, db, acked, what):
    """The database is intact and holds every acknowledged write; a server on it, with room
    again, accepts writes."""
    conn = db_connect(db)
    try:
        ok = conn.execute("PRAGMA integrity_check").fetchone()[0]
    finally:
        conn.close()
    expect(ok == "ok", "%s: PRAGMA integrity_check afterwards: %s" % (what, ok))
    srv = start_instance(ctx, "after-full", db_path=db)
    try:
        with httpraw.Connection(srv.host, srv.port) as c:
            for (i, (name, qty)) in acked.items():
                resp = c.request("GET", "/items/%d" % i)
                expect(resp.status == 200 and json.loads(resp.body) ==
                       {"id": i, "name": name, "qty": qty},
                       "%s: acknowledged item %d after a restart: %s"
                       % (what, i, resp.describe()))
        expect(create_item(srv, "room again", 1, what) is not None,
               "%s: a write with room on the disk again was refused" % what)
    finally:
        ctx.stop_server(srv)


@check("disk.full-file-size-limit")
def _(ctx):
    """RLIMIT_FSIZE on the server: writes past the limit fail with EFBIG (SIGXFSZ must be
    ignored), like a full disk."""
    d = scenario_dir(ctx, "fsize")
    db = copy_db(template_db(ctx), d)
    limit = max(os.path.getsize(db), 32768) + 32768
    what = "file-size limit (%d bytes)" % limit
    (srv, started) = launch_or_refuse(ctx, "fsize", db, fsize=limit)
    if not started:
        line = expect_refusal(ctx, srv, what)
        log("%s: refused to start, exit 1: %s" % (what, line))
        return
    acked = {}
    try:
        (ok, refused) = full_disk_writes(srv, what, acked)
        expect(refused > 0, "%s: %d writes all succeeded: the limit never bit" % (what, ok))
        summary = probe(srv, what + ", once full", reads_must_work=True, acked=acked)
        log("%s: %d writes accepted, then refused with 503; then %s" % (what, ok, summary))
    finally:
        ctx.stop_server(srv)
    after_full_disk(ctx, db, acked, what)


def try_mount_tmpfs(path, size):
    os.makedirs(path, exist_ok=True)
    try:
        r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=%d,mode=0755" % size, "tmpfs",
                            path], capture_output=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return r.returncode == 0


def umount(path):
    for _k in range(20):
        r = subprocess.run(["umount", path], capture_output=True, timeout=30)
        if r.returncode == 0:
            return
        time.sleep(0.2)
    log("warning: could not unmount %s: %s" % (path, r.stderr.decode(errors="replace")))


def fill(path, leave):
    """Fill the file system of path until `leave` bytes are free."""
    st = os.statvfs(path)
    free = st.f_bavail * st.f_frsize
    with open(os.path.join(path, "filler"), "wb") as f:
        try:
            f.write(b"\0" * max(0, free - leave))
        except OSError as e:
            if e.errno != errno.ENOSPC:
                raise


@check("disk.full-tmpfs")
def _(ctx):
    """A small tmpfs, filled up: ENOSPC, the real thing (needs permission to mount)."""
    mnt = os.path.join(ctx.workdir, "tmpfs")
    if not IS_ROOT or not try_mount_tmpfs(mnt, 1 << 20):
        log("skipped: cannot mount a tmpfs here (needs root and CAP_SYS_ADMIN)")
        return
    what = "full tmpfs"
    acked = {}
    srv = None
    try:
        db = copy_db(template_db(ctx), mnt)
        fill(mnt, 96 << 10)     # room for the -shm (32 KiB) and a few WAL frames
        (srv, started) = launch_or_refuse(ctx, "tmpfs", db)
        if not started:
            line = expect_refusal(ctx, srv, what)
            log("%s: refused to start, exit 1: %s" % (what, line))
            return
        (ok, refused) = full_disk_writes(srv, what, acked)
        expect(refused > 0, "%s: %d writes all succeeded: the disk never filled" % (what, ok))
        summary = probe(srv, what + ", once full", reads_must_work=True, acked=acked)
        log("%s: %d writes accepted, then refused with 503; then %s" % (what, ok, summary))
        ctx.stop_server(srv)
        os.unlink(os.path.join(mnt, "filler"))
        after_full_disk(ctx, db, acked, what)
    finally:
        if srv is not None:
            srv.kill()
        for s in ctx.servers:
            if s.db_path.startswith(mnt + os.sep):
                s.kill()
        umount(mnt)


def must_refuse_or_degrade(ctx, name, make, what, **kw):
    d = scenario_dir(ctx, name)
    db = make(d)
    refuse_or_degrade(ctx, name, db, what, **kw)


def garbage(n, seed):
    return bytes(random.Random(seed).getrandbits(8) for _k in range(n))


@check("disk.missing-directory")
def _(ctx):
    must_refuse_or_degrade(ctx, "missing-dir",
                           lambda d: os.path.join(d, "no", "such", "dir", "triad.db"),
                           "database in a directory that does not exist")


@check("disk.directory-instead-of-file")
def _(ctx):
    def make(d):
        os.makedirs(os.path.join(d, "triad.db"))
        return os.path.join(d, "triad.db")
    must_refuse_or_degrade(ctx, "dir-as-db", make, "a directory where the database should be")


@check("disk.garbage-file")
def _(ctx):
    def make(d):
        p = os.path.join(d, "triad.db")
        with open(p, "wb") as f:
            f.write(garbage(64 << 10, 1))
        return p
    must_refuse_or_degrade(ctx, "garbage", make, "a file of random bytes")


@check("disk.not-a-database")
def _(ctx):
    def make(d):
        p = os.path.join(d, "triad.db")
        with open(p, "w") as f:
            f.write("# notes\n\nThis is a text file, not a database.\n" * 200)
        return p
    must_refuse_or_degrade(ctx, "text", make, "a text file")


def corrupt_pages(template, d, first, count, seed):
    db = copy_db(template, d)
    page = db_query(db, "PRAGMA page_size")[0][0]
    with open(db, "r+b") as f:
        f.seek(first * page)
        f.write(garbage(count * page, seed))
    return db


@check("disk.corrupt-pages")
def _(ctx):
    tpl = template_db(ctx)
    pages = os.path.getsize(tpl) // db_query(tpl, "PRAGMA page_size")[0][0]
    must_refuse_or_degrade(ctx, "corrupt-pages",
                           lambda d: corrupt_pages(tpl, d, pages // 3, 4, 2),
                           "a database with 4 pages of garbage in the middle")
    must_refuse_or_degrade(ctx, "corrupt-last",
                           lambda d: corrupt_pages(tpl, d, pages - 2, 2, 3),
                           "a database with its last 2 pages garbage")
    must_refuse_or_degrade(ctx, "corrupt-header",
                           lambda d: corrupt_pages(tpl, d, 0, 1, 4),
                           "a database with a garbage first page")


@check("disk.truncated")
def _(ctx):
    def make(d):
        db = copy_db(template_db(ctx), d)
        with open(db, "r+b") as f:
            f.truncate(os.path.getsize(db) // 2)
        return db
    must_refuse_or_degrade(ctx, "truncated", make, "a database truncated to half its size")


@check("disk.garbage-wal")
def _(ctx):
    """A good database next to a -wal file of garbage: sqlite ignores WAL frames whose
    checksums fail, so the server may start normally; it must not crash or serve garbage."""
    def make(d):
        db = copy_db(template_db(ctx), d)
        with open(db + "-wal", "wb") as f:
            f.write(garbage(64 << 10, 5))
        return db
    must_refuse_or_degrade(ctx, "garbage-wal", make, "a garbage -wal next to the database")


@check("disk.newer-schema")
def _(ctx):
    def make(d):
        db = copy_db(template_db(ctx), d)
        conn = sqlite3.connect(db, isolation_level=None)
        try:
            conn.execute("PRAGMA user_version = 99")
        finally:
            conn.close()
        return db
    d = scenario_dir(ctx, "newer")
    db = make(d)
    before = open(db, "rb").read()
    refuse_or_degrade(ctx, "newer", db, "a database with schema version 99")
    expect(open(db, "rb").read() == before, "the server changed a database whose schema "
           "version (99) is newer than its own")


@check("disk.empty-file")
def _(ctx):
    """A zero-byte file is an empty sqlite database: the server may create and seed it."""
    def make(d):
        p = os.path.join(d, "triad.db")
        open(p, "wb").close()
        return p
    must_refuse_or_degrade(ctx, "empty", make, "an empty file")

