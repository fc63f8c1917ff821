#!/usr/bin/python3
"""tour.py - the reading tour's pictures: for each request kind of servers/README.md, a short
trace of each model running the tour's workload for it, and one picture of the three stacked.

    workloads/trace --tour [--kind json,db,...] [--out DIR] [--build-dir DIR] [--no-build]
                           [--keep-traces] [--from DIR]

The workloads, as the tour's sections describe them, each model on a fresh server with
--trace:

  json      one /json
  db        one /db (sqlite)
  io        100 concurrent /io?ms=50: 100 connections opened first, then a request on each
  fanout    one /fanout?calls=100&ms=20
  upstream  one /upstream?calls=10&ms=20, a second triad-evloop playing the upstream service
  cpu       a /cpu of about 50 ms, and a /json sent every 4 ms from 15 ms before it

A single-request kind warms the server up first (8 requests at once: each pool thread opens
its database connection on its first /db; for /upstream, one request, so that the recorded
one finds the keep-alive pool as every request after the first does), then sends 5 requests one
at a time and draws the fastest: the one the other jobs of a busy machine disturbed least.

The models: triad-threaded --gil (gthread's pool mode, with CPython's GIL), triad-evloop,
triad-coro --procs 2. Each picture stacks the three, in ms from when the client sent the
request (the /cpu, for cpu), cropped to the requests' span, on one time axis unless one model
took more than three times as long as another (then each panel has its own, and says so).
Tracks are named as in the trace (acceptor, pool-N, GIL; loop, pool-N; P0, M0, sysmon). This
file records, reads and checks the traces; tour_draw.py draws them.

Each run is checked for what the tour's caption says of that model (observe below) and
repeated, at most ATTEMPTS times, if a busy machine hid it; report.md lists what each trace
showed. --keep-traces keeps each trace, cropped to its picture's window, and the client's
timings; --from DIR draws the pictures again from them.

Standard library plus matplotlib (Debian's python3-matplotlib: run with /usr/bin/python3).
"""

import argparse
import datetime
import json
import os
import re
import selectors
import shutil
import socket
import sys
import tempfile
import threading
import time

import timeline
from tour_draw import render, route_of, window

ROOT = timeline.ROOT
ATTEMPTS = 3

# name, binary (relative to the build directory), arguments
MODELS = [
    ("threaded", "servers/threaded/triad-threaded", ["--gil"]),
    ("evloop", "servers/evloop/triad-evloop", []),
    ("coro", "servers/coro/triad-coro", ["--procs", "2"]),
]
KINDS = ["json", "db", "io", "fanout", "upstream", "cpu"]

PATHS = {"json": "/json", "db": "/db", "io": "/io?ms=50", "fanout": "/fanout?calls=100&ms=20",
         "upstream": "/upstream?calls=10&ms=20"}
IO_CONNS = 100
SINGLE_TRIES = 5
CPU_MS = 50
CPU_AT_S = 0.015
JSON_EVERY_S = 0.004
CPU_RUN_S = 0.090
CALIBRATED = {}  # /cpu iterations per ms, measured on the first model, the same for all three

TITLES = {
    "json": "one /json",
    "db": "one /db (sqlite)",
    "io": "100 concurrent /io?ms=50",
    "fanout": "one /fanout?calls=100&ms=20",
    "upstream": "one /upstream?calls=10&ms=20, after a first one that filled the keep-alive pool",
    "cpu": "a /cpu (%d ms of CPU on an idle core), a /json every %d ms" % (
        CPU_MS, JSON_EVERY_S * 1000),
}


def kind_route(kind):
    """The route a kind's picture is about: its request's ("/io"), or /cpu's."""
    return route_of(PATHS.get(kind, "/cpu"))


# ---- driving the servers ---------------------------------------------------------------------

def one(port, path, conn=None):
    """One request, timed from the client: (path, sent, answered), monotonic seconds (the
    clock the server's trace uses)."""
    t0 = time.monotonic()
    _, conn = timeline.get(port, path, conn)
    return (path, t0, time.monotonic()), conn


def drive_single(port, path, warm):
    """`warm` requests at once to warm up (every pool thread opens its own database connection
    on its first /db), then SINGLE_TRIES more, one at a time on a fresh connection, 30 ms
    apart; the picture shows the fastest, the one that the other jobs of a busy machine
    disturbed least (a 2-core machine shared with benchmarks can hold a runnable thread for
    milliseconds)."""
    drive_burst(port, path, warm)
    reqs = []
    for _ in range(SINGLE_TRIES):
        time.sleep(0.03)
        req, c = one(port, path)
        c.close()
        reqs.append(req)
    return [min(reqs, key=lambda r: r[2] - r[1])]


