#!/usr/bin/env python3
"""test_trace.py - each model's trace follows the format and shows the shape its workload implies.

    test_trace.py --server BIN --case NAME

Each case starts the server with --trace, drives a workload whose shape is known, stops it
with SIGTERM, runs the format checker (check_trace.py) on every file it wrote, and asserts the
events that shape implies and their order. Never durations: sanitizer builds run many times
slower, and the assertions must hold there too.
"""

import argparse
import os
import re
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import check_trace  # noqa: E402
from trace_run import Failure, Trace, end, expect, get, in_background, run  # noqa: E402

CPU_ITERATIONS = 600000  # ~50 ms at 88 ns an iteration; longer under sanitizers


def checked(docs, truncated=False):
    """Runs the format checker on every file; returns the Trace of each."""
    out = []
    for path, doc in docs:
        errs = check_trace.check(doc)
        expect(not errs, "%s breaks the format's rules:\n  %s" % (path, "\n  ".join(errs[:20])))
        expect(truncated or doc["otherData"]["dropped_events"] == 0, "%s dropped records" % path)
        out.append(Trace(doc))
    return out


def request_slices(tr, route, tids):
    return [s for t in tids for s in tr.slices(t, re.escape(route))]


def flow(tr, ph, name, ident):
    return [e for e in tr.all(ph, name) if int(e["id"], 16) == ident]


def cpu_beside_json(port, cpus=1, json_after=0.015, extra=()):
    """`cpus` /cpu requests at once, then, while they run, three /json; then `extra` paths one
    after another."""
    res = {}
    threads = [in_background(port, "/cpu?iterations=%d" % CPU_ITERATIONS, res, "cpu%d" % i)
               for i in range(cpus)]
    time.sleep(json_after)
    threads += [in_background(port, "/json", res, "json%d" % i) for i in range(3)]
    for t in threads:
        t.join()
    for k, (status, body) in res.items():
        expect(status == 200, "%s answered %s: %r" % (k, status, body[:200]))
    for path in extra:
        status, body = get(port, path)
        expect(status == 200, "%s answered %s: %r" % (path, status, body[:200]))


# ---- threaded --------------------------------------------------------------------------------

def case_threaded_gil(binary, workdir, extra):
    """Two CPU-bound requests under the GIL: it changes hands between their two threads, each
    hand-off after a drop request and a forced switch; requests flow acceptor -> pool, and
    back to the acceptor or, when the pool thread found the drive lock free, to itself."""
    # On a loaded machine the client's second request can reach the server when the first is
    # nearly done, leaving too short an overlap to judge (a few switch intervals of 5 ms): such
    # a run is not evidence either way, and the workload runs again, three times at most.
    for attempt in range(3):
        docs = run(binary, ["--gil"] + extra, workdir, lambda port: cpu_beside_json(port, cpus=2))
        (tr,) = checked(docs)
        gil = tr.tid("GIL")
        pools = tr.tids(r"pool-\d+")
        cpu = request_slices(tr, "/cpu", pools)
        expect(len(cpu) == 2, "expected two /cpu slices on pool threads, got %d" % len(cpu))
        cpu_threads = {tr.names[s["tid"]] for s in cpu}
        expect(len(cpu_threads) == 2, "both /cpu requests ran on %s" % cpu_threads)
        lo, hi = max(s["ts"] for s in cpu), min(end(s) for s in cpu)
        if hi - lo >= 20000:  # microseconds
            break
        print("attempt %d: the two /cpu requests overlapped %.1f ms only; again" %
              (attempt + 1, (hi - lo) / 1000))
    holders = [s["name"] for s in tr.slices(gil) if lo <= s["ts"] <= hi and s["name"] in cpu_threads]
    changes = sum(1 for a, b in zip(holders, holders[1:]) if a != b)
    expect(changes >= 2, "the GIL changed hands %d times between the two /cpu threads while both "
                         "ran (holders %s)" % (changes, holders[:20]))
    drops = [e for e in tr.by_tid[gil] if e["ph"] == "i" and e["name"] == "drop request"]
    forced = [e for e in tr.by_tid[gil] if e["ph"] == "i" and e["name"] == "forced switch"]
    expect(drops and forced, "no drop request (%d) or forced switch (%d) on the GIL track"
           % (len(drops), len(forced)))
    expect(drops[0]["ts"] <= forced[0]["ts"], "a forced switch came before any drop request")
    waits = [s for t in pools for s in tr.slices(t, "GIL wait")]
    expect(waits, "no thread waited for the GIL")
    acceptor = tr.tid("acceptor")
    for s in cpu:
        rid = s["args"]["req"]
        q_s, q_f = flow(tr, "s", "queue", rid), flow(tr, "f", "queue", rid)
        r_s, r_f = flow(tr, "s", "resume", rid), flow(tr, "f", "resume", rid)
        expect(q_s and q_s[0]["tid"] == acceptor, "request %x: no queue flow from the acceptor" % rid)
        expect(q_f and q_f[0]["tid"] == s["tid"], "request %x: its queue flow ends elsewhere" % rid)
        expect(r_s and r_s[0]["tid"] == s["tid"], "request %x: no resume flow from its thread" % rid)
        # The worker writes its own answer when the drive lock is free (servers/threaded/acceptor.c),
        # else the acceptor does: the flow ends on one of the two, never on another thread.
        expect(r_f and r_f[0]["tid"] in (acceptor, s["tid"]),
               "request %x: resume flow ends neither on the acceptor nor on its own thread" % rid)
        expect(q_s[0]["ts"] <= q_f[0]["ts"] <= r_s[0]["ts"] <= r_f[0]["ts"],
               "request %x: its flows are out of order" % rid)


