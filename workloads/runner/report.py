"""results.json, results.csv, report.md and the terminal summary table."""

import csv
import json
import os
import sys

from workloads.runner import compare, pgbench
from workloads.runner.claims import num

CSV_FIELDS = [
    "scenario", "step", "kind", "model", "mode", "connections", "variables", "path", "rate",
    "repeats", "runs_ok", "rps_median", "rps_min", "rps_max", "p50_ms", "p90_ms", "p99_ms",
    "p999_ms", "max_ms", "mean_ms", "p99_ms_min", "p99_ms_max", "errors_total", "err_connect",
    "err_read", "err_write", "err_timeout", "err_status", "srv_cpu_cores", "srv_cpu_s",
    "srv_cpu_us_per_req",
    "srv_rss_peak_mib", "srv_threads_max", "srv_procs", "little_rps", "little_frac",
    "late_frac", "bg_rps", "bg_p50_ms", "settle_s", "idle_target", "idle_ok", "idle_alive_open",
    "idle_alive_end", "rss_before_mib", "kib_per_conn", "threads_before", "threads_per_conn",
    "pg_conns_max", "pg_active_max", "pg_active_mean", "db_cpu_s", "db_cpu_us_per_req",
    "error", "srv_fds_max", "up_cpu_cores", "up_calls_per_req", "up_dials_per_req",
    "up_reuses_per_req", "up_tcp_closed_per_req", "mid_upstream_connections_open",
    "mid_goroutines", "up_dials_kernel_per_req",
]
_CSV_MAP = {"p50_ms": "lat_p50_ms", "p90_ms": "lat_p90_ms", "p99_ms": "lat_p99_ms",
            "p999_ms": "lat_p999_ms", "max_ms": "lat_max_ms", "mean_ms": "lat_mean_ms"}


def _vars(p):
    return ";".join("%s=%s" % kv for kv in sorted(p["variables"].items()))


def csv_row(p):
    s = p["summary"]
    med, lo, hi = s["median"], s["min"], s["max"]
    r = {"scenario": p["scenario"], "step": p["step"], "kind": p["kind"], "model": p["model"],
         "mode": p["mode"], "connections": p["connections"], "variables": _vars(p),
         "path": p["path"], "rate": p.get("rate"), "repeats": p["repeats"],
         "runs_ok": s["n"], "rps_median": med.get("rps"), "rps_min": lo.get("rps"),
         "rps_max": hi.get("rps"), "p99_ms_min": lo.get("lat_p99_ms"),
         "p99_ms_max": hi.get("lat_p99_ms"), "error": p.get("error")}
    for f in CSV_FIELDS:
        if f not in r:
            r[f] = med.get(_CSV_MAP.get(f, f))
    for k, v in r.items():
        if isinstance(v, float):
            r[k] = "%.6g" % v
    return r


def write_csv(doc, path):
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=CSV_FIELDS)
        w.writeheader()
        for p in doc["points"]:
            w.writerow(csv_row(p))


# --------------------------------------------------------------------- formatting

def fms(v):
    if v is None:
        return "-"
    if v >= 100:
        return "%.0f" % v
    if v >= 10:
        return "%.1f" % v
    return "%.2f" % v


def frps(p):
    s = p["summary"]
    v = s["median"].get("rps")
    if v is None:
        return "-"
    if s["n"] > 1:
        return "%s (%s-%s)" % (num(v), num(s["min"]["rps"]), num(s["max"]["rps"]))
    return num(v)


def load_label(p):
    if p["kind"] == "open-loop":
        lab = "%g/s open" % p["rate"]
        if p.get("background"):
            lab += " +bg"
        return lab
    lab = "c=%d" % p["connections"]
    if p["variables"]:
        lab = ",".join("%s=%s" % kv for kv in p["variables"].items()) + " " + lab
    if p.get("pipeline", 1) > 1:
        lab += " p%d" % p["pipeline"]
    return lab


