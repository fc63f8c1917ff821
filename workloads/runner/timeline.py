#!/usr/bin/python3
"""timeline.py - head-of-line blocking, seen from inside each model: a short scenario against
each server with --trace on, and a timeline picture of each trace.

    workloads/trace [--build-dir DIR] [--out DIR] [--model NAME[,NAME]] [--no-build]
    workloads/trace --tour ...      the reading tour's pictures instead: see tour.py

The scenario (the head-of-line scenario, in miniature): /json requests every 2 ms from a
client, and one or two /cpu requests of about 50 ms in the middle. Each server runs with
`--trace`; its trace and a PNG timeline of the interesting 110 ms go to the output directory,
with report.md. Three pictures, three behaviours:

  evloop        one /cpu callback holds the loop for its whole 50 ms; every /json that arrives
                meanwhile is stepped after it, in a burst (the loop delay jumps to ~50 ms)
  coro          (--procs 1) sysmon asks the /cpu goroutine to yield after 10 ms; it is
                preempted at its next safe point and the /json goroutines run between its
                10 ms slices
  threaded-gil  two /cpu requests pass the GIL back and forth every 5 ms (drop request,
                forced switch); a /json waits up to a switch interval for it

Client and server share CLOCK_MONOTONIC (Python's time.monotonic on Linux), so the picture
marks when each /json was sent. Standard library plus matplotlib (Debian's python3-matplotlib:
run with /usr/bin/python3).
"""

import argparse
import datetime
import http.client
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BANNER = re.compile(r"listening on http://([^:/\s]+):(\d+)")

# name, binary (relative to the build directory), arguments, /cpu requests at once
MODELS = [
    ("evloop", "servers/evloop/triad-evloop", [], 1),
    ("coro", "servers/coro/triad-coro", ["--procs", "1"], 1),
    ("threaded-gil", "servers/threaded/triad-threaded", ["--gil"], 2),
]
CPU_MS = 80           # each /cpu request, calibrated
CPU_AT_S = 0.060      # when the /cpu requests are sent, after the /json stream starts
JSON_EVERY_S = 0.002
RUN_S = 0.200
ATTEMPTS = 3          # a busy machine can starve the client: run again until the shape shows

COLORS = {"/cpu": "#d62728", "/json": "#1f77b4", "shard": "#2ca02c", "http": "#98df8a",
          "GIL wait": "#bbbbbb"}


# ---- running a server ------------------------------------------------------------------------

class Server:
    def __init__(self, binary, args, workdir, trace):
        self.trace = trace
        self.err = open(os.path.join(workdir, os.path.basename(trace) + ".stderr"), "wb")
        self.p = subprocess.Popen([binary, "--port", "0", "--db", os.path.join(workdir, "t.db"),
                                   "--trace", trace] + args, stdout=subprocess.PIPE,
                                  stderr=self.err, cwd=workdir, start_new_session=True)
        line = self.p.stdout.readline().decode(errors="replace")
        m = BANNER.search(line)
        if not m:
            self.stop()
            raise RuntimeError("%s did not start: %r" % (binary, line))
        self.port = int(m.group(2))

    def stop(self):
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGTERM)
        self.p.wait(60)
        self.err.close()


def get(port, path, conn=None):
    c = conn or http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    c.request("GET", path)
    r = c.getresponse()
    r.read()
    return r.status, c


def calibrate(port):
    """/cpu iterations per ms, from the fastest of a few requests."""
    n, best, conn = 100000, None, None
    for _ in range(5):
        t0 = time.monotonic()
        _, conn = get(port, "/cpu?iterations=%d" % n, conn)
        dt = time.monotonic() - t0
        best = dt if best is None else min(best, dt)
    conn.close()
    return n / (best * 1000.0)


