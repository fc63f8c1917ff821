"""The real runtimes beside their mirrors: three tables for the report.

1. **Mirror and runtime**: for each signature (CPU-bound scaling, GIL flatness, head-of-line
   blocking, pool caps, idle-connection cost, fan-out, upstream waits), the runtime's
   measurement beside its mirror's, reduced to a shape (a ratio, a class: "scales with
   cores", "flat", "capped at 8 / 50 ms"...) and a verdict on whether the mirror shows the
   runtime's shape. Ratios and shapes, never absolute speed.
2. **Claims decomposed**: each article claim as runtime vs runtime (what the articles measured),
   mirror vs mirror (the concurrency design alone, same C everywhere), and the ratio of the
   two: what the language and its implementation add.
3. **Per-request CPU cost**: server CPU time per request of each mirror against its runtime,
   at the same load (for /cpu, per iteration: the runtimes do different numbers of them).

A peer (registry kind "peer") stands beside the mirror of its role, mode by mode through the
registry's `pairs` (CPython's only mode has a GIL: python/default stands beside threaded/gil
where that ran, else beside threaded/default). Points with errors are not evidence, as in the
claims table. Everything here reads results.json's document: it can be re-run on old results.
"""

import re

from workloads.runner.claims import Data, med, num, rps

SAME, DIFF, NA = "same shape", "different shape", "not measured"


# ----------------------------------------------------------------------------- pairs

class Pairs:
    def __init__(self, doc):
        self.d = Data(doc)
        self.cores = self.d.cores
        self.models = {m["name"]: m for m in doc.get("models", [])}
        self.mirror = {}        # role -> mirror name
        self.peer = {}          # role -> peer name
        for m in doc.get("models", []):
            if m.get("kind") == "peer":
                self.peer.setdefault(m["role"], m["name"])
            elif m.get("kind", "mirror") == "mirror":
                self.mirror.setdefault(m["role"], m["name"])
        self.calibration = dict((doc.get("peers") or {}).get("calibration") or {})
        cal = doc.get("cpu_calibration")
        for role, name in self.mirror.items():
            if cal:
                self.calibration.setdefault(name, cal)

    def roles(self):
        return [r for r in ("python", "node", "go") if r in self.mirror and r in self.peer]

    def mirror_mode(self, role, peer_mode, scenario, step=None):
        """The mirror mode that stands beside the peer's mode in this scenario (the first of
        its pairs with points there), or None."""
        peer = self.models.get(self.peer[role], {})
        prefs = (peer.get("pairs") or {}).get(peer_mode, [peer_mode])
        for mm in prefs:
            if any(p["scenario"] == scenario and p["model"] == self.mirror[role] and
                   p["mode"] == mm and (step is None or p["step"] == step)
                   for p in self.d.points):
                return mm
        return None

    def pair(self, role, scenario, step, peer_mode="default"):
        """(peer model, peer mode, mirror model, mirror mode) with points in this step."""
        if role not in self.peer or role not in self.mirror:
            return None
        mm = self.mirror_mode(role, peer_mode, scenario, step)
        if mm is None:
            return None
        if not self.d.find(scenario, step, self.peer[role], peer_mode):
            return None
        return self.peer[role], peer_mode, self.mirror[role], mm


def iterations(p):
    m = re.search(r"iterations=(\d+)", p.get("path", ""))
    return int(m.group(1)) if m else None


def work_rate(p):
    """/cpu iterations per second (the runtimes get different iteration counts)."""
    r, n = rps(p), iterations(p)
    return r * n if r is not None and n else None


def fx(v, digits=2):
    return "n/a" if v is None else ("%.*fx" % (digits, v))


def ratio(a, b):
    return a / b if a is not None and b not in (None, 0) else None


def lab(model, mode):
    return "%s/%s" % (model, mode)


def cpu_bound_note(p, usable):
    """Why a runtime falls short where its mirror does not: its server was CPU-bound."""
    c = med(p, "srv_cpu_cores")
    if c is not None and c >= 0.85 * usable:
        return ("the runtime is CPU-bound here (%.2f of its %g usable cores, %s µs of CPU per "
                "request): the language's cost, not the design's" %
                (c, usable, num(med(p, "srv_cpu_us_per_req"))))
    return None


def kernel_dials(p):
    """Dials per request as the kernel saw them (SYNs to the upstream), the same measure for a
    runtime and its mirror; else the TIME_WAIT lower bound. (value, what it is)"""
    v = med(p, "up_dials_kernel_per_req")
    if v is not None:
        return v, "dials"
    v = med(p, "up_tcp_closed_per_req")
    return v, "connections closed (at least)"


