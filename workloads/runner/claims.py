"""The claims table: each article claim (and each model signature, with its runtime source),
the scenario that tests it, what this run measured, and a verdict.

Every verdict compares numbers measured side by side in the same run. A claim that needs a
model this run did not include (not built, filtered out, or --target) reads "not tested yet".
Verdicts for article claims: supported / partly supported / not supported / not tested yet.
Verdicts for signatures: matches / does not match / not tested yet.
"""

NOT_TESTED = "not tested yet"


# ------------------------------------------------------------------------ lookups

class Data:
    def __init__(self, doc):
        self.doc = doc
        # points that failed, or where more than 1% of the requests failed, are not evidence
        self.points, self.failed = [], []
        for p in doc.get("points", []):
            m = p.get("summary", {}).get("median", {})
            errs, total = m.get("errors_total") or 0, m.get("requests") or 0
            bad = p.get("error") or (p["kind"] != "idle" and errs > 0.01 * max(total, 1))
            (self.failed if bad else self.points).append(p)
        self.cores = doc.get("pinning", {}).get("server_cores") or 1
        # A role is "in this run" when its model was built and has points in this run. The
        # claims compare triad's own models (the registry's roles, workloads/models.toml): a
        # peer (the real runtime) shares its mirror's role but never stands in for it.
        ran = {p["model"] for p in doc.get("points", [])}
        self.roles = {}
        self.role_names = dict(doc.get("roles", {}))   # role -> model, from the registry
        for m in doc.get("models", []):
            if m.get("kind") == "peer":
                continue
            self.role_names.setdefault(m["role"], m["name"])
            if m.get("built") and m["name"] in ran and m["role"] not in self.roles:
                self.roles[m["role"]] = m["name"]

    def model(self, role):
        return self.roles.get(role)

    def find(self, scenario, step, model, mode="default", connections=None, **variables):
        out = []
        for p in self.points:
            if (p["scenario"], p["step"], p["model"], p["mode"]) != (scenario, step, model, mode):
                continue
            if connections is not None and p["connections"] != connections:
                continue
            if any(str(p["variables"].get(k)) != str(v) for k, v in variables.items()):
                continue
            out.append(p)
        return out

    def one(self, *a, **kw):
        found = self.find(*a, **kw)
        return found[0] if found else None

    def top(self, scenario, step, model, mode="default"):
        """The point with the most connections."""
        found = self.find(scenario, step, model, mode)
        return max(found, key=lambda p: p["connections"]) if found else None

    def levels(self, scenario, step):
        return sorted({p["connections"] for p in self.points
                       if p["scenario"] == scenario and p["step"] == step})


def med(p, key):
    if p is None:
        return None
    return p["summary"]["median"].get(key)


def spread(p, key):
    lo, hi = p["summary"]["min"].get(key), p["summary"]["max"].get(key)
    return lo, hi


def rps(p):
    return med(p, "rps")


def fmt_rps(p):
    v = rps(p)
    if v is None:
        return "n/a"
    lo, hi = spread(p, "rps")
    return "%s req/s (%s-%s)" % (num(v), num(lo), num(hi))


def num(v):
    if v is None:
        return "n/a"
    if v >= 100:
        return "{:,.0f}".format(v)
    if v >= 10:
        return "%.1f" % v
    return "%.2f" % v


def ms(v):
    return "n/a" if v is None else ("%.2f ms" % v if v < 10 else "%.1f ms" % v)


def ratio(a, b):
    if a is None or b in (None, 0):
        return None
    return a / b


def row(cid, claim, source, scenario, measured, verdict):
    return {"id": cid, "claim": claim, "source": source, "scenario": scenario,
            "measured": measured, "verdict": verdict}


FAILED_NOTE = {}


def nodata(scenario):
    bad = FAILED_NOTE.get(scenario)
    if bad:
        return "%s: %s failed in %s (errors; see anomalies)" % (NOT_TESTED, ", ".join(bad),
                                                                scenario)
    return "%s: no %s results in this run" % (NOT_TESTED, scenario)