def drive_burst(port, path, n):
    """n connections opened first, then one request on each sent in a tight loop, answers read
    as they come: n requests in flight at once, as wrk -c n would have them."""
    socks = [socket.create_connection(("127.0.0.1", port), timeout=30) for _ in range(n)]
    time.sleep(0.05)  # let the server accept them all before the requests go
    data = ("GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n" % path).encode()
    sel, sent, got, done = selectors.DefaultSelector(), {}, {}, {}
    for s in socks:
        sent[s] = time.monotonic()
        s.sendall(data)
    for s in socks:
        sel.register(s, selectors.EVENT_READ)
        got[s] = b""
    deadline = time.monotonic() + 30
    while len(done) < n and time.monotonic() < deadline:
        for key, _ in sel.select(1):
            s = key.fileobj
            chunk = s.recv(65536)
            got[s] += chunk
            head, sep, body = got[s].partition(b"\r\n\r\n")
            length = [int(h.split(b":")[1]) for h in head.split(b"\r\n")
                      if h.lower().startswith(b"content-length:")]
            if not chunk or (sep and length and len(body) >= length[0]):
                done[s] = time.monotonic()
                sel.unregister(s)
    for s in socks:
        s.close()
    return [(path, sent[s], done.get(s, deadline)) for s in socks]


def drive_cpu(port):
    """A /cpu of CPU_MS at CPU_AT_S, and a /json every JSON_EVERY_S from 0 to CPU_RUN_S, each
    on its own connection (a stalled server must not slow the sending down)."""
    if "per_ms" not in CALIBRATED:
        CALIBRATED["per_ms"] = timeline.calibrate(port)
    per_ms = CALIBRATED["per_ms"]
    time.sleep(0.05)
    reqs, lock, threads = [], threading.Lock(), []

    def send(path):
        try:
            req, c = one(port, path)
            c.close()
            with lock:
                reqs.append(req)
        except OSError:
            pass

    t0, k, cpu_sent = time.monotonic(), 0, False
    while time.monotonic() - t0 < CPU_RUN_S:
        now = time.monotonic() - t0
        if not cpu_sent and now >= CPU_AT_S:
            threads.append(threading.Thread(
                target=send, args=("/cpu?iterations=%d" % int(per_ms * CPU_MS),)))
            threads[-1].start()
            cpu_sent = True
        if now >= k * JSON_EVERY_S:
            threads.append(threading.Thread(target=send, args=("/json",)))
            threads[-1].start()
            k += 1
        time.sleep(0.0002)
    for t in threads:
        t.join()
    return sorted(reqs, key=lambda r: r[1])


def record(kind, binary, args, evloop_binary, trace):
    """Runs one model on one kind's workload with --trace; returns the client's requests."""
    workdir = tempfile.mkdtemp(prefix="triad-tour-")
    up = None
    try:
        if kind == "upstream":
            # a fresh upstream per run: no connection or TIME_WAIT carries over between models
            up = timeline.Server(evloop_binary, [], workdir, os.path.join(workdir, "up.json"))
            args = args + ["--upstream", "http://127.0.0.1:%d" % up.port]
        srv = timeline.Server(binary, args, workdir, trace)
        try:
            if kind == "io":
                return drive_burst(srv.port, PATHS[kind], IO_CONNS)
            if kind == "cpu":
                return drive_cpu(srv.port)
            return drive_single(srv.port, PATHS[kind], 8 if kind in ("json", "db") else 1)
        finally:
            srv.stop()
    finally:
        if up:
            up.stop()
        shutil.rmtree(workdir, ignore_errors=True)


# ---- reading a trace -------------------------------------------------------------------------

