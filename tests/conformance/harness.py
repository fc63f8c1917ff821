"""Process handling, the check registry and the runner of the conformance suite.

Nothing here knows the triad API: that lives in conformance.py. This module starts servers on
a free port with their own database (workloads/runner/launch.py, the launcher every suite and
the benchmark share), runs the registered checks one after another, stops the servers with
SIGTERM and reports `ok name` / `FAIL name: reason` lines.
"""

import argparse
import os
import shutil
import signal
import sqlite3
import sys
import tempfile
import traceback
import urllib.parse

from tests.conformance import httpraw
from workloads.runner import launch, pg
from workloads.runner.launch import short

STDERR_TAIL_LINES = 200


class CheckFailure(Exception):
    """A check found the server not conforming. The message is the reason printed."""


def fail(msg):
    raise CheckFailure(msg)


def expect(cond, msg):
    if not cond:
        raise CheckFailure(msg)


def expect_eq(got, want, what):
    if got != want:
        raise CheckFailure("%s: expected %s, got %s" % (what, short(want), short(got)))


# -- the registry ---------------------------------------------------------------------------

CHECKS = []     # [(name, function(ctx))] in definition order, which is the run order

# The suite may say which checks apply to the server under test: skip_reason(name, opts)
# returns None, or why the check does not apply (conformance.py sets it; see --peer).
skip_reason = None


def check(name):
    """Decorator: register fn(ctx) as the check `name`."""
    def register(fn):
        add_check(name, fn)
        return fn
    return register


def add_check(name, fn):
    if any(n == name for (n, _) in CHECKS):
        raise RuntimeError("duplicate check name %s" % name)
    CHECKS.append((name, fn))


class SkipCheck(Exception):
    """A check that cannot run against this target; the message says why. Raised only with
    --url: no database file to read (no --db), no binary to start more instances (no --server)."""


def skip(msg):
    raise SkipCheck(msg)


class RemoteServer:
    """The main instance with --url: a server started elsewhere (a container, another host).
    The suite never starts, signals or stops it. Its database is the file given with --db when
    this machine can read it (a container's volume, say); checks that need it skip otherwise."""

    label = "main"
    proc = None
    pid = None

    def __init__(self, url, db_path):
        u = urllib.parse.urlsplit(url)
        if u.scheme != "http" or not u.hostname or u.path not in ("", "/"):
            raise ValueError("--url must be http://HOST:PORT, not %r" % url)
        self.url = url
        self.host = u.hostname
        self.port = u.port or 80
        self.db_path = db_path

    @property
    def banner(self):
        skip("the start-up line went to the server's own stdout, not to this suite")

    def command(self):
        return [self.url]

    def running(self):
        return True     # if it died, every check fails to connect and says so

    def stop(self, timeout=None):
        return None

    def kill(self):
        pass

    def stderr_text(self):
        return ""

    def sanitizer_reports(self):
        return []


# -- the context handed to every check ------------------------------------------------------