def missing(d, *roles):
    gone = [r for r in roles if d.model(r) is None]
    if not gone:
        return None
    return "%s: %s not in this run" % (NOT_TESTED, ", ".join(d.role_names.get(r, r)
                                                          for r in gone))


def cpu_level(d, model, mode):
    """cpu-bound point at the highest concurrency (at least the core count in every profile)."""
    return d.top("cpu-bound", "cpu-5ms", model, mode)


# ------------------------------------------------------------------ article claims

def claim_go_vs_node_cpu(d):
    c = "Go is 2-3x faster than Node on CPU-bound work"
    m = missing(d, "go", "node")
    if m:
        return row("go-vs-node-cpu", c, "article", "cpu-bound", "", m)
    go = d.top("cpu-bound", "cpu-5ms", d.model("go"))
    node = d.top("cpu-bound", "cpu-5ms", d.model("node"))
    r = ratio(rps(go), rps(node))
    if r is None:
        return row("go-vs-node-cpu", c, "article", "cpu-bound", "", nodata("cpu-bound"))
    meas = ("coro %s vs evloop %s at %d connections: %.2fx on %d server cores"
            % (fmt_rps(go), fmt_rps(node), go["connections"], r, d.cores))
    if r >= 2.0:
        v = "supported (%.1fx)" % r
    elif d.cores < 3 and r >= 0.8 * d.cores:
        v = ("supported as far as %d cores allow (%.1fx): the gap is the core count, "
             "not the language" % (d.cores, r))
    elif r >= 1.2:
        v = "partly supported (%.1fx)" % r
    else:
        v = "not supported (%.1fx)" % r
    return row("go-vs-node-cpu", c, "article", "cpu-bound", meas, v)


def per_cpu(p):
    """Requests per second of server CPU time (how cheaply a model serves the load)."""
    r, c = rps(p), med(p, "srv_cpu_cores")
    return r / c if r and c else None


# The scenarios the Node I/O claim is judged on: waits on a timer (/io) and on an upstream HTTP
# service (/upstream, one call of 50 ms), each at every connection count of the run.
NODE_IO_SCENARIOS = (("io-bound", "io-50ms", "/io?ms=50"),
                     ("upstream-bound", "upstream-1x50ms", "/upstream?calls=1&ms=50"))


def _node_io_on(d, scenario, step):
    """(measured text, verdict) of the Node I/O claim on one scenario, or None without data."""
    node_model = d.model("node")
    levels = sorted(d.find(scenario, step, node_model, "default"),
                    key=lambda p: p["connections"])
    if not levels:
        return None
    mirrors = set(d.roles.values())
    parts, good, saturated = [], [], []
    for node in levels:
        n = node["connections"]
        frac = med(node, "little_frac") or 0
        others = [p for p in d.points if p["model"] != node["model"] and p["model"] in mirrors
                  and (p["scenario"], p["step"], p["connections"]) == (scenario, step, n)]
        best = max(others, key=lambda p: rps(p) or 0) if others else None
        errs = med(node, "errors_total") or 0
        ahead = best is None or (rps(node) or 0) >= 0.9 * (rps(best) or 0)
        clean = errs <= 0.01 * max(1, med(node, "requests") or 1)
        cores = med(node, "srv_cpu_cores") or 0
        text = ("%d connections: evloop %s = %.0f%% of Little's law (%s req/s) on %s thread(s), "
                "%.2f server cores" % (n, fmt_rps(node), 100 * frac, num(med(node, "little_rps")),
                                       num(med(node, "srv_threads_max")), cores))
        if best is not None:
            text += ", best other %s/%s %s" % (best["model"], best["mode"], fmt_rps(best))
        if errs:
            text += ", %d errors" % errs
        parts.append(text)
        if frac >= 0.7 and ahead and clean:
            good.append(n)
        elif ahead and clean and cores >= 0.85:
            saturated.append(n)  # the one loop thread is the bottleneck, yet still ahead
    meas = "; ".join(parts)
    # "excellent": close to the ideal and at least as good as the other models at that load.
    # Past the load one core can serve, no single-threaded loop can follow Little's law: that
    # is said, not hidden, and still counts if the loop stays ahead of the other models.
    if good and len(good) + len(saturated) == len(levels):
        v = "supported up to %d connections" % max(good)
        if saturated:
            v += ("; at %s the single loop thread is CPU-bound (one core) and still ahead of "
                  "the other models" % ", ".join(str(n) for n in saturated))
    elif good:
        v = "supported up to %d connections only" % max(good)
    else:
        v = "not supported"
    return meas, v