class Trace:
    """One trace file: slices, instants, counters, flows and async spans by track."""

    def __init__(self, path):
        with open(path) as f:
            doc = json.load(f)
        self.names, self.slices, self.instants, self.counters = {}, {}, {}, {}
        self.flows, self.asyncs = [], []
        begun, ends = {}, {}
        for e in doc["traceEvents"]:
            ph = e["ph"]
            if ph == "M" and e["name"] == "thread_name":
                self.names[e["tid"]] = e["args"]["name"]
            elif ph == "X":
                e["end"] = e["ts"] + e.get("dur", 0)
                self.slices.setdefault(e["tid"], []).append(e)
            elif ph == "i":
                self.instants.setdefault(e["tid"], []).append(e)
            elif ph == "C":
                self.counters.setdefault(e["name"], []).append(
                    (e["ts"], list(e["args"].values())[0]))
            elif ph in "sf":
                ends.setdefault((e["name"], e["id"]), []).append(e)
            elif ph == "b":
                begun[(e["name"], e["id"])] = e
            elif ph == "e" and (e["name"], e["id"]) in begun:
                b = begun.pop((e["name"], e["id"]))
                self.asyncs.append({"name": e["name"], "ts": b["ts"], "end": e["ts"],
                                    "id": e["id"], "args": b.get("args", {})})
        for v in self.slices.values():
            v.sort(key=lambda s: s["ts"])
        # a flow's id is its request's address, which a later request may reuse: pair each
        # start with the first end after it
        for (name, _), evs in ends.items():
            start = None
            for e in sorted(evs, key=lambda e: (e["ts"], e["ph"] == "f")):
                if e["ph"] == "s":
                    start = e
                elif start is not None:
                    self.flows.append({"name": name, "s": start, "f": e})
                    start = None

    def tids(self, pattern):
        return sorted((t for t, n in self.names.items() if re.fullmatch(pattern, n)),
                      key=lambda t: (len(self.names[t]), self.names[t], t))

    def within(self, tid, t0, t1, names=None):
        return [s for s in self.slices.get(tid, []) if s["end"] >= t0 and s["ts"] <= t1
                and (names is None or s["name"] in names)]

    def runs(self, tid, t0, t1):
        """coro: the goroutine runs on a P or M track (the readying slices are not runs)."""
        return [s for s in self.within(tid, t0, t1)
                if "g" in s.get("args", {}) and s["args"].get("info") != "ready"]


def crop(path, lo, hi):
    """Rewrites the trace at path with only the events of [lo, hi] (µs): the slices that
    overlap it, the instants and counters in it, async spans and flows whole if either end
    is in it, and every name. A few hundred KB instead of a few MB, and still a trace that
    Perfetto loads: nothing is cut in the middle."""
    with open(path) as f:
        doc = json.load(f)
    keep, opened = [], {}
    # pairs by time (a flow's two ends are on two threads, in two buffers of the file)
    for e in sorted(doc["traceEvents"], key=lambda e: (e.get("ts", 0), e["ph"] in "ef")):
        ph = e["ph"]
        if ph == "M":
            keep.append(e)
        elif ph == "X":
            if e["ts"] + e.get("dur", 0) >= lo and e["ts"] <= hi:
                keep.append(e)
        elif ph in "bs":
            opened[(ph, e["name"], e["id"])] = e
        elif ph in "ef":
            start = opened.pop(("b" if ph == "e" else "s", e["name"], e["id"]), None)
            if start is not None and (lo <= start["ts"] <= hi or lo <= e["ts"] <= hi
                                      or start["ts"] < lo and e["ts"] > hi):
                keep += [start, e]
        elif lo <= e["ts"] <= hi:
            keep.append(e)
    kept = {id(e) for e in keep}
    doc["traceEvents"] = [e for e in doc["traceEvents"] if id(e) in kept]  # the file's order
    doc.setdefault("otherData", {})["cropped_to_us"] = [lo, hi]
    with open(path, "w") as f:
        json.dump(doc, f, separators=(",", ":"))


# ---- what each trace shows: the captions' claims, checked ------------------------------------

def route_slices(tr, tids, t0, t1, route):
    return [s for t in tids for s in tr.within(t, t0, t1) if route_of(s["name"]) == route]


def together(reqs):
    """/io on a model that does not queue: every answer within 1.5 waits of its send. On a
    busy machine a server thread can lose its CPU for tens of ms: such a run is recorded again."""
    return max(r[2] - r[1] for r in reqs) <= 0.075