class Ctx:
    def __init__(self, opts, workdir):
        self.opts = opts
        self.model = opts.model
        self.extra_args = opts.extra
        self.workdir = workdir
        self.server = None          # the shared instance most checks talk to
        self.servers = []           # every instance started, for cleanup and sanitizer scans
        self._labels = 0
        self._pg_sessions = {}      # PostgreSQL database -> a psql session (pg.Session)

    @property
    def binary(self):
        if self.opts.server is None:
            skip("runs the server binary: --url without --server")
        return self.opts.server

    @property
    def host(self):
        return self.server.host

    @property
    def port(self):
        return self.server.port

    @property
    def db_path(self):
        if self.server.db_path is None:
            skip("reads the server's database file: --url without --db")
        return self.server.db_path

    def new_instance_paths(self, label, db_path=None):
        """A unique label for another instance, and its database (a fresh directory of its
        own unless db_path is given)."""
        self._labels += 1
        label = "%s-%d" % (label, self._labels)
        if db_path is None:
            db_dir = os.path.join(self.workdir, label)
            os.makedirs(db_dir, exist_ok=True)
            db_path = os.path.join(db_dir, "triad.db")
        return (label, db_path)

    def start_server(self, label, more_args=(), db_path=None):
        """Start another instance (own database unless db_path is given) with the suite's
        extra args plus more_args. Raises CheckFailure if it does not come up."""
        (label, db_path) = self.new_instance_paths(label, db_path)
        srv = launch.Server(self.binary, db_path, list(self.extra_args) + list(more_args),
                            label=label, workdir=self.workdir)
        self.servers.append(srv)
        try:
            srv.start()
        except launch.StartupError as e:
            srv.kill()
            fail("%s did not start: %s%s" % (label, e, stderr_excerpt(srv)))
        return srv

    def stop_server(self, srv):
        """Stop an extra instance and require a clean exit and a clean stderr."""
        rc = srv.stop()
        reports = srv.sanitizer_reports()
        if reports:
            fail("%s: sanitizer reports on stderr: %s (%s after SIGTERM)%s"
                 % (srv.label, ", ".join(reports), launch.describe_status(rc),
                    stderr_excerpt(srv)))
        if rc is None:
            fail("%s did not exit within %d s of SIGTERM%s"
                 % (srv.label, launch.SHUTDOWN_TIMEOUT, stderr_excerpt(srv)))
        if rc != 0:
            fail("%s: %s after SIGTERM (expected exit status 0)%s"
                 % (srv.label, launch.describe_status(rc), stderr_excerpt(srv)))

    def connect(self, srv=None):
        srv = srv or self.server
        return httpraw.Connection(srv.host, srv.port)

    @property
    def pg(self):
        """True if the servers run on PostgreSQL (a pg mode: --db @pg)."""
        return pg.is_pg(self.server.db_path if self.server else None) or \
            pg.uses_placeholder(self.extra_args)

    def pg_session(self, srv=None):
        """The psql session to a PostgreSQL server's database (kept open until the end)."""
        info = (srv or self.server).db_path
        if info not in self._pg_sessions:
            self._pg_sessions[info] = pg.Session(info)
        return self._pg_sessions[info]

    def close_pg_sessions(self):
        for s in self._pg_sessions.values():
            s.close()
        self._pg_sessions.clear()

    def db(self, srv=None):
        """A new read-only sqlite3 connection to a server's database (WAL readers do not
        block the server). The caller closes it."""
        path = (srv or self.server).db_path
        if path is None:
            skip("reads the server's database file: --url without --db")
        uri = "file:%s?mode=ro" % urllib.parse.quote(os.path.abspath(path))
        conn = sqlite3.connect(uri, uri=True, timeout=30, isolation_level=None)
        return conn

    def query(self, sql, params=(), srv=None):
        """Rows of a query on a server's database as tuples: sqlite3 on the file, or psql for
        PostgreSQL (`?` placeholders either way)."""
        if pg.is_pg((srv or self.server).db_path):
            try:
                return self.pg_session(srv).query(sql, params)
            except pg.PgError as e:
                raise CheckFailure("PostgreSQL: %s" % e)
        conn = self.db(srv)
        try:
            return conn.execute(sql, params).fetchall()
        finally:
            conn.close()


def stderr_excerpt(srv):
    text = srv.stderr_text()
    if not text.strip():
        return ""
    lines = text.splitlines()[-40:]
    return "\n    stderr of %s (last %d lines):\n      %s" % (srv.label, len(lines),
                                                          "\n      ".join(lines))


# -- the runner -----------------------------------------------------------------------------

def split_extra(argv):
    """(the suite's own arguments, the arguments after -- that go to every server)."""
    if "--" not in argv:
        return (argv, [])
    i = argv.index("--")
    return (argv[:i], argv[i + 1:])


