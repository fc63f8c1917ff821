"""The model signatures of the upstream-bound scenario, added to the claims table's
signatures (claims.evaluate appends CHECKS): what each mirror must show while its requests wait
on an upstream HTTP service, as its runtime does.
"""

from workloads.runner.claims import NOT_TESTED, fmt_rps, med, missing, ms, nodata, num, row

SC = "upstream-bound"
ONE = "upstream-1x50ms"
SLOW = "upstream-1x200ms"       # full profile: the same 1,000 waits at a quarter of the rate
FAN = "upstream-100x20ms"


def _f(v, fmt="%.2f"):
    return "n/a" if v is None else fmt % v


def describe(p):
    """Little's law, threads, descriptors, CPU per request and the pool of one point."""
    parts = ["%s = %.0f%% of Little's law (%s)" % (fmt_rps(p), 100 * (med(p, "little_frac") or 0),
                                                   num(med(p, "little_rps"))),
             "%s threads" % num(med(p, "srv_threads_max")),
             "%s descriptors" % num(med(p, "srv_fds_max"))]
    if med(p, "srv_cpu_us_per_req") is not None:
        parts.append("%s µs CPU/req" % num(med(p, "srv_cpu_us_per_req")))
    if med(p, "up_dials_per_req") is not None:
        parts.append("%s dials and %s reuses per request" % (
            _f(med(p, "up_dials_per_req")), _f(med(p, "up_reuses_per_req"))))
    if med(p, "mid_goroutines") is not None:
        parts.append("%s goroutines halfway" % num(med(p, "mid_goroutines")))
    return ", ".join(parts)


def _top(d, model, mode="default", step=ONE):
    return d.top(SC, step, model, mode)


def cpu_needed(p):
    """Cores that Little's law's request rate would take at this point's CPU costs: the
    server's and the upstream's per request (wrk's own is on top)."""
    srv, up_s, req = med(p, "srv_cpu_us_per_req"), med(p, "up_cpu_s"), med(p, "requests")
    little = med(p, "little_rps")
    if None in (srv, up_s, little) or not req:
        return None
    return little * (srv + up_s * 1e6 / req) / 1e6


def cpu_note(p):
    need = cpu_needed(p)
    if need is None:
        return ""
    return ("; Little's law's %s req/s would take %.1f cores of server and upstream CPU at "
            "these costs (%s + %s µs per request)" % (
                num(med(p, "little_rps")), need, num(med(p, "srv_cpu_us_per_req")),
                num(med(p, "up_cpu_s") * 1e6 / med(p, "requests"))))


def _waits(d, model, mode="default"):
    """The points a waits signature is judged on: the 200 ms step where it ran (1,000 waiting
    calls within the CPU), else the 50 ms step's highest level; and the 50 ms one for context."""
    slow = d.top(SC, SLOW, model, mode)
    fast = d.top(SC, ONE, model, mode)
    return (slow or fast), (fast if slow else None)

def _context(p, other):
    """What follows a signature's main point: the other step at its level with its CPU note, or
    the main point's own CPU note when there is no other step."""
    if other is None:
        return cpu_note(p)
    return " | %s at %d: %s%s" % (other.get("path", other["step"]), other["connections"],
                                  describe(other), cpu_note(other))


def sig_perconn(d):
    c = "Thread per connection: a thread per waiting upstream call"
    src = "CPython Lib/socketserver.py ThreadingMixIn"
    thr = d.model("python")
    if thr is None:
        return row("sig-upstream-perconn", c, src, SC, "", missing(d, "python"))
    p = _top(d, thr, "perconn")
    if p is None:
        return row("sig-upstream-perconn", c, src, SC, "", nodata(SC))
    n = p["connections"]
    tpc = (med(p, "srv_threads_max") or 0) / n
    meas = "threaded/perconn at %d connections: %s (%.2f threads per connection)" % (
        n, describe(p), tpc)
    pool = _top(d, thr, "default")
    if pool is not None:
        meas += "; pool of 8 at %d: %s (cap 8 / 50 ms = 160 req/s)" % (pool["connections"],
                                                                      fmt_rps(pool))
    ok = 0.9 <= tpc <= 1.2
    return row("sig-upstream-perconn", c, src, SC, meas, "matches" if ok else "does not match")


def sig_evloop(d):
    c = ("Event loop: every upstream wait on its one thread, at 90% of Little's law at "
         "1,000 connections")
    src = "libuv src/unix/core.c uv_run"
    node = d.model("node")
    if node is None:
        return row("sig-upstream-evloop", c, src, SC, "", missing(d, "node"))
    p, other = _waits(d, node)
    if p is None:
        return row("sig-upstream-evloop", c, src, SC, "", nodata(SC))
    frac, thr = med(p, "little_frac") or 0, med(p, "srv_threads_max") or 0
    meas = "evloop, %s at %d connections: %s" % (p.get("path", p["step"]), p["connections"],
                                                 describe(p))
    if med(p, "up_cpu_cores") is not None:
        meas += "; the upstream used %.2f cores" % med(p, "up_cpu_cores")
    meas += _context(p, other)
    ok = frac >= 0.9 and thr <= 1
    v = "matches" if ok else "does not match"
    if not ok and thr <= 1:
        need = cpu_needed(p)
        if (med(p, "srv_cpu_cores") or 0) >= 0.85:
            v += " (its one loop thread is CPU-bound at this load)"
        elif need is not None and need >= 0.8 * d.cores:
            v += (" on Little's law: one thread, as the runtime, but the load asks %.1f cores "
                  "of this %d-core machine" % (need, d.cores))
    return row("sig-upstream-evloop", c, src, SC, meas, v)