def observe(kind, model, tr, reqs):
    """(shown, facts): whether the trace shows what the caption says of this model, and the
    numbers behind it, for report.md."""
    _, w0, w1 = window(kind, reqs)
    route = kind_route(kind)
    lat = [(r[2] - r[1]) * 1e3 for r in reqs if r[0].startswith(route)]
    facts = ["client: %d %s, %.2f-%.2f ms each" % (len(lat), route, min(lat), max(lat))] \
        if lat else []
    shown, facts = {"threaded": observe_threaded, "evloop": observe_evloop,
                    "coro": observe_coro}[model](kind, tr, reqs, w0, w1, route, facts)
    if kind == "cpu":
        # the three pictures side by side only say something if their /cpu is about as long:
        # a run whose server lost its CPU to the machine's other jobs is recorded again
        took = [(r[2] - r[1]) * 1e3 for r in reqs if r[0].startswith("/cpu")]
        shown = shown and bool(took) and 0.6 * CPU_MS <= took[0] <= 1.6 * CPU_MS
    return shown, facts


def observe_threaded(kind, tr, reqs, w0, w1, route, facts):
    pools = tr.tids(r"pool-\d+")
    mine = route_slices(tr, pools, w0, w1, route)
    used = sorted({tr.names[s["tid"]] for s in mine})
    facts.append("%d %s slices on %s" % (len(mine), route, ", ".join(used) or "no pool thread"))
    queued = [f for f in tr.flows if f["name"] == "queue"
              and w0 <= f["s"]["ts"] <= w1]
    waits = [(f["f"]["ts"] - f["s"]["ts"]) / 1e3 for f in queued]
    if waits:
        facts.append("queued (acceptor -> pool thread): %d, %.2f-%.2f ms"
                     % (len(waits), min(waits), max(waits)))
    gil = tr.tids("GIL")
    held = [s for s in tr.within(gil[0], w0, w1)] if gil else []
    if kind not in ("fanout", "upstream"):  # every child thread is named "fanout"
        changes = sum(1 for a, b in zip(held, held[1:]) if a["name"] != b["name"])
        facts.append("GIL: %d holds, changed hands %d times" % (len(held), changes))
    if kind in ("json", "db"):
        inner = {s["name"] for t in pools for s in tr.within(t, w0, w1)
                 if not s["name"].startswith("/")}
        facts.append("inside the request on its thread: %s"
                     % (", ".join(sorted(inner)) or "nothing"))
        return bool(mine) and bool(queued) and (kind != "db" or "call" in inner), facts
    if kind == "io":
        asleep = [s for t in pools for s in tr.within(t, w0, w1, ("sleep",))]
        depth = max([v for ts, v in tr.counters.get("queue", []) if w0 <= ts <= w1] or [0])
        facts.append("%d pool threads took /io; %d sleeps; queue depth up to %d"
                     % (len(used), len(asleep), depth))
        return len(used) == 8 and depth >= 50, facts
    if kind in ("fanout", "upstream"):
        children = [s for t in tr.tids("fanout") for s in tr.within(t, w0, w1, ("child",))]
        inner = "sleep" if kind == "fanout" else "poll"
        polls = [s for t in tr.tids("fanout") for s in tr.within(t, w0, w1, (inner,))]
        spread = (max(s["ts"] for s in children) - min(s["ts"] for s in children)) / 1e3 \
            if children else 0
        facts.append("%d child threads (started over %.1f ms), %d %s" % (
            len(children), spread, len(polls), inner))
        if kind == "upstream":
            dials = sum(1 for c in children if len(tr.within(c["tid"], c["ts"], c["end"],
                                                              ("poll",))) >= 2)
            facts.append("%d calls dialled (waited twice)" % dials)
        n = 100 if kind == "fanout" else 10
        return len(children) == n and (kind == "fanout" or len(polls) == n), facts
    # cpu: the GIL passes between the /cpu thread and the /json threads
    cpu = route_slices(tr, pools, w0, w1, "/cpu")
    cpu_thread = tr.names[cpu[0]["tid"]] if cpu else None
    to_json = sum(1 for a, b in zip(held, held[1:]) if a["name"] == cpu_thread != b["name"])
    forced = [e for e in tr.instants.get(gil[0], []) if w0 <= e["ts"] <= w1
              and e["name"] == "forced switch"] if gil else []
    facts.append("/cpu on %s gave the GIL up %d times (%d forced switches)"
                 % (cpu_thread, to_json, len(forced)))
    if not cpu:
        return False, facts
    c0, c1 = cpu[0]["ts"], cpu[0]["end"]
    sent = [r for r in reqs if r[0] == "/json" and c0 <= r[1] * 1e6 <= c1 - 5000]
    taken = route_slices(tr, pools, c0, c1, "/json")
    facts.append("%d /json sent and %d taken by a pool thread meanwhile" % (len(sent), len(taken)))
    return to_json >= 3 and len(forced) >= 1 and len(taken) >= len(sent), facts