def load_rows(doc):
    rows = []
    for p in doc["points"]:
        if p["kind"] == "idle":
            continue
        m = p["summary"]["median"]
        if p.get("error"):
            rows.append([p["scenario"] + "/" + p["step"], p["model"] + "/" + p["mode"],
                         load_label(p), "FAILED: " + p["error"][:60], "", "", "", "", "", "",
                         ""])
            continue
        rows.append([
            p["scenario"] + "/" + p["step"], p["model"] + "/" + p["mode"], load_label(p),
            frps(p), fms(m.get("lat_p50_ms")), fms(m.get("lat_p99_ms")),
            fms(m.get("lat_max_ms")), "%d" % m.get("errors_total", 0),
            fms(m.get("srv_cpu_cores")), fms(m.get("srv_rss_peak_mib")),
            "%d" % m["srv_threads_max"] if m.get("srv_threads_max") is not None else "-"])
    return rows


LOAD_HEAD = ["scenario/step", "model/mode", "load", "req/s median (min-max)", "p50 ms",
             "p99 ms", "max ms", "errors", "srv cores", "RSS MiB", "threads"]


def idle_rows(doc):
    rows = []
    for p in doc["points"]:
        if p["kind"] != "idle":
            continue
        m = p["summary"]["median"]
        if p.get("error"):
            rows.append([p["model"] + "/" + p["mode"], "%d" % p["connections"],
                         "FAILED: " + p["error"][:60], "", "", "", "", "", ""])
            continue
        rows.append([
            p["model"] + "/" + p["mode"], "%d" % p["connections"],
            "%d" % m.get("idle_alive_open", 0), "%d" % m.get("idle_alive_end", 0),
            fms(m.get("rss_before_mib")), fms(m.get("srv_rss_peak_mib")),
            fms(m.get("kib_per_conn")),
            "%s -> %s" % (_int(m.get("threads_before")), _int(m.get("srv_threads_max"))),
            "%.3f" % m["threads_per_conn"] if m.get("threads_per_conn") is not None else "-"])
    return rows


def _int(v):
    return "-" if v is None else "%d" % v


IDLE_HEAD = ["model/mode", "connections", "open after GET", "open at end", "RSS before MiB",
             "RSS held MiB", "KiB/conn", "threads", "threads/conn"]


def text_table(head, rows):
    widths = [max(len(str(x)) for x in col) for col in zip(head, *rows)] if rows else \
        [len(h) for h in head]
    out = ["  ".join(str(h).ljust(w) for h, w in zip(head, widths)).rstrip(),
           "  ".join("-" * w for w in widths)]
    for r in rows:
        out.append("  ".join(str(x).ljust(w) for x, w in zip(r, widths)).rstrip())
    return "\n".join(out)


def md_table(head, rows):
    esc = lambda s: str(s).replace("|", "\\|")  # noqa: E731
    out = ["| " + " | ".join(esc(h) for h in head) + " |",
           "|" + "|".join("---" for _ in head) + "|"]
    for r in rows:
        out.append("| " + " | ".join(esc(x) for x in r) + " |")
    return "\n".join(out)


def claim_rows(doc, source_article):
    rows = []
    for c in doc["claims"]:
        if (c["source"] == "article") != source_article:
            continue
        rows.append([c["claim"], c["scenario"], c["measured"] or "-", c["verdict"]])
    return rows


def summary_text(doc):
    parts = ["", "triad benchmark, %s profile, %s (%s wall, %s with deps check and build)" % (
        doc["profile"], doc["started"], _dur(doc["wall_s"]),
        _dur(doc.get("wall_total_s", doc["wall_s"])))]
    mach = doc["machine"]
    parts.append("machine: %s, %s CPUs, %s MiB, Linux %s; %s" % (
        mach["cpu_model"], mach["cpus_usable"], mach["mem_total_mib"], mach["kernel"],
        pinning_text(doc, short=True)))
    if busy(doc):
        who = ", ".join(mach.get("busy_at_start") or [])
        parts.append("WARNING: other work was using %.0f%% of the CPUs when the run started%s"
                     % (100 * mach["cpu_busy_start"], " (%s)" % who if who else ""))
    rows = load_rows(doc)
    if rows:
        parts += ["", text_table(LOAD_HEAD, rows)]
    rows = idle_rows(doc)
    if rows:
        parts += ["", "idle connections:", text_table(IDLE_HEAD, rows)]
    rows = [[c["claim"], c["verdict"]] for c in doc["claims"] if c["source"] == "article"]
    parts += ["", "claims:", text_table(["claim", "verdict"], rows)]
    parts += compare.summary_lines(doc, text_table)
    if doc["anomalies"] or doc["failures"]:
        parts += ["", "anomalies: %d, failures: %d (all in report.md):" % (
            len(doc["anomalies"]), len(doc["failures"]))]
        items = ["  %s: %s" % (a["where"], a["what"]) for a in doc["anomalies"]]
        items += ["  failure, %s: %s" % (f["what"], f["error"]) for f in doc["failures"]]
        parts += [i if len(i) <= 160 else i[:157] + "..." for i in items[:12]]
        if len(items) > 12:
            parts.append("  ...")
    return "\n".join(parts)


