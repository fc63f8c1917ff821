#!/usr/bin/python3
"""Smoke test of the benchmark runner (meson test --suite workloads).

Runs workloads/tests/smoke.toml (one tiny closed-loop, open-loop and idle step) against
triad-baseline-hello into a temporary directory and checks that every output exists and
parses: results.json, results.csv, report.md with its claims table, and valid PNG files.
Then feeds made-up numbers to the claims evaluator and to the mirror/runtime tables
(runner/compare.py) to check that each verdict is reachable.
Nothing here depends on timing or on the numbers measured. Exit 77 (skip) when a tool the
runner needs (wrk, h2load, taskset, matplotlib) is missing.

    /usr/bin/python3 -m workloads.tests.smoke --build-dir BUILD_DIR    (from the source root)
"""

import argparse
import csv
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile

from workloads.runner import claims, compare

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def skip(why):
    print("SKIP: " + why)
    sys.exit(77)


def check(cond, what):
    if not cond:
        print("FAIL: " + what)
        sys.exit(1)


def run_runner(build_dir, out):
    cmd = [sys.executable, "-m", "workloads.runner.bench",
           "--build-dir", build_dir, "--scenario-file", os.path.join(HERE, "smoke.toml"),
           "--model", "baseline", "--duration", "1", "--warmup", "0", "--repeats", "1",
           "--out", out]
    print("$ " + " ".join(cmd), flush=True)
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                       timeout=240, cwd=ROOT)
    print(p.stdout)
    check(p.returncode == 0, "runner exited with %d" % p.returncode)
    return p.stdout


def check_outputs(out, stdout):
    with open(os.path.join(out, "results.json")) as f:
        doc = json.load(f)
    points = doc["points"]
    kinds = sorted({p["kind"] for p in points})
    check(kinds == ["idle", "open-loop", "wrk"], "one point of each kind, got %s" % kinds)
    for p in points:
        check(not p.get("error"), "point %s/%s failed: %s" % (p["scenario"], p["step"],
                                                            p.get("error")))
        check(p["summary"]["n"] == 1, "one run per point")
    by_kind = {p["kind"]: p["summary"]["median"] for p in points}
    check(by_kind["wrk"].get("requests", 0) > 0, "wrk completed requests")
    check(by_kind["open-loop"].get("requests", 0) > 0, "h2load completed requests")
    check(by_kind["idle"].get("idle_ok") == 20, "20 idle connections answered")
    check("srv_rss_peak_mib" in by_kind["wrk"], "server sampled from /proc")
    check(len(doc["claims"]) >= 5, "claims evaluated")

    with open(os.path.join(out, "results.csv"), newline="") as f:
        rows = list(csv.DictReader(f))
    check(len(rows) == len(points), "one CSV row per point")
    check(all(r["model"] == "baseline" for r in rows), "CSV rows name the model")

    with open(os.path.join(out, "report.md")) as f:
        md = f.read()
    for needle in ("## Machine", "## Versions", "## Claims",
                   "| claim | scenario | triad measured | verdict |", "pinning"):
        check(needle in md, "report.md contains %r" % needle)
    pngs = [f for f in os.listdir(out) if f.endswith(".png")]
    check(sorted(pngs) == ["latency.png", "memory.png", "throughput.png"],
          "three plots, got %s" % pngs)
    for name in pngs:
        with open(os.path.join(out, name), "rb") as f:
            check(f.read(8) == PNG_MAGIC, "%s is a PNG" % name)
        check("](%s)" % name in md, "report.md links %s" % name)
    check("claims:" in stdout and "req/s" in stdout, "summary table printed")


def fake_point(scenario, step, model, mode, conns, rps, **extra):
    med = {"rps": rps, "requests": rps, "errors_total": 0}
    med.update(extra)
    return {"scenario": scenario, "step": step, "kind": "wrk", "model": model, "mode": mode,
            "connections": conns, "variables": {},
            "summary": {"median": med, "min": dict(med), "max": dict(med), "n": 3}}