def claim_node_io(d):
    """Judged on /io and on /upstream: the verdict names the scenario each part rests on."""
    c = "Node is excellent for I/O-bound work"
    where = ", ".join(sc for sc, _, _ in NODE_IO_SCENARIOS)
    m = missing(d, "node")
    if m:
        return row("node-io", c, "article", where, "", m)
    meas, verdicts = [], []
    for scenario, step, path in NODE_IO_SCENARIOS:
        got = _node_io_on(d, scenario, step)
        if got is None:
            verdicts.append("`%s` (%s): %s" % (path, scenario, nodata(scenario)))
            continue
        meas.append("`%s` (%s): %s" % (path, scenario, got[0]))
        verdicts.append("`%s` (%s): %s" % (path, scenario, got[1]))
    if not meas:
        return row("node-io", c, "article", where, "", nodata("io-bound"))
    return row("node-io", c, "article", where, " | ".join(meas), "; ".join(verdicts))


def claim_python_slower(d):
    c = "Python is slower"
    m = missing(d, "python")
    if m:
        return row("python-slower", c, "article", "cpu-bound", "", m)
    thr = d.model("python")
    gil = cpu_level(d, thr, "gil")
    free = cpu_level(d, thr, "default")
    if gil is None or free is None:
        return row("python-slower", c, "article", "cpu-bound", "", nodata("cpu-bound"))
    r = ratio(rps(free), rps(gil))
    parts = ["threaded --gil %s vs free threads %s at %d connections (%.2fx)"
             % (fmt_rps(gil), fmt_rps(free), gil["connections"], r or 0)]
    w = cpu_level(d, thr, "gil+workers2")
    if w:
        parts.append("--gil --workers 2: %s" % fmt_rps(w))
    go = d.model("go")
    if go:
        g = cpu_level(d, go, "default")
        if g and rps(gil):
            parts.append("coro %s (%.2fx the GIL)" % (fmt_rps(g), rps(g) / rps(gil)))
    meas = "; ".join(parts)
    if d.cores < 2:
        v = "not testable on 1 core (a GIL only costs parallelism)"
    elif r is not None and r >= 1.5:
        v = ("supported for CPU-bound work on %d cores: the GIL alone costs %.1fx "
             "(same C code; interpreter speed is not part of this)" % (d.cores, r))
    else:
        v = "not supported (%.1fx)" % (r or 0)
    return row("python-slower", c, "article", "cpu-bound", meas, v)