def parse_args(argv):
    (argv, extra) = split_extra(argv)
    p = argparse.ArgumentParser(
        description="Black-box conformance suite for the triad servers.",
        epilog="Arguments after -- are passed to every server instance.")
    p.add_argument("--server", help="path to a triad-<model> binary (with --url: what starts "
                   "the extra instances some checks need; a wrapper may run it in a container)")
    p.add_argument("--url", help="test a server that is already running at http://HOST:PORT "
                   "(say, in a container) instead of starting one; needs --model or --server")
    p.add_argument("--db", help="with --url: that server's sqlite file, readable from here, "
                   "or its PostgreSQL database (a libpq conninfo, read with psql)")
    p.add_argument("--model", help="model name (default: the binary name after 'triad-')")
    p.add_argument("-k", dest="k", default="", metavar="SUBSTRING",
                   help="run only checks whose name contains SUBSTRING")
    p.add_argument("--list", action="store_true", help="list check names and exit")
    p.add_argument("--keep-tmp", action="store_true",
                   help="keep the temporary directory (databases, stderr files)")
    p.add_argument("--peer", action="store_true",
                   help="the server is not triad (workloads/peers/): skip the checks of triad's "
                        "own command line, start-up line, limits and /stats")
    p.add_argument("--endpoints", metavar="PATHS",
                   help="comma-separated paths the server implements (default: triad's API); "
                        "checks that need another path are skipped")
    p.add_argument("--lacks", action="append", default=[], choices=["pipelining"],
                   metavar="FEATURE", help="an HTTP feature the server is known to lack "
                   "(pipelining): checks that need it are skipped")
    opts = p.parse_args(argv)
    opts.extra = extra
    if opts.endpoints is not None:
        opts.endpoints = [e.strip() for e in opts.endpoints.split(",") if e.strip()]
    if not (opts.server or opts.url):
        p.error("--server or --url is required")
    if opts.url and not (opts.model or opts.server):
        p.error("--url needs --model (or --server to take it from)")
    if opts.db and not opts.url:
        p.error("--db goes with --url (a server the suite starts gets a fresh database)")
    if opts.url:
        try:
            RemoteServer(opts.url, None)
        except ValueError as e:
            p.error(str(e))
    opts.db = os.path.abspath(opts.db) if opts.db and not pg.is_pg(opts.db) else opts.db
    if opts.server is None:
        return opts
    opts.server = os.path.abspath(opts.server)     # servers run in the temporary directory
    if not opts.model:
        base = os.path.basename(opts.server)
        opts.model = base[len("triad-"):] if base.startswith("triad-") else base
    return opts


def report_skipped(opts):
    """One line per reason for the checks that do not apply to this server."""
    reasons = {}
    for (name, _) in CHECKS:
        why = skip_reason(name, opts) if skip_reason else None
        if why is not None and opts.k in name:
            reasons.setdefault(why, []).append(name)
    for (why, names) in sorted(reasons.items()):
        print("# skipped %d checks that %s" % (len(names), why), flush=True)


class Reporter:
    def __init__(self):
        self.passed = []
        self.failed = []
        self.skipped = []

    def ok(self, name):
        self.passed.append(name)
        print("ok %s" % name, flush=True)

    def skip(self, name, reason):
        self.skipped.append(name)
        print("skip %s: %s" % (name, reason), flush=True)

    def fail(self, name, reason):
        self.failed.append(name)
        lines = str(reason).splitlines() or ["(no reason)"]
        print("FAIL %s: %s" % (name, lines[0]), flush=True)
        for line in lines[1:]:
            print("    %s" % line, flush=True)


def run_one(ctx, rep, name, fn):
    first_new = len(ctx.servers)
    reason = None
    try:
        fn(ctx)
    except CheckFailure as e:
        reason = str(e)
    except SkipCheck as e:
        rep.skip(name, str(e))
        return
    except httpraw.ProtocolError as e:
        reason = "HTTP protocol error: %s" % e
    except (TimeoutError, OSError) as e:
        reason = "%s: %s" % (type(e).__name__, e)
    except Exception as e:      # a bug in the suite, or a response it cannot digest
        tb = traceback.format_exc().rstrip()
        reason = "unexpected %s: %s\n%s" % (type(e).__name__, e, tb)
    if reason is None:
        rep.ok(name)
        return
    # Instances this check started are not printed at the end: show their stderr here.
    for srv in ctx.servers[first_new:]:
        excerpt = stderr_excerpt(srv)
        if excerpt and excerpt.strip() not in reason:
            reason += excerpt
    rep.fail(name, reason)