def observe_evloop(kind, tr, reqs, w0, w1, route, facts):
    loop = tr.tids("loop")[0]
    steps = [s for s in tr.within(loop, w0, w1) if route_of(s["name"])]
    idle = sum(min(s["end"], w1) - max(s["ts"], w0)
               for s in tr.within(loop, w0, w1, ("epoll_wait",)))
    facts.append("loop: %d steps, idle in epoll_wait %.0f%% of the window"
                 % (len(steps), 100.0 * idle / (w1 - w0)))
    waits = [a for a in tr.asyncs if a["end"] >= w0 and a["ts"] <= w1]
    kinds = {}
    for a in waits:
        kinds[a["name"]] = kinds.get(a["name"], 0) + 1
    facts.append("waits: " + (", ".join("%d %s" % (v, k) for k, v in sorted(kinds.items()))
                              or "none"))
    pools = [t for t in tr.tids(r"pool-\d+") if tr.within(t, w0, w1)]
    if pools:
        facts.append("pool threads busy: " + ", ".join(tr.names[t] for t in pools))
    resumed = [f for f in tr.flows if f["name"] == "resume"
               and w0 <= f["s"]["ts"] <= w1]
    if kind == "json":
        facts.append("suspended and resumed: %d" % len(resumed))
        return len(steps) == 1 and not resumed, facts
    if kind == "db":
        return bool(pools) and kinds.get("pool") == 1, facts
    if kind == "io":
        return kinds.get("timer", 0) == 100 and together(reqs), facts
    if kind == "fanout":
        return kinds.get("timer", 0) == 100 and kinds.get("join", 0) == 1, facts
    if kind == "upstream":
        per_task = {}
        for a in waits:
            if a["name"] == "fd":
                per_task[a["id"]] = per_task.get(a["id"], 0) + 1
        dials = sum(1 for v in per_task.values() if v >= 2)
        facts.append("%d calls dialled (waited twice)" % dials)
        return len(per_task) == 10 and kinds.get("join", 0) == 1, facts
    cpu = [s for s in steps if s["name"].startswith("/cpu")]
    if not cpu:
        return False, facts
    c0, c1 = cpu[0]["ts"], cpu[0]["end"]
    during = [r for r in reqs if r[0] == "/json" and c0 <= r[1] * 1e6 <= c1]
    after = [s for s in steps if s["name"] == "/json" and s["ts"] >= c1]
    late = [s for s in steps if s["name"] == "/json" and c0 < s["ts"] < c1]
    facts.append("/cpu step %.1f ms; %d /json sent during it, none stepped during it: %s"
                 % ((c1 - c0) / 1e3, len(during), not late))
    return len(during) >= 3 and not late and len(after) >= len(during), facts