def in_flight_note(rt, mi):
    """Why a runtime did not have its calls waiting as its mirror did."""
    n = rt["connections"]
    ra, rb = med(rt, "srv_cpu_us_per_req"), med(mi, "srv_cpu_us_per_req")
    return ("the runtime never had the calls in flight: at %d connections it served %s req/s "
            "with %s threads, at %s µs of CPU per request (%s the mirror's %s): the cost of "
            "each request in the language, not the design, keeps the waits from piling up" % (
                n, num(rps(rt)), num(med(rt, "srv_threads_max")), num(ra), fx(ratio(ra, rb), 1),
                num(rb)))


def usable_cores(role, mode, cores):
    """Cores a runtime's design can use: one for a GIL process or an event loop."""
    if role in ("python", "node") and "workers2" not in mode and "cluster2" not in mode:
        return 1.0
    return float(cores)


def sig_row(signature, scenario, rt, rt_meas, mi, mi_meas, rt_shape, mi_shape, verdict, why=""):
    return {"signature": signature, "scenario": scenario, "runtime": rt,
            "runtime_measured": rt_meas, "mirror": mi, "mirror_measured": mi_meas,
            "runtime_shape": rt_shape, "mirror_shape": mi_shape, "verdict": verdict,
            "why": why}


def judge(a, b, why_if_differ=""):
    if a is None or b is None:
        return NA, ""
    return (SAME, "") if a == b else (DIFF, why_if_differ)


# --------------------------------------------------------------- 1. mirror and runtime

def scaling_class(used):
    """CPU-bound work at the highest concurrency: one core or more. Judged on the server's CPU
    (cores used), not on req/s from 1 connection, which idles between requests."""
    if used is None:
        return None
    return "uses more than one core" if used > 1.2 else "one core"


def sig_cpu_scaling(P):
    rows = []
    for role in ("node", "go"):
        pr = P.pair(role, "cpu-bound", "cpu-5ms")
        if pr is None:
            continue
        peer, pm, mir, mm = pr
        vals = []
        for model, mode in ((peer, pm), (mir, mm)):
            one = P.d.one("cpu-bound", "cpu-5ms", model, mode, 1)
            top = P.d.top("cpu-bound", "cpu-5ms", model, mode)
            if one is None or top is None or top["connections"] == 1:
                vals.append((None, "n/a", None))
                continue
            r = ratio(rps(top), rps(one))
            used = med(top, "srv_cpu_cores")
            vals.append((used, "c=1 %s req/s, c=%d %s req/s: %s, %.2f cores" % (
                num(rps(one)), top["connections"], num(rps(top)), fx(r), used or 0), top))
        a, b = scaling_class(vals[0][0]), scaling_class(vals[1][0])
        v, why = judge(a, b)
        rows.append(sig_row("CPU-bound scaling: cores used at 4x cores connections", "cpu-bound",
                            lab(peer, pm), vals[0][1], lab(mir, mm), vals[1][1], a, b, v, why))
    return rows


def sig_gil(P):
    role = "python"
    pr = P.pair(role, "cpu-bound", "cpu-5ms")
    if pr is None:
        return []
    peer, pm, mir, mm = pr
    out = []
    for model, mode, wmode in ((peer, pm, "workers2"), (mir, mm, mm + "+workers2")):
        one = P.d.one("cpu-bound", "cpu-5ms", model, mode, 1)
        top = P.d.top("cpu-bound", "cpu-5ms", model, mode)
        w = P.d.top("cpu-bound", "cpu-5ms", model, wmode)
        if one is None or top is None or top["connections"] == 1:
            out.append((None, "n/a"))
            continue
        r = ratio(rps(top), rps(one))
        c_top = med(top, "srv_cpu_cores")
        text = "threads: c=1 %s, c=%d %s req/s (%s), %.2f cores" % (
            num(rps(one)), top["connections"], num(rps(top)), fx(r), c_top or 0)
        cls = "one core in threads" if scaling_class(c_top) == "one core" else \
            "more than one core in threads"
        if w is not None:
            c_w = med(w, "srv_cpu_cores")
            text += "; 2 processes: %s req/s (%s), %.2f cores" % (
                num(rps(w)), fx(ratio(rps(w), rps(top))), c_w or 0)
            cls += ", %s with 2 processes" % ("more" if scaling_class(c_w) != "one core"
                                              else "one core")
        out.append((cls, text))
    v, why = judge(out[0][0], out[1][0])
    if v == DIFF and out[0][0] and out[1][0] and out[0][0].split(",")[0] == \
            out[1][0].split(",")[0]:
        why = ("the same in threads; the 2 processes differ: with 8 keep-alive connections on "
               "a shared listening socket, the kernel may give most of them to one process "
               "(gunicorn and triad --workers alike), so this is luck of the draw, run to run")
    return [sig_row("GIL flatness: threads do not add cores, processes do", "cpu-bound",
                    lab(peer, pm), out[0][1], lab(mir, mm), out[1][1], out[0][0], out[1][0],
                    v, why)]


