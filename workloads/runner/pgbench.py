"""PostgreSQL in the benchmark: where the pg modes' databases come from (--db), which plan
entries need PostgreSQL, what is sampled on the database's side, and the report's side-by-side
table of sqlite and PostgreSQL.

    --db sqlite            (default) the pg modes are skipped, and so are the steps that run
                           only beside PostgreSQL (with_postgres in a scenario step)
    --db postgres          a private cluster for the run (runner/pg.py, TechEmpower's settings:
                           max_connections 2000, shared_buffers 256MB), a fresh database per
                           server, stopped and removed at the end, Ctrl-C included
    --db postgresql://...  an existing server (a libpq URI or key=value conninfo): every server
    --db "host=... ..."    of the run uses that database as it is (triad creates its tables if
                           they are missing, and seeds World and Fortune only when empty)

While a point runs, pg_stat_activity is sampled every 100 ms for the server's database: the
sessions open (peak) and running a statement (peak, mean), whichever model holds them. With a
private cluster, PostgreSQL's own CPU time is sampled too (its postmaster's process tree), so
that a request's cost shows on both sides: the server's CPU µs/req and the database's.
"""

import tempfile
import threading
import time

from workloads.runner import pg
from workloads.runner.sampler import Sampler

SAMPLE_S = 0.1


class Backend:
    """The run's PostgreSQL: none (sqlite only), a private cluster, or an existing server."""

    def __init__(self, spec):
        self.spec = spec or "sqlite"
        self.cluster = None
        self.description = None
        if self.spec not in ("sqlite", "postgres") and not pg.is_pg(self.spec):
            raise ValueError("--db takes sqlite, postgres, or a PostgreSQL URI or conninfo, "
                             "not %r" % self.spec)

    @property
    def available(self):
        return self.spec != "sqlite"

    def start(self, progress=None):
        """Starts the private cluster (--db postgres) or points the launcher at the server."""
        if self.spec == "postgres":
            base = tempfile.mkdtemp(prefix="triad-bench-pg-")
            t0 = time.monotonic()
            self.cluster = pg.start_private(base, "bench")
            pg.use_server(self.cluster.conninfo(), fresh=True)
            if progress:
                progress("PostgreSQL: a private cluster in %s (started in %.1f s)"
                         % (base, time.monotonic() - t0))
        elif self.available:
            pg.use_server(self.spec, fresh=False)
        if self.available:
            self.description = self._describe()

    def stop(self):
        if self.cluster is not None:
            self.cluster.destroy()
            self.cluster = None

    def describe(self):
        """For results.json and the report (taken when the run started)."""
        return self.description

    def _describe(self):
        admin = self.cluster.conninfo() if self.cluster else self.spec
        try:
            version = pg.psql(admin, "SHOW server_version")[0]
            settings = dict(ln.split("\t", 1) for ln in pg.psql(admin, (
                "SELECT name, setting || coalesce(unit, '') FROM pg_settings WHERE name IN "
                "('max_connections', 'shared_buffers', 'synchronous_commit', 'fsync')")))
        except pg.PgError as e:
            version, settings = "unknown (%s)" % e, {}
        where = ("a private cluster of this run on this machine (Unix socket)" if self.cluster
                 else "the server given with --db: %s" % mask(self.spec))
        return {"where": where, "version": version, "settings": settings,
                "private": self.cluster is not None}


def mask(info):
    """A conninfo with its password hidden."""
    import re
    info = re.sub(r"(://[^:/@]*:)[^@]*@", r"\1***@", info)
    return re.sub(r"(password\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)", r"\1***", info)


def step_needs_postgres(sc_data, step_name, profile, profile_names):
    """with_postgres in a step (a profile table allowed): the step runs only when the run has
    PostgreSQL, and then in sqlite too, side by side."""
    from workloads.runner.config import by_profile
    for st in sc_data["step"]:
        if st["name"] == step_name:
            return bool(by_profile(st.get("with_postgres", False), profile, profile_names))
    return False


def filter_plan(plan, skipped, scenarios, profile, profile_names, backend):
    """Without PostgreSQL: drops the runs of pg modes and the steps that run only beside it,
    recording why in skipped. Returns the plan."""
    if backend.available:
        return plan
    why_mode = ("a PostgreSQL mode: run with --db postgres (a private cluster) or "
                "--db postgresql://... (a server of yours)")
    why_step = ("runs beside PostgreSQL only (with_postgres): run with --db postgres or "
                "--db postgresql://...")
    data = {sc.name: sc.data for sc in scenarios}
    out = []
    for run in plan:
        if pg.uses_placeholder(run.args):
            skipped.append((run.scenario, run.model, run.mode, "*", why_mode))
            continue
        keep = []
        for pt in run.points:
            if step_needs_postgres(data[pt.scenario], pt.step, profile, profile_names):
                entry = (pt.scenario, pt.model, pt.mode, pt.step, why_step)
                if entry not in skipped:
                    skipped.append(entry)
            else:
                keep.append(pt)
        run.points = keep
        if keep:
            out.append(run)
    return out