def check_claims():
    """The claims logic on made-up numbers: each verdict must be reachable."""
    models = [{"name": n, "role": r, "built": True}
              for n, r in (("threaded", "python"), ("evloop", "node"), ("coro", "go"),
                           ("baseline", "floor"))]
    pts = [
        fake_point("cpu-bound", "cpu-5ms", "coro", "default", 8, 400),
        fake_point("cpu-bound", "cpu-5ms", "evloop", "default", 8, 190),
        fake_point("cpu-bound", "cpu-5ms", "threaded", "default", 8, 380),
        fake_point("cpu-bound", "cpu-5ms", "threaded", "gil", 8, 190),
        fake_point("io-bound", "io-50ms", "evloop", "default", 1000, 19000, little_frac=0.95,
                   little_rps=20000),
        fake_point("idle", "idle", "coro", "default", 10000, 0, kib_per_conn=6.0,
                   threads_per_conn=0.0, idle_alive_open=10000),
    ]
    pts.append(dict(fake_point("head-of-line", "json-alone", "evloop", "default", 50, 200,
                               lat_p99_ms=0.5, lat_p50_ms=0.2), kind="open-loop"))
    pts.append(dict(fake_point("head-of-line", "json+cpu50ms", "evloop", "default", 50, 200,
                               lat_p99_ms=48.0, lat_p50_ms=3.0), kind="open-loop"))
    doc = {"points": pts, "models": models, "pinning": {"server_cores": 2}}
    verdicts = {c["id"]: c["verdict"] for c in claims.evaluate(doc)}
    check(verdicts["go-vs-node-cpu"].startswith("supported"), verdicts["go-vs-node-cpu"])
    check(verdicts["node-io"].startswith("`/io?ms=50` (io-bound): supported up to 1000 "
                                         "connections; `/upstream?calls=1&ms=50` "
                                         "(upstream-bound): not tested yet"), verdicts["node-io"])
    check(verdicts["python-slower"].startswith("supported"), verdicts["python-slower"])
    check(verdicts["go-connections"] == "supported", verdicts["go-connections"])
    check(verdicts["node-chokes"].startswith("supported"), verdicts["node-chokes"])
    # past what one core serves: the loop is CPU-bound, and that is said, not hidden
    saturated = [fake_point("io-bound", "io-50ms", "evloop", "default", 10000, 40000,
                            little_frac=0.2, little_rps=200000, srv_cpu_cores=0.95),
                 fake_point("io-bound", "io-50ms", "coro", "default", 10000, 28000,
                            little_frac=0.14, little_rps=200000)]
    doc["points"] = pts + saturated
    v = {c["id"]: c["verdict"] for c in claims.evaluate(doc)}["node-io"]
    check(v.startswith("`/io?ms=50` (io-bound): supported up to 1000 connections; at 10000 the "
                       "single loop thread is CPU-bound"), v)
    doc["points"] = pts[:4] + [fake_point("io-bound", "io-50ms", "evloop", "default", 1000,
                                          9000, little_frac=0.45, little_rps=20000,
                                          srv_cpu_cores=0.3)]
    v = {c["id"]: c["verdict"] for c in claims.evaluate(doc)}["node-io"]
    check(v.startswith("`/io?ms=50` (io-bound): not supported;"), v)
    # judged on /upstream as well, and the verdict says which scenario each part rests on
    doc["points"] = pts + [
        fake_point("upstream-bound", "upstream-1x50ms", "evloop", "default", 1000, 18500,
                   little_frac=0.925, little_rps=20000, srv_threads_max=1,
                   up_dials_per_req=0.3),
        fake_point("upstream-bound", "upstream-1x50ms", "evloop", "default", 100, 1900,
                   little_frac=0.95, little_rps=2000, srv_threads_max=1,
                   up_dials_per_req=0.0),
        fake_point("upstream-bound", "upstream-1x50ms", "coro", "default", 1000, 18200,
                   little_frac=0.91, little_rps=20000, srv_threads_max=5, mid_goroutines=990,
                   up_dials_per_req=1.0),
        fake_point("upstream-bound", "upstream-1x50ms", "threaded", "perconn", 1000, 17000,
                   little_frac=0.85, little_rps=20000, srv_threads_max=1003)]
    verdicts = {c["id"]: c["verdict"] for c in claims.evaluate(doc)}
    check(verdicts["node-io"].endswith("`/upstream?calls=1&ms=50` (upstream-bound): supported "
                                       "up to 1000 connections"), verdicts["node-io"])
    for sig in ("sig-upstream-perconn", "sig-upstream-evloop", "sig-upstream-coro",
                "sig-upstream-pool"):
        check(verdicts[sig] == "matches", "%s: %s" % (sig, verdicts[sig]))
    doc["points"] = pts
    # the same run without evloop and coro: their claims are "not tested yet"
    doc["points"] = [p for p in pts if p["model"] == "threaded"]
    verdicts = {c["id"]: c["verdict"] for c in claims.evaluate(doc)}
    check(verdicts["go-vs-node-cpu"].startswith("not tested yet"), verdicts["go-vs-node-cpu"])
    check(verdicts["python-slower"].startswith("supported"), verdicts["python-slower"])


