"""tour_draw.py - the reading tour's pictures drawn from traces: for one request kind, the
three models' panels stacked in one PNG, each with one row per track (as the trace names them:
acceptor, pool-N, GIL; loop, pool-N; P0, M0, sysmon) and the client's requests on top.

tour.py records the traces and checks what they show; this module only draws, from a Trace
(tour.py's reader: slices, instants, counters, flows and async spans by track) and the client's
timings. Needs matplotlib, imported when drawing starts (tour.py says when it is missing).
"""

SHARED_RATIO = 3  # one time axis for the three, unless one model took this many times longer

# ---- colours and labels ----------------------------------------------------------------------

ROUTE = {"/json": "#1f77b4", "/db": "#9467bd", "/io": "#17becf", "/fanout": "#ff7f0e",
         "/upstream": "#8c564b", "/cpu": "#d62728"}
HTTP = "#98df8a"       # a run of libmicrohttpd: the acceptor's, a worker's, the loop's http
SHARD = "#2ca02c"      # coro's driver goroutine, which runs libmicrohttpd
CALLBACK = "#dbdb8d"   # evloop's other callbacks: timer, fd, after_work
IDLE = "#d9d9d9"       # blocked in epoll_wait (loop, M's netpoll): nothing to do
QUEUED = "#8c8c8c"     # runnable, or queued, and waiting for a thread, a P or the GIL
OTHER = "#c7c7c7"
DIALLED = "dialled: waited for the connect, then for the answer (no idle connection)"


def light(c, f=0.55):
    """c blended with white: the same request, waiting rather than running."""
    c = c.lstrip("#")
    rgb = [int(c[i:i + 2], 16) for i in (0, 2, 4)]
    return "#" + "".join("%02x" % int(v + (255 - v) * f) for v in rgb)


def running(route):
    """The legend of a route's colour: what runs the request (or its children) in each model."""
    return "%s running: on a thread, a loop step or pool item, a goroutine" % route


def waiting(route):
    """The legend of a route's light colour, in the bands of many requests or children."""
    return "%s waiting: a blocked thread, a loop wait, a parked goroutine" % route


MHD_LABEL = "libmicrohttpd run (accept, read, write)"
QUEUED_LABEL = "queued or runnable: waiting for a pool thread, the GIL or a P"
JOIN = "#525252"
JOIN_LABEL = "the parent, waiting for its children (join)"


def route_of(name):
    """A slice's route ("/io?ms=50" is named "/io"); children are named for their parent."""
    return name.split("?")[0] if name.startswith("/") else None


def window(kind, reqs):
    """(origin, w0, w1) in µs: the span the picture shows, the requests from the first sent to
    the last answered with a margin; the origin of its time axis is the recorded request's send
    (the /cpu's for cpu). reqs: the client's (path, sent, answered), in seconds."""
    first, last = min(r[1] for r in reqs), max(r[2] for r in reqs)
    origin = first
    if kind == "cpu":
        origin = min((r[1] for r in reqs if r[0].startswith("/cpu")), default=first)
    pad = max((last - first) * 0.06, 0.00004)
    return origin * 1e6, (first - pad) * 1e6, (last + pad) * 1e6


# ---- drawing ---------------------------------------------------------------------------------