def sig_coro(d, cores):
    c = ("Goroutines: one parked goroutine per call on a few threads, at 90% of Little's law "
         "at 1,000 connections")
    src = "Go src/runtime/netpoll.go, proc.go"
    go = d.model("go")
    if go is None:
        return row("sig-upstream-coro", c, src, SC, "", missing(d, "go"))
    p, other = _waits(d, go)
    if p is None:
        return row("sig-upstream-coro", c, src, SC, "", nodata(SC))
    n = p["connections"]
    frac, thr = med(p, "little_frac") or 0, med(p, "srv_threads_max") or 0
    gor = med(p, "mid_goroutines")
    meas = "coro, %s at %d connections: %s" % (p.get("path", p["step"]), n, describe(p))
    meas += _context(p, other)
    # GOMAXPROCS Ms, sysmon, the netpoller's and a spare or two: "a few", never one per call
    few = thr <= 2 * cores + 4
    parked = gor is None or gor >= 0.5 * n
    ok = frac >= 0.9 and few and parked
    v = "matches" if ok else "does not match"
    need = cpu_needed(p)
    if not ok and few and parked and need is not None and need >= 0.8 * cores:
        v += (" on Little's law: a few threads and a goroutine per call, as the runtime, but "
              "the load asks %.1f cores of this %d-core machine" % (need, cores))
    return row("sig-upstream-coro", c, src, SC, meas, v)


def sig_go_idle_pool(d):
    c = ("Keep-alive pools: Go's Transport keeps 2 idle connections per host, so past 2 "
         "concurrent calls nearly every call dials; Node's Agent keeps 256 free sockets and "
         "reuses them (it dials only past 256 concurrent calls)")
    src = "Go src/net/http/transport.go; Node lib/_http_agent.js"
    go, node = d.model("go"), d.model("node")
    m = missing(d, "go", "node")
    if m:
        return row("sig-upstream-pool", c, src, SC, "", m)
    parts = []
    for role in ("python", "node", "go"):
        model = d.model(role)
        if model is None:
            continue
        for mode in ("perconn", "default"):
            for p in sorted(d.find(SC, ONE, model, mode), key=lambda p: p["connections"]):
                if med(p, "up_dials_per_req") is None:
                    continue
                parts.append("%s/%s c=%d: %s dials, %s reuses per request, %s open halfway" % (
                    model, mode, p["connections"], _f(med(p, "up_dials_per_req")),
                    _f(med(p, "up_reuses_per_req")),
                    num(med(p, "mid_upstream_connections_open"))))
    g_top = _top(d, go)
    e_pts = sorted(d.find(SC, ONE, node, "default"), key=lambda p: p["connections"])
    if g_top is None or not e_pts or med(g_top, "up_dials_per_req") is None or \
            med(e_pts[0], "up_dials_per_req") is None:
        return row("sig-upstream-pool", c, src, SC, "; ".join(parts), nodata(SC))
    e_low, e_top = e_pts[0], e_pts[-1]
    g = med(g_top, "up_dials_per_req") or 0
    ok = (g >= 0.5 and (e_low["connections"] > 256 or
                        (med(e_low, "up_dials_per_req") or 0) <= 0.05)
          and g >= 2 * (med(e_top, "up_dials_per_req") or 0))
    return row("sig-upstream-pool", c, src, SC, "; ".join(parts),
               "matches" if ok else "does not match")


def sig_fanout(d):
    c = ("100 concurrent 20 ms upstream calls per request overlap: p50 within 5 x 20 ms, far "
         "from the 2 s of 100 calls in turn (dials, where the pool keeps few, add to it)")
    src = "triad's target (workloads/scenarios/upstream-bound.toml)"
    rows, ok = [], True
    for role in ("python", "node", "go"):
        model = d.model(role)
        if model is None:
            continue
        for mode in ("perconn", "default"):
            p = d.top(SC, FAN, model, mode)
            if p is None:
                continue
            p50 = med(p, "lat_p50_ms")
            rows.append("%s/%s %s, p50 %s, %s threads%s%s" % (
                model, mode, fmt_rps(p), ms(p50), num(med(p, "srv_threads_max")),
                (", %s dials/req" % _f(med(p, "up_dials_per_req"), "%.1f"))
                if med(p, "up_dials_per_req") is not None else "",
                (", %s goroutines halfway" % num(med(p, "mid_goroutines")))
                if med(p, "mid_goroutines") is not None else ""))
            if mode == "perconn" or role != "python":
                ok = ok and p50 is not None and p50 <= 100
    if not rows:
        return row("sig-upstream-fanout", c, src, SC, "", NOT_TESTED)
    return row("sig-upstream-fanout", c, src, SC, "; ".join(rows),
               "matches" if ok else "does not match")


def sig_coro_here(d):
    return sig_coro(d, d.cores)


CHECKS = [sig_perconn, sig_evloop, sig_coro_here, sig_go_idle_pool, sig_fanout]