def main(argv):
    opts = parse_args(argv)
    unavailable = pg.availability(opts.extra)
    if unavailable and not opts.list:
        print(unavailable[1], flush=True)
        return unavailable[0]
    applicable = [(n, f) for (n, f) in CHECKS
                  if skip_reason is None or skip_reason(n, opts) is None]
    if opts.list:
        for (name, _) in applicable:
            print(name)
        return 0
    report_skipped(opts)
    selected = [(n, f) for (n, f) in applicable if opts.k in n]
    if not selected:
        print("FAIL selection: no check name contains %r (use --list)" % opts.k)
        return 1
    rep = Reporter()
    if opts.server and not (os.path.isfile(opts.server) and os.access(opts.server, os.X_OK)):
        rep.fail("server.start", "%s is not an executable file" % opts.server)
        return 1
    workdir = tempfile.mkdtemp(prefix="triad-conformance-")
    ctx = Ctx(opts, workdir)
    try:
        if opts.url:
            main_srv = RemoteServer(opts.url, opts.db)
        else:
            main_srv = launch.Server(opts.server, os.path.join(workdir, "triad.db"), opts.extra,
                                     label="main", workdir=workdir)
        ctx.servers.append(main_srv)
        try:
            if opts.url:
                probe_remote(main_srv)
            else:
                main_srv.start()
        except launch.StartupError as e:
            main_srv.kill()
            rep.fail("server.start", "%s: %s" % (" ".join(main_srv.command()), e))
            return finish(ctx, rep)
        ctx.server = main_srv
        print("# %s (model %s) on %s:%d, database %s"
              % (" ".join(main_srv.command()), opts.model, main_srv.host, main_srv.port,
                 main_srv.db_path), flush=True)
        rep.ok("server.start")
        for (name, fn) in selected:
            if not main_srv.running():
                rep.fail(name, "the server is not running (%s)"
                         % launch.describe_status(main_srv.proc.returncode))
                continue
            run_one(ctx, rep, name, fn)
        for srv in ctx.servers:
            if srv is not main_srv:
                srv.kill()      # only left running when its check already failed
        was_running = main_srv.running()
        rc = main_srv.stop()
        if opts.url:
            rep.skip("server.shutdown", "the server at --url is not this suite's to stop")
        elif not was_running:
            rep.fail("server.shutdown", "the server had already exited (%s) before SIGTERM"
                     % launch.describe_status(rc))
        elif rc is None:
            rep.fail("server.shutdown", "did not exit within %d s of SIGTERM"
                     % launch.SHUTDOWN_TIMEOUT)
        elif rc != 0:
            rep.fail("server.shutdown", "%s after SIGTERM, expected exit status 0"
                     % launch.describe_status(rc))
        else:
            rep.ok("server.shutdown")
        reports = []
        for srv in ctx.servers:
            found = srv.sanitizer_reports()
            if found:
                reports.append("%s: %s" % (srv.label, ", ".join(found)))
        if reports:
            rep.fail("server.sanitizers", "sanitizer reports on stderr: " + "; ".join(reports))
        else:
            rep.ok("server.sanitizers")
        return finish(ctx, rep)
    finally:
        ctx.close_pg_sessions()
        for srv in ctx.servers:
            srv.kill()
        if opts.keep_tmp:
            print("# kept %s" % workdir)
        else:
            shutil.rmtree(workdir, ignore_errors=True)


def probe_remote(srv):
    """--url: the server must accept a connection before the checks start."""
    try:
        httpraw.Connection(srv.host, srv.port, timeout=10).close()
    except OSError as e:
        raise launch.StartupError("nothing accepts connections at %s: %s" % (srv.url, e))


def finish(ctx, rep):
    if rep.failed:
        for srv in ctx.servers[:1]:     # the main instance; others are shown with their check
            text = srv.stderr_text()
            if text.strip():
                lines = text.splitlines()
                print("--- stderr of %s (%s), last %d of %d lines ---"
                      % (srv.label, " ".join(srv.command()), min(len(lines), STDERR_TAIL_LINES),
                         len(lines)))
                print("\n".join(lines[-STDERR_TAIL_LINES:]))
                print("--- end of stderr of %s ---" % srv.label)
    total = len(rep.passed) + len(rep.failed) + len(rep.skipped)
    print("%d checks, %d passed, %d failed%s" % (total, len(rep.passed), len(rep.failed),
                                                 ", %d skipped" % len(rep.skipped)
                                                 if rep.skipped else ""))
    if rep.failed:
        print("failed: " + " ".join(rep.failed))
        return 1
    return 0


class Interrupted(BaseException):
    pass


def _interrupted(signum, frame):
    raise Interrupted(signal.Signals(signum).name)


def entry(run=None):
    """Runs `run` (default: this suite's main) on the command line and exits with its status.
    Servers run in their own sessions, so a SIGTERM/SIGINT to the suite (a test runner's
    timeout, ^C) must unwind through the runner's cleanup, which kills them."""
    signal.signal(signal.SIGTERM, _interrupted)
    signal.signal(signal.SIGINT, _interrupted)
    try:
        sys.exit((run or main)(sys.argv[1:]))
    except Interrupted as e:
        print("interrupted by %s" % e, flush=True)
        sys.exit(1)