def hol_class(added):
    """What 50 ms handlers add to the light requests' p99: less than most of a handler (a
    switch interval, a preemption quantum, another core), or about a whole one."""
    if added is None:
        return None
    if added < 40:
        return "bounded (< 40 ms added)"
    return "waits for the whole handler (>= 40 ms added)"


def sig_head_of_line(P):
    rows = []
    for role in ("python", "node", "go"):
        pr = P.pair(role, "head-of-line", "json+cpu50ms")
        if pr is None:
            continue
        peer, pm, mir, mm = pr
        vals = []
        for model, mode in ((peer, pm), (mir, mm)):
            a = P.d.one("head-of-line", "json-alone", model, mode)
            m = P.d.one("head-of-line", "json+cpu50ms", model, mode)
            if a is None or m is None:
                vals.append((None, "n/a"))
                continue
            pa, pmx = med(a, "lat_p99_ms"), med(m, "lat_p99_ms")
            added = pmx - pa if None not in (pa, pmx) else None
            vals.append((hol_class(added), "/json p99 %s → %s ms (+%s)%s" % (
                num(pa), num(pmx), num(added),
                "; bg /cpu p50 %s ms" % num(med(m, "bg_p50_ms")) if med(m, "bg_p50_ms")
                else "")))
        v, why = judge(vals[0][0], vals[1][0])
        if v == DIFF and role == "python":
            why = ("CPython's light requests take the GIL several times each (parsing, the "
                   "app, the response) and lose about a switch interval at each; the mirror's "
                   "request takes it once")
        rows.append(sig_row("head-of-line blocking under 50 ms /cpu handlers", "head-of-line",
                            lab(peer, pm), vals[0][1], lab(mir, mm), vals[1][1], vals[0][0],
                            vals[1][0], v, why))
    return rows


def io_class(p, cap):
    r, frac = rps(p), med(p, "little_frac")
    if r is None:
        return None
    if cap and r <= 1.15 * cap and (frac or 0) < 0.8:
        return "capped at the pool (%d / %d ms)" % (cap[0], cap[1]) if isinstance(cap, tuple) \
            else "capped at the pool"
    if frac is not None and frac >= 0.8:
        return "follows Little's law (>= 80%)"
    return "falls short of Little's law"


def sig_pool_caps(P):
    rows = []
    for role in ("python", "node", "go"):
        pr = P.pair(role, "io-bound", "io-50ms")
        if pr is None:
            continue
        peer, pm, mir, mm = pr
        levels = sorted({p["connections"] for p in P.d.find("io-bound", "io-50ms", mir, mm)})
        if not levels:
            continue
        n = levels[0]
        vals = []
        for model, mode in ((peer, pm), (mir, mm)):
            p = P.d.one("io-bound", "io-50ms", model, mode, n)
            if p is None:
                vals.append((None, "n/a", None))
                continue
            cap = 8 * 1000.0 / 50 if role == "python" else None
            cls = io_class(p, cap)
            if cls and cls.startswith("capped"):
                cls = "capped at the pool (8 threads / 50 ms = 160 req/s)"
            vals.append((cls, "c=%d: %s req/s, %.0f%% of Little's law, %s threads" % (
                n, num(rps(p)), 100 * (med(p, "little_frac") or 0),
                num(med(p, "srv_threads_max"))), p))
        v, why = judge(vals[0][0], vals[1][0])
        if v == DIFF and vals[0][2] is not None:
            why = cpu_bound_note(vals[0][2], usable_cores(role, pm, P.cores)) or ""
        rows.append(sig_row("pool caps: I/O waits at %d connections" % n, "io-bound",
                            lab(peer, pm), vals[0][1], lab(mir, mm), vals[1][1], vals[0][0],
                            vals[1][0], v, why))
    return rows


def sig_idle(P):
    rows = []
    for role in ("python", "node", "go"):
        pr = P.pair(role, "idle", "idle")
        if pr is None:
            continue
        peer, pm, mir, mm = pr
        top_n = max(p["connections"] for p in P.d.find("idle", "idle", peer, pm))
        vals = []
        for model, mode in ((peer, pm), (mir, mm)):
            p = P.d.one("idle", "idle", model, mode, top_n)
            if p is None or med(p, "kib_per_conn") is None:
                vals.append((None, "n/a", None))
                continue
            tpc = med(p, "threads_per_conn") or 0
            cls = "a thread per connection" if tpc >= 0.5 else "no thread per connection"
            vals.append((cls, "%d held: %s KiB and %.3f threads per connection" % (
                med(p, "idle_alive_open") or 0, num(med(p, "kib_per_conn")), tpc),
                med(p, "kib_per_conn")))
        r = ratio(vals[0][2], vals[1][2])
        a, b = vals[0][0], vals[1][0]
        if a is not None and r is not None:
            # memory: the same order of magnitude counts as the same shape
            a = "%s, %s" % (a, "KiB within 4x of the mirror's" if 0.25 <= r <= 4 else
                            "KiB %s the mirror's" % fx(r, 1))
            b = "%s, %s" % (b, "KiB within 4x of the mirror's" if 0.25 <= r <= 4 else
                            "KiB %s the mirror's" % fx(r, 1))
        v, why = judge(a, b)
        if r is not None and not 0.25 <= r <= 4:
            v, why = DIFF, ("the runtime's %s KiB per connection against the mirror's %s "
                            "(%s)" % (num(vals[0][2]), num(vals[1][2]), fx(r, 1)))
        rows.append(sig_row("idle-connection cost at %d connections" % top_n, "idle",
                            lab(peer, pm), vals[0][1], lab(mir, mm), vals[1][1],
                            vals[0][0], vals[1][0], v, why))
    return rows


