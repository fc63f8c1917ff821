"""PNG plots with matplotlib's headless Agg backend."""

import math
import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import matplotlib.ticker  # noqa: E402

PCTS = (("lat_p50_ms", "p50"), ("lat_p90_ms", "p90"), ("lat_p99_ms", "p99"),
        ("lat_p999_ms", "p99.9"), ("lat_max_ms", "max"))


def _series_key(p):
    return "%s/%s" % (p["model"], p["mode"])


_COLORS = {}


_PALETTE = [matplotlib.colormaps["tab20"](i) for i in (0, 2, 4, 6, 8, 10, 12, 14, 16, 18,
                                                       1, 3, 5, 7, 9, 11, 13, 15, 17, 19)]
_PEERS = set()


def color(name):
    """The same colour for a model/mode in every subplot (20 before any repeats)."""
    if name not in _COLORS:
        _COLORS[name] = _PALETTE[len(_COLORS) % len(_PALETTE)]
    return _COLORS[name]


def style(name):
    """Peers (the real runtimes) dashed, beside their solid mirrors."""
    return "--" if name.split("/")[0] in _PEERS else "-"


def _x(p):
    if p["variables"]:
        k = sorted(p["variables"])[0]
        try:
            return float(p["variables"][k]), k
        except (TypeError, ValueError):
            return None, k
    return float(p["connections"]), "connections"


def _grid(n):
    cols = min(3, n)
    rows = int(math.ceil(n / cols))
    return rows, cols


def _ok(points):
    return [p for p in points if not p.get("error") and p["summary"]["n"] > 0]


def steps_of(doc, kinds):
    seen = []
    for p in doc["points"]:
        key = (p["scenario"], p["step"])
        if p["kind"] in kinds and key not in seen:
            seen.append(key)
    return seen


def plot_throughput(doc, path):
    steps = [s for s in steps_of(doc, ("wrk",))
             if _ok([p for p in doc["points"] if (p["scenario"], p["step"]) == s])]
    if not steps:
        return False
    rows, cols = _grid(len(steps))
    fig, axes = plt.subplots(rows, cols, figsize=(5.2 * cols, 3.8 * rows), squeeze=False)
    for ax, (sc, st) in zip(axes.flat, steps):
        pts = _ok([p for p in doc["points"] if p["scenario"] == sc and p["step"] == st])
        series = {}
        xlabel = "connections"
        for p in pts:
            x, xlabel = _x(p)
            if x is None:
                continue
            series.setdefault(_series_key(p), []).append((x, p))
        xs_all = sorted({x for s in series.values() for x, _ in s})
        if len(xs_all) == 1:
            # one load level: a bar per model/mode
            names = list(series)
            meds = [series[n][0][1]["summary"]["median"].get("rps", 0) for n in names]
            los = [m - series[n][0][1]["summary"]["min"].get("rps", m) for n, m in zip(names, meds)]
            his = [series[n][0][1]["summary"]["max"].get("rps", m) - m for n, m in zip(names, meds)]
            ax.bar(range(len(names)), meds, yerr=[los, his], capsize=3,
                   color=[color(n) for n in names])
            ax.set_xticks(range(len(names)))
            ax.set_xticklabels(names, rotation=15, fontsize=7, ha="right")
            ax.set_xlabel("%s = %g" % (xlabel, xs_all[0]))
        else:
            for name, xs in series.items():
                xs.sort(key=lambda t: t[0])
                x = [t[0] for t in xs]
                y = [t[1]["summary"]["median"].get("rps", 0) for t in xs]
                lo = [yy - t[1]["summary"]["min"].get("rps", yy) for yy, t in zip(y, xs)]
                hi = [t[1]["summary"]["max"].get("rps", yy) - yy for yy, t in zip(y, xs)]
                ax.errorbar(x, y, yerr=[lo, hi], marker="o", capsize=3, label=name,
                            color=color(name), linestyle=style(name))
            little = sorted({(p["connections"], p["summary"]["median"].get("little_rps"))
                             for p in pts if p["summary"]["median"].get("little_rps")
                             and not p["variables"]})
            if len(little) > 1:
                ax.plot([a for a, _ in little], [b for _, b in little], "k--", linewidth=1,
                        label="Little's law")
            ax.set_xscale("log")
            ax.set_xticks(xs_all)
            ax.xaxis.set_major_formatter(matplotlib.ticker.FormatStrFormatter("%g"))
            ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
            ax.set_xlabel(xlabel)
            ax.legend(fontsize=7)
        ax.set_title("%s / %s" % (sc, st), fontsize=10)
        ax.set_ylabel("req/s (median, min-max)")
        ax.set_ylim(bottom=0)
        ax.grid(True, alpha=0.3)
    for ax in list(axes.flat)[len(steps):]:
        ax.axis("off")
    fig.suptitle("Throughput against load, per model/mode", fontsize=12)
    if _PEERS & {p["model"] for p in doc["points"]}:
        fig.text(0.5, 0.003, "dashed: the real runtimes (peers). Their /cpu requests carry "
                 "their own calibrated iteration counts: compare shapes, not heights.",
                 ha="center", fontsize=8, style="italic")
        fig.tight_layout(rect=(0, 0.015, 1, 1))
    else:
        fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return True