def observe_coro(kind, tr, reqs, w0, w1, route, facts):
    ps = tr.tids(r"P\d+")
    runs = [s for p in ps for s in tr.runs(p, w0, w1)]
    mine = [s for s in runs if route_of(s["name"]) == route]
    where = sorted({tr.names[s["tid"]] for s in mine})
    facts.append("%s runs on %s" % (route, ", ".join(where) or "no P"))
    ms = [t for t in tr.tids(r"M\d+") if tr.runs(t, w0, w1)]
    facts.append("Ms running goroutines: " + ", ".join(tr.names[t] for t in ms))
    if kind == "json":
        # inline: run on the driver's own M, inside the driver's run (every P counted busy)
        shards = [r for r in runs if r["name"] == "shard"]
        inline = [s for s in mine if any(d["tid"] == s["tid"] and d["ts"] <= s["ts"]
                                         and s["end"] <= d["end"] for d in shards)]
        idle = [tr.names[p] for p in ps if not tr.runs(p, w0, w1)]
        facts.append("inline in the driver goroutine's run: %s; Ps with no run: %s"
                     % (bool(inline), ", ".join(idle) or "none"))
        return bool(mine), facts
    if kind == "db":
        sys_ = [s for t in tr.tids(r"M\d+") for s in tr.within(t, w0, w1, ("syscall",))]
        handoffs = [e for p in ps for e in tr.instants.get(p, []) if w0 <= e["ts"] <= w1
                    and e["name"] == "handoff"]
        facts.append("syscalls: %s; handoffs: %d" % (
            ", ".join("%.2f ms (%s)" % ((s["end"] - s["ts"]) / 1e3, s["args"].get("info"))
                      for s in sys_), len(handoffs)))
        return bool(sys_), facts
    if kind in ("io", "fanout", "upstream"):
        label = route if kind == "io" else "fanout child"
        by_g = {}
        for t in tr.tids(r"M\d+"):
            for s in tr.runs(t, w0, w1):
                if s["name"] == label or route_of(s["name"]) == label:
                    by_g.setdefault(s["args"]["g"], []).append(s)
        counts = {}
        for g, rs in by_g.items():
            counts[len(rs)] = counts.get(len(rs), 0) + 1
        facts.append("%d goroutines (%s); runs each: %s" % (
            len(by_g), label, ", ".join("%d x %d" % (v, k) for k, v in sorted(counts.items()))))
        n = 100 if kind != "upstream" else 10
        if kind == "upstream":
            # a pooled connection: run, park on the read, run; a dial: park on the connect too
            return len(by_g) == n and counts.get(2, 0) == 2 and counts.get(3, 0) == 8, facts
        return len(by_g) == n and (kind != "io" or together(reqs)), facts
    cpu = sorted((s for s in runs if s["name"].startswith("/cpu")), key=lambda s: s["ts"])
    if not cpu:
        return False, facts
    c0, c1 = cpu[0]["ts"], cpu[-1]["end"]
    beside = [s for s in runs if s["name"] == "/json" and c0 < s["ts"] < c1]
    other_p = [s for s in beside if not any(c["tid"] == s["tid"] and c["ts"] <= s["ts"] <= c["end"]
                                            for c in cpu)]
    pre = [s for s in cpu if s["args"].get("info") == "preempted"]
    # each /json sent while the /cpu ran (but for its last 5 ms) ran before it ended: a
    # client starved of CPU by the machine's other jobs sends late, and shows nothing
    sent = [r for r in reqs if r[0] == "/json" and c0 <= r[1] * 1e6 <= c1 - 5000]
    facts.append("/cpu %.1f ms in %d runs (%d preempted); %d /json sent and %d run meanwhile, "
                 "on %s" % ((c1 - c0) / 1e3, len(cpu), len(pre), len(sent), len(beside),
                            ", ".join(sorted({tr.names[s["tid"]] for s in beside})) or "-"))
    return len(beside) >= max(3, len(sent)) and len(other_p) == len(beside), facts


# ---- the command -----------------------------------------------------------------------------

def run_kind(kind, build_dir, out, keep):
    """Records the three models (each until its trace shows the caption's behaviour, at most
    ATTEMPTS times), renders the picture; returns the report's lines for this kind."""
    evloop = os.path.join(build_dir, "servers/evloop/triad-evloop")
    runs, lines = [], []
    for model, rel, args in MODELS:
        trace = os.path.join(out, "%s-%s.json" % (kind, model))
        for attempt in range(1, ATTEMPTS + 1):
            sys.stderr.write("tour: %s on %s, attempt %d\n" % (kind, model, attempt))
            reqs = record(kind, os.path.join(build_dir, rel), args, evloop, trace)
            tr = Trace(trace)
            shown, facts = observe(kind, model, tr, reqs)
            if shown:
                break
            sys.stderr.write("tour: %s on %s: not shown (a busy machine?): %s\n"
                             % (kind, model, "; ".join(facts)))
        with open(trace[:-5] + ".client.json", "w") as f:
            json.dump(reqs, f)
        runs.append((model, args, tr, reqs))
        lines += ["- **%s** (%s): %s." % (
            model, "shown on attempt %d" % attempt if shown else
            "**not shown** in %d attempts" % ATTEMPTS, "; ".join(facts))]
    png = os.path.join(out, "tour-%s.png" % kind)
    render(kind, kind_route(kind), TITLES[kind], runs, png)
    for model, _, _ in MODELS:
        base = os.path.join(out, "%s-%s" % (kind, model))
        if keep:
            _, _, _, reqs = next(r for r in runs if r[0] == model)
            _, w0, w1 = window(kind, reqs)
            crop(base + ".json", w0 - (w1 - w0) * 0.5, w1 + (w1 - w0) * 0.5)
        else:
            for ext in (".json", ".client.json"):
                os.unlink(base + ext)
    return lines