class Activity:
    """pg_stat_activity of one database, sampled in a thread during begin()..end()."""

    def __init__(self, info, dbname):
        self.session = pg.Session(info)
        self.dbname = dbname
        self.lock = threading.Lock()
        self.win = None
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while not self.stopped.is_set():
            with self.lock:
                active = self.win is not None
            if active:
                try:
                    (n, busy) = pg.activity(self.session, self.dbname)
                except pg.PgError:
                    n = busy = None
                with self.lock:
                    if self.win is not None and n is not None:
                        w = self.win
                        w["open"] = max(w["open"], n)
                        w["busy"] = max(w["busy"], busy)
                        w["sum"] += busy
                        w["n"] += 1
            self.stopped.wait(SAMPLE_S)

    def begin(self):
        with self.lock:
            self.win = {"open": 0, "busy": 0, "sum": 0, "n": 0}

    def end(self):
        with self.lock:
            w, self.win = self.win, None
        if not w or not w["n"]:
            return {}
        return {"pg_conns_max": w["open"], "pg_active_max": w["busy"],
                "pg_active_mean": w["sum"] / w["n"], "pg_samples": w["n"]}

    def stop(self):
        self.stopped.set()
        self.thread.join(timeout=2)
        self.session.close()


class DbCpu:
    """The private cluster's CPU time (its postmaster and every backend) in a window."""

    def __init__(self, pid):
        self.sampler = Sampler(pid, interval=0.25)

    def begin(self):
        self.sampler.begin()

    def end(self):
        m = self.sampler.end()
        return {"db_cpu_s": m["srv_cpu_s"]} if m.get("srv_cpu_s") is not None else {}

    def stop(self):
        self.sampler.stop()


class Samplers:
    """The server's sampler and the database's, begun and ended together."""

    def __init__(self, parts):
        self.parts = [p for p in parts if p is not None]

    def begin(self):
        for p in self.parts:
            p.begin()

    def end(self):
        out = {}
        for p in self.parts:
            out.update(p.end())
        return out

    def stop(self):
        for p in self.parts:
            p.stop()


def samplers(server_sampler, server, backend):
    """server_sampler, plus the database's side when the server runs on PostgreSQL."""
    info = getattr(server, "db_path", None)
    if not backend.available and info is None:
        return server_sampler
    if info is None or not pg.is_pg(info):
        if not (backend.available and not backend.cluster):
            return server_sampler
        info = backend.spec         # --target on the --db server: sample that database
    parts = [server_sampler]
    try:
        parts.append(Activity(pg.server() or info, pg.dbname_of(info) or "postgres"))
    except (pg.PgError, OSError):
        pass
    if backend.cluster is not None:
        pid = backend.cluster.postmaster_pid()
        if pid:
            parts.append(DbCpu(pid))
    return Samplers(parts)


# -- the report ---------------------------------------------------------------------------------

def side_by_side(doc, fmt_rps, fmt):
    """Rows of sqlite (mode m) beside PostgreSQL (mode m+pg, or pg for default), per scenario,
    step, load and model; [] when the run had no PostgreSQL point."""
    pts = [p for p in doc["points"] if not p.get("error") and p["kind"] == "wrk"]
    by_key = {(p["scenario"], p["step"], p["connections"], p["model"], p["mode"]): p
              for p in pts}
    rows = []
    for p in pts:
        if p["mode"] == "pg" or p["mode"].endswith("+pg"):
            continue
        pg_mode = "pg" if p["mode"] == "default" else p["mode"] + "+pg"
        q = by_key.get((p["scenario"], p["step"], p["connections"], p["model"], pg_mode))
        if q is None:
            continue
        a, b = p["summary"]["median"], q["summary"]["median"]
        conns = "-"
        if b.get("pg_conns_max") is not None:
            conns = "%d / %s" % (b["pg_conns_max"], fmt(b.get("pg_active_mean")))
        rows.append([p["step"], "c=%d" % p["connections"], p["model"], fmt_rps(p), fmt_rps(q),
                     _int(a.get("srv_threads_max")), _int(b.get("srv_threads_max")),
                     fmt(a.get("srv_cpu_us_per_req")), fmt(b.get("srv_cpu_us_per_req")),
                     fmt(b.get("db_cpu_us_per_req")), conns])
    return rows


SIDE_HEAD = ["step", "load", "model", "sqlite req/s", "PostgreSQL req/s", "threads sqlite",
             "threads pg", "srv CPU µs/req sqlite", "srv CPU µs/req pg", "db CPU µs/req pg",
             "pg sessions open / running (mean)"]


def _int(v):
    return "-" if v is None else "%d" % v


def report_lines(doc, md_table, fmt_rps, fmt):
    """The report's section on the two backends ([] without PostgreSQL points)."""
    rows = side_by_side(doc, fmt_rps, fmt)
    info = doc.get("postgres")
    if not rows or not info:
        return []
    s = info.get("settings", {})
    out = ["## sqlite and PostgreSQL side by side", "",
           "The same requests, each model in its default mode on sqlite (a file beside the "
           "server) and in its pg mode on PostgreSQL %s (%s; %s). `srv CPU µs/req` is the "
           "server's CPU per request; with PostgreSQL the database's share is in `db CPU "
           "µs/req` (its processes, sampled when the cluster is the run's own). `pg sessions` "
           "come from pg_stat_activity every 100 ms: the most open at once / how many were "
           "running a statement, on average. triad's sessions commit with synchronous_commit "
           "on whatever the cluster says (TechEmpower's is off)." % (
               info["version"], info["where"],
               ", ".join("%s %s" % kv for kv in sorted(s.items())) or "settings unknown"),
           "", md_table(SIDE_HEAD, rows), ""]
    return out