def drive(port, cpus, iterations):
    """/json every 2 ms on keep-alive connections (a small pool, so that a stalled server
    does not slow the sending down), and `cpus` /cpu requests at CPU_AT_S. Returns the send
    times (monotonic seconds) of each /json and /cpu."""
    sent = {"/json": [], "/cpu": []}
    lock = threading.Lock()

    def one(path, label):
        with lock:
            sent[label].append(time.monotonic())
        try:
            get(port, path)[1].close()
        except OSError:
            pass

    threads, t0 = [], time.monotonic()
    k, cpu_sent = 0, False
    while time.monotonic() - t0 < RUN_S:
        now = time.monotonic() - t0
        if not cpu_sent and now >= CPU_AT_S:
            for _ in range(cpus):
                threads.append(threading.Thread(
                    target=one, args=("/cpu?iterations=%d" % iterations, "/cpu")))
                threads[-1].start()
            cpu_sent = True
        if now >= k * JSON_EVERY_S:
            threads.append(threading.Thread(target=one, args=("/json", "/json")))
            threads[-1].start()
            k += 1
        time.sleep(0.0002)
    for t in threads:
        t.join()
    return sent


# ---- reading a trace -------------------------------------------------------------------------

def load(path):
    with open(path) as f:
        doc = json.load(f)
    names, slices, instants, counters = {}, {}, {}, {}
    for e in doc["traceEvents"]:
        if e["ph"] == "M" and e["name"] == "thread_name":
            names[e["tid"]] = e["args"]["name"]
        elif e["ph"] == "X":
            slices.setdefault(e["tid"], []).append(e)
        elif e["ph"] == "i":
            instants.setdefault(e["tid"], []).append(e)
        elif e["ph"] == "C":
            counters.setdefault(e["name"], []).append((e["ts"], list(e["args"].values())[0]))
    return names, slices, instants, counters


def tid_of(names, pattern):
    return sorted((t for t, n in names.items() if re.fullmatch(pattern, n)),
                  key=lambda t: names[t])


# ---- drawing ---------------------------------------------------------------------------------

def first_cpu(spans, sent):
    """When the scenario's first /cpu began to run (the calibration's came earlier)."""
    since = min(sent["/cpu"]) * 1e6
    return min(s["ts"] for s in spans if s["name"] == "/cpu" and s["ts"] >= since)


def cpu_end(spans, t0):
    """ms from t0 to the end of the last /cpu slice."""
    return max(s["ts"] + s["dur"] - t0 for s in spans if s["name"] == "/cpu") / 1000.0


def color(name):
    return COLORS.get(name, "#c7c7c7")


def draw_row(ax, y, spans, t0, height=0.8, colr=None, edge=None, hatch=None):
    """Slices as boxes; a request slice shorter than 0.25 ms is widened to 0.25 ms so that
    it shows at all (a /json step lasts microseconds)."""
    from matplotlib.patches import Rectangle
    for s in spans:
        floor = 0.25 if s["name"].startswith("/") else 0.02
        x, w = (s["ts"] - t0) / 1000.0, max(s["dur"] / 1000.0, floor)
        ax.add_patch(Rectangle((x, y - height / 2), w, height, facecolor=colr or color(s["name"]),
                               edgecolor=edge or "none", linewidth=0.4, hatch=hatch))


def legend(ax, entries):
    from matplotlib.patches import Patch
    ax.legend(handles=[Patch(facecolor=c, label=l) for l, c in entries], loc="upper right",
              fontsize=7, ncol=len(entries), framealpha=0.9)


def finish(fig, ax, rows, t0_ms, title, path, sent, t0):
    ax.set_yticks(range(len(rows)))
    ax.set_yticklabels(rows, fontsize=8)
    ax.set_ylim(len(rows) - 0.4, -0.6)
    ax.set_xlim(-10, t0_ms + 30)
    ax.set_title(title, fontsize=10)
    ax.grid(axis="x", color="#eeeeee")
    fig.savefig(path, dpi=110)


def client_row(ax, y, sent, t0):
    xs = [s * 1e3 - t0 / 1000.0 for s in sent["/json"]]
    ax.vlines(xs, y - 0.35, y + 0.35, color=COLORS["/json"], linewidth=0.8)
    xs = [s * 1e3 - t0 / 1000.0 for s in sent["/cpu"]]
    ax.vlines(xs, y - 0.35, y + 0.35, color=COLORS["/cpu"], linewidth=2)