def check_compare():
    """The mirror/runtime tables on made-up numbers: same and different shapes, the claims
    decomposed into runtime, mirror and language ratios, per-request CPU cost."""
    models = [{"name": "threaded", "role": "python", "kind": "mirror", "built": True},
              {"name": "evloop", "role": "node", "kind": "mirror", "built": True},
              {"name": "coro", "role": "go", "kind": "mirror", "built": True},
              {"name": "node", "role": "node", "kind": "peer", "built": True},
              {"name": "go", "role": "go", "kind": "peer", "built": True},
              {"name": "python", "role": "python", "kind": "peer", "built": True,
               "pairs": {"default": ["gil", "default"], "workers2": ["gil+workers2"]}}]

    def cpu(model, mode, conns, r, iters, cores=1.0):
        p = fake_point("cpu-bound", "cpu-5ms", model, mode, conns, r, srv_cpu_cores=cores,
                       srv_cpu_us_per_req=1e6 * cores / r)
        p["path"] = "/cpu?iterations=%d" % iters
        return p
    pts = [cpu("coro", "default", 1, 190, 57000), cpu("coro", "default", 8, 370, 57000, 1.9),
           cpu("evloop", "default", 1, 190, 57000), cpu("evloop", "default", 8, 195, 57000),
           cpu("go", "default", 1, 180, 50000), cpu("go", "default", 8, 350, 50000, 1.9),
           cpu("node", "default", 1, 190, 2000), cpu("node", "default", 8, 192, 2000),
           cpu("threaded", "gil", 1, 190, 57000), cpu("threaded", "gil", 8, 192, 57000),
           cpu("python", "default", 1, 180, 800), cpu("python", "default", 8, 185, 800),
           cpu("threaded", "gil+workers2", 8, 370, 57000, 1.9),
           cpu("python", "workers2", 8, 350, 800, 1.9)]
    doc = {"points": pts, "models": models, "pinning": {"server_cores": 2},
           "cpu_calibration": {"ns_per_iteration": 88.0, "measured_on": "threaded/default"},
           "peers": {"calibration": {"node": {"ns_per_iteration": 2500.0},
                                     "go": {"ns_per_iteration": 100.0},
                                     "python": {"ns_per_iteration": 6200.0}}}}
    out = compare.evaluate(doc)
    sig = {(r["signature"].split(",")[0].split(":")[0], r["runtime"]): r
           for r in out["mirror_runtime"]}
    check(sig[("CPU-bound scaling", "go/default")]["verdict"] == compare.SAME,
          repr(sig[("CPU-bound scaling", "go/default")]))
    check(sig[("CPU-bound scaling", "node/default")]["runtime_shape"] == "one core",
          repr(sig[("CPU-bound scaling", "node/default")]))
    g = sig[("GIL flatness", "python/default")]
    check(g["verdict"] == compare.SAME and g["mirror"] == "threaded/gil", repr(g))
    dec = {r["id"]: r for r in out["decomposed"]}
    d = dec["go-vs-node-cpu"]
    # go 350 x 50000 against node 192 x 2000 iterations/s; coro 370 against evloop 195 req/s
    check(abs(d["runtime_ratio"] - (350 * 50000) / (192 * 2000)) < 1e-6, repr(d))
    check(abs(d["mirror_ratio"] - 370 / 195) < 1e-6, repr(d))
    check(abs(d["language_ratio"] - d["runtime_ratio"] / d["mirror_ratio"]) < 1e-9, repr(d))
    check("python-slower" in dec, repr(list(dec)))
    costs = [r for r in out["cpu_cost"] if r["scenario"] == "calibration"]
    check(len(costs) == 3 and all(r["ratio"] for r in costs), repr(costs))
    # a runtime that cannot follow Little's law for want of CPU: a different shape, and why
    up = lambda m, mode, n, r, thr, cores: fake_point(  # noqa: E731
        "upstream-bound", "upstream-1x50ms", m, mode, n, r, little_frac=r / (n * 20.0),
        little_rps=n * 20.0, srv_threads_max=thr, srv_cpu_cores=cores,
        srv_cpu_us_per_req=1e6 * cores / r)
    doc["points"] = pts + [up("evloop", "default", 100, 1950, 1, 0.1),
                           up("evloop", "default", 1000, 18800, 1, 0.8),
                           up("node", "default", 100, 1900, 7, 0.3),
                           up("node", "default", 1000, 6000, 7, 0.99)]
    out = compare.evaluate(doc)
    r = [x for x in out["mirror_runtime"] if x["scenario"] == "upstream-bound"][0]
    check(r["verdict"] == compare.DIFF and "CPU-bound" in r["why"], repr(r))
    md = "\n".join(compare.markdown(dict(doc, compare=out),
                                    lambda h, rows: "|%d rows|" % len(rows)))
    check("Mirror and runtime" in md and "decomposed" in md and "CPU cost" in md, md)
    # no peer in the run: the tables say so
    doc["points"] = [p for p in pts if p["model"] in ("coro", "evloop", "threaded")]
    out = compare.evaluate(doc)
    check(out["mirror_runtime"] == [] and out["decomposed"] == [], repr(out))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build-dir", required=True)
    ap.add_argument("--keep", action="store_true", help="keep the results directory")
    a = ap.parse_args()

    for tool in ("wrk", "h2load", "taskset"):
        if shutil.which(tool) is None:
            skip("%s is not installed (docker/install-deps.sh installs it)" % tool)
    if importlib.util.find_spec("matplotlib") is None:
        skip("matplotlib is missing for %s (Debian: python3-matplotlib)" % sys.executable)
    if not os.path.exists(os.path.join(a.build_dir, "workloads", "triad-baseline-hello")):
        check(False, "triad-baseline-hello is not built in %s" % a.build_dir)

    check_claims()
    check_compare()
    out = tempfile.mkdtemp(prefix="triad-bench-smoke-")
    try:
        stdout = run_runner(a.build_dir, out)
        check_outputs(out, stdout)
    finally:
        if a.keep:
            print("kept " + out)
        else:
            shutil.rmtree(out, ignore_errors=True)
    print("OK")


if __name__ == "__main__":
    main()
