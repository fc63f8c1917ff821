"""The model signatures of the upstream-bound scenario (issue 12), added to the claims table's
signatures (claims.evaluate appends CHECKS): what each mirror must show while its requests wait
on an upstream HTTP service, as its runtime does.
"""

from workloads.runner.claims import NOT_TESTED, fmt_rps, med, missing, ms, nodata, num, row

SC = "upstream-bound"
ONE = "upstream-1x50ms"
FAN = "upstream-100x20ms"
SRC = "issue 12, runtimes.md §6"


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


def sig_perconn(d):
    c = "Thread per connection: a thread per waiting upstream call"
    thr = d.model("python")
    if thr is None:
        return row("sig-upstream-perconn", c, SRC, SC, "", missing(d, "python"))
    p = _top(d, thr, "perconn")
    if p is None:
        return row("sig-upstream-perconn", c, SRC, SC, "", nodata(SC))
    n = p["connections"]
    tpc = (med(p, "srv_threads_max") or 0) / n
    meas = "threaded/perconn at %d connections: %s (%.2f threads per connection)" % (
        n, describe(p), tpc)
    pool = _top(d, thr, "default")
    if pool is not None:
        meas += "; pool of 8 at %d: %s (cap 8 / 50 ms = 160 req/s)" % (pool["connections"],
                                                                      fmt_rps(pool))
    ok = 0.9 <= tpc <= 1.2
    return row("sig-upstream-perconn", c, SRC, SC, meas, "matches" if ok else "does not match")


def sig_evloop(d):
    c = ("Event loop: every upstream wait on its one thread, at 90% of Little's law at "
         "1,000 connections")
    node = d.model("node")
    if node is None:
        return row("sig-upstream-evloop", c, SRC, SC, "", missing(d, "node"))
    p = _top(d, node)
    if p is None:
        return row("sig-upstream-evloop", c, SRC, SC, "", nodata(SC))
    frac, thr = med(p, "little_frac") or 0, med(p, "srv_threads_max") or 0
    meas = "evloop at %d connections: %s" % (p["connections"], describe(p))
    if med(p, "up_cpu_cores") is not None:
        meas += "; the upstream used %.2f cores" % med(p, "up_cpu_cores")
    ok = frac >= 0.9 and thr <= 1
    v = "matches" if ok else "does not match"
    if not ok and thr <= 1 and (med(p, "srv_cpu_cores") or 0) >= 0.85:
        v += " (its one loop thread is CPU-bound at this load)"
    return row("sig-upstream-evloop", c, SRC, SC, meas, v)


def sig_coro(d, cores):
    c = ("Goroutines: one parked goroutine per call on a few threads, at 90% of Little's law "
         "at 1,000 connections")
    go = d.model("go")
    if go is None:
        return row("sig-upstream-coro", c, SRC, SC, "", missing(d, "go"))
    p = _top(d, go)
    if p is None:
        return row("sig-upstream-coro", c, SRC, SC, "", nodata(SC))
    n = p["connections"]
    frac, thr = med(p, "little_frac") or 0, med(p, "srv_threads_max") or 0
    gor = med(p, "mid_goroutines")
    meas = "coro at %d connections: %s" % (n, describe(p))
    # GOMAXPROCS Ms, sysmon, the netpoller's and a spare or two: "a few", never one per call
    few = thr <= 2 * cores + 4
    ok = frac >= 0.9 and few and (gor is None or gor >= 0.5 * n)
    return row("sig-upstream-coro", c, SRC, SC, meas, "matches" if ok else "does not match")


def sig_go_idle_pool(d):
    c = ("Keep-alive pools: Go's Transport keeps 2 idle connections per host, so past 2 "
         "concurrent calls nearly every call dials; Node's Agent keeps 256 free sockets and "
         "reuses them (it dials only past 256 concurrent calls)")
    go, node = d.model("go"), d.model("node")
    m = missing(d, "go", "node")
    if m:
        return row("sig-upstream-pool", c, SRC, SC, "", m)
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
        return row("sig-upstream-pool", c, SRC, SC, "; ".join(parts), nodata(SC))
    e_low, e_top = e_pts[0], e_pts[-1]
    g = med(g_top, "up_dials_per_req") or 0
    ok = (g >= 0.5 and (e_low["connections"] > 256 or
                        (med(e_low, "up_dials_per_req") or 0) <= 0.05)
          and g >= 2 * (med(e_top, "up_dials_per_req") or 0))
    return row("sig-upstream-pool", c, SRC, SC, "; ".join(parts),
               "matches" if ok else "does not match")


def sig_fanout(d):
    c = "100 concurrent 20 ms upstream calls per request take about 20 ms"
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
                ok = ok and p50 is not None and p50 <= 40
    if not rows:
        return row("sig-upstream-fanout", c, SRC, SC, "", NOT_TESTED)
    return row("sig-upstream-fanout", c, SRC, SC, "; ".join(rows),
               "matches" if ok else "does not match")


def sig_coro_here(d):
    return sig_coro(d, d.cores)


CHECKS = [sig_perconn, sig_evloop, sig_coro_here, sig_go_idle_pool, sig_fanout]