def sig_fanout(P):
    rows = []
    for role in ("python", "node", "go"):
        pr = P.pair(role, "fanout", "fanout-20ms")
        if pr is None:
            continue
        peer, pm, mir, mm = pr
        vals = []
        for model, mode in ((peer, pm), (mir, mm)):
            pts = sorted(P.d.find("fanout", "fanout-20ms", model, mode),
                         key=lambda p: int(p["variables"].get("calls", 0)))
            if len(pts) < 2:
                vals.append((None, "n/a", None))
                continue
            lo, hi = pts[0], pts[-1]
            r = ratio(med(hi, "lat_p50_ms"), med(lo, "lat_p50_ms"))
            cls = "concurrent (p50 within 2x)" if r is not None and r <= 2 else \
                "grows with the number of calls"
            vals.append((cls, "p50 %s ms at calls=%s, %s ms at calls=%s (%s), %s threads" % (
                num(med(lo, "lat_p50_ms")), lo["variables"].get("calls"),
                num(med(hi, "lat_p50_ms")), hi["variables"].get("calls"), fx(r),
                num(med(hi, "srv_threads_max"))), hi))
        v, why = judge(vals[0][0], vals[1][0])
        if v == DIFF and vals[0][2] is not None:
            why = cpu_bound_note(vals[0][2], usable_cores(role, pm, P.cores)) or ""
        rows.append(sig_row("fan-out: N concurrent 20 ms waits", "fanout", lab(peer, pm),
                            vals[0][1], lab(mir, mm), vals[1][1], vals[0][0], vals[1][0], v,
                            why))
    return rows


def sig_upstream(P):
    rows = []
    sc, st = "upstream-bound", "upstream-1x50ms"
    peer_modes = {"python": ["threads1000", "default"], "node": ["default"], "go": ["default"]}
    for role in ("python", "node", "go"):
        for pm0 in peer_modes[role]:
            pr = P.pair(role, sc, st, pm0)
            if pr is None:
                continue
            peer, pm, mir, mm = pr
            vals = []
            for model, mode in ((peer, pm), (mir, mm)):
                pts = sorted(P.d.find(sc, st, model, mode), key=lambda p: p["connections"])
                if not pts:
                    vals.append((None, "n/a", None))
                    continue
                lo, hi = pts[0], pts[-1]
                grow = None
                if hi["connections"] > lo["connections"]:
                    grow = ((med(hi, "srv_threads_max") or 0) - (med(lo, "srv_threads_max") or 0)) \
                        / (hi["connections"] - lo["connections"])
                frac = med(hi, "little_frac") or 0
                if grow is None:
                    tcls = None
                elif grow >= 0.5:
                    tcls = "a thread per waiting call"
                elif grow < 0.05:
                    tcls = "constant threads"
                else:
                    tcls = "threads grow with the calls"
                if rps(hi) is not None and mode in ("default",) and role == "python" and \
                        rps(hi) <= 1.15 * 160:
                    lcls = "capped at the pool"
                else:
                    lcls = ("follows Little's law (>= 90%)" if frac >= 0.9 else
                            "80-90% of Little's law" if frac >= 0.8 else
                            "falls short of Little's law")
                cls = "%s; %s" % (tcls, lcls) if tcls else lcls
                dials = med(hi, "up_dials_per_req")
                kd, what = kernel_dials(hi)
                text = ("c=%d → %d: threads %s → %s; at %d %s req/s = %.0f%% of Little's law, "
                        "%s descriptors, %s µs CPU/req, upstream %s per request (kernel) "
                        "%s%s" % (lo["connections"], hi["connections"],
                                  num(med(lo, "srv_threads_max")), num(med(hi, "srv_threads_max")),
                                  hi["connections"], num(rps(hi)), 100 * frac,
                                  num(med(hi, "srv_fds_max")), num(med(hi, "srv_cpu_us_per_req")),
                                  what, "n/a" if kd is None else "%.2f" % kd,
                                  "" if dials is None else " (pool gauge: %.2f dials)" % dials))
                vals.append((cls, text, hi))
            v, why = judge(vals[0][0], vals[1][0])
            if v == DIFF and vals[0][2] is not None and vals[1][2] is not None:
                why = cpu_bound_note(vals[0][2], usable_cores(role, pm, P.cores)) or \
                    in_flight_note(vals[0][2], vals[1][2])
            rows.append(sig_row("upstream waits: /upstream?calls=1&ms=50", sc, lab(peer, pm),
                                vals[0][1], lab(mir, mm), vals[1][1], vals[0][0], vals[1][0],
                                v, why))
    # the keep-alive pool under a fan-out of 100 calls: dials per request, the kernel's view
    st = "upstream-100x20ms"
    for role in ("python", "node", "go"):
        pr = P.pair(role, sc, st)
        if pr is None:
            continue
        peer, pm, mir, mm = pr
        vals = []
        for model, mode in ((peer, pm), (mir, mm)):
            p = P.d.top(sc, st, model, mode)
            kd, what = kernel_dials(p) if p is not None else (None, "")
            if kd is None:
                vals.append((None, "n/a"))
                continue
            cls = ("dials for most calls (> 50 of 100)" if kd > 50 else
                   "reuses most connections")
            vals.append((cls, "%s req/s, p50 %s ms, %.1f upstream %s per request (kernel), "
                              "%s threads" % (num(rps(p)), num(med(p, "lat_p50_ms")), kd, what,
                                              num(med(p, "srv_threads_max")))))
        v, why = judge(vals[0][0], vals[1][0])
        rows.append(sig_row("keep-alive pool under 100 concurrent calls", sc, lab(peer, pm),
                            vals[0][1], lab(mir, mm), vals[1][1], vals[0][0], vals[1][0], v, why))
    return rows