def render_evloop(trace, sent, out):
    import matplotlib.pyplot as plt
    names, slices, _, counters = load(trace)
    loop = tid_of(names, "loop")[0]
    steps = [s for s in slices[loop] if s["name"].startswith("/")]
    cbs = [s for s in slices[loop] if s["name"] in ("http", "timer", "after_work", "fd")]
    t0 = first_cpu(steps, sent)
    steps = [s for s in steps if s["name"] != "/cpu" or s["ts"] >= t0]
    fig, (ax, ax2) = plt.subplots(2, 1, figsize=(11, 3.6), sharex=True,
                                  gridspec_kw={"height_ratios": [3, 1.3]})
    rows = ["client: sent", "loop: callbacks", "loop: steps"]
    client_row(ax, 0, sent, t0)
    draw_row(ax, 1, cbs, t0, colr=COLORS["http"])
    draw_row(ax, 2, [s for s in steps if s["name"] == "/cpu"], t0)
    draw_row(ax, 2, [s for s in steps if s["name"] != "/cpu"], t0)
    legend(ax, [("/cpu step", COLORS["/cpu"]), ("/json step", COLORS["/json"]),
                ("callback (http: libmicrohttpd's run)", COLORS["http"])])
    delay = [(ts, v) for ts, v in sorted(counters.get("loop delay us", [])) if ts >= t0 - 10000]
    ax2.set_ylim(0, max([v / 1000.0 for _, v in delay] + [1]) * 1.15)
    ax2.step([(ts - t0) / 1000.0 for ts, _ in delay], [v / 1000.0 for _, v in delay],
             where="post", color="#9467bd")
    ax2.set_ylabel("loop delay\n(ms)", fontsize=8)
    ax2.set_xlabel("ms from the start of the /cpu step", fontsize=8)
    ax2.grid(color="#eeeeee")
    finish(fig, ax, rows, cpu_end(steps, t0), "evloop: every /json sent during the /cpu callback is stepped "
           "after it, in a burst", out, sent, t0)
    plt.close(fig)


def render_coro(trace, sent, out):
    import matplotlib.pyplot as plt
    names, slices, instants, _ = load(trace)
    ps, ms = tid_of(names, r"P\d+"), tid_of(names, r"M\d+")
    runs = [s for p in ps for s in slices.get(p, [])]
    t0 = first_cpu(runs, sent)
    cpu = [s for s in runs if s["name"] == "/cpu" and s["ts"] >= t0]
    rows = ["client: sent"] + [names[p] for p in ps] + [names[m] for m in ms] + ["sysmon"]
    fig, ax = plt.subplots(figsize=(11, 1.2 + 0.45 * len(rows)))
    client_row(ax, 0, sent, t0)
    for i, tid in enumerate(ps + ms):
        top = [s for s in slices.get(tid, []) if s["name"] not in ("ready", "go", "netpoll",
                                                                   "syscall")]
        # the shard first, then what ran inside it or after it, requests on top
        top.sort(key=lambda s: (s["name"].startswith("/"), s["ts"]))
        draw_row(ax, 1 + i, top, t0)
    for s in cpu:
        if s.get("args", {}).get("info") == "preempted":
            ax.plot([(s["ts"] + s["dur"] - t0) / 1000.0], [1 + ps.index(s["tid"]) - 0.55],
                    marker="v", color="black", markersize=5)
    sm = tid_of(names, "sysmon")
    req = [e for e in instants.get(sm[0], []) if e["name"] == "preempt request"] if sm else []
    ax.plot([(e["ts"] - t0) / 1000.0 for e in req], [len(rows) - 1] * len(req), "|",
            color="black", markersize=10)
    legend(ax, [("/cpu goroutine", COLORS["/cpu"]), ("/json goroutine", COLORS["/json"]),
                ("shard (netpoller) goroutine", COLORS["shard"])])
    ax.set_xlabel("ms from the /cpu goroutine's first run; v: preempted; sysmon |: preempt "
                  "request", fontsize=8)
    finish(fig, ax, rows, cpu_end(runs, t0), "coro (--procs 1): sysmon preempts the /cpu goroutine after 10 ms "
           "(then each 10-20 ms, its tick); /json goroutines run in the gaps", out, sent, t0)
    plt.close(fig)