def claim_goroutine_connections(d):
    c = "Goroutines handle tens of thousands of concurrent connections with minimal memory"
    m = missing(d, "go")
    if m:
        return row("go-connections", c, "article", "idle", "", m)
    go = d.top("idle", "idle", d.model("go"))
    if go is None:
        return row("go-connections", c, "article", "idle", "", nodata("idle"))
    n = go["connections"]
    kib = med(go, "kib_per_conn")
    tpc = med(go, "threads_per_conn")
    ok_n = med(go, "idle_alive_open") or 0
    parts = ["coro held %d/%d idle connections: %s KiB and %s threads per connection"
             % (ok_n, n, num(kib), "%.3f" % tpc if tpc is not None else "n/a")]
    # libmicrohttpd's own per-connection buffer is the same under every model: the bare-MHD
    # baseline measures it, and only what a model adds on top is the model's
    floor = d.model("floor")
    extra = None
    if floor:
        f = d.one("idle", "idle", floor, "default", n)
        if f and med(f, "kib_per_conn") is not None and kib is not None:
            extra = kib - med(f, "kib_per_conn")
            parts.append("bare libmicrohttpd %s KiB, so the model adds %s KiB"
                         % (num(med(f, "kib_per_conn")), "%.1f" % extra))
    thr = d.model("python")
    if thr:
        t = d.one("idle", "idle", thr, "perconn", n)
        if t:
            parts.append("threaded thread-per-connection: %s KiB, %.3f threads per connection"
                         % (num(med(t, "kib_per_conn")), med(t, "threads_per_conn") or 0))
    meas = "; ".join(parts)
    model_kib = extra if extra is not None else kib
    good = model_kib is not None and model_kib <= 8 and ok_n >= 0.99 * n and (tpc or 0) < 0.01
    if n < 10000:
        v = ("%s at %d connections (this profile's maximum; the full profile goes to 10,000)"
             % ("consistent" if good else "not supported", n))
    else:
        v = "supported" if good else "not supported"
    return row("go-connections", c, "article", "idle", meas, v)


def claim_node_chokes(d):
    c = "Node might choke without careful tuning"
    m = missing(d, "node")
    if m:
        return row("node-chokes", c, "article", "head-of-line", "", m)
    node = d.model("node")
    alone = d.one("head-of-line", "json-alone", node)
    mix = d.one("head-of-line", "json+cpu50ms", node)
    if alone is None or mix is None:
        return row("node-chokes", c, "article", "head-of-line", "", nodata("head-of-line"))
    p99a, p99m = med(alone, "lat_p99_ms"), med(mix, "lat_p99_ms")
    meas = ("evloop /json p99 %s alone vs %s with a 10/s stream of 50 ms /cpu requests; "
            "p50 %s vs %s"
            % (ms(p99a), ms(p99m), ms(med(alone, "lat_p50_ms")), ms(med(mix, "lat_p50_ms"))))
    if p99a and p99m and p99m >= 20 and p99m >= 10 * p99a:
        v = ("supported: one CPU-bound handler stalls every request (an untuned loop; "
             "the tuning is moving such work off the loop)")
    else:
        v = "not supported"
    return row("node-chokes", c, "article", "head-of-line", meas, v)


# ---------------------------------------------------------------------- signatures

def sig_gil_flat(d):
    c = "GIL: CPU-bound throughput is flat in threads and scales only with processes"
    src = "CPython Python/ceval_gil.c; gunicorn gunicorn/arbiter.py"
    thr = d.model("python")
    if thr is None:
        return row("sig-gil-flat", c, src, "cpu-bound", "", missing(d, "python"))
    one = d.one("cpu-bound", "cpu-5ms", thr, "gil", 1)
    many = cpu_level(d, thr, "gil")
    procs = cpu_level(d, thr, "gil+workers2")
    if one is None or many is None or many["connections"] == 1:
        return row("sig-gil-flat", c, src, "cpu-bound", "", nodata("cpu-bound"))
    r_threads = ratio(rps(many), rps(one))
    meas = "--gil: %s at c=1, %s at c=%d (%.2fx)" % (fmt_rps(one), fmt_rps(many),
                                                     many["connections"], r_threads or 0)
    r_procs = None
    if procs:
        r_procs = ratio(rps(procs), rps(many))
        meas += "; --gil --workers 2 at c=%d: %s (%.2fx)" % (procs["connections"],
                                                             fmt_rps(procs), r_procs or 0)
    if d.cores < 2:
        return row("sig-gil-flat", c, src, "cpu-bound", meas,
                   "not testable on 1 core")
    ok = r_threads is not None and r_threads < 1.3 and (r_procs is None or r_procs >= 1.5)
    return row("sig-gil-flat", c, src, "cpu-bound", meas,
               "matches" if ok else "does not match")


