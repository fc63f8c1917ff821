"""PostgreSQL for the test suites and the benchmark: a private cluster, a fresh database per
server, and psql to look inside.

    python3 -m workloads.runner.pg start DIR [--profile test|bench]   # prints the conninfo
    python3 -m workloads.runner.pg stop DIR                            # and removes DIR

A private cluster is Debian's PostgreSQL (/usr/lib/postgresql/VERSION/bin) run from a data
directory of its own under DIR, listening only on a Unix socket in DIR/sock (no TCP port, so it
collides with nothing), with trust authentication and the superuser `postgres`. PostgreSQL
refuses to run as root: as root, the cluster belongs to the user `postgres` (Debian's package
creates it; `nobody` otherwise), and DIR is made traversable for it. pg_stat_statements is
preloaded (TechEmpower's verifier counts statements with it) and created in the database
`postgres`.

Servers get a database each: a mode argument `--db @pg` (workloads/models.toml) is replaced by
the launcher (launch.py) with the conninfo of a new database, created in the cluster named by
$TRIAD_TEST_PG (tests/run starts one and exports its conninfo) or by use_server() (the
benchmark's --db), and dropped when the process that created it exits. A restart on the same
database passes its conninfo as the server's database path instead.

psql, not a Python driver: the suites run on whatever python3 meson finds (standard library
only), and psql comes with the server's packages. Standard library only.
"""

import argparse
import atexit
import glob
import itertools
import json
import os
import pwd
import queue
import re
import shutil
import signal
import subprocess
import sys
import threading
import time

PLACEHOLDER = "@pg"
ENV = "TRIAD_TEST_PG"
SUPERUSER = "postgres"
PORT = 5432             # the socket's name in a private directory: no collision possible

# Settings per use. TechEmpower's cluster: max_connections 2000, shared_buffers 256MB,
# synchronous_commit off (triad's sessions set it on for themselves: see pg_sql.h).
SETTINGS = {
    "test": {
        "max_connections": "500",
        "shared_buffers": "128MB",
        # The suites crash and restart PostgreSQL, never the machine: what a commit wrote is
        # in the page cache either way, and initdb, CREATE DATABASE and every commit are faster.
        "fsync": "off",
        "full_page_writes": "off",
    },
    "bench": {
        "max_connections": "2000",
        "shared_buffers": "256MB",
        "synchronous_commit": "off",
    },
}
COMMON_SETTINGS = {
    "listen_addresses": "''",
    "shared_preload_libraries": "'pg_stat_statements'",
    "pg_stat_statements.track": "all",
    "logging_collector": "off",
    "log_min_messages": "warning",
    "log_checkpoints": "off",
    "max_wal_size": "1GB",
}


class PgError(Exception):
    pass


# -- conninfo --------------------------------------------------------------------------------

def is_pg(target):
    """True if a --db value names PostgreSQL (shared/db.c's rule: a URI, or key=value)."""
    return isinstance(target, str) and (target.startswith(("postgresql://", "postgres://"))
                                        or "=" in target)


def _quote(v):
    v = str(v)
    if v and re.fullmatch(r"[A-Za-z0-9_./:@-]+", v):
        return v
    return "'" + v.replace("\\", "\\\\").replace("'", "\\'") + "'"


def conninfo(**kw):
    """A keyword/value conninfo string from keywords (values quoted where needed)."""
    return " ".join("%s=%s" % (k, _quote(v)) for (k, v) in kw.items() if v is not None)


def with_dbname(info, dbname):
    """The same server, another database: dbname replaced or added in a keyword/value string,
    the path replaced in a URI."""
    if info.startswith(("postgresql://", "postgres://")):
        import urllib.parse
        u = urllib.parse.urlsplit(info)
        return urllib.parse.urlunsplit((u.scheme, u.netloc, "/" + urllib.parse.quote(dbname),
                                        u.query, u.fragment))
    kv = r"(^|\s)dbname\s*=\s*('(?:[^'\\]|\\.)*'|\S+)"
    if re.search(kv, info):
        return re.sub(kv, lambda m: m.group(1) + "dbname=" + _quote(dbname), info, count=1)
    return "%s dbname=%s" % (info, _quote(dbname))


