#!/usr/bin/python3
"""triad benchmark runner: scenarios x models x modes -> results/<timestamp>/.

Normally started through workloads/bench (which installs dependencies and builds first); by
hand, from the source root: /usr/bin/python3 -m workloads.runner.bench [options].
Standard library only, plus matplotlib for the plots (skipped with a warning if missing).
"""

import argparse
import datetime
import http.client
import json
import os
import shutil
import statistics
import sys
import tempfile
import time

from workloads.runner import (claims, compare, config, launch, loadgen, peers, pgbench,
                              registry, report, sysinfo, upstream)
from workloads.runner.sampler import Sampler, snapshot

WORKLOADS = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LUA_SCRIPT = os.path.join(WORKLOADS, "lua", "triad.lua")
LATENCY_KEYS = ("lat_p50_ms", "lat_p90_ms", "lat_p99_ms", "lat_p999_ms", "lat_mean_ms")


def parse_args(argv):
    p = argparse.ArgumentParser(
        prog="workloads/bench",
        description="Run triad's benchmark scenarios against its servers and write "
                    "results/<timestamp>/ (raw JSON, CSV, report.md, plots).")
    p.add_argument("--profile", default="quick", help="quick (default) or full")
    p.add_argument("--scenario", help="comma-separated scenario names (default: all)")
    p.add_argument("--scenario-file", action="append", default=[],
                   help="an extra scenario file to run (repeatable)")
    p.add_argument("--model", help="comma-separated models, optionally MODEL:MODE[:MODE...] "
                                   "(default: every built model)")
    p.add_argument("--target", help="benchmark an already-running server at this base URL "
                                    "instead of starting the models")
    p.add_argument("--pid", type=int, help="with --target on this machine: the server's pid, "
                                           "to sample its CPU, RSS and threads from /proc")
    p.add_argument("--db", default="sqlite",
                   help="where the PostgreSQL modes (pg) run: sqlite (default: they are "
                        "skipped), postgres (a private cluster for the run), or a PostgreSQL "
                        "URI or conninfo (an existing server, its database used as it is)")
    p.add_argument("--out", help="results directory (default: <repo>/results/<timestamp>)")
    p.add_argument("--root", default=os.path.dirname(WORKLOADS), help="repository root")
    p.add_argument("--build-dir", help="meson build directory (default: <root>/build)")
    p.add_argument("--duration", type=float, help="override: seconds per measured run")
    p.add_argument("--warmup", type=float, help="override: warm-up seconds per point")
    p.add_argument("--repeats", type=int, help="override: runs per point")
    p.add_argument("--connections", help="override: comma-separated connection counts "
                                         "for every step")
    p.add_argument("--no-plots", action="store_true", help="skip the matplotlib plots")
    p.add_argument("--pin", help="SERVER_CPUS:CLIENT_CPUS (e.g. 0-3:4-7) to choose the CPU "
                                 "split, or 'none'; default: halves when there are >= 4 CPUs")
    p.add_argument("--list", action="store_true", help="list scenarios and models, then exit")
    p.add_argument("--dry-run", action="store_true",
                   help="print the plan (servers, points, time estimate) and exit")
    p.add_argument("--no-build", action="store_true",
                   help="workloads/bench: skip the meson/ninja step (the runner never builds)")
    p.add_argument("--no-peer-install", action="store_true",
                   help="do not run workloads/peers/install: use the peers as they are")
    return p.parse_args(argv)


class Progress:
    def __init__(self, total_points, total_estimate):
        self.total_points = total_points
        self.total_est = max(total_estimate, 1e-6)
        self.done_est = 0.0
        self.done_points = 0
        self.t0 = time.monotonic()
        self.tty = sys.stderr.isatty()
        self._last_len = 0

    def elapsed(self):
        return time.monotonic() - self.t0

    def show(self, what, final=False):
        el = self.elapsed()
        left_est = self.total_est - self.done_est
        if self.done_est > 5:
            left_est *= el / self.done_est
        line = "[%3d/%d] %s elapsed, ~%s left | %s" % (
            self.done_points + (0 if final else 1), self.total_points, fmt_time(el),
            fmt_time(max(0.0, left_est)), what)
        if self.tty:
            pad = max(0, self._last_len - len(line))
            sys.stderr.write("\r" + line + " " * pad + ("\n" if final else ""))
            self._last_len = 0 if final else len(line)
        else:
            sys.stderr.write(line + "\n")
        sys.stderr.flush()

    def point_done(self, estimate):
        self.done_points += 1
        self.done_est += estimate

    def message(self, text):
        if self.tty and self._last_len:
            sys.stderr.write("\n")
            self._last_len = 0
        sys.stderr.write(text + "\n")
        sys.stderr.flush()


