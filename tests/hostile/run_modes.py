#!/usr/bin/env python3
"""Run the bad-input suite against every server mode of one build and collect one report.

    python3 tests/hostile/run_modes.py --build BUILD_DIR --report FILE [--sanitized] [-k S]

The modes are those of tests/meson.build (conformance_runs). Each run adds its column to the
Markdown report FILE (answers kept in FILE.json); a run's own output goes to FILE.<mode>.log.
With --sanitized, triad-coro gets --stack-kib 256 (sanitizer frames are larger), as in
tests/meson.build. The exit status is 1 if any mode failed.
"""

import argparse
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))

MODES = [
    ("threaded", "threaded", []),
    ("threaded-perconn", "threaded", ["--threads", "0"]),
    ("threaded-gil", "threaded", ["--gil"]),
    ("threaded-workers2", "threaded", ["--workers", "2"]),
    ("evloop", "evloop", []),
    ("evloop-db-on-loop", "evloop", ["--db-on-loop"]),
    ("evloop-cluster2", "evloop", ["--cluster", "2"]),
    ("coro-procs1", "coro", ["--procs", "1"]),
    ("coro-procs2", "coro", ["--procs", "2"]),
]


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--build", required=True, help="a meson build directory")
    p.add_argument("--report", required=True, help="the Markdown report to write")
    p.add_argument("--sanitized", action="store_true", help="a sanitizer build")
    p.add_argument("--only", default="", help="run only modes whose name contains this")
    p.add_argument("-k", default="", help="passed to hostile.py")
    opts = p.parse_args()
    for f in (opts.report, opts.report + ".json"):
        if os.path.exists(f):
            os.remove(f)
    failed = []
    for (name, model, args) in MODES:
        if opts.only not in name:
            continue
        binary = os.path.join(opts.build, "servers", model, "triad-" + model)
        if model == "coro" and opts.sanitized:
            args = args + ["--stack-kib", "256"]
        cmd = [sys.executable, os.path.join(HERE, "hostile.py"), "--server", binary,
               "--label", name, "--report", opts.report] + (["-k", opts.k] if opts.k else [])
        cmd += ["--"] + args
        log = "%s.%s.log" % (opts.report, name)
        with open(log, "w") as out:
            rc = subprocess.call(cmd, stdout=out, stderr=subprocess.STDOUT)
        with open(log) as f:
            lines = f.read().splitlines()
        summary = [ln for ln in lines if " cases, " in ln]
        print("%-20s exit %d  %s" % (name, rc, summary[-1] if summary else "(no summary)"),
              flush=True)
        if rc != 0:
            failed.append(name)
    print("report: %s" % opts.report)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