def sig_scales_with_cores(d, role, name):
    c = "%s: CPU-bound throughput scales with cores" % name
    src = {"python": "CPython free-threaded build (PEP 703)",
           "go": "Go src/runtime/proc.go schedinit (GOMAXPROCS)"}.get(role, "")
    model = d.model(role)
    cid = "sig-%s-scales" % role
    if model is None:
        return row(cid, c, src, "cpu-bound", "", missing(d, role))
    one = d.one("cpu-bound", "cpu-5ms", model, "default", 1)
    many = cpu_level(d, model, "default")
    if one is None or many is None or many["connections"] == 1:
        return row(cid, c, src, "cpu-bound", "", nodata("cpu-bound"))
    r = ratio(rps(many), rps(one)) or 0
    meas = "%s at c=1, %s at c=%d: %.2fx on %d cores (server CPU %.2f cores)" % (
        fmt_rps(one), fmt_rps(many), many["connections"], r, d.cores,
        med(many, "srv_cpu_cores") or 0)
    if d.cores < 2:
        return row(cid, c, src, "cpu-bound", meas, "not testable on 1 core")
    return row(cid, c, src, "cpu-bound", meas,
               "matches" if r >= 0.7 * d.cores else "does not match")


def sig_evloop_one_core(d):
    c = "Event loop: CPU-bound throughput stays at one core"
    src = "libuv src/unix/core.c uv_run"
    node = d.model("node")
    if node is None:
        return row("sig-node-one-core", c, src, "cpu-bound", "",
                   missing(d, "node"))
    one = d.one("cpu-bound", "cpu-5ms", node, "default", 1)
    many = d.top("cpu-bound", "cpu-5ms", node)
    if one is None or many is None or many["connections"] == 1:
        return row("sig-node-one-core", c, src, "cpu-bound", "", nodata("cpu-bound"))
    r = ratio(rps(many), rps(one)) or 0
    meas = "%s at c=1, %s at c=%d (%.2fx), server CPU %.2f cores" % (
        fmt_rps(one), fmt_rps(many), many["connections"], r, med(many, "srv_cpu_cores") or 0)
    return row("sig-node-one-core", c, src, "cpu-bound", meas,
               "matches" if r < 1.3 else "does not match")


def sig_pool_caps_io(d):
    c = "Threaded pool of N threads: I/O-bound throughput capped at N / wait; " \
        "thread per connection follows Little's law"
    src = "gunicorn gunicorn/workers/gthread.py; CPython Lib/socketserver.py"
    thr = d.model("python")
    if thr is None:
        return row("sig-pool-io", c, src, "io-bound", "", missing(d, "python"))
    pool = d.top("io-bound", "io-50ms", thr, "default")
    per = d.top("io-bound", "io-50ms", thr, "perconn")
    if pool is None:
        return row("sig-pool-io", c, src, "io-bound", "", nodata("io-bound"))
    parts = ["pool (default 8 threads) %s at %d connections (cap 8/50 ms = 160)"
             % (fmt_rps(pool), pool["connections"])]
    ok = rps(pool) is not None and rps(pool) <= 160 * 1.15
    if per:
        frac = med(per, "little_frac") or 0
        parts.append("thread per connection %s = %.0f%% of Little's law at %d connections"
                     % (fmt_rps(per), 100 * frac, per["connections"]))
        ok = ok and frac >= 0.8
    return row("sig-pool-io", c, src, "io-bound", "; ".join(parts),
               "matches" if ok else "does not match")