class Panel:
    """One model's rows on one axes: y grows downwards, a row is 1 high, a band taller."""

    def __init__(self, ax, origin, w0, w1, legend, route):
        self.ax, self.origin, self.legend = ax, origin, legend
        self.route = route  # the picture's request kind's: children and waits are drawn in it
        self.w0, self.w1 = w0, w1
        self.minw = (w1 - w0) / 1e3 * 0.0025   # ms: about 2 px at README width
        self.y, self.ticks, self.labels, self.rowy = 0.0, [], [], {}

    def x(self, ts):
        return (ts - self.origin) / 1e3

    def row(self, label, height=1.0, tid=None):
        top = self.y
        self.y += height
        self.ticks.append(top + height / 2)
        self.labels.append(label)
        if tid is not None:
            self.rowy[tid] = top + height / 2
        return top + height / 2

    def box(self, y, t0, t1, face, h=0.8, hatch=None, edge="none", label=None, lw=0.4):
        from matplotlib.patches import Rectangle
        x0 = self.x(max(t0, self.w0 - 1e6))
        w = max(self.x(t1) - x0, self.minw)
        self.ax.add_patch(Rectangle((x0, y - h / 2), w, h, facecolor=face, edgecolor=edge,
                                    linewidth=lw, hatch=hatch))
        if label:
            self.legend.setdefault(label, (face, hatch, edge))

    def band(self, top, height, items, dials=None):
        """items: lists of (t0, t1, colour) segments, one list a line, in order of start.
        dials: the items to mark with a dot, /upstream calls that dialled."""
        n = len(items)
        if not n:
            return
        step = height / n
        for i, segs in enumerate(items):
            y = top + (i + 0.5) * step
            for t0, t1, face in segs:
                self.box(y, t0, t1, face, h=max(step * 0.8, 0.02))
        if dials:
            marked = [(self.x(min(s[0] for s in items[i])), top + (i + 0.5) * step)
                      for i in range(n) if dials[i]]
            if marked:
                self.ax.plot([x for x, _ in marked], [y for _, y in marked], marker="o",
                             color="black", markersize=3.5, linestyle="none")
            self.legend.setdefault(DIALLED, ("marker:o", None, None))

    def count(self, y, points, face, label):
        """A counter as a step curve filling its row, scaled to its maximum."""
        pts = [(ts, v) for ts, v in sorted(points) if self.w0 - 2e5 <= ts <= self.w1]
        if not pts:
            return
        top = max(v for _, v in pts) or 1
        xs = [self.x(ts) for ts, _ in pts] + [self.x(self.w1)]
        ys = [y + 0.4 - 0.8 * v / top for _, v in pts]
        self.ax.fill_between(xs, [y + 0.4] * len(xs), ys + ys[-1:], step="post", color=face,
                             linewidth=0)
        self.ax.text(self.x(self.w1), y - 0.42, " max %d" % top, fontsize=7, va="top", ha="left",
                     color="#555555")
        self.legend.setdefault(label, (face, None, "none"))

    def marks(self, y, events, marker, label, size=5, dy=-0.5):
        xs = [self.x(e["ts"]) for e in events if self.w0 <= e["ts"] <= self.w1]
        if xs:
            self.ax.plot(xs, [y + dy] * len(xs), marker=marker, color="black", markersize=size,
                         linestyle="none", clip_on=False)
            self.legend.setdefault(label, ("marker:" + marker, None, None))

    def flows(self, tr, names, limit=12, ids=None):
        """A hand-off between two drawn tracks as an arrow, when few enough to read."""
        arrows = [f for f in tr.flows if f["name"] in names
                  and (ids is None or f["s"]["id"] in ids)
                  and self.w0 <= f["s"]["ts"] <= self.w1 and f["s"]["tid"] in self.rowy
                  and f["f"]["tid"] in self.rowy and f["s"]["tid"] != f["f"]["tid"]]
        if not arrows or len(arrows) > limit:
            return
        for f in arrows:
            s, e = f["s"], f["f"]
            self.ax.annotate("", xy=(self.x(e["ts"]), self.rowy[e["tid"]]),
                             xytext=(self.x(s["ts"]), self.rowy[s["tid"]]),
                             arrowprops=dict(arrowstyle="->", color="black", lw=0.7,
                                             shrinkA=0, shrinkB=0))
        self.legend.setdefault("hand-off (flow)", ("arrow", None, None))

    def client(self, reqs):
        """The client's requests, sent to answered, one line each."""
        items = [[(r[1] * 1e6, r[2] * 1e6, light(ROUTE.get(route_of(r[0]), OTHER), 0.35))]
                 for r in sorted(reqs, key=lambda r: r[1])]
        h = 1.0 if len(items) <= 2 else (2.0 if len(items) <= 30 else 2.6)
        y = self.row("client\n%d requests" % len(items) if len(items) > 1 else "client", h)
        self.band(y - h / 2 + 0.1, h - 0.2, items)
        for r in reqs:
            self.ax.plot([self.x(r[1] * 1e6)], [y - h / 2 + 0.05], marker="|", color="black",
                         markersize=3 if len(reqs) > 2 else 6, linestyle="none")

    def finish(self, title):
        ax = self.ax
        ax.set_yticks(self.ticks)
        ax.set_yticklabels(self.labels, fontsize=8)
        ax.set_ylim(self.y + 0.1, -0.2)
        ax.set_title(title, fontsize=9, loc="left")
        ax.grid(axis="x", color="#eeeeee")
        ax.set_axisbelow(True)
        ax.tick_params(axis="x", labelsize=8)