SIGNATURES = [sig_cpu_scaling, sig_gil, sig_head_of_line, sig_pool_caps, sig_idle, sig_fanout,
              sig_upstream]


# --------------------------------------------------------------- 2. claims decomposed

def dec_row(cid, claim, scenario, rt, mi, rt_ratio, mi_ratio, reading):
    lang = ratio(rt_ratio, mi_ratio)
    return {"id": cid, "claim": claim, "scenario": scenario, "runtimes": rt, "mirrors": mi,
            "runtime_ratio": rt_ratio, "mirror_ratio": mi_ratio, "language_ratio": lang,
            "reading": reading(rt_ratio, mi_ratio, lang) if callable(reading) else reading}


def _both(P, roles):
    return all(r in P.peer and r in P.mirror for r in roles)


def dec_go_node_cpu(P):
    c = "Go is 2-3x faster than Node on CPU-bound work"
    if not _both(P, ("go", "node")):
        return None
    out = []
    for level in ("top", 1):
        def pick(model, mode="default"):
            if level == "top":
                return P.d.top("cpu-bound", "cpu-5ms", model, mode)
            return P.d.one("cpu-bound", "cpu-5ms", model, mode, 1)
        g, n = pick(P.peer["go"]), pick(P.peer["node"])
        cg, ce = pick(P.mirror["go"]), pick(P.mirror["node"])
        if None in (g, n, cg, ce):
            continue
        rr = ratio(work_rate(g), work_rate(n))
        mr = ratio(rps(cg), rps(ce))
        conns = g["connections"]
        out.append(dec_row(
            "go-vs-node-cpu" + ("-1conn" if level == 1 else ""),
            c + (" (1 connection: one core each)" if level == 1 else ""),
            "cpu-bound",
            "/cpu at c=%d: go %s, node %s iterations/s: %s" % (
                conns, num(work_rate(g)), num(work_rate(n)), fx(rr)),
            "coro %s, evloop %s req/s (same C): %s" % (num(rps(cg)), num(rps(ce)), fx(mr)),
            rr, mr,
            lambda r, m, l: "design (cores) %s x language and implementation %s = %s" % (
                fx(m), fx(l), fx(r))))
    return out


def dec_node_io(P):
    c = "Node is excellent for I/O-bound work"
    if not _both(P, ("node", "go", "python")):
        return None
    out = []
    for sc, st in (("io-bound", "io-50ms"), ("upstream-bound", "upstream-1x50ms")):
        levels = sorted({p["connections"] for p in P.d.find(sc, st, P.peer["node"], "default")})
        if not levels:
            continue
        n = levels[-1]

        def best(role, side):
            model = (P.peer if side == "peer" else P.mirror)[role]
            pts = [p for p in P.d.points if (p["scenario"], p["step"], p["model"],
                                             p["connections"]) == (sc, st, model, n)]
            return max(pts, key=lambda p: rps(p) or 0) if pts else None
        node, mnode = best("node", "peer"), best("node", "mirror")
        others = [p for p in (best("go", "peer"), best("python", "peer")) if p]
        mothers = [p for p in (best("go", "mirror"), best("python", "mirror")) if p]
        if node is None or mnode is None or not others or not mothers:
            continue
        o, mo = max(others, key=lambda p: rps(p) or 0), max(mothers, key=lambda p: rps(p) or 0)
        rr, mr = ratio(rps(node), rps(o)), ratio(rps(mnode), rps(mo))
        out.append(dec_row(
            "node-io", c, sc,
            "%s at c=%d: node %s req/s (%.0f%% of Little's law) vs best other %s %s: %s" % (
                st, n, num(rps(node)), 100 * (med(node, "little_frac") or 0),
                lab(o["model"], o["mode"]), num(rps(o)), fx(rr)),
            "evloop %s (%.0f%%) vs best other %s %s: %s" % (
                num(rps(mnode)), 100 * (med(mnode, "little_frac") or 0),
                lab(mo["model"], mo["mode"]), num(rps(mo)), fx(mr)),
            rr, mr,
            lambda r, m, l: "design %s x language and implementation %s = %s" % (
                fx(m), fx(l), fx(r))))
    return out