def sig_convoy(d):
    c = ("GIL convoy: while a CPU-bound request runs, light ones wait about a switch interval "
         "(their p99 rises by at least ~1 interval, more than without the GIL)")
    src = "CPython Python/ceval_gil.c, sys.getswitchinterval() 5 ms"
    thr = d.model("python")
    if thr is None:
        return row("sig-convoy", c, src, "head-of-line", "", missing(d, "python"))
    vals = {}
    for mode in ("default", "gil"):
        a = d.one("head-of-line", "json-alone", thr, mode)
        m = d.one("head-of-line", "json+cpu50ms", thr, mode)
        if a and m:
            vals[mode] = (med(a, "lat_p50_ms"), med(m, "lat_p50_ms"), med(a, "lat_p99_ms"),
                          med(m, "lat_p99_ms"))
    if "gil" not in vals:
        return row("sig-convoy", c, src, "head-of-line", "", nodata("head-of-line"))
    parts = []
    for mode, (p50a, p50m, p99a, p99m) in vals.items():
        parts.append("%s: /json p50 %s -> %s, p99 %s -> %s" % (
            "--gil" if mode == "gil" else "free threads", ms(p50a), ms(p50m), ms(p99a), ms(p99m)))
    g = vals["gil"]
    si = 5.0  # triad-threaded's default --switch-interval, ms
    added = (g[3] - g[2]) if None not in (g[2], g[3]) else None
    ok = added is not None and added >= 0.8 * si
    if ok and "default" in vals and None not in (vals["default"][2], vals["default"][3]):
        ok = added > (vals["default"][3] - vals["default"][2])
    parts.append("switch interval %g ms" % si)
    return row("sig-convoy", c, src, "head-of-line", "; ".join(parts),
               "matches" if ok else "does not match")


def sig_hol_evloop(d):
    c = "Event loop: a 50 ms handler delays every other request by up to 50 ms"
    src = "libuv src/unix/core.c uv_run"
    node = d.model("node")
    if node is None:
        return row("sig-node-hol", c, src, "head-of-line", "", missing(d, "node"))
    mix = d.one("head-of-line", "json+cpu50ms", node)
    if mix is None:
        return row("sig-node-hol", c, src, "head-of-line", "", nodata("head-of-line"))
    p99 = med(mix, "lat_p99_ms")
    return row("sig-node-hol", c, src, "head-of-line",
               "evloop /json p99 %s, max %s under the /cpu mix" % (ms(p99),
                                                                   ms(med(mix, "lat_max_ms"))),
               "matches" if p99 is not None and p99 >= 25 else "does not match")


def sig_bounded_unfairness(d):
    c = "Goroutines: light requests wait at most about one 10-20 ms preemption quantum"
    src = "Go src/runtime/proc.go sysmon, forcePreemptNS 10 ms"
    go = d.model("go")
    if go is None:
        return row("sig-go-fair", c, src, "head-of-line", "", missing(d, "go"))
    mix = d.one("head-of-line", "json+cpu50ms", go)
    if mix is None:
        return row("sig-go-fair", c, src, "head-of-line", "", nodata("head-of-line"))
    p99 = med(mix, "lat_p99_ms")
    return row("sig-go-fair", c, src, "head-of-line",
               "coro /json p99 %s under the /cpu mix" % ms(p99),
               "matches" if p99 is not None and p99 <= 25 else "does not match")


def sig_thread_per_conn_memory(d):
    c = "Thread per connection: one thread and tens of KiB of RSS per idle connection"
    src = "CPython Lib/socketserver.py ThreadingMixIn"
    thr = d.model("python")
    if thr is None:
        return row("sig-perconn-mem", c, src, "idle", "", missing(d, "python"))
    p = d.top("idle", "idle", thr, "perconn")
    if p is None:
        return row("sig-perconn-mem", c, src, "idle", "", nodata("idle"))
    tpc, kib = med(p, "threads_per_conn"), med(p, "kib_per_conn")
    meas = "%d connections (%d held): %s threads and %s KiB per connection" % (
        p["connections"], med(p, "idle_alive_open") or 0,
        "%.2f" % tpc if tpc is not None else "n/a", num(kib))
    d2 = d.top("idle", "idle", thr, "default")
    if d2:
        meas += "; pool mode: %s threads, %s KiB per connection" % (
            "%.3f" % (med(d2, "threads_per_conn") or 0), num(med(d2, "kib_per_conn")))
    ok = tpc is not None and 0.9 <= tpc <= 1.1 and kib is not None and kib >= 8
    return row("sig-perconn-mem", c, src, "idle", meas,
               "matches" if ok else "does not match")