def thread_track(p, tr, tid, name):
    """A threaded pool thread: its requests, what blocked them, its own runs of the server."""
    y = p.row(name, tid=tid)
    for s in tr.within(tid, p.w0, p.w1):
        r = route_of(s["name"])
        if r:
            p.box(y, s["ts"], s["end"], ROUTE.get(r, OTHER), label=running(r))
    for s in tr.within(tid, p.w0, p.w1):
        n = s["name"]
        if n in ("sleep", "poll", "call", "join"):
            p.box(y, s["ts"], s["end"], "white", h=0.5, hatch="////", edge="#555555",
                  label="blocked: sleep, call, poll, join (GIL released)")
        elif n == "GIL wait":
            p.box(y, s["ts"], s["end"], QUEUED, h=0.5, hatch="xxxx", edge="black",
                  label="GIL wait (on a pool thread)")
        elif n == "MHD_run":
            p.box(y, s["ts"], s["end"], HTTP, h=0.4, label=MHD_LABEL)
    return y


def rows_threaded(p, tr, kind, reqs):
    acc = tr.tids("acceptor")
    if acc:
        y = p.row("acceptor", tid=acc[0])
        for s in tr.within(acc[0], p.w0, p.w1, ("MHD_run",)):
            p.box(y, s["ts"], s["end"], HTTP, label=MHD_LABEL)
    if kind == "io":
        # the queue's depth from its flows (the counter is written only when one is queued)
        steps = [(f["s"]["ts"], 1) for f in tr.flows if f["name"] == "queue"]
        steps += [(f["f"]["ts"], -1) for f in tr.flows if f["name"] == "queue"]
        depth, points = 0, []
        for ts, d in sorted(steps):
            depth += d
            points.append((ts, depth))
        p.count(p.row("queue"), points, QUEUED, QUEUED_LABEL)
    gil = tr.tids("GIL")
    held = tr.within(gil[0], p.w0, p.w1) if gil else []
    if held:
        y = p.row("GIL holder", tid=gil[0])
        by_name = {tr.names[t]: t for t in tr.tids(r"pool-\d+")}
        for s in held:
            # coloured by the route its holder is running, so that hand-overs show
            tid, mid = by_name.get(s["name"]), (s["ts"] + s["end"]) / 2
            r = next((route_of(q["name"]) for q in tr.within(tid, mid, mid)
                      if route_of(q["name"])), None) if tid else None
            face = ROUTE.get(r) or ROUTE.get(p.route, OTHER)
            wide = (s["end"] - s["ts"]) / 1e3 > 5 * p.minw  # a white edge would hide a thin one
            p.box(y, s["ts"], s["end"], face, edge="white" if wide else "none", lw=0.6)
        p.marks(y, [e for e in tr.instants.get(gil[0], []) if e["name"] == "drop request"],
                "v", "drop request (a waiter ran out of patience)", size=4)
    for tid in tr.tids(r"pool-\d+"):
        if tr.within(tid, p.w0, p.w1):
            thread_track(p, tr, tid, tr.names[tid])
    kids = [t for t in tr.tids("fanout") if tr.within(t, p.w0, p.w1)]
    if kids:
        face = ROUTE.get(p.route, OTHER)
        items = []
        for t in kids:
            for c in tr.within(t, p.w0, p.w1, ("child",)):
                inner = tr.within(t, c["ts"], c["end"])
                segs = [(c["ts"], c["end"], face)]
                segs += [(s["ts"], s["end"], light(face)) for s in inner
                         if s["name"] in ("sleep", "poll")]
                segs += [(s["ts"], s["end"], QUEUED) for s in inner if s["name"] == "GIL wait"]
                polls = sum(1 for s in inner if s["name"] == "poll")
                items.append((segs, kind == "upstream" and polls >= 2))
        items.sort(key=lambda it: it[0][0][0])
        h = 2.6 if len(items) > 20 else 1.6
        y = p.row("children\n%d threads" % len(items), h)
        p.band(y - h / 2 + 0.05, h - 0.1, [segs for segs, _ in items],
               [d for _, d in items] if kind == "upstream" else None)
        p.legend.setdefault(running(p.route), (face, None, "none"))
        p.legend.setdefault(waiting(p.route), (light(face), None, "none"))
        p.legend.setdefault(QUEUED_LABEL, (QUEUED, None, "none"))
    p.flows(tr, ("queue", "resume"))