def case_threaded(binary, workdir, extra):
    """The pool without the GIL: each request on a pool thread, its blocking waits inside it
    (a sleep for /io, a join of fan-out threads for /fanout)."""
    paths = ["/json", "/db", "/io?ms=20", "/fanout?calls=3&ms=5"]
    docs = run(binary, extra, workdir, lambda port: cpu_beside_json(port, extra=paths))
    (tr,) = checked(docs)
    pools = tr.tids(r"pool-\d+")
    for route in ("/cpu", "/json", "/db", "/io", "/fanout"):
        expect(request_slices(tr, route, pools), "no %s slice on a pool thread" % route)
    (io,) = request_slices(tr, "/io", pools)
    # Then, when the drive lock was free, the thread's own MHD run that writes the answer.
    expect([c["name"] for c in tr.children(io, io["tid"])] in (["sleep"], ["sleep", "MHD_run"]),
           "/io's slice should hold one sleep: %s" % tr.children(io, io["tid"]))
    (fan,) = request_slices(tr, "/fanout", pools)
    expect("join" in [c["name"] for c in tr.children(fan, fan["tid"])], "/fanout has no join")
    kids = [s for t in tr.tids("fanout") for s in tr.slices(t, "child")]
    expect(len(kids) == 3, "expected 3 fan-out child slices, got %d" % len(kids))
    expect(not tr.tids("GIL"), "a GIL track without --gil")


def case_threaded_perconn(binary, workdir, extra):
    """Thread per connection: requests run on the connections' own threads."""
    docs = run(binary, ["--threads", "0"] + extra, workdir,
               lambda port: cpu_beside_json(port, extra=["/db"]))
    (tr,) = checked(docs)
    conns = tr.tids("conn")
    for route in ("/cpu", "/json", "/db"):
        expect(request_slices(tr, route, conns), "no %s slice on a connection thread" % route)


def case_threaded_workers2(binary, workdir, extra):
    """Two worker processes: each writes FILE.<pid>, the parent nothing."""
    docs = run(binary, ["--workers", "2"] + extra, workdir,
               lambda port: cpu_beside_json(port, extra=["/db"] * 4))
    expect(len(docs) == 2, "expected two files, one per worker: %s" % [p for p, _ in docs])
    pids = set()
    for path, doc in docs:
        pids |= {e["pid"] for e in doc["traceEvents"]}
        expect(path.endswith(".%d" % doc["traceEvents"][0]["pid"]), "%s: not FILE.<pid>" % path)
    expect(len(pids) == 2, "the two files should hold two processes: %s" % pids)
    for tr in checked(docs):
        expect(tr.tids("acceptor"), "a worker's trace has no acceptor track")


# ---- evloop ----------------------------------------------------------------------------------

# libuv's order (uv_run), with up to 8 more pending rounds after the poll.
LOOP_PHASES = re.compile(r"pending prepare poll( pending){0,8} check close timers")


def case_evloop(binary, workdir, extra):
    """One loop: iterations made of libuv's phases in order; no step overlaps another; the
    /json requests sent while /cpu runs are all stepped after it; database work on pool
    threads with flows there and back; waits as async spans."""
    paths = ["/db", "/io?ms=20", "/fanout?calls=3&ms=5"]
    docs = run(binary, extra, workdir, lambda port: cpu_beside_json(port, extra=paths))
    (tr,) = checked(docs)
    loop = tr.tid("loop")
    iters = tr.slices(loop, "iteration")
    expect(iters, "no iteration slices on the loop")
    for it in iters[:50]:
        names = [c["name"] for c in tr.children(it, loop)]
        expect(LOOP_PHASES.fullmatch(" ".join(names)), "an iteration's phases: %s" % names)
    steps = sorted((s for s in tr.slices(loop) if s["name"].startswith("/")),
                   key=lambda s: s["ts"])
    for a, b in zip(steps, steps[1:]):
        expect(end(a) <= b["ts"], "step %s overlaps step %s" % (a["name"], b["name"]))
    (cpu,) = [s for s in steps if s["name"] == "/cpu"]
    jsons = [s for s in steps if s["name"] == "/json"]
    expect(len(jsons) == 3, "expected 3 /json steps, got %d" % len(jsons))
    expect(all(s["ts"] >= end(cpu) for s in jsons), "a /json step ran before /cpu's ended")
    expect(tr.all("C", "loop delay us"), "no loop delay counter")
    if "--db-on-loop" in extra:
        return
    db_work = [s for t in tr.tids(r"pool-\d+") for s in tr.slices(t, "/db")]
    expect(len(db_work) == 1, "expected one /db item on a pool thread, got %d" % len(db_work))
    (pool_s,), (pool_f,) = tr.all("s", "pool"), tr.all("f", "pool")
    (aw_s,), (aw_f,) = tr.all("s", "after_work"), tr.all("f", "after_work")
    expect(pool_s["tid"] == loop and pool_f["tid"] == db_work[0]["tid"] == aw_s["tid"]
           and aw_f["tid"] == loop, "the pool flows do not go loop -> pool thread -> loop")
    expect(pool_s["ts"] <= pool_f["ts"] <= aw_s["ts"] <= aw_f["ts"], "pool flows out of order")
    for what, n in (("pool", 1), ("timer", 4), ("join", 1)):
        got = len(tr.all("b", what))
        expect(got == n and len(tr.all("e", what)) == n,
               "expected %d async %s spans, got %d" % (n, what, got))