def fmt_time(s):
    s = int(round(s))
    return "%d:%02d" % (s // 60, s % 60)


def summarize_runs(runs):
    """Median and min/max of every numeric metric over the repeated runs."""
    keys = sorted({k for r in runs for k, v in r.items()
                   if isinstance(v, (int, float)) and not isinstance(v, bool)})
    med, lo, hi = {}, {}, {}
    for k in keys:
        vals = [r[k] for r in runs if isinstance(r.get(k), (int, float))]
        if not vals:
            continue
        med[k] = statistics.median(vals)
        lo[k] = min(vals)
        hi[k] = max(vals)
    return {"median": med, "min": lo, "max": hi, "n": len(runs)}


class TargetServer:
    """--target: an already-running server; nothing to start or stop."""

    def __init__(self, url, pid):
        import urllib.parse
        u = urllib.parse.urlsplit(url)
        self.host, self.port = u.hostname, u.port or 80
        self.base_url = "%s://%s:%d" % (u.scheme or "http", self.host, self.port)
        self.pid = pid
        self.banner = "external server at %s%s" % (self.base_url,
                                                    " (pid %d)" % pid if pid else "")
        self.proc = None

    def running(self):
        return self.pid is None or os.path.exists("/proc/%d" % self.pid)

    def start(self):
        return self


class Runner:
    def __init__(self, args):
        self.args = args
        self.root = os.path.abspath(args.root)
        self.build_dir = os.path.abspath(args.build_dir or os.path.join(self.root, "build"))
        self.profiles = config.load_profiles(os.path.join(WORKLOADS, "profiles.toml"))
        if args.profile not in self.profiles:
            raise SystemExit("unknown profile %r (have: %s)" % (args.profile,
                                                                ", ".join(self.profiles)))
        self.models = registry.load(build_dir=self.build_dir, root=self.root)
        try:
            self.server_cpus, self.client_cpus, self.pinned = sysinfo.cpu_split(args.pin)
        except ValueError as e:
            raise SystemExit("bad --pin %r: %s" % (args.pin, e))
        self.cores = len(self.server_cpus)
        self.anomalies = []
        self.failures = []
        self.server_runs = []
        self.runtime_skips = []
        self.service = None         # the upstream service of the current server run
        self.peer_info = {"versions": {}, "skipped": {}, "install_s": None, "calibration": {}}
        try:
            self.backend = pgbench.Backend(args.db)
        except ValueError as e:
            raise SystemExit(str(e))

    # ---------------------------------------------------------------- selection
    def select_scenarios(self):
        files = config.scenario_files(os.path.join(WORKLOADS, "scenarios"))
        if self.args.scenario:
            want = [s.strip() for s in self.args.scenario.split(",") if s.strip()]
            known = dict(files)
            missing = [w for w in want if w not in known]
            if missing:
                raise SystemExit("unknown scenario(s): %s (have: %s)"
                                 % (", ".join(missing), ", ".join(known)))
            files = [(w, known[w]) for w in want]
        elif self.args.scenario_file:
            files = []
        for path in self.args.scenario_file:
            files.append((os.path.splitext(os.path.basename(path))[0], path))
        return [config.load_scenario(n, p) for n, p in files]

    def model_filter(self):
        if not self.args.model:
            return None
        flt = {}
        names = {m.name for m in self.models}
        for item in self.args.model.split(","):
            parts = [p for p in item.strip().split(":") if p]
            if not parts:
                continue
            if parts[0] not in names:
                raise SystemExit("unknown model %r (have: %s)" % (parts[0], ", ".join(names)))
            name, modes = parts[0], set(parts[1:])
            if name in flt:
                flt[name] = None if (flt[name] is None or not modes) else flt[name] | modes
            else:
                flt[name] = modes or None
        return flt

    # -------------------------------------------------------------- calibration
    def calibrate(self, scenarios, target_url):
        """Iterations of /cpu per millisecond on one core, measured once per run."""
        texts = []
        for sc in scenarios:
            for st in sc.data["step"]:
                texts.append(st["path"])
                bg = st.get("background")
                if isinstance(bg, dict):
                    texts.append(json.dumps(bg))
        if not any(config.needs_cpu_calibration(t) for t in texts):
            return None
        server = None
        try:
            if target_url:
                base, via = TargetServer(target_url, None).base_url, "target"
            else:
                cands = [m for m in self.models if m.built and m.serves("/cpu")]
                if not cands:
                    self.progress_msg("no built server serves /cpu: CPU scenarios skipped")
                    return None
                m = cands[0]
                tmp = tempfile.mkdtemp(prefix="triad-bench-")
                server = self.new_server(m, m.mode_args("default"), tmp, "calibration.log")
                server.start()
                base, via = server.base_url, "%s/default" % m.name
            return self._calibrate_on(base, via)
        except (launch.StartupError, OSError, loadgen.LoadError) as e:
            self.progress_msg("CPU calibration failed: %s" % e)
            self.failures.append({"what": "cpu calibration", "error": str(e)})
            return None
        finally:
            if server:
                self.anomalies += [{"where": "calibration", "what": a}
                                   for a in stop_server(server)]

    def _calibrate_on(self, base, via):
        conn = None

        def best(iters, n):
            nonlocal conn
            b = None
            for _ in range(n):
                status, dt, body, conn = loadgen.timed_get(base, "/cpu?iterations=%d" % iters,
                                                           conn)
                if status != 200:
                    raise loadgen.LoadError("/cpu?iterations=%d answered %d: %r"
                                            % (iters, status, body[:200]))
                b = dt if b is None else min(b, dt)
            return b

        t0 = best(0, 10)
        n = 2000    # C needs a few doublings from here; CPython (~10 µs an iteration) none
        while True:
            dt = best(n, 2) - t0
            if dt >= 0.02 or n >= 10_000_000:
                break
            n = min(10_000_000, int(n * min(50.0, max(2.0, 0.03 / max(dt, 1e-5)))))
        # a shared or virtual CPU only ever makes a run slower: keep the fastest of several
        dt = best(n, 7) - t0
        per_ms = n / max(dt * 1000.0, 1e-6)
        # check at the 50 ms the head-of-line scenario uses
        n50 = min(10_000_000, int(per_ms * 50))
        t50 = best(n50, 2) - t0
        conn.close()
        return {"iterations_per_ms": per_ms, "ns_per_iteration": 1e6 / per_ms,
                "request_overhead_ms": t0 * 1000.0, "probe_iterations": n,
                "check_50ms_iterations": n50, "check_50ms_measured_ms": t50 * 1000.0,
                "measured_on": via, "capped": n >= 10_000_000 and dt < 0.02}

    def progress_msg(self, text):
        if getattr(self, "progress", None):
            self.progress.message(text)
        else:
            sys.stderr.write(text + "\n")

    # ---------------------------------------------------------------------- run
    def run(self):
        a = self.args
        soft, hard = sysinfo.raise_nofile()
        stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
        self.out = os.path.abspath(a.out or os.path.join(self.root, "results", stamp))
        if not a.dry_run:
            os.makedirs(os.path.join(self.out, "logs"), exist_ok=True)
        self.tmp = tempfile.mkdtemp(prefix="triad-bench-h2-")

        scenarios = self.select_scenarios()
        overrides = {}
        for k in ("duration", "warmup", "repeats"):
            if getattr(a, k) is not None:
                overrides[k] = getattr(a, k)
        if a.connections:
            overrides["connections"] = [int(c) for c in a.connections.split(",") if c.strip()]

        target = bool(a.target)
        if target:
            models = [registry.Model("target", "target", {"target": []}, program=a.target)]
            mflt = None
        else:
            models = self.models
            mflt = self.model_filter()

        started = time.time()
        machine = sysinfo.collect(self.build_dir, {m.name: m.program for m in self.models
                                                   if not target})
        if self.pinned:  # the runner itself (idle client, sampler) lives with the load
            os.sched_setaffinity(0, self.client_cpus)
        peer_models = peers.wanted(self.models, mflt, target)
        unavailable = {}
        if peer_models and not a.dry_run and not a.no_peer_install:
            names = [m.name for m in peer_models]
            sys.stderr.write("bench: workloads/peers/install %s\n" % " ".join(names))
            v, sk, secs = peers.install(self.root, names,
                                        os.path.join(self.out, "logs", "peers-install.log"))
            self.peer_info.update(versions=v, skipped=sk, install_s=secs)
            for n, why in sk.items():
                sys.stderr.write("bench: peer %s skipped: %s\n" % (n, why))
            unavailable = {n: "not installed: %s" % why for n, why in sk.items()}
        if a.dry_run:
            calib = {"iterations_per_ms": 10000.0}
            cpu = calib["iterations_per_ms"]
        else:
            calib = self.calibrate(scenarios, a.target)
            cpu = calib["iterations_per_ms"] if calib else None
            if calib is not None and peer_models:
                pc = peers.calibrate(self, [m for m in peer_models if m.name not in unavailable],
                                     stop_server)
                self.peer_info["calibration"] = pc
                cpu = {"*": cpu}
                cpu.update({m.name: (pc[m.name]["iterations_per_ms"] if m.name in pc else None)
                            for m in peer_models})
        plan, skipped = config.build_plan(scenarios, models, a.profile, self.profiles,
                                          self.cores, cpu, overrides, mflt, target,
                                          unavailable)
        plan = pgbench.filter_plan(plan, skipped, scenarios, a.profile, list(self.profiles),
                                   self.backend)
        points = [pt for run in plan for pt in run.points]
        est = sum(config.estimate_point(pt) for pt in points) + \
            sum(config.estimate_start(run, models) for run in plan)
        not_built = sorted({s[1] for s in skipped if s[4] == "not built"})
        sys.stderr.write("triad bench: profile %s, %d scenarios, %d server runs, %d points, "
                         "estimated %s%s\n" % (a.profile, len(scenarios), len(plan), len(points),
                                               fmt_time(est),
                                               ("; not built: " + ", ".join(not_built))
                                               if not_built else ""))
        if not self.pinned:
            sys.stderr.write("note: %d CPUs; server and load generator share them (no pinning)\n"
                             % len(self.client_cpus))
        if a.dry_run:
            for run in plan:
                print("%-13s %-22s %s" % (run.scenario, run.model + "/" + run.mode,
                                          ", ".join("%s %s" % (p.step, p.x_label)
                                                    for p in run.points)))
            for s_ in skipped:
                print("skipped: %s %s/%s %s: %s" % s_)
            shutil.rmtree(self.tmp, ignore_errors=True)
            return 0
        self.progress = Progress(len(points), est)
        wrk_log = open(os.path.join(self.out, "logs", "loadgen.log"), "w")
        results = []
        postgres = None
        try:
            if self.backend.available:
                self.backend.start(self.progress_msg)
            for run in plan:
                results += self.execute(run, target, wrk_log)
        except KeyboardInterrupt:
            self.progress.message("interrupted: writing what was measured so far")
            self.failures.append({"what": "run", "error": "interrupted by the user"})
        except (pgbench.pg.PgError, OSError) as e:
            self.progress.message("PostgreSQL: %s" % e)
            self.failures.append({"what": "PostgreSQL (--db %s)" % pgbench.mask(a.db),
                                  "error": str(e)})
        finally:
            wrk_log.close()
            shutil.rmtree(self.tmp, ignore_errors=True)
            postgres = self.backend.describe()
            self.backend.stop()     # the private cluster, even on Ctrl-C
        self.progress.show("done", final=True)

        finished = time.time()
        try:
            t_entry = float(os.environ.get("TRIAD_BENCH_T0", ""))
        except ValueError:
            t_entry = started
        doc = {
            "schema": 1,
            "profile": a.profile,
            "profile_settings": self.profiles[a.profile],
            "overrides": overrides,
            "started": datetime.datetime.fromtimestamp(started).isoformat(timespec="seconds"),
            "finished": datetime.datetime.fromtimestamp(finished).isoformat(timespec="seconds"),
            "wall_s": finished - started,
            "wall_total_s": finished - min(t_entry, started),
            "command": os.environ.get("TRIAD_BENCH_CMD") or " ".join(["workloads/bench"]
                                                                      + sys.argv[1:]),
            "machine": machine,
            "pinning": {"pinned": self.pinned, "server_cpus": self.server_cpus,
                        "client_cpus": self.client_cpus, "server_cores": self.cores},
            "nofile": {"soft": soft, "hard": hard},
            "cpu_calibration": calib,
            "target": {"url": a.target, "pid": a.pid} if target else None,
            "models": [{"name": m.name, "bin": m.program, "kind": m.kind, "role": m.role,
                        "modes": m.modes, "pairs": m.pairs,
                        "endpoints": m.endpoints, "built": True if target else m.built}
                       for m in models],
            "roles": registry.role_names(self.models),
            "scenarios": [{"name": s.name, "title": s.title, "description": s.description,
                           "file": os.path.relpath(s.path, self.root)} for s in scenarios],
            "skipped": [dict(zip(("scenario", "model", "mode", "step", "reason"), s))
                        for s in skipped + self.runtime_skips],
            "server_runs": self.server_runs,
            "anomalies": self.anomalies,
            "failures": self.failures,
            "points": results,
            "peers": self.peer_info,
            "postgres": postgres,
        }
        doc["machine"]["loadavg_end"] = sysinfo.loadavg()
        doc["claims"] = claims.evaluate(doc)
        doc["compare"] = compare.evaluate(doc)
        report.write_all(doc, self.out, plots=not a.no_plots)
        print(report.summary_text(doc))
        print("\nresults: %s (report.md, results.json, results.csv%s)"
              % (self.out, "" if a.no_plots else ", *.png"))
        return 0

    # ---------------------------------------------------------------- execution
    def new_server(self, model, args, tmp, log_name):
        """A server of `model` with a fresh database in tmp; its output goes to logs/."""
        return launch.Server(model.program, os.path.join(tmp, "triad.db"), args,
                             label=model.name, workdir=tmp,
                             wrapper=loadgen.taskset(self.server_cpus if self.pinned else None),
                             log_path=os.path.join(self.out, "logs", log_name),
                             merge_stderr=True, new_session=False)

    def start_server(self, run, target):
        if target:
            return TargetServer(self.args.target, self.args.pid).start(), None
        model = next(m for m in self.models if m.name == run.model)
        if self.service is not None:
            run = config.ServerRun(run.scenario, run.model, run.mode,
                                   run.args + ["--upstream", self.service.url])
        tmp = tempfile.mkdtemp(prefix="triad-bench-db-")
        log = os.path.join(self.out, "logs", "%s-%s-%s.log" % (run.scenario, run.model,
                                                               run.mode.replace("+", "_")))
        n = 1
        while os.path.exists(log):
            n += 1
            log = log.rsplit(".", 1)[0].rsplit("~", 1)[0] + "~%d.log" % n
        s = self.new_server(model, run.args, tmp, os.path.basename(log))
        try:
            s.start()
        except launch.StartupError as e:
            s.kill()
            shutil.rmtree(tmp, ignore_errors=True)
            raise launch.StartupError("%s (log: %s)" % (e, log))
        return s, tmp

    def execute(self, run, target, wrk_log):
        """One server run; with its scenario's upstream service around it, if it has one."""
        if not run.upstream or target:
            return self._execute(run, target, wrk_log)
        label = "%s-%s-%s" % (run.scenario, run.model, run.mode.replace("+", "_"))
        first = len(self.server_runs)
        try:
            self.service = upstream.start_for(self, run, label)
        except upstream.UpstreamError as e:
            self.progress.message("%s %s/%s: %s" % (run.scenario, run.model, run.mode, e))
            self.failures.append({"what": "%s %s/%s upstream" % (run.scenario, run.model,
                                                                 run.mode), "error": str(e)})
            out = []
            for pt in run.points:
                out.append(self.failed_point(pt, str(e)))
                self.progress.point_done(config.estimate_point(pt))
            return out
        try:
            return self._execute(run, target, wrk_log)
        finally:
            service, self.service = self.service, None
            for rec in self.server_runs[first:]:
                rec["upstream"] = "%s at %s" % (service.describe(), service.url)
            self.anomalies += [{"where": "%s %s/%s" % (run.scenario, run.model, run.mode),
                                "what": a} for a in service.stop()]

    def new_probe(self, pt, server):
        """What a measured run adds when the scenario has an upstream (runner/upstream.py)."""
        if self.service is None:
            return None
        return upstream.Probe(self.service, server, registry.find(self.models, pt.model))

    def _execute(self, run, target, wrk_log):
        out = []
        label = "%s/%s" % (run.model, run.mode)
        pending = list(run.points)
        saturated = {}  # step -> (connections, why): higher levels are not run
        while pending:
            rec = {"scenario": run.scenario, "model": run.model, "mode": run.mode,
                   "args": run.args}
            self.server_runs.append(rec)
            t0 = time.monotonic()
            try:
                server, tmp = self.start_server(run, target)
                rec["start_s"] = time.monotonic() - t0
                rec["banner"] = server.banner
            except launch.StartupError as e:
                rec["error"] = str(e)
                self.progress.message("%s %s: server failed to start: %s"
                                      % (run.scenario, label, e))
                for pt in pending:
                    out.append(self.failed_point(pt, "server failed to start: %s" % e))
                    self.progress.point_done(config.estimate_point(pt))
                self.failures.append({"what": "%s %s start" % (run.scenario, label),
                                      "error": str(e)})
                return out
            model = registry.find(self.models, run.model)
            if peers.needs_prime(model, pending):
                self.progress.show("%s %s: priming /cpu (JIT warm-up)" % (run.scenario, label))
                rec["primed_calls"] = peers.prime(server.base_url)
            sampler = Sampler(server.pid) if server.pid else None
            sampler = pgbench.samplers(sampler, server, self.backend)
            try:
                while pending:
                    pt = pending.pop(0)
                    sat = saturated.get(pt.step)
                    if pt.kind == "wrk" and sat is not None and pt.connections > sat[0]:
                        reason = ("not run: %s/%s saturated at %d connections (%s), so more "
                                  "connections only add queueing" % (run.model, run.mode,
                                                                     sat[0], sat[1]))
                        self.runtime_skips.append((pt.scenario, pt.model, pt.mode,
                                                   "%s c=%d" % (pt.step, pt.connections),
                                                   reason))
                        self.progress.point_done(config.estimate_point(pt))
                        continue
                    t_pt = time.monotonic()
                    try:
                        res = self.run_point(pt, server, sampler, wrk_log)
                    except (loadgen.LoadError, OSError) as e:
                        res = self.failed_point(pt, str(e))
                        self.failures.append({"what": "%s/%s %s %s" % (pt.scenario, pt.step,
                                                                      label, pt.x_label),
                                              "error": str(e)})
                    res["server_banner"] = server.banner
                    res["wall_s"] = time.monotonic() - t_pt
                    self.check_errors(pt, res, server, label)
                    why = self.saturation(pt, res)
                    if why:
                        saturated[pt.step] = (pt.connections, why)
                        res["saturated"] = why
                    out.append(res)
                    self.progress.point_done(config.estimate_point(pt))
                    if not server.running():
                        msg = "server died during %s/%s %s" % (pt.scenario, pt.step, pt.x_label)
                        self.progress.message("%s %s: %s" % (run.scenario, label, msg))
                        self.anomalies.append({"where": "%s %s" % (run.scenario, label),
                                               "what": msg})
                        res["server_died"] = True
                        break  # restart it for the remaining points
            finally:
                if sampler:
                    sampler.stop()
                t1 = time.monotonic()
                anomalies = stop_server(server)
                rec["stop_s"] = time.monotonic() - t1
                rec["exit_code"] = server.proc.returncode if server.proc else None
                rec["log"] = getattr(server, "log_path", None)
                for an in anomalies:
                    self.anomalies.append({"where": "%s %s" % (run.scenario, label), "what": an})
                if tmp:
                    shutil.rmtree(tmp, ignore_errors=True)
        return out

    def check_errors(self, pt, res, server, label):
        """A point where more than 1% of the requests failed is an anomaly: say what the
        server answers (one probe request) so the report shows why."""
        med = res.get("summary", {}).get("median", {})
        if pt.kind == "idle":
            ok, want = med.get("idle_ok"), med.get("idle_target")
            if ok is not None and want and ok < want:
                self.anomalies.append({
                    "where": "%s %s" % (pt.scenario, label),
                    "what": "only %d of %d idle connections got their answer (%d failed, "
                            "%.1f s)" % (ok, want, med.get("idle_failed", 0),
                                         med.get("idle_open_s", 0))})
            return
        total, errs = med.get("requests") or 0, med.get("errors_total") or 0
        if not errs or errs <= 0.01 * max(total, 1):
            return
        res["error_fraction"] = errs / max(total, errs)
        probe = ""
        if pt.method == "GET":
            try:
                status, _, body, conn = loadgen.timed_get(server.base_url, pt.path, timeout=5)
                conn.close()
                probe = "; a single GET %s answers %d %s" % (
                    pt.path, status, body[:80].decode("utf-8", "replace"))
            except (OSError, http.client.HTTPException) as e:
                probe = "; a single GET %s fails: %s" % (pt.path, e)
        self.anomalies.append({"where": "%s %s" % (pt.scenario, label),
                               "what": "%s %s: %.0f%% of the requests failed (%d errors)%s"
                                       % (pt.step, pt.x_label, 100 * res["error_fraction"],
                                          errs, probe)})

    @staticmethod
    def saturation(pt, res):
        """Why a closed-loop level counts as saturated (None if it does not): nothing
        completed, or the median request waited more than half the run."""
        if pt.kind != "wrk" or res.get("error"):
            return None
        med = res["summary"]["median"]
        if not med.get("rps"):
            return "no request completed within the run"
        p50 = med.get("lat_p50_ms")
        if p50 is not None and p50 > 500.0 * pt.duration:
            return "median latency %.0f ms, more than half the %g s run" % (p50, pt.duration)
        return None

    def failed_point(self, pt, error):
        d = self.point_header(pt)
        d.update({"runs": [], "summary": summarize_runs([]), "error": error})
        return d

    def point_header(self, pt):
        return {"scenario": pt.scenario, "step": pt.step, "kind": pt.kind, "model": pt.model,
                "mode": pt.mode, "connections": pt.connections, "variables": pt.variables,
                "path": pt.path, "method": pt.method, "pipeline": pt.pipeline,
                "service_ms": pt.service_ms, "rate": pt.rate,
                "background": pt.background, "warmup_s": pt.warmup, "duration_s": pt.duration,
                "repeats": pt.repeats}

    def run_point(self, pt, server, sampler, wrk_log):
        what = "%s/%s  %s/%s  %s" % (pt.scenario, pt.step, pt.model, pt.mode, pt.x_label)
        url = server.base_url + pt.path
        head = self.point_header(pt)
        runs = []
        if pt.kind == "idle":
            self.progress.show(what)
            runs.append(self.run_idle(pt, server, sampler))
        elif pt.kind == "open-loop":
            for r in range(pt.repeats):
                self.progress.show("%s  run %d/%d" % (what, r + 1, pt.repeats))
                runs.append(self.run_open_loop(pt, server, sampler, wrk_log, r))
        else:
            args = []
            if pt.pipeline > 1:
                args.append("pipeline=%d" % pt.pipeline)
            if pt.method != "GET":
                args.append("method=%s" % pt.method)
            if pt.body is not None:
                args.append("body=%s" % pt.body)
            if pt.content_type:
                args.append("content_type=%s" % pt.content_type)
            threads = len(self.client_cpus)
            cpus = self.client_cpus if self.pinned else None
            if pt.warmup > 0:
                self.progress.show("%s  warm-up" % what)
                self.settle(pt, server)
                if pt.warmup >= 1:
                    w = loadgen.run_wrk(url, pt.connections, pt.warmup, threads, LUA_SCRIPT,
                                        args, cpus, wrk_log)
                    head["warmup_errors"] = w["errors_total"]
                else:  # wrk cannot run for less than a second
                    head["warmup_errors"] = loadgen.warmup_h2load(
                        url, pt.connections, pt.warmup, threads, pt.pipeline, pt.method,
                        pt.body, pt.content_type, cpus, self.tmp, wrk_log)
            for r in range(pt.repeats):
                self.progress.show("%s  run %d/%d" % (what, r + 1, pt.repeats))
                settle = self.settle(pt, server)
                if sampler:
                    sampler.begin()
                probe = self.new_probe(pt, server)
                if probe:
                    probe.begin(pt.duration)
                m = loadgen.run_wrk(url, pt.connections, pt.duration, threads, LUA_SCRIPT, args,
                                    cpus, wrk_log)
                if sampler:
                    m.update(sampler.end())
                if probe:
                    m.update(probe.end(m.get("requests")))
                m.update(settle)
                if pt.pipeline > 1:  # see lua/triad.lua: wrk's percentiles break here
                    for k in LATENCY_KEYS:
                        m[k] = None
                runs.append(m)
        for m in runs:
            if m.get("srv_cpu_s") is not None and m.get("requests"):
                m["srv_cpu_us_per_req"] = m["srv_cpu_s"] * 1e6 / m["requests"]
            if m.get("db_cpu_s") is not None and m.get("requests"):
                m["db_cpu_us_per_req"] = m["db_cpu_s"] * 1e6 / m["requests"]
            if pt.service_ms and "rps" in m:
                m["little_rps"] = pt.connections * 1000.0 / pt.service_ms
                m["little_frac"] = m["rps"] / m["little_rps"]
        head["runs"] = runs
        head["summary"] = summarize_runs(runs)
        note = upstream.saturation_note(head["summary"]["median"])
        if note:
            self.anomalies.append({"where": "%s %s/%s" % (pt.scenario, pt.model, pt.mode),
                                   "what": "%s %s: %s" % (pt.step, pt.x_label, note)})
        return head

    def run_open_loop(self, pt, server, sampler, wrk_log, r):
        cpus = self.client_cpus if self.pinned else None
        warm = pt.open_loop_warmup
        tag = "%s-%s-%s-%s-%d" % (pt.scenario, pt.step, pt.model, pt.mode, r)
        loads = []
        if pt.background:
            b = pt.background
            bclients = int(b.get("clients", 5))
            loads.append(loadgen.OpenLoop(server.base_url + b["path"], b["rate"], bclients,
                                          pt.duration, warm, b.get("stagger", bclients), cpus,
                                          self.tmp, tag + "-bg"))
        fg = loadgen.OpenLoop(server.base_url + pt.path, pt.rate, pt.clients, pt.duration, warm,
                              pt.stagger or min(pt.clients, 10), cpus, self.tmp, tag)
        loads.append(fg)
        settle = self.settle(pt, server)
        t0 = loadgen.start_all(loads)
        time.sleep(max(0.0, warm - (time.monotonic() - t0)))
        if sampler:
            sampler.begin()
        m = fg.wait(wrk_log)
        if sampler:
            m.update(sampler.end())
        m.update(settle)
        if pt.background:
            b = loads[0].wait(wrk_log)
            m["bg_rps"] = b["rps"]
            m["bg_target_rps"] = b["target_rps"]
            m["bg_p50_ms"] = b["lat_p50_ms"]
            m["bg_max_ms"] = b["lat_max_ms"]
            m["bg_errors"] = b["errors_total"]
        return m

    def settle(self, pt, server):
        """Wait (at most pt.settle s) until the server answers one request: work left over
        from the previous run's closed connections must not slow the next run down."""
        model = next((m for m in self.models if m.name == pt.model), None)
        if model is None or model.serves("/health"):
            path = "/health"
        elif pt.method == "GET":
            path = pt.path
        else:
            return {}
        t0 = time.monotonic()
        capped = False
        try:
            status, _, _, conn = loadgen.timed_get(server.base_url, path, timeout=pt.settle)
            conn.close()
        except (OSError, http.client.HTTPException):
            capped = True
        return {"settle_s": time.monotonic() - t0, "settle_capped": 1 if capped else 0}

    def run_idle(self, pt, server, sampler):
        # prime the server (first request paths, lazy allocations), then measure the floor
        conn = None
        for _ in range(3):
            _, _, _, conn = loadgen.timed_get(server.base_url, pt.path, conn)
        conn.close()
        time.sleep(0.2)
        before = snapshot(server.pid) if server.pid else None
        idle = loadgen.IdleConnections(server.host, server.port, pt.path)
        t0 = time.monotonic()
        try:
            ok = idle.open(pt.connections, timeout_s=5.0 + pt.connections / 1000.0)
            open_s = time.monotonic() - t0
            alive_open = idle.alive()
            if sampler:
                sampler.begin()
            time.sleep(pt.hold)
            stats = sampler.end() if sampler else {}
            alive_end = idle.alive()
        finally:
            idle.close()
        m = {"idle_target": pt.connections, "idle_ok": ok, "idle_failed": idle.failed,
             "idle_non2xx": idle.non2xx, "idle_alive_open": alive_open,
             "idle_alive_end": alive_end, "idle_open_s": open_s,
             "errors_total": idle.failed + idle.non2xx}
        m.update(stats)
        if before and stats:
            m["rss_before_mib"] = before[1] / 1048576.0
            m["threads_before"] = before[2]
            if alive_open:
                m["kib_per_conn"] = ((stats["srv_rss_peak_mib"] * 1024.0 - before[1] / 1024.0)
                                     / alive_open)
                m["threads_per_conn"] = (stats["srv_threads_max"] - before[2]) / alive_open
        return m


def stop_server(server, timeout=10.0):
    """SIGTERM and wait; returns what went wrong, for the report's anomalies."""
    if isinstance(server, TargetServer) or server.proc is None:
        return []       # nothing was started
    was_running = server.running()
    rc = server.stop(timeout)
    out = []
    if not was_running:
        out.append("had exited (%s) before it was stopped"
                   % launch.describe_status(server.proc.returncode))
    elif rc is None:
        out.append("did not exit within %.0f s of SIGTERM; killed" % timeout)
    elif rc != 0:
        out.append("%s after SIGTERM (expected exit status 0)" % launch.describe_status(rc))
    out += ["child process %d still running after the server exited; killed" % pid
            for pid in server.orphans]
    return out


def list_things(runner):
    print("profiles:")
    for name, p in runner.profiles.items():
        print("  %-8s %s" % (name, p.get("description", "")))
    print("scenarios (workloads/scenarios/*.toml):")
    for name, path in config.scenario_files(os.path.join(WORKLOADS, "scenarios")):
        sc = config.load_scenario(name, path)
        print("  %-14s %s" % (name, sc.title))
    print("models (workloads/models.toml):")
    for m in runner.models:
        print("  %-10s %-7s %-6s %-9s modes: %s  (%s)" % (
            m.name, m.role, m.kind, ("launcher" if m.kind == "peer" else "built")
            if m.built else "not built", ", ".join(m.modes), m.program))


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    try:
        runner = Runner(args)
        if args.list:
            list_things(runner)
            return 0
        return runner.run()
    except (config.ConfigError, registry.RegistryError) as e:
        sys.stderr.write("bench: %s\n" % e)
        return 2


if __name__ == "__main__":
    sys.exit(main())