def rows_evloop(p, tr, kind, reqs):
    loop = tr.tids("loop")[0]
    y = p.row("loop", tid=loop)
    for s in tr.within(loop, p.w0, p.w1):
        n = s["name"]
        if n == "epoll_wait":
            p.box(y, s["ts"], s["end"], IDLE, h=0.3, label="idle: blocked in epoll_wait")
        elif n == "http":
            p.box(y, s["ts"], s["end"], HTTP, label=MHD_LABEL)
        elif n in ("timer", "fd", "after_work"):
            p.box(y, s["ts"], s["end"], CALLBACK, label="callback: timer, fd, after_work")
    for s in tr.within(loop, p.w0, p.w1):
        r = route_of(s["name"])
        if r:
            p.box(y, s["ts"], s["end"], ROUTE.get(r, OTHER), h=0.5, label=running(r))
    waits = sorted((a for a in tr.asyncs if a["end"] >= p.w0 and a["ts"] <= p.w1),
                   key=lambda a: (a["name"] == "join", a["ts"]))
    if waits:
        names = {}
        for a in waits:
            names[a["name"]] = names.get(a["name"], 0) + 1
        face = light(ROUTE.get(p.route, OTHER))
        h = 1.0 if len(waits) <= 2 else (1.6 if len(waits) <= 24 else 2.6)
        label = "waits\n" + ", ".join("%d %s" % (v, k) for k, v in names.items())
        yb = p.row(label, h)
        lines = {}
        for a in waits:
            lines.setdefault((a["name"], a["id"]), []).append(
                (a["ts"], a["end"], JOIN if a["name"] == "join" else face))
        items = sorted(lines.values(), key=lambda segs: (segs[0][2] == JOIN, segs[0][0]))
        p.band(yb - h / 2 + 0.05, h - 0.1, items,
               [len(segs) >= 2 for segs in items] if kind == "upstream" else None)
        p.legend.setdefault(waiting(p.route), (face, None, "none"))
        if names.get("join"):
            p.legend.setdefault(JOIN_LABEL, (JOIN, None, "none"))
    for tid in tr.tids(r"pool-\d+"):
        if tr.within(tid, p.w0, p.w1):
            ypool = p.row(tr.names[tid], tid=tid)
            for s in tr.within(tid, p.w0, p.w1):
                p.box(ypool, s["ts"], s["end"], ROUTE.get(route_of(s["name"]), OTHER))
    p.flows(tr, ("pool", "after_work"))