def dec_python_slower(P):
    c = "Python is slower"
    if not _both(P, ("python", "go")):
        return None
    out = []
    py, go = P.peer["python"], P.peer["go"]
    g = P.d.top("cpu-bound", "cpu-5ms", go)
    p = P.d.top("cpu-bound", "cpu-5ms", py)
    mg = P.d.top("cpu-bound", "cpu-5ms", P.mirror["go"])
    mp = P.d.top("cpu-bound", "cpu-5ms", P.mirror["python"], "gil")
    if None not in (g, p, mg, mp):
        rr, mr = ratio(work_rate(p), work_rate(g)), ratio(rps(mp), rps(mg))
        out.append(dec_row(
            "python-slower", c + " (CPU-bound)", "cpu-bound",
            "/cpu at c=%d: python %s, go %s iterations/s: %s" % (
                p["connections"], num(work_rate(p)), num(work_rate(g)), fx(rr, 3)),
            "threaded --gil %s, coro %s req/s: %s" % (num(rps(mp)), num(rps(mg)), fx(mr)),
            rr, mr,
            lambda r, m, l: "the GIL (design) %s x the interpreter %s = %s" % (
                fx(m), fx(l, 3), fx(r, 3))))
    levels = sorted({q["connections"] for q in P.d.find("hello", "json", py)})
    for n in levels[-1:]:
        p, g = P.d.one("hello", "json", py, "default", n), P.d.one("hello", "json", go,
                                                                   "default", n)
        mp = P.d.one("hello", "json", P.mirror["python"], "default", n)
        mg = P.d.one("hello", "json", P.mirror["go"], "default", n)
        if None in (p, g, mp, mg):
            continue
        rr, mr = ratio(rps(p), rps(g)), ratio(rps(mp), rps(mg))
        out.append(dec_row(
            "python-slower-json", c + " (/json)", "hello",
            "/json at c=%d: python %s, go %s req/s: %s" % (n, num(rps(p)), num(rps(g)), fx(rr)),
            "threaded %s, coro %s req/s: %s" % (num(rps(mp)), num(rps(mg)), fx(mr)),
            rr, mr,
            lambda r, m, l: "design %s x interpreter and framework %s = %s" % (
                fx(m), fx(l), fx(r))))
    return out


def dec_go_connections(P):
    c = "Goroutines handle tens of thousands of connections with minimal memory"
    if not _both(P, ("go", "node")):
        return None
    go, node = P.peer["go"], P.peer["node"]
    levels = sorted({p["connections"] for p in P.d.find("idle", "idle", go)})
    if not levels:
        return None
    n = levels[-1]
    g, e = P.d.one("idle", "idle", go, "default", n), P.d.one("idle", "idle", node, "default", n)
    mg = P.d.one("idle", "idle", P.mirror["go"], "default", n)
    me = P.d.one("idle", "idle", P.mirror["node"], "default", n)
    if None in (g, e, mg, me):
        return None
    k = lambda p: med(p, "kib_per_conn")  # noqa: E731
    rr, mr = ratio(k(g), k(e)), ratio(k(mg), k(me))
    return [dec_row(
        "go-connections", c, "idle",
        "%d idle connections: go %s KiB, node %s KiB per connection: %s" % (
            n, num(k(g)), num(k(e)), fx(rr)),
        "coro %s KiB, evloop %s KiB: %s" % (num(k(mg)), num(k(me)), fx(mr)),
        rr, mr,
        lambda r, m, l: "memory per connection, Go against Node: design %s x runtime %s = %s" % (
            fx(m), fx(l), fx(r)))]