def render_gil(trace, sent, out):
    import matplotlib.pyplot as plt
    names, slices, instants, _ = load(trace)
    gil = tid_of(names, "GIL")[0]
    pools = [t for t in tid_of(names, r"pool-\d+") if slices.get(t)]
    t0 = first_cpu([s for p in pools for s in slices[p]], sent)
    cpu = [s for p in pools for s in slices[p] if s["name"] == "/cpu" and s["ts"] >= t0]
    cpu_threads = sorted({names[s["tid"]] for s in cpu})
    palette = ["#d62728", "#ff7f0e", "#1f77b4", "#17becf", "#8c564b", "#e377c2", "#7f7f7f",
               "#bcbd22"]
    thread_color = {names[p]: palette[i % len(palette)] for i, p in enumerate(pools)}
    for i, n in enumerate(cpu_threads):
        thread_color[n] = palette[i]
    rows = ["client: sent", "GIL holder"] + [names[p] for p in pools]
    fig, ax = plt.subplots(figsize=(11, 1.4 + 0.42 * len(rows)))
    client_row(ax, 0, sent, t0)
    for s in slices.get(gil, []):
        draw_row(ax, 1, [s], t0, colr=thread_color.get(s["name"], "#c7c7c7"), edge="white")
    for e in instants.get(gil, []):
        mark = "v" if e["name"] == "drop request" else "x"
        ax.plot([(e["ts"] - t0) / 1000.0], [0.45 + (0.1 if mark == "x" else 0)], marker=mark,
                color="black", markersize=4, linestyle="none")
    for i, p in enumerate(pools):
        reqs = [s for s in slices[p] if s["name"].startswith("/")]
        draw_row(ax, 2 + i, reqs, t0, height=0.5, colr="#eeeeee", edge=None)
        for s in reqs:
            draw_row(ax, 2 + i, [s], t0, height=0.5, colr=thread_color[names[p]]
                     if s["name"] == "/cpu" else COLORS["/json"])
        draw_row(ax, 2 + i, [s for s in slices[p] if s["name"] == "GIL wait"], t0,
                 height=0.8, colr="white", edge="black", hatch="////")
    legend(ax, [("/cpu on " + n, thread_color[n]) for n in cpu_threads]
           + [("/json", COLORS["/json"]), ("GIL wait (hatched)", "white")])
    ax.set_xlabel("ms from the first /cpu request's start; above the GIL row: v drop request, "
                  "x forced switch", fontsize=8)
    finish(fig, ax, rows, cpu_end(cpu, t0), "threaded --gil: two /cpu threads hand the GIL over every 5 ms "
           "(switch interval); /json waits for it", out, sent, t0)
    plt.close(fig)


RENDER = {"evloop": render_evloop, "coro": render_coro, "threaded-gil": render_gil}


def shape_evloop(trace, sent):
    """At least three /json were sent while the /cpu step ran."""
    names, slices, _, _ = load(trace)
    steps = slices[tid_of(names, "loop")[0]]
    t0 = first_cpu(steps, sent)
    end = t0 + cpu_end(steps, t0) * 1000.0
    return sum(1 for x in sent["/json"] if t0 <= x * 1e6 <= end) >= 3


def shape_coro(trace, sent):
    """The /cpu goroutine was preempted, and a /json goroutine ran between its slices."""
    names, slices, _, _ = load(trace)
    runs = [s for p in tid_of(names, r"P\d+") for s in slices.get(p, [])]
    t0 = first_cpu(runs, sent)
    cpu = sorted((s for s in runs if s["name"] == "/cpu" and s["ts"] >= t0), key=lambda s: s["ts"])
    if not any(s.get("args", {}).get("info") == "preempted" for s in cpu):
        return False
    return any(s["name"] == "/json" and cpu[0]["ts"] + cpu[0]["dur"] <= s["ts"] <= cpu[-1]["ts"]
               for s in runs)