def dbname_of(info):
    """The database a conninfo names (None if it does not say)."""
    if info.startswith(("postgresql://", "postgres://")):
        import urllib.parse
        path = urllib.parse.urlsplit(info).path.lstrip("/")
        return urllib.parse.unquote(path) or None
    found = None
    for m in re.finditer(r"(\w+)\s*=\s*('((?:[^'\\]|\\.)*)'|\S+)", info):
        if m.group(1) == "dbname":
            found = (re.sub(r"\\(.)", r"\1", m.group(3)) if m.group(3) is not None
                     else m.group(2))
    return found


def literal(v):
    """An SQL literal for a Python value (standard_conforming_strings is on)."""
    if v is None:
        return "NULL"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    s = str(v)
    if "\0" in s:
        raise PgError("a NUL byte cannot be in a PostgreSQL text literal")
    return "'" + s.replace("'", "''") + "'"


def ident(name):
    return '"' + name.replace('"', '""') + '"'


# -- psql ------------------------------------------------------------------------------------

def _psql_env():
    env = dict(os.environ)
    env.update({"PGCLIENTENCODING": "UTF8", "PGCONNECT_TIMEOUT": "10", "PSQLRC": os.devnull,
                "PGAPPNAME": "triad-tests"})
    return env


def psql(info, sql, timeout=120):
    """Runs sql (one or more statements, each its own transaction) with psql; returns its
    output lines (unaligned, tab-separated, no headers). Raises PgError on any error."""
    cmd = ["psql", "-XAtq", "-v", "ON_ERROR_STOP=1", "-F", "\t", "-d", info]
    for stmt in ([sql] if isinstance(sql, str) else sql):
        cmd += ["-c", stmt]
    try:
        p = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout,
                           env=_psql_env())
    except (OSError, subprocess.TimeoutExpired) as e:
        raise PgError("psql: %s" % e)
    if p.returncode != 0:
        raise PgError("psql %s: %s" % (short_sql(sql), p.stderr.decode("utf-8", "replace")
                                       .strip()))
    return p.stdout.decode("utf-8").splitlines()


def short_sql(sql):
    text = sql if isinstance(sql, str) else "; ".join(sql)
    return text if len(text) < 120 else text[:117] + "..."


def _no_duplicate_keys(pairs):
    keys = [k for (k, _) in pairs]
    if len(set(keys)) != len(keys):
        raise PgError("a query gave two columns the same name: %s" % keys)
    return dict(pairs)


class Session:
    """One psql process kept open for many queries (a new psql per query costs ~10 ms).
    query() returns rows as tuples of Python values (integers as int, text as str), through
    json_agg, so that the rows compare equal to what sqlite3 returns."""

    END = "__triad_pg_end__"

    def __init__(self, info):
        self.info = info
        self.proc = None
        self.lines = None       # what a reader thread reads from psql, line by line
        self.lock = threading.Lock()

    def _start(self):
        self.proc = subprocess.Popen(
            ["psql", "-XAtq", "-d", self.info], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, env=_psql_env())
        self.lines = queue.Queue()
        threading.Thread(target=self._read, args=(self.proc.stdout, self.lines),
                         daemon=True).start()

    @staticmethod
    def _read(stream, lines):
        for raw in stream:
            lines.put(raw.decode("utf-8").rstrip("\n"))
        lines.put(None)         # psql has ended

    def execute(self, sql, timeout=60):
        """Runs sql; returns psql's output lines. Raises PgError on an error line."""
        with self.lock:
            if self.proc is None or self.proc.poll() is not None:
                self._start()
            data = ("%s;\n\\echo %s\n" % (sql.rstrip().rstrip(";"), self.END)).encode("utf-8")
            try:
                self.proc.stdin.write(data)
                self.proc.stdin.flush()
            except OSError as e:
                self.close()
                raise PgError("psql: %s" % e)
            out = []
            deadline = time.monotonic() + timeout
            while True:
                try:
                    line = self.lines.get(timeout=max(0.0, deadline - time.monotonic()))
                except queue.Empty:
                    line = None
                if line is None:
                    self.close()
                    raise PgError("psql ended or hung on %s; output %r" % (short_sql(sql),
                                                                         out[-5:]))
                if line == self.END:
                    break
                out.append(line)
        errors = [ln for ln in out if ln.startswith(("psql:", "ERROR:", "FATAL:"))]
        if errors:
            raise PgError("%s: %s" % (short_sql(sql), " ".join(errors)))
        return out

    def query(self, sql, params=()):
        """Rows of a SELECT as tuples; `?` in sql takes the next of params (as literals)."""
        if params:
            parts = sql.split("?")
            if len(parts) != len(params) + 1:
                raise PgError("%d placeholders for %d parameters in %s"
                              % (len(parts) - 1, len(params), short_sql(sql)))
            sql = parts[0] + "".join(literal(p) + rest for (p, rest) in zip(params, parts[1:]))
        out = self.execute("SELECT coalesce(json_agg(triad_row_), '[]'::json) "
                           "FROM (%s) AS triad_row_" % sql)
        rows = json.loads("\n".join(out), object_pairs_hook=_no_duplicate_keys)
        return [tuple(r.values()) for r in rows]

    def close(self):
        if self.proc is not None:
            try:
                self.proc.stdin.close()
            except OSError:
                pass
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self.proc = None