def dec_node_chokes(P):
    c = "Node might choke without careful tuning"
    if not _both(P, ("node", "go")):
        return None

    def inflation(model):
        a = P.d.one("head-of-line", "json-alone", model)
        m = P.d.one("head-of-line", "json+cpu50ms", model)
        if a is None or m is None:
            return None, None, None
        return ratio(med(m, "lat_p99_ms"), med(a, "lat_p99_ms")), med(a, "lat_p99_ms"), \
            med(m, "lat_p99_ms")
    n, g = inflation(P.peer["node"]), inflation(P.peer["go"])
    mn, mg = inflation(P.mirror["node"]), inflation(P.mirror["go"])
    if None in (n[0], g[0], mn[0], mg[0]):
        return None
    rr, mr = ratio(n[0], g[0]), ratio(mn[0], mg[0])
    return [dec_row(
        "node-chokes", c, "head-of-line",
        "/json p99 with 50 ms /cpu handlers / alone: node %s (%s → %s ms), go %s: %s" % (
            fx(n[0], 1), num(n[1]), num(n[2]), fx(g[0], 1), fx(rr, 1)),
        "evloop %s (%s → %s ms), coro %s: %s" % (fx(mn[0], 1), num(mn[1]), num(mn[2]),
                                                fx(mg[0], 1), fx(mr, 1)),
        rr, mr,
        lambda r, m, l: "p99 inflation, Node against Go: design %s x runtime %s = %s" % (
            fx(m, 1), fx(l, 1), fx(r, 1)))]


DECOMPOSED = [dec_go_node_cpu, dec_node_io, dec_python_slower, dec_go_connections,
              dec_node_chokes]


# ------------------------------------------------------------ 3. per-request CPU cost

def cpu_cost(P):
    rows = []
    for role in P.roles():
        peer, mir = P.peer[role], P.mirror[role]
        cal_p, cal_m = P.calibration.get(peer), P.calibration.get(mir)
        if cal_p and cal_m:
            rows.append({"role": role, "scenario": "calibration", "step": "/cpu",
                         "load": "1 sequential connection",
                         "runtime": lab(peer, "default"), "mirror": "%s" % cal_m.get(
                             "measured_on", mir),
                         "unit": "ns per /cpu iteration",
                         "runtime_cost": cal_p["ns_per_iteration"],
                         "mirror_cost": cal_m["ns_per_iteration"],
                         "ratio": ratio(cal_p["ns_per_iteration"], cal_m["ns_per_iteration"])})
        for p in P.d.points:
            if p["model"] != peer or p["kind"] == "idle":
                continue
            mm = P.mirror_mode(role, p["mode"], p["scenario"], p["step"])
            if mm is None:
                continue
            q = [x for x in P.d.find(p["scenario"], p["step"], mir, mm)
                 if x["connections"] == p["connections"] and x["variables"] == p["variables"]]
            if not q:
                continue
            q = q[0]
            a, b = med(p, "srv_cpu_us_per_req"), med(q, "srv_cpu_us_per_req")
            if a is None or b is None:
                continue
            unit = "µs per request"
            ip, iq = iterations(p), iterations(q)
            if ip and iq and p["step"] == "cpu-5ms":
                a, b, unit = a * 1000.0 / ip, b * 1000.0 / iq, "ns per /cpu iteration (in load)"
            from workloads.runner.report import load_label
            rows.append({"role": role, "scenario": p["scenario"], "step": p["step"],
                         "load": load_label(p), "runtime": lab(peer, p["mode"]),
                         "mirror": lab(mir, mm), "unit": unit, "runtime_cost": a,
                         "mirror_cost": b, "ratio": ratio(a, b)})
    return rows


# ------------------------------------------------------------------------- evaluate

def evaluate(doc):
    P = Pairs(doc)
    out = {"mirror_runtime": [], "decomposed": [], "cpu_cost": [], "peers_in_run": []}
    out["peers_in_run"] = sorted({p["model"] for p in P.d.points
                                  if P.models.get(p["model"], {}).get("kind") == "peer"})
    if not out["peers_in_run"]:
        return out
    for fn in SIGNATURES:
        try:
            out["mirror_runtime"] += fn(P)
        except Exception as e:  # noqa: BLE001 - a broken table must not lose the run
            out["mirror_runtime"].append(sig_row(fn.__name__, "", "", repr(e), "", "", None,
                                                 None, NA))
    for fn in DECOMPOSED:
        try:
            out["decomposed"] += fn(P) or []
        except Exception as e:  # noqa: BLE001
            out["decomposed"].append(dec_row(fn.__name__, "(evaluation failed)", "", repr(e),
                                             "", None, None, ""))
    try:
        out["cpu_cost"] = cpu_cost(P)
    except Exception as e:  # noqa: BLE001
        out["cpu_cost"] = [{"role": "", "scenario": "(evaluation failed)", "step": repr(e),
                            "load": "", "runtime": "", "mirror": "", "unit": "",
                            "runtime_cost": None, "mirror_cost": None, "ratio": None}]
    return out


# --------------------------------------------------------------------------- markdown

def _c(v):
    return "-" if v is None else num(v)


