"""The real runtimes beside their mirrors: installing the peers before a run, and
calibrating /cpu on each of them.

The peers are models of kind "peer" in workloads/models.toml. Before a run the runner calls
workloads/peers/install with the peers the run would use. That script prints, on stdout, one
versions line per peer it installed ("node peer: Node.js v22..., sqlite3 ...") and one
"PEER peer: skipped: REASON" line per peer it could not install; its progress goes to stderr,
which the runner keeps in logs/peers-install.log. A peer that could not be installed is
skipped with that reason in the summary and the report, never silently dropped.

/cpu is calibrated once per runtime: triad's servers run the same C, so one calibration
serves them all, but the same iteration count takes ~70x longer in CPython than in C. Each
peer gets its own count for "about 5 ms" (and 50 ms), so that a scenario asks each runtime for
the same time of work and the same shapes (scaling with connections, head-of-line blocking)
can be compared; the speed of each language is its ns per iteration, in the report, and
claims about CPU-bound speed are judged on work done (iterations per second), not requests.
"""

import os
import re
import shutil
import subprocess
import tempfile
import time

VERSION_LINE = re.compile(r"^(\w+) peer: (.*)$")
SKIP_LINE = re.compile(r"^(\w+) peer: skipped: (.*)$")


def install(root, names, log_path):
    """Runs workloads/peers/install for `names`; returns (versions, skipped, seconds) where
    versions maps a peer to its versions text and skipped a peer to the reason."""
    versions, skipped = {}, {}
    if not names:
        return versions, skipped, 0.0
    script = os.path.join(root, "workloads", "peers", "install")
    t0 = time.monotonic()
    try:
        with open(log_path, "a") as log:
            log.write("$ %s %s\n" % (script, " ".join(names)))
            log.flush()
            p = subprocess.run([script] + list(names), stdout=subprocess.PIPE, stderr=log,
                               stdin=subprocess.DEVNULL, text=True, errors="replace",
                               timeout=1800)
            out = p.stdout
            log.write(out)
    except (OSError, subprocess.TimeoutExpired) as e:
        for n in names:
            skipped[n] = "workloads/peers/install could not run: %s" % e
        return versions, skipped, time.monotonic() - t0
    for line in out.splitlines():
        m = SKIP_LINE.match(line.strip())
        if m:
            skipped[m.group(1)] = m.group(2)
            continue
        m = VERSION_LINE.match(line.strip())
        if m:
            versions[m.group(1)] = m.group(2)
    for n in names:
        if n not in versions and n not in skipped:
            skipped[n] = ("workloads/peers/install gave no versions line for it (exit %d; "
                          "see logs/peers-install.log)" % p.returncode)
    return versions, skipped, time.monotonic() - t0


def wanted(models, model_filter, target):
    """The peers a run would start: in the registry, and selected by --model (if given)."""
    if target:
        return []
    out = []
    for m in models:
        if m.kind != "peer":
            continue
        if model_filter is not None and m.name not in model_filter:
            continue
        out.append(m)
    return out


# JIT warm-up: V8 runs /cpu's BigInt loop in its interpreter (~2 µs an iteration) until,
# after some hundreds of calls, TurboFan compiles it to 64-bit machine arithmetic (~0.2 µs):
# measured in a fresh process, /cpu would catch Node in whichever tier it happened to be. A
# long-running server is in the compiled one, so a JIT peer (registry `jit = true`: node) whose
# server run includes /cpu is primed first with PRIME_S seconds of cheap sequential /cpu calls,
# and so is its calibration. Go and CPython compile nothing at run time.
PRIME_S = 1.0
PRIME_PATH = "/cpu?iterations=500"


def prime(base_url, seconds=PRIME_S):
    """Sequential cheap /cpu calls for `seconds`; returns how many were made."""
    from workloads.runner import loadgen
    conn, n = None, 0
    t0 = time.monotonic()
    try:
        while time.monotonic() - t0 < seconds:
            status, _, _, conn = loadgen.timed_get(base_url, PRIME_PATH, conn, timeout=10)
            if status != 200:
                break
            n += 1
    except OSError:
        pass
    finally:
        if conn is not None:
            conn.close()
    return n


def needs_prime(model, points):
    return model is not None and model.jit and model.serves("/cpu") and any(
        "/cpu" in pt.path or (pt.background and "/cpu" in pt.background.get("path", ""))
        for pt in points)


def calibrate(runner, peer_models, stop, log_name="calibration.log"):
    """Iterations of /cpu per ms on each peer (default mode); {name: calibration dict}. A peer
    that fails to calibrate is left out (its CPU steps are then skipped with the reason)."""
    out = {}
    for m in peer_models:
        if not m.serves("/cpu"):
            continue
        tmp = tempfile.mkdtemp(prefix="triad-bench-cal-")
        server = runner.new_server(m, m.mode_args("default"), tmp, log_name)
        try:
            server.start()
            primed = prime(server.base_url) if m.jit else 0
            out[m.name] = runner._calibrate_on(server.base_url, "%s/default" % m.name)
            out[m.name]["primed_calls"] = primed
        except Exception as e:  # noqa: BLE001 - a peer that cannot calibrate is reported
            runner.progress_msg("CPU calibration on %s failed: %s" % (m.name, e))
            runner.failures.append({"what": "cpu calibration on %s" % m.name, "error": str(e)})
        finally:
            for a in stop(server):
                runner.anomalies.append({"where": "calibration %s" % m.name, "what": a})
            shutil.rmtree(tmp, ignore_errors=True)
    return out