# -- a private cluster -------------------------------------------------------------------------

def bindir():
    """Debian's server binaries: $TRIAD_PG_BINDIR, else the newest /usr/lib/postgresql/N/bin."""
    env = os.environ.get("TRIAD_PG_BINDIR")
    if env:
        return env
    dirs = [d for d in glob.glob("/usr/lib/postgresql/*/bin") if os.path.exists(d + "/initdb")]
    if not dirs:
        raise PgError("no PostgreSQL server found in /usr/lib/postgresql/*/bin (install "
                      "postgresql-15: docker/install-deps.sh)")
    return max(dirs, key=lambda d: int(re.sub(r"\D", "", d.split("/")[-2]) or 0))


def _owner():
    """(uid, gid) the cluster runs as: ourselves, or as root an unprivileged user."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            pw = pwd.getpwnam(name)
            return (pw.pw_uid, pw.pw_gid)
        except KeyError:
            pass
    raise PgError("running as root and no user postgres or nobody to run PostgreSQL as")


class Cluster:
    """A private cluster in `base`: base/data, base/sock, base/postgresql.log."""

    def __init__(self, base, profile="test", settings=None):
        self.base = os.path.abspath(base)
        self.data = os.path.join(self.base, "data")
        self.sock = os.path.join(self.base, "sock")
        self.log = os.path.join(self.base, "postgresql.log")
        self.profile = profile
        self.settings = dict(COMMON_SETTINGS, **SETTINGS[profile])
        self.settings.update(settings or {})
        self.owner = _owner()
        self.bin = bindir()

    def _run(self, args, timeout=120, check=True):
        kw = {}
        if self.owner:
            kw = {"user": self.owner[0], "group": self.owner[1], "extra_groups": []}
        env = dict(os.environ, LC_ALL="C", HOME=self.base)
        env.pop("PGDATA", None)
        p = subprocess.run([os.path.join(self.bin, args[0])] + args[1:],
                           stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout,
                           env=env, cwd=self.base, **kw)
        if check and p.returncode != 0:
            raise PgError("%s failed (exit %d): %s" % (" ".join(args[:2]), p.returncode,
                                                       (p.stderr or p.stdout).decode(
                                                           "utf-8", "replace").strip()[-1500:]))
        return p

    def conninfo(self, dbname="postgres"):
        return conninfo(host=self.sock, port=PORT, user=SUPERUSER, dbname=dbname)

    def init(self):
        os.makedirs(self.base, exist_ok=True)
        os.makedirs(self.sock, exist_ok=True)
        if self.owner:
            # The path to the data and the socket must be traversable by the owner.
            os.chmod(self.base, 0o711)
            for d in (self.base, self.sock):
                os.chown(d, *self.owner)
            parent = os.path.dirname(self.base)
            while parent not in ("/", ""):
                if not os.stat(parent).st_mode & 0o001:
                    raise PgError("%s is not traversable by the user PostgreSQL runs as: put "
                                  "the cluster elsewhere (TMPDIR)" % parent)
                parent = os.path.dirname(parent)
        if not os.path.exists(os.path.join(self.data, "PG_VERSION")):
            self._run(["initdb", "-D", self.data, "-U", SUPERUSER, "-A", "trust", "-E", "UTF8",
                       "--no-locale", "--no-sync", "--no-instructions"])
            with open(os.path.join(self.data, "postgresql.conf"), "a") as f:
                f.write("\n# triad (workloads/runner/pg.py), profile %s\n" % self.profile)
                f.write("unix_socket_directories = '%s'\nport = %d\n" % (self.sock, PORT))
                for (k, v) in self.settings.items():
                    f.write("%s = %s\n" % (k, v))
        return self

    def start(self, timeout=60):
        self._run(["pg_ctl", "-D", self.data, "-l", self.log, "-w", "-t", str(timeout),
                   "start"], timeout=timeout + 30)
        return self

    def create_extension(self):
        psql(self.conninfo(), "CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        return self

    def running(self):
        return self.postmaster_pid() is not None

    def postmaster_pid(self):
        try:
            with open(os.path.join(self.data, "postmaster.pid")) as f:
                pid = int(f.readline().strip())
            os.kill(pid, 0)
            return pid
        except (OSError, ValueError):
            return None

    def stop(self, mode="fast", timeout=60):
        """pg_ctl stop in `mode` (fast: roll back and disconnect, then a clean shutdown;
        immediate: a crash, recovered from the WAL at the next start); SIGKILL if it hangs."""
        pid = self.postmaster_pid()
        if pid is None:
            return
        p = self._run(["pg_ctl", "-D", self.data, "-m", mode, "-w", "-t", str(timeout), "stop"],
                      timeout=timeout + 30, check=False)
        if p.returncode != 0 and self.postmaster_pid() is not None:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
            for _ in range(100):
                if self.postmaster_pid() is None:
                    break
                time.sleep(0.05)

    def destroy(self):
        """Stops the cluster (even half-started) and removes its directory."""
        try:
            self.stop("fast", timeout=30)
        finally:
            shutil.rmtree(self.base, ignore_errors=True)


def start_private(base, profile="test"):
    """A running private cluster in base, with pg_stat_statements; destroyed when this
    process exits unless the caller destroys it first."""
    c = Cluster(base, profile)
    atexit.register(c.destroy)
    c.init().start().create_extension()
    return c


# -- databases for servers ---------------------------------------------------------------------

_server = {"info": None, "fresh": True, "from_env": False}
_created = []           # (admin conninfo, database name): dropped at exit
_counter = itertools.count(1)


def use_server(info, fresh=True):
    """Where `--db @pg` goes: info is an admin conninfo (fresh: a new database per server,
    created there) or the database itself (fresh=False: every server shares it)."""
    _server.update(info=info, fresh=fresh, from_env=False)


def server():
    if _server["info"] is None and os.environ.get(ENV):
        _server.update(info=os.environ[ENV], fresh=True, from_env=True)
    return _server["info"]


def uses_placeholder(args):
    args = list(args)
    return any(a == "--db" and i + 1 < len(args) and args[i + 1] == PLACEHOLDER
               for (i, a) in enumerate(args)) or "--db=" + PLACEHOLDER in args


def missing_reason():
    return ("no PostgreSQL cluster for --db %s: $%s is not set (tests/run starts a private "
            "cluster and exports it; by hand: eval \"$(python3 -m workloads.runner.pg start "
            "DIR --export)\")" % (PLACEHOLDER, ENV))


def fresh_database():
    """The conninfo of a new, empty database on the configured server."""
    info = server()
    if info is None:
        raise PgError(missing_reason())
    if not _server["fresh"]:
        return info
    name = "triad_%d_%d_%d" % (os.getpid(), next(_counter), int(time.time() * 1000) % 100000)
    psql(info, "CREATE DATABASE %s" % ident(name))
    if not _created:
        atexit.register(drop_created)
    _created.append((info, name))
    return with_dbname(info, name)


def drop_created():
    """Drops every database this process created (servers still connected are cut off)."""
    while _created:
        (info, name) = _created.pop()
        try:
            psql(info, "DROP DATABASE IF EXISTS %s WITH (FORCE)" % ident(name), timeout=60)
        except PgError:
            pass    # the cluster has gone already: it is being removed with them


def resolve(db_path, args):
    """(db_path, args) for a server: `--db @pg` in args is taken out and db_path becomes a
    fresh database, unless db_path is already PostgreSQL (a restart on the same database)."""
    args = list(args)
    if not uses_placeholder(args):
        return db_path, args
    out = []
    skip = False
    for (i, a) in enumerate(args):
        if skip:
            skip = False
            continue
        if a == "--db" and i + 1 < len(args) and args[i + 1] == PLACEHOLDER:
            skip = True
            continue
        if a == "--db=" + PLACEHOLDER:
            continue
        out.append(a)
    if not is_pg(db_path):
        db_path = fresh_database()
    return db_path, out


def availability(args):
    """For a suite about to run with args: None if it can run, else (exit status, message).
    Without a cluster a PostgreSQL run fails in CI ($CI set) and is skipped (77, meson's
    skip) by hand."""
    if not uses_placeholder(args) or server() is not None:
        return None
    if os.environ.get("CI"):
        return (1, "FAIL postgresql: " + missing_reason())
    return (77, "# skipped: " + missing_reason())


# -- statements counted (TechEmpower's verifier) ----------------------------------------------

def statement_totals(admin_info, dbname, table):
    """pg_stat_statements' totals for one database, TechEmpower's way (toolset's
    verify_queries_count): statements naming `table` as a word, their calls, and the rows of
    those that also say select / update."""
    sql = ("SELECT coalesce(sum(calls), 0)::bigint AS calls, "
           "coalesce(sum(rows) FILTER (WHERE query ~* 'select'), 0)::bigint AS selected, "
           "coalesce(sum(rows) FILTER (WHERE query ~* 'update'), 0)::bigint AS updated "
           "FROM pg_stat_statements WHERE dbid = (SELECT oid FROM pg_database WHERE "
           "datname = %s) AND query ~* %s" % (literal(dbname),
                                               literal("[[:<:]]%s[[:>:]]" % table)))
    (calls, selected, updated) = psql(admin_info, sql)[0].split("\t")
    return {"calls": int(calls), "select_rows": int(selected), "update_rows": int(updated)}


def activity(session, dbname):
    """(open, active) sessions of triad's servers on a database (pg_stat_activity)."""
    line = session.execute(
        "SELECT count(*), count(*) FILTER (WHERE state = 'active') FROM pg_stat_activity "
        "WHERE datname = %s AND application_name = 'triad' AND pid <> pg_backend_pid()"
        % literal(dbname))
    (n, active) = line[0].split("|") if "|" in line[0] else line[0].split("\t")
    return int(n), int(active)


# -- command line ------------------------------------------------------------------------------

def main(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="what", required=True)
    s = sub.add_parser("start", help="init and start a private cluster in DIR; print its "
                                     "admin conninfo")
    s.add_argument("dir")
    s.add_argument("--profile", choices=sorted(SETTINGS), default="test")
    s.add_argument("--export", action="store_true",
                   help="print `export %s=...` for eval in a shell" % ENV)
    t = sub.add_parser("stop", help="stop the cluster in DIR and remove DIR")
    t.add_argument("dir")
    opts = p.parse_args(argv)
    try:
        c = Cluster(opts.dir, getattr(opts, "profile", "test"))
        if opts.what == "stop":
            c.destroy()
            return 0
        if os.path.exists(c.data):
            raise PgError("%s already holds a cluster" % opts.dir)
        try:
            c.init().start().create_extension()
        except BaseException:
            c.destroy()
            raise
    except (PgError, OSError, subprocess.TimeoutExpired) as e:
        print("pg: %s" % e, file=sys.stderr)
        return 1
    info = c.conninfo()
    print("export %s=%s" % (ENV, _shell_quote(info)) if opts.export else info)
    return 0


def _shell_quote(s):
    return "'" + s.replace("'", "'\\''") + "'"


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