def markdown(doc, md_table):
    """The report's sections for the three tables (a list of lines)."""
    cmp_ = doc.get("compare") or {}
    peers = doc.get("peers") or {}
    L = ["## Mirrors and their real runtimes", ""]
    if not cmp_.get("peers_in_run"):
        L.append("No peer (real runtime) ran in this run%s." % (
            ": " + "; ".join("%s skipped: %s" % kv for kv in sorted(peers.get("skipped",
                                                                              {}).items()))
            if peers.get("skipped") else ""))
        L.append("")
        return L
    L.append("Each peer (`workloads/peers/`: the same API on Node.js, Go and CPython, written as "
             "their users write them) ran beside its mirror in this run. Peers get their own "
             "`/cpu` calibration (the same milliseconds of work, not the same iterations), so "
             "CPU-bound figures compare work done (iterations per second) or shapes, never "
             "raw req/s across languages.")
    if peers.get("skipped"):
        L.append("")
        for n, why in sorted(peers["skipped"].items()):
            L.append("- peer **%s** skipped: %s" % (n, why))
    L.append("")
    L.append("### Mirror and runtime, signature by signature")
    L.append("")
    L.append("The same signature measured on the real runtime and on its mirror, reduced to a "
             "shape (ratios and classes, not absolute speed); \"same shape\" means the mirror "
             "shows what the runtime shows.")
    L.append("")
    rows = [[r["signature"], r["scenario"], "**%s**: %s" % (r["runtime"], r["runtime_measured"]),
             "**%s**: %s" % (r["mirror"], r["mirror_measured"]),
             "%s / %s" % (r["runtime_shape"] or "-", r["mirror_shape"] or "-"),
             r["verdict"] + ((": " + r["why"]) if r.get("why") else "")]
            for r in cmp_.get("mirror_runtime", [])]
    L.append(md_table(["signature", "scenario", "runtime", "mirror", "shape (runtime / mirror)",
                       "verdict"], rows) if rows else "Nothing to compare in this run.")
    L.append("")
    L.append("### The claims, decomposed")
    L.append("")
    L.append("Each claim as the articles measured it (runtime against runtime), as the "
             "concurrency design alone gives it (mirror against mirror: the same C in every "
             "server), and the ratio of the two: what the language and its implementation "
             "add.")
    L.append("")
    rows = [[r["claim"], r["scenario"], r["runtimes"], r["mirrors"], fx(r["language_ratio"]),
             r["reading"]] for r in cmp_.get("decomposed", [])]
    L.append(md_table(["claim", "scenario", "runtime vs runtime", "mirror vs mirror",
                       "language factor", "reading"], rows) if rows else
             "No claim had both runtimes and both mirrors in this run.")
    L.append("")
    L.append("### Per-request CPU cost: each mirror against its runtime")
    L.append("")
    L.append("Server CPU time (all threads and processes) per completed request, at the same "
             "load; for `/cpu`, per iteration (each runtime got its own count). The ratio is "
             "the cost of the language and framework made visible.")
    L.append("")
    rows = [[r["role"], r["scenario"] + "/" + r["step"], r["load"], r["runtime"], r["mirror"],
             r["unit"], _c(r["runtime_cost"]), _c(r["mirror_cost"]), fx(r["ratio"], 1)]
            for r in cmp_.get("cpu_cost", [])]
    L.append(md_table(["role", "scenario/step", "load", "runtime", "mirror", "unit",
                       "runtime", "mirror", "runtime / mirror"], rows) if rows else
             "No point had both a mirror and its runtime with CPU samples.")
    L.append("")
    return L


def summary_lines(doc, text_table):
    """A few lines for the terminal summary."""
    cmp_ = doc.get("compare") or {}
    peers = doc.get("peers") or {}
    out = []
    for n, why in sorted((peers.get("skipped") or {}).items()):
        out.append("peer %s skipped: %s" % (n, why))
    rows = [[r["signature"], r["runtime"] + " vs " + r["mirror"], r["verdict"]]
            for r in cmp_.get("mirror_runtime", [])]
    if rows:
        out += ["", "mirror and runtime:", text_table(["signature", "runtime vs mirror",
                                                       "verdict"], rows)]
    rows = [[r["claim"], fx(r["runtime_ratio"]), fx(r["mirror_ratio"]), fx(r["language_ratio"])]
            for r in cmp_.get("decomposed", [])]
    if rows:
        out += ["", "claims decomposed:", text_table(["claim", "runtimes", "mirrors",
                                                      "language"], rows)]
    return out


def main(argv=None):
    """python3 -m workloads.runner.compare RESULTS_DIR: evaluate the claims and these tables
    again on a results.json and rewrite report.md (and the plots) beside it."""
    import json
    import os
    import sys
    from workloads.runner import claims, report
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        sys.stderr.write("usage: python3 -m workloads.runner.compare RESULTS_DIR\n")
        return 2
    path = os.path.join(args[0], "results.json")
    with open(path) as f:
        doc = json.load(f)
    doc["claims"] = claims.evaluate(doc)
    doc["compare"] = evaluate(doc)
    report.write_all(doc, args[0])
    print("rewrote %s and report.md" % path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