def rerender(kind, src, out):
    """Draws one kind's picture again from what a --keep-traces run left in src, checking each
    trace as run_kind did; returns the report's lines for this kind."""
    runs, lines = [], []
    for model, _, args in MODELS:
        base = os.path.join(src, "%s-%s" % (kind, model))
        tr = Trace(base + ".json")
        with open(base + ".client.json") as f:
            reqs = [tuple(r) for r in json.load(f)]
        shown, facts = observe(kind, model, tr, reqs)
        runs.append((model, args, tr, reqs))
        lines += ["- **%s** (%s): %s." % (model, "shown" if shown else "**not shown**",
                                          "; ".join(facts))]
    render(kind, kind_route(kind), TITLES[kind], runs,
           os.path.join(out, "tour-%s.png" % kind))
    return lines


def main(argv):
    ap = argparse.ArgumentParser(prog="workloads/trace --tour",
                                 description=__doc__.split("\n\n")[0])
    ap.add_argument("--tour", action="store_true", help="(how workloads/trace gets here)")
    ap.add_argument("--build-dir", default=os.path.join(ROOT, "build"))
    ap.add_argument("--out", help="default: results/<timestamp>-tour")
    ap.add_argument("--kind", help="comma-separated: " + ", ".join(KINDS) + " (default: all)")
    ap.add_argument("--keep-traces", action="store_true",
                    help="keep each run's trace (KIND-MODEL.json) and client log")
    ap.add_argument("--from", dest="src", metavar="DIR",
                    help="render again from the traces a --keep-traces run left in DIR")
    ap.add_argument("--no-build", action="store_true", help="(for workloads/trace)")
    a = ap.parse_args(argv)
    try:
        import matplotlib
        matplotlib.use("Agg")
    except ImportError:
        sys.stderr.write("tour: matplotlib is missing (Debian: python3-matplotlib; use "
                         "/usr/bin/python3)\n")
        return 77  # meson's "skipped", for the test that draws the recorded traces again
    kinds = a.kind.split(",") if a.kind else KINDS
    for k in kinds:
        if k not in KINDS:
            sys.exit("tour: no kind %r (%s)" % (k, ", ".join(KINDS)))
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    out = os.path.abspath(a.out or os.path.join(ROOT, "results", stamp + "-tour"))
    os.makedirs(out, exist_ok=True)
    build_dir = os.path.abspath(a.build_dir)
    lines = ["# The reading tour's pictures", "",
             "One picture per request kind of the tour (`servers/README.md`), the three models "
             "stacked: %s. Made by `workloads/trace --tour` (`workloads/runner/tour.py`, which "
             "describes each workload); each model ran on a fresh server with `--trace`." % (
                 ", ".join("`%s`" % " ".join(["triad-" + m] + args) for m, _, args in MODELS)),
             "", "Under each picture, what its traces showed, as the tour's captions say it: "
             "the script checks it, and runs a model again (up to %d times) when a busy "
             "machine hid it." % ATTEMPTS, ""]
    if not a.src:
        lines += ["Recorded on a machine with %d CPUs, load average %.1f at the start. "
                  % (os.cpu_count(), os.getloadavg()[0]) + (
                      "The traces, cropped to each picture's window (`KIND-MODEL.json`, for "
                      "Perfetto or `workloads/trace-view`), and the client's timings "
                      "(`KIND-MODEL.client.json`) are kept: `workloads/trace --tour --from "
                      "DIR` draws the pictures again from them." if a.keep_traces else
                      "Record them again with `workloads/trace --tour`, and keep the traces "
                      "with `--keep-traces`."), ""]
    for kind in kinds:
        lines += ["## %s: %s" % (kind, TITLES[kind]), "",
                  "![%s](tour-%s.png)" % (kind, kind), ""]
        lines += rerender(kind, a.src, out) if a.src else run_kind(kind, build_dir, out,
                                                                   a.keep_traces)
        lines += [""]
    with open(os.path.join(out, "report.md"), "w") as f:
        f.write("\n".join(lines))
    hidden = [l for l in lines if "**not shown**" in l]
    print("tour: %s (report.md, tour-*.png)%s" % (
        out, "; not shown: %d (see report.md)" % len(hidden) if hidden else ""))
    return 1 if hidden else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