def case_evloop_budget(binary, workdir, extra):
    """A budget of 1,024 records (four chunks): recording stops when it is spent, the file
    holds at most the budget, says how many it refused, and still follows the rules."""
    docs = run(binary, extra, workdir, lambda port: cpu_beside_json(port, extra=["/db"] * 20),
               env={"TRIAD_TRACE_EVENTS": "1024"})
    (tr,) = checked(docs, truncated=True)
    other = tr.doc["otherData"]
    expect(other["budget_events"] == 1024, "budget %s, not 1024" % other["budget_events"])
    expect(other["dropped_events"] > 0, "nothing dropped past a budget of 1,024 records")
    records = sum(1 for e in tr.events if e["ph"] not in "Mbe") + len(tr.all("b"))
    expect(records <= 1024, "%d records in a budget of 1,024" % records)


# ---- coro ------------------------------------------------------------------------------------

def case_coro(binary, workdir, extra):
    """Goroutines: with one P, the /cpu goroutine is preempted (sysmon asks, it yields at a
    safe point) and other goroutines run on the P between its slices; every run follows a
    ready flow from whoever readied it; database calls are syscalls on an M."""
    docs = run(binary, extra, workdir,
               lambda port: cpu_beside_json(port, extra=["/db", "/io?ms=20"]))
    (tr,) = checked(docs)
    procs = tr.tids(r"P\d+")
    ms = tr.tids(r"M\d+")
    expect(procs and ms and tr.tids("sysmon"), "P, M or sysmon tracks missing: %s"
           % sorted(tr.names.values()))
    expect(tr.all("C", r"runq P\d+"), "no run-queue counters")
    cpu = sorted((s for t in procs for s in tr.slices(t, "/cpu")), key=lambda s: s["ts"])
    expect(cpu, "no /cpu run on a P")
    if len(procs) == 1:
        expect(len(cpu) >= 2 and any(s["args"].get("info") == "preempted" for s in cpu),
               "the /cpu goroutine was never preempted: %s" % [s["args"] for s in cpu])
        p0 = procs[0]
        between = [s for s in tr.slices(p0) if end(cpu[0]) <= s["ts"] and end(s) <= cpu[-1]["ts"]
                   and s["name"] != "/cpu"]
        expect(between, "nothing else ran on P0 between the /cpu goroutine's slices")
        expect([e for e in tr.by_tid[p0] if e["ph"] == "i" and e["name"] == "preempt request"],
               "no preemption request on P0")
        goid = cpu[0]["args"]["g"]
        expect(len(flow(tr, "f", "ready", goid)) >= len(cpu) - 1,
               "the /cpu goroutine's later runs have no ready flows")
    expect([s for t in ms for s in tr.slices(t, "syscall")], "no syscall slice on an M")
    expect(flow_pairs(tr) > 0, "no ready flows")


def flow_pairs(tr):
    return len(tr.all("f", "ready"))


CASES = {
    "threaded-gil": case_threaded_gil,
    "threaded": case_threaded,
    "threaded-perconn": case_threaded_perconn,
    "threaded-workers2": case_threaded_workers2,
    "evloop": case_evloop,
    "evloop-db-on-loop": lambda b, w, x: case_evloop(b, w, ["--db-on-loop"] + x),
    "evloop-budget": case_evloop_budget,
    "coro-procs1": lambda b, w, x: case_coro(b, w, ["--procs", "1"] + x),
    "coro-procs2": lambda b, w, x: case_coro(b, w, ["--procs", "2"] + x),
}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--server", required=True)
    ap.add_argument("--case", required=True, choices=sorted(CASES))
    ap.add_argument("extra", nargs="*", help="more server arguments (after --)")
    a = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="triad-trace-") as workdir:
        try:
            CASES[a.case](os.path.abspath(a.server), workdir, a.extra)
        except Failure as e:
            print("FAIL %s: %s" % (a.case, e))
            return 1
    print("ok %s" % a.case)
    return 0


if __name__ == "__main__":
    sys.exit(main())