def plot_latency(doc, path):
    groups = []
    for sc, st in steps_of(doc, ("wrk", "open-loop")):
        pts = _ok([p for p in doc["points"] if p["scenario"] == sc and p["step"] == st])
        pts = [p for p in pts if p["summary"]["median"].get("lat_p50_ms") is not None]
        if not pts:
            continue
        # the heaviest load of each model/mode
        best = {}
        for p in pts:
            k = _series_key(p)
            if k not in best or _x(p)[0] > _x(best[k])[0]:
                best[k] = p
        groups.append((sc, st, best))
    if not groups:
        return False
    rows, cols = _grid(len(groups))
    fig, axes = plt.subplots(rows, cols, figsize=(5.2 * cols, 3.8 * rows), squeeze=False)
    for ax, (sc, st, best) in zip(axes.flat, groups):
        names = list(best)
        width = 0.8 / len(PCTS)
        for i, (key, lab) in enumerate(PCTS):
            vals = [best[n]["summary"]["median"].get(key) or 0 for n in names]
            ax.bar([j + i * width for j in range(len(names))], vals, width, label=lab)
        ax.set_xticks([j + 0.4 - width / 2 for j in range(len(names))])
        labels = names
        if len({best[n]["connections"] for n in names}) > 1:
            labels = ["%s c=%d" % (n, best[n]["connections"]) for n in names]
        ax.set_xticklabels(labels, rotation=20, fontsize=7, ha="right")
        ax.set_yscale("log")
        ax.set_ylabel("latency, ms (log)")
        some = next(iter(best.values()))
        load = ("%g req/s open loop" % some["rate"]) if some["kind"] == "open-loop" else \
            "max level per model"
        ax.set_title("%s / %s (%s)" % (sc, st, load), fontsize=9)
        ax.grid(True, axis="y", alpha=0.3)
    for ax in list(axes.flat)[len(groups):]:
        ax.axis("off")
    handles, labels = axes.flat[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="upper right", ncol=len(PCTS), fontsize=8)
    fig.suptitle("Latency percentiles per model/mode (median of runs)", fontsize=12, x=0.3)
    fig.tight_layout(rect=(0, 0, 1, 0.97))
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return True


def plot_memory(doc, path):
    pts = _ok([p for p in doc["points"] if p["kind"] == "idle"])
    pts = [p for p in pts if p["summary"]["median"].get("kib_per_conn") is not None]
    if not pts:
        return False
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(11, 4))
    series = {}
    for p in pts:
        series.setdefault(_series_key(p), []).append(p)
    for name, ps in series.items():
        ps.sort(key=lambda p: p["connections"])
        x = [p["connections"] for p in ps]
        a1.plot(x, [p["summary"]["median"]["kib_per_conn"] for p in ps], marker="o", label=name,
                color=color(name), linestyle=style(name))
        a2.plot(x, [p["summary"]["median"].get("threads_per_conn") or 0 for p in ps],
                marker="o", label=name, color=color(name), linestyle=style(name))
    for ax, lab in ((a1, "server RSS per idle connection, KiB"),
                    (a2, "server threads per idle connection")):
        xs_all = sorted({p["connections"] for p in pts})
        if len(xs_all) > 1:
            ax.set_xscale("log")
            ax.set_xticks(xs_all)
            ax.xaxis.set_major_formatter(matplotlib.ticker.FormatStrFormatter("%g"))
            ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        ax.set_xlabel("idle keep-alive connections")
        ax.set_ylabel(lab)
        ax.set_ylim(bottom=0)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle("Memory and threads per idle connection", fontsize=12)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return True


def plot_upstream(doc, path):
    """upstream-bound: threads, descriptors and connections closed per request against
    connections, per model/mode (a thread per waiting call shows as a diagonal)."""
    pts = _ok([p for p in doc["points"] if p["scenario"] == "upstream-bound"
               and p["step"] == "upstream-1x50ms"])
    if not pts:
        return False
    panels = (("srv_threads_max", "server threads (peak)", True),
              ("srv_fds_max", "server descriptors (peak)", True),
              ("up_dials_kernel_per_req", "upstream dials per request (kernel: SYNs)", False))
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
    series = {}
    for p in pts:
        series.setdefault(_series_key(p), []).append(p)
    xs_all = sorted({p["connections"] for p in pts})
    for ax, (key, lab, log) in zip(axes, panels):
        for name, ps in series.items():
            ps = sorted((p for p in ps if p["summary"]["median"].get(key) is not None),
                        key=lambda p: p["connections"])
            if not ps:
                continue
            ax.plot([p["connections"] for p in ps],
                    [max(p["summary"]["median"][key], 1e-3 if log else 0) for p in ps],
                    marker="o", label=name, color=color(name), linestyle=style(name))
        ax.set_xscale("log")
        if log:
            ax.set_yscale("log")
        ax.set_xticks(xs_all)
        ax.xaxis.set_major_formatter(matplotlib.ticker.FormatStrFormatter("%g"))
        ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        ax.set_xlabel("connections")
        ax.set_ylabel(lab)
        ax.grid(True, alpha=0.3)
    axes[0].plot(xs_all, xs_all, "k:", linewidth=1, label="one per connection")
    axes[0].legend(fontsize=7)
    fig.suptitle("upstream-bound, /upstream?calls=1&ms=50: threads, descriptors, dials",
                 fontsize=12)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return True


def write_plots(doc, out):
    _COLORS.clear()
    _PEERS.clear()
    _PEERS.update(m["name"] for m in doc.get("models", []) if m.get("kind") == "peer")
    for p in doc["points"]:
        color(_series_key(p))
    files = []
    for fn, name, title in ((plot_throughput, "throughput.png", "Throughput against connections"),
                            (plot_latency, "latency.png", "Latency percentiles per model"),
                            (plot_memory, "memory.png", "Memory per connection"),
                            (plot_upstream, "upstream.png",
                             "Threads, descriptors and dials while waiting on an upstream")):
        if fn(doc, os.path.join(out, name)):
            files.append((name, title))
    return files