def rows_coro(p, tr, kind, reqs):
    ps = tr.tids(r"P\d+")
    for tid in ps:
        y = p.row(tr.names[tid], tid=tid)
        # the driver goroutine first: a request run inline in it is drawn on top
        for s in sorted(tr.runs(tid, p.w0, p.w1), key=lambda s: s["name"] != "shard"):
            n = s["name"]
            if n == "shard":
                p.box(y, s["ts"], s["end"], SHARD, label="shard goroutine (runs libmicrohttpd)")
            elif route_of(n):
                p.box(y, s["ts"], s["end"], ROUTE.get(route_of(n), OTHER),
                      label=running(route_of(n)))
            elif n == "fanout child":
                r = p.route
                p.box(y, s["ts"], s["end"], ROUTE.get(r, OTHER), label=running(r))
            else:
                p.box(y, s["ts"], s["end"], OTHER, label="other goroutine")
        p.marks(y, [e for e in tr.instants.get(tid, []) if e["name"] == "preempt request"],
                "v", "sysmon: preempt request")
        p.marks(y, [e for e in tr.instants.get(tid, []) if e["name"] == "handoff"],
                "D", "sysmon: hand-off of a P (syscall)", size=4)
        pre = [{"ts": s["end"]} for s in tr.runs(tid, p.w0, p.w1)
               if s["args"].get("info") == "preempted" and route_of(s["name"])]
        p.marks(y, pre, "x", "preempted (end of a run)", size=5, dy=0)
    for tid in tr.tids(r"M\d+"):
        sl = tr.within(tid, p.w0, p.w1)
        if not tr.runs(tid, p.w0, p.w1) and not [s for s in sl if s["name"] == "syscall"]:
            continue
        y = p.row(tr.names[tid], tid=tid)
        for s in sl:
            if s["name"] == "netpoll" and "g" not in s.get("args", {}):
                p.box(y, s["ts"], s["end"], IDLE, h=0.3, label="idle: blocked in epoll_wait")
        for s in sorted(tr.runs(tid, p.w0, p.w1), key=lambda s: s["name"] != "shard"):
            n = s["name"]
            face = SHARD if n == "shard" else ROUTE.get(route_of(n)) or (
                ROUTE.get(p.route, OTHER) if n == "fanout child" else OTHER)
            p.box(y, s["ts"], s["end"], face, h=0.5)
        for s in tr.within(tid, p.w0, p.w1, ("syscall",)):
            p.box(y, s["ts"], s["end"], "white", h=0.5, hatch="////", edge="#555555",
                  label="M in a syscall (sqlite3_step)")
    if kind in ("io", "fanout", "upstream"):
        label = "/io" if kind == "io" else "fanout child"
        face = ROUTE.get(p.route, OTHER)
        items = goroutine_items(tr, p, label, face)
        if items:
            h = 2.6 if len(items) > 20 else 1.6
            y = p.row("%s\n%d goroutines" % ("requests" if kind == "io" else "children",
                                              len(items)), h)
            # a call on a pooled connection runs twice (send, park on the read; the answer);
            # a dial once more (park on the connect first)
            p.band(y - h / 2 + 0.05, h - 0.1, [segs for segs, _ in items],
                   [runs >= 3 for _, runs in items] if kind == "upstream" else None)
            p.legend.setdefault(waiting(p.route), (light(face), None, "none"))
            p.legend.setdefault(QUEUED_LABEL, (QUEUED, None, "none"))
    sm = tr.tids("sysmon")
    if sm and [e for e in tr.instants.get(sm[0], []) if p.w0 <= e["ts"] <= p.w1]:
        y = p.row("sysmon", tid=sm[0])
        for e in tr.instants.get(sm[0], []):
            if p.w0 <= e["ts"] <= p.w1:
                p.ax.plot([p.x(e["ts"])], [y], "|", color="black", markersize=9)
    # the hand-offs of the requests' goroutines only: the driver's own are many, and routine
    if kind != "cpu":
        reqg = {s["args"]["g"] for t in ps for s in tr.runs(t, p.w0, p.w1)
                if route_of(s["name"])}
        p.flows(tr, ("ready",), limit=12, ids={"0x%x" % g for g in reqg})


def goroutine_items(tr, p, label, face):
    """coro: each goroutine of `label` in the window, as (segments, runs): running (dark),
    parked (light), runnable and waiting for a P (grey)."""
    readied = {}
    for t in list(tr.slices):
        for s in tr.slices[t]:
            if s.get("args", {}).get("info") == "ready" and "g" in s["args"]:
                readied.setdefault(s["args"]["g"], []).append(s["ts"])
    by_g = {}
    for t in tr.tids(r"M\d+"):
        for s in tr.runs(t, p.w0, p.w1):
            if s["name"] == label or route_of(s["name"]) == label:
                by_g.setdefault(s["args"]["g"], []).append(s)
    items = []
    for g, rs in by_g.items():
        rs.sort(key=lambda s: s["ts"])
        segs = []
        for a, b in zip(rs, rs[1:]):
            ready = max([r for r in readied.get(g, []) if a["end"] <= r <= b["ts"]],
                        default=b["ts"])
            segs += [(a["end"], ready, light(face)), (ready, b["ts"], QUEUED)]
        segs += [(s["ts"], s["end"], face) for s in rs]
        items.append((segs, len(rs)))
    items.sort(key=lambda it: min(x[0] for x in it[0]))
    return items