def sig_evloop_floor(d):
    c = "evloop reaches at least 90% of the bare-libmicrohttpd floor on /json (triad's target)"
    src = "triad's target (workloads/scenarios/hello.toml)"
    m = missing(d, "node", "floor")
    if m:
        return row("sig-evloop-floor", c, src, "hello", "", m)
    node, floor = d.model("node"), d.model("floor")
    pairs = []
    for n in d.levels("hello", "json"):
        a, b = d.one("hello", "json", node, "default", n), d.one("hello", "json", floor,
                                                                "default", n)
        if a and b and rps(b):
            pairs.append((n, rps(a) / rps(b)))
    if not pairs:
        return row("sig-evloop-floor", c, src, "hello", "", nodata("hello"))
    meas = ", ".join("c=%d: %.0f%%" % (n, 100 * r) for n, r in pairs)
    return row("sig-evloop-floor", c, src, "hello", "evloop/baseline " + meas,
               "matches" if min(r for _, r in pairs) >= 0.9 else "does not match")


def sig_fanout(d):
    c = "Fan-out: N concurrent 20 ms waits take about 20 ms, whatever N"
    src = "triad's target (workloads/scenarios/fanout.toml)"
    rows = []
    for role in ("python", "node", "go"):
        model = d.model(role)
        if model is None:
            continue
        pts = d.find("fanout", "fanout-20ms", model)
        if len(pts) < 2:
            continue
        by_calls = sorted(pts, key=lambda p: int(p["variables"].get("calls", 0)))
        lo, hi = by_calls[0], by_calls[-1]
        rows.append((model, lo, hi))
    if not rows:
        return row("sig-fanout", c, src, "fanout", "", NOT_TESTED)
    parts, ok = [], True
    for model, lo, hi in rows:
        a, b = med(lo, "lat_p50_ms"), med(hi, "lat_p50_ms")
        parts.append("%s p50 %s at calls=%s, %s at calls=%s" % (
            model, ms(a), lo["variables"].get("calls"), ms(b), hi["variables"].get("calls")))
        ok = ok and a is not None and b is not None and b <= 2.0 * max(a, 20.0)
    return row("sig-fanout", c, src, "fanout", "; ".join(parts),
               "matches" if ok else "does not match")


def evaluate(doc):
    d = Data(doc)
    FAILED_NOTE.clear()
    for p in d.failed:
        names = FAILED_NOTE.setdefault(p["scenario"], [])
        if p["model"] + "/" + p["mode"] not in names:
            names.append(p["model"] + "/" + p["mode"])
    checks = [
        claim_go_vs_node_cpu, claim_node_io, claim_python_slower, claim_goroutine_connections,
        claim_node_chokes,
        sig_gil_flat,
        lambda x: sig_scales_with_cores(x, "python", "Threaded without a GIL"),
        lambda x: sig_scales_with_cores(x, "go", "Goroutines"),
        sig_evloop_one_core, sig_pool_caps_io, sig_convoy, sig_hol_evloop,
        sig_bounded_unfairness, sig_thread_per_conn_memory, sig_evloop_floor, sig_fanout,
    ]
    from workloads.runner import upstream_sigs     # signatures of the upstream-bound scenario
    checks += upstream_sigs.CHECKS
    out = []
    for check in checks:
        try:
            out.append(check(d))
        except Exception as e:  # a broken evaluator must not lose the run's data
            out.append(row(getattr(check, "__name__", "claim"), "(evaluation failed)",
                           "runner", "", repr(e), NOT_TESTED))
    return out