def _dur(s):
    s = int(round(s))
    return "%d:%02d" % (s // 60, s % 60)


def pinning_text(doc, short=False):
    pin = doc["pinning"]
    if doc.get("target"):
        return "external target: the server's CPUs are not controlled by the runner"
    if pin["pinned"]:
        shared = set(pin["server_cpus"]) & set(pin["client_cpus"])
        return "server pinned to CPUs %s, load generators and runner to CPUs %s%s" % (
            _cpus(pin["server_cpus"]), _cpus(pin["client_cpus"]),
            " (overlapping: %s)" % _cpus(sorted(shared)) if shared else " (disjoint)")
    if short:
        return "no pinning (fewer than 4 CPUs: server and load generator share them)"
    return ("not possible: this machine gives the runner %d CPU(s), fewer than the 4 needed "
            "to give server and load generator disjoint halves, so they share all CPUs. "
            "The load generator's CPU time is taken from the server: absolute throughput is "
            "lower than on a pinned setup and models that use more cores are held back more. "
            "Ratios between models measured the same way in this run are still side by side."
            % len(pin["client_cpus"]))


def busy(doc):
    """Was something else using the CPUs just before the run started?"""
    b = doc["machine"].get("cpu_busy_start")
    return b is not None and b > 0.25


def load_text(doc):
    m = doc["machine"]
    la, le, b = m.get("loadavg_start"), m.get("loadavg_end"), m.get("cpu_busy_start")
    parts = []
    if b is not None:
        parts.append("CPUs %.0f%% busy in the second before the run started" % (100 * b))
    if la:
        parts.append("1-minute load average %.2f at the start" % la[0])
    if le:
        parts.append("%.2f at the end (the benchmark's own load included)" % le[0])
    t = ", ".join(parts) or "unknown"
    if busy(doc):
        who = ", ".join(m.get("busy_at_start") or [])
        t += ("; **other work was using the CPUs when the run started**%s, so treat these "
              "numbers with suspicion" % (" (%s)" % who if who else ""))
    return t


def _cpus(c):
    return ",".join(str(x) for x in c)


# -------------------------------------------------------------------------- report

def write_report(doc, path, plot_files):
    m = doc["machine"]
    v = m["versions"]
    L = []
    L.append("# triad benchmark report: %s profile, %s" % (doc["profile"], doc["started"]))
    L.append("")
    L.append("Command: `%s`. Wall time %s (%s including the dependency check and build). "
             "Raw data: `results.json` (every run), `results.csv` (one row per point: median "
             "and spread), `logs/` (server output, load generator output)." % (
                 doc["command"], _dur(doc["wall_s"]), _dur(doc.get("wall_total_s",
                                                                   doc["wall_s"]))))
    L.append("")
    L.append("## Machine")
    L.append("")
    virt = " (virtual machine)" if m.get("virtualised") else ""
    cg = m.get("cgroup_cpu_limit")
    rows = [
        ["CPU", "%s%s" % (m["cpu_model"], virt)],
        ["cores", "%s online, %s usable by the runner%s" % (
            m["cpus_online"], m["cpus_usable"], ", cgroup quota %.1f" % cg if cg else "")],
        ["RAM", "%s MiB" % m["mem_total_mib"]],
        ["load", load_text(doc)],
        ["kernel", "Linux %s (%s)" % (m["kernel"], m["os"])],
        ["pinning", pinning_text(doc)],
        ["file descriptors", "RLIMIT_NOFILE %s (soft) / %s (hard), inherited by servers and "
                             "load generators" % (doc["nofile"]["soft"], doc["nofile"]["hard"])],
        ["network", "net.core.somaxconn %s, ephemeral ports %s, tcp_tw_reuse %s" % (
            m["somaxconn"], m.get("port_range"), m.get("tcp_tw_reuse"))],
    ]
    L.append(md_table(["", ""], rows))
    L.append("")
    L.append("## Versions")
    L.append("")
    rows = [[k, v[k] or "not found"] for k in ("gcc", "clang", "libmicrohttpd", "sqlite3",
                                               "jansson", "wrk", "h2load", "python",
                                               "matplotlib", "meson_buildtype")]
    peers = doc.get("peers") or {}
    for name, ver in (m.get("servers") or {}).items():
        if name in (peers.get("versions") or {}) or name in (peers.get("skipped") or {}):
            continue    # a peer: its install's line below says more
        rows.append(["server %s" % name, ver or "not built"])
    for name, ver in sorted((peers.get("versions") or {}).items()):
        rows.append(["peer %s" % name, ver])
    for name, why in sorted((peers.get("skipped") or {}).items()):
        rows.append(["peer %s" % name, "skipped: %s" % why])
    L.append(md_table(["component", "version"], rows))
    L.append("")
    prof = doc["profile_settings"]
    L.append("Profile **%s**: warm-up %ss before each point, %ss per run, median of %s runs "
             "per point (spread = min-max)%s." % (
                 doc["profile"], prof["warmup"], prof["duration"], prof["repeats"],
                 "; overrides: " + json.dumps(doc["overrides"]) if doc["overrides"] else ""))
    cal = doc.get("cpu_calibration")
    if cal:
        L.append("")
        L.append("/cpu calibration (on %s, sequential requests, one core): one iteration "
                 "costs %.1f ns, %s iterations per ms; a request for 50 ms of work "
                 "(%d iterations) measured %.1f ms. The same iteration counts are used for "
                 "every model." % (cal["measured_on"], cal["ns_per_iteration"],
                                   num(cal["iterations_per_ms"]),
                                   cal["check_50ms_iterations"],
                                   cal["check_50ms_measured_ms"]))
        pcal = (doc.get("peers") or {}).get("calibration") or {}
        if pcal:
            L.append("")
            L.append("The peers (real runtimes) were calibrated each on its own, the same way, "
                     "so that `${cpu_iterations:MS}` asks each runtime for the same milliseconds "
                     "of work: %s." % "; ".join(
                         "%s %s ns per iteration%s" % (
                             n, num(c["ns_per_iteration"]),
                             " (after %d priming calls for its JIT)" % c["primed_calls"]
                             if c.get("primed_calls") else "")
                         for n, c in sorted(pcal.items())))
    L.append("")
    L.append("## Claims")
    L.append("")
    L.append("Each claim from the articles, the scenario that tests it, what triad measured "
             "in this run (all numbers side by side, same machine, same load), and a verdict. "
             "Only the concurrency model differs between triad's servers: the handlers, "
             "JSON and sqlite code are the same C core.")
    L.append("")
    L.append(md_table(["claim", "scenario", "triad measured", "verdict"],
                      claim_rows(doc, True)))
    L.append("")
    L.append("### Model signatures")
    L.append("")
    L.append("What each model should show if it mirrors its runtime faithfully "
             "(the runtime source behind each is its `source` in results.json's claims).")
    L.append("")
    L.append(md_table(["signature", "scenario", "triad measured", "verdict"],
                      claim_rows(doc, False)))
    L.append("")
    L += compare.markdown(doc, md_table)
    L.append("## Summary")
    L.append("")
    L.append("Medians over the repeated runs; req/s with its min-max spread. Latency in ms "
             "(closed loop: wrk, open loop: h2load). `srv cores` = server CPU time / wall "
             "time; RSS and threads are the peaks sampled from /proc during the runs (summed "
             "over worker processes). The scenario tables below add `CPU µs/req` (server CPU "
             "time per completed request: what the model costs, whatever CPU it could get).")
    L.append("")
    rows = load_rows(doc)
    if rows:
        L.append(md_table(LOAD_HEAD, rows))
        L.append("")
    rows = idle_rows(doc)
    if rows:
        L.append("Idle connections (one GET each, then held open; each level on a fresh "
                 "server; per connection = (RSS held - RSS before) / connections open):")
        L.append("")
        L.append(md_table(IDLE_HEAD, rows))
        L.append("")
    L.append("## Scenarios")
    for sc in doc["scenarios"]:
        pts = [p for p in doc["points"] if p["scenario"] == sc["name"]]
        L.append("")
        L.append("### %s" % sc["title"])
        L.append("")
        L.append("%s (`%s`)" % (sc["description"], sc["file"]))
        L.append("")
        if not pts:
            L.append("Nothing ran for this scenario in this run.")
            continue
        L.append(md_table(*scenario_table(pts)))
    L.append("")
    L += pgbench.report_lines(doc, md_table, frps, fms)
    if plot_files:
        L.append("")
        L.append("## Plots")
        for f, title in plot_files:
            L.append("")
            L.append("%s:" % title)
            L.append("")
            L.append("![%s](%s)" % (title, f))
    L.append("")
    L.append("## Anomalies, failures, skipped")
    L.append("")
    if not (doc["anomalies"] or doc["failures"] or doc["skipped"]):
        L.append("None.")
    for a in doc["anomalies"]:
        L.append("- anomaly, %s: %s" % (a["where"], a["what"]))
    for f in doc["failures"]:
        L.append("- failure, %s: %s" % (f["what"], f["error"]))
    seen = set()
    for s in doc["skipped"]:
        key = (s["model"], s["reason"]) if s["reason"] == "not built" else tuple(s.values())
        if key in seen:
            continue
        seen.add(key)
        if s["reason"].startswith("not installed"):
            key = (s["model"], s["reason"])
            if key in seen:
                continue
            seen.add(key)
            L.append("- skipped: peer %s, %s" % (s["model"], s["reason"]))
        elif s["reason"] == "not built":
            L.append("- skipped: model %s is not built (claims that need it read \"not tested "
                     "yet\")" % s["model"])
        else:
            L.append("- skipped: %s/%s for %s/%s: %s" % (s["scenario"], s["step"], s["model"],
                                                        s["mode"], s["reason"]))
    L.append("")
    L.append("## How to read these numbers")
    L.append("")
    L += [
        "- Closed loop (wrk): each connection sends its next request when the previous answer "
        "arrives, so a server that stalls also stops the load and its stall is measured once, "
        "not for every request that would have arrived meanwhile (coordinated omission). "
        "wrk 4.1.0 back-fills its histogram for requests slower than twice the mean "
        "per-connection interval, a partial correction; its percentiles include that.",
        "- Open loop (h2load --rps, head-of-line scenario): requests leave at a fixed rate "
        "whatever the server does, which is the honest way to see stalls. h2load fires all "
        "clients of one process at once, so the runner splits the clients over several "
        "staggered h2load processes. A request still waits for its connection's previous one: "
        "`late_frac` in the CSV is the share of requests slower than their connection's send "
        "interval (where omission could creep back in); it should be 0.",
        "- Pipelined runs (plaintext, 16 deep) report throughput only: wrk records one latency "
        "per batch and its back-fill corrupts the batch histogram.",
        "- Idle connections are measured once per level (no repeats); connections the server "
        "closes (keep-alive timeouts) are counted in \"open at end\".",
        "- A GIL, an event loop or a pool limits what a model can use of the machine; with "
        "only %s server cores the multi-core advantages (and the CPU-bound ratios) are capped "
        "at about %sx." % (doc["pinning"]["server_cores"], doc["pinning"]["server_cores"]),
    ]
    if doc["profile"] == "quick":
        L.append("- This is the quick profile: 1 s runs, 2 repeats (the peers: 1), 0.5 s "
                 "warm-ups, fewer levels, idle counts of at most 1,000, and no pipelined "
                 "/plaintext, /queries or /updates. Use `workloads/bench --profile full` for "
                 "TechEmpower-like levels, 10 s runs, 3 repeats and 10,000 connections.")
    L.append("")
    with open(path, "w") as f:
        f.write("\n".join(L))


def scenario_table(pts):
    if all(p["kind"] == "idle" for p in pts):
        return IDLE_HEAD, idle_rows({"points": pts})
    head = ["step", "model/mode", "load", "req/s median (min-max)", "p50", "p90", "p99",
            "p99.9", "max", "errors", "srv cores", "CPU µs/req", "RSS MiB", "threads", "notes"]
    rows = []
    for p in pts:
        m = p["summary"]["median"]
        if p.get("error"):
            rows.append([p["step"], p["model"] + "/" + p["mode"], load_label(p),
                         "FAILED", "", "", "", "", "", "", "", "", "", "", p["error"][:120]])
            continue
        notes = []
        if m.get("little_rps"):
            notes.append("%.0f%% of Little's law (%s)" % (100 * m.get("little_frac", 0),
                                                          num(m["little_rps"])))
        if p["kind"] == "open-loop":
            notes.append("target %g/s" % p["rate"])
            if m.get("late_frac"):
                notes.append("late %.1f%%" % (100 * m["late_frac"]))
        if m.get("pg_conns_max") is not None:
            notes.append("pg sessions %d open, %.1f running" % (m["pg_conns_max"],
                                                                m.get("pg_active_mean", 0)))
        if m.get("bg_rps") is not None:
            notes.append("bg /cpu %.1f/s p50 %s ms" % (m["bg_rps"], fms(m.get("bg_p50_ms"))))
        hi = p["summary"]["max"]
        if hi.get("settle_capped"):
            notes.append("server still busy from the previous run after %gs (settle cap)"
                         % hi.get("settle_s", 0))
        elif (hi.get("settle_s") or 0) >= 0.1:
            notes.append("waited up to %.1fs for the previous run's leftovers" % hi["settle_s"])
        errs = [k[4:] + " " + "%d" % m[k] for k in ("err_connect", "err_read", "err_write",
                                                     "err_timeout", "err_status") if m.get(k)]
        if errs:
            notes.append("errors: " + ", ".join(errs))
        notes += upstream_notes(m)
        rows.append([p["step"], p["model"] + "/" + p["mode"], load_label(p), frps(p),
                     fms(m.get("lat_p50_ms")), fms(m.get("lat_p90_ms")),
                     fms(m.get("lat_p99_ms")), fms(m.get("lat_p999_ms")),
                     fms(m.get("lat_max_ms")), "%d" % m.get("errors_total", 0),
                     fms(m.get("srv_cpu_cores")), fms(m.get("srv_cpu_us_per_req")),
                     fms(m.get("srv_rss_peak_mib")), _int(m.get("srv_threads_max")),
                     "; ".join(notes)])
    return head, rows


def write_all(doc, out, plots=True):
    with open(os.path.join(out, "results.json"), "w") as f:
        json.dump(doc, f, indent=1, sort_keys=False)
    write_csv(doc, os.path.join(out, "results.csv"))
    plot_files = []
    if plots:
        try:
            from workloads.runner import plots as plotmod
            plot_files = plotmod.write_plots(doc, out)
        except ImportError as e:
            sys.stderr.write("warning: no plots (%s); install python3-matplotlib\n" % e)
    write_report(doc, os.path.join(out, "report.md"), plot_files)


def upstream_notes(m):
    """Notes of a point whose scenario has an upstream service (runner/upstream.py)."""
    out = []
    if m.get("up_cpu_cores") is None:
        return out
    out.append("%s descriptors" % _int(m.get("srv_fds_max")))
    if m.get("up_dials_per_req") is not None:
        out.append("pool: %.2f dials, %.2f reuses per request, %s open halfway" % (
            m["up_dials_per_req"], m.get("up_reuses_per_req") or 0,
            _int(m.get("mid_upstream_connections_open"))))
    if m.get("mid_goroutines") is not None:
        out.append("%d goroutines halfway" % m["mid_goroutines"])
    if m.get("up_dials_kernel_per_req") is not None:
        out.append("%.2f dials per request (kernel: SYNs to the upstream)"
                   % m["up_dials_kernel_per_req"])
    elif m.get("up_tcp_closed_per_req") is not None:
        out.append("at least %.2f upstream connections closed per request (kernel)"
                   % m["up_tcp_closed_per_req"])
    out.append("upstream %.2f cores" % m["up_cpu_cores"])
    return out