ROWS = {"threaded": rows_threaded, "evloop": rows_evloop, "coro": rows_coro}



def render(kind, route, title, runs, out):
    """runs: [(model, args, Trace, reqs)]; one PNG at `out`, the three models stacked on one
    time axis (each in ms from its own request's send) that spans the longest of the three.
    route: the kind's request ("/fanout"), the colour of its children and waits; title: what
    the workload was."""
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch
    spans = [window(kind, reqs) for _, _, _, reqs in runs]
    lo = min(w0 - o for o, w0, _ in spans)
    hi = max(w1 - o for o, _, w1 in spans)
    # one axis for the three, unless one model takes many times as long as another (/io on
    # 8 threads): then each its own, or the fast ones would be a few pixels wide
    lengths = [w1 - w0 for _, w0, w1 in spans]
    shared = max(lengths) <= SHARED_RATIO * min(lengths)
    fig = plt.figure()
    legend, panels = {}, []
    for (model, args, tr, reqs), (origin, w0, w1) in zip(runs, spans):
        if not shared:
            lo, hi = w0 - origin, w1 - origin
        p = Panel(fig.add_subplot(), origin, origin + lo, origin + hi, legend, route)
        p.client(reqs)
        ROWS[model](p, tr, kind, reqs)
        panels.append((p, model, args))
    handles = []
    for label, (face, hatch, edge) in legend.items():
        if face == "arrow":
            handles.append(Line2D([], [], color="black", lw=0.8, marker=">", markersize=4,
                                  label=label))
        elif face.startswith("marker:"):
            handles.append(Line2D([], [], color="black", marker=face[7:], linestyle="none",
                                  markersize=5, label=label))
        else:
            handles.append(Patch(facecolor=face, hatch=hatch, linewidth=0.4, label=label,
                                 edgecolor=face if edge == "none" else edge))
    # sizes in inches: title and legend on top, then the panels, each as tall as its rows
    ncol = 2
    top_in = 0.62 + 0.2 * -(-len(handles) // ncol)
    body_in = sum(0.3 * p.y + 0.62 for p, _, _ in panels)
    height = top_in + body_in + 0.45
    fig.set_size_inches(10, height)
    gs = fig.add_gridspec(len(panels), 1, height_ratios=[0.3 * p.y + 0.05 for p, _, _ in panels],
                          hspace=0.57 * len(panels) / (body_in / len(panels)) / 1.7,
                          left=0.12, right=0.95, top=1 - top_in / height,
                          bottom=0.5 / height)
    for i, (p, model, args) in enumerate(panels):
        p.ax.set_subplotspec(gs[i])
        p.ax.set_xlim(p.x(p.w0), p.x(p.w1))
        p.finish("%s  (%s)%s" % (model, " ".join(["triad-" + model] + args),
                                 "" if shared else ": its own time axis, 0 to %.0f ms"
                                 % p.x(p.w1)))
    panels[-1][0].ax.set_xlabel("ms from when the client sent the %s" % {
        "cpu": "/cpu", "io": "requests"}.get(kind, "request"), fontsize=8)
    fig.suptitle("The tour, %s" % title, fontsize=10, x=0.02, ha="left",
                 y=1 - 0.1 / height, va="top")
    fig.legend(handles=handles, loc="upper left", ncol=ncol, fontsize=7.5, frameon=False,
               bbox_to_anchor=(0.02, 1 - 0.36 / height), handlelength=1.6, columnspacing=1.5)
    fig.savefig(out, dpi=100)
    plt.close(fig)