def shape_gil(trace, sent):
    """The GIL changed hands at least four times between the two /cpu threads."""
    names, slices, _, _ = load(trace)
    pools = tid_of(names, r"pool-\d+")
    t0 = first_cpu([s for p in pools for s in slices.get(p, [])], sent)
    cpu = {names[s["tid"]] for p in pools for s in slices.get(p, [])
           if s["name"] == "/cpu" and s["ts"] >= t0}
    held = [s["name"] for s in slices.get(tid_of(names, "GIL")[0], []) if s["name"] in cpu]
    return sum(1 for a, b in zip(held, held[1:]) if a != b) >= 4


SHAPE = {"evloop": shape_evloop, "coro": shape_coro, "threaded-gil": shape_gil}


# ---- the command -----------------------------------------------------------------------------

def run_once(name, binary, args, cpus, trace):
    workdir = tempfile.mkdtemp(prefix="triad-timeline-")
    try:
        srv = Server(binary, args, workdir, trace)
        try:
            per_ms = calibrate(srv.port)
            time.sleep(0.05)
            return drive(srv.port, cpus, int(per_ms * CPU_MS))
        finally:
            srv.stop()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def run_model(name, binary, args, cpus, out):
    """Runs the scenario until its trace shows the shape (at most ATTEMPTS times); renders the
    last run. Returns the picture's path and the attempts it took (None: never shown)."""
    trace = os.path.join(out, name + ".json")
    for attempt in range(1, ATTEMPTS + 1):
        sent = run_once(name, binary, args, cpus, trace)
        if SHAPE[name](trace, sent):
            break
        sys.stderr.write("timeline: %s: attempt %d did not show the shape (a busy machine?)\n"
                         % (name, attempt))
    else:
        attempt = None
    png = os.path.join(out, "timeline-%s.png" % name)
    RENDER[name](trace, sent, png)
    return png, attempt


def main(argv):
    if "--tour" in argv:
        import tour  # the reading tour's pictures: its own options (runner/tour.py)
        return tour.main(argv)
    ap = argparse.ArgumentParser(prog="workloads/trace", description=__doc__.split("\n\n")[0])
    ap.add_argument("--build-dir", default=os.path.join(ROOT, "build"))
    ap.add_argument("--out", help="default: results/<timestamp>-trace")
    ap.add_argument("--model", help="comma-separated: evloop, coro, threaded-gil (default: all)")
    ap.add_argument("--no-build", action="store_true", help="(for workloads/trace)")
    a = ap.parse_args(argv)
    try:
        import matplotlib
        matplotlib.use("Agg")
    except ImportError:
        sys.exit("timeline: matplotlib is missing (Debian: python3-matplotlib; use /usr/bin/python3)")
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    out = os.path.abspath(a.out or os.path.join(ROOT, "results", stamp + "-trace"))
    os.makedirs(out, exist_ok=True)
    want = a.model.split(",") if a.model else [m[0] for m in MODELS]
    lines = ["# Traces: head-of-line blocking in each model", "",
             "Each server ran with `--trace`; /json every 2 ms, /cpu requests of ~%d ms from "
             "%d ms on. Open the JSON files in Perfetto (ui.perfetto.dev) or offline with "
             "`workloads/trace-view FILE`." % (CPU_MS, CPU_AT_S * 1000), ""]
    for name, rel, args, cpus in MODELS:
        if name not in want:
            continue
        binary = os.path.join(os.path.abspath(a.build_dir), rel)
        sys.stderr.write("timeline: %s\n" % name)
        png, attempt = run_model(name, binary, args, cpus, out)
        lines += ["## %s (`%s`)" % (name, " ".join([os.path.basename(rel)] + args)), "",
                  SHAPE[name].__doc__.strip() + (" Shown on attempt %d." % attempt if attempt
                                                 else " Not shown in %d attempts." % ATTEMPTS),
                  "", "![%s](%s)" % (name, os.path.basename(png)), "",
                  "Trace: [`%s.json`](%s.json)" % (name, name), ""]
    with open(os.path.join(out, "report.md"), "w") as f:
        f.write("\n".join(lines))
    print("timeline: %s (report.md, timeline-*.png, *.json)" % out)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
