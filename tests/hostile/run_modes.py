#!/usr/bin/env python3
"""Run the bad-input suite against every test run of one build and collect one report.

    python3 -m tests.hostile.run_modes --build BUILD_DIR --report FILE [--sanitized]
                                       [--only S] [-k S]

The runs are the registry's (workloads/models.toml: each model's `tests` modes that run this
suite, named as meson names them; --sanitized adds each model's sanitizer_args, as a sanitizer
build does). Each run adds its column to the Markdown report FILE (answers kept in FILE.json); a run's own
output goes to FILE.<run>.log. The exit status is 1 if any run failed.
"""

import argparse
import os
import subprocess
import sys

from workloads.runner import registry


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--build", required=True, help="a meson build directory")
    p.add_argument("--report", required=True, help="the Markdown report to write")
    p.add_argument("--sanitized", action="store_true", help="a sanitizer build")
    p.add_argument("--only", default="", help="run only runs whose name contains this")
    p.add_argument("-k", default="", help="passed to the suite")
    opts = p.parse_args()
    for f in (opts.report, opts.report + ".json"):
        if os.path.exists(f):
            os.remove(f)
    models = registry.load(build_dir=opts.build)
    failed = []
    for run in registry.test_runs(models, opts.sanitized, suite="hostile"):
        if opts.only not in run.name:
            continue
        # The suite runs from the source root (it is a module of the package tests).
        cmd = [sys.executable, "-m", "tests.hostile.hostile", "--server", run.model.program,
               "--label", run.name, "--report", os.path.abspath(opts.report)]
        cmd += (["-k", opts.k] if opts.k else []) + ["--"] + run.args
        log = "%s.%s.log" % (opts.report, run.name)
        with open(log, "w") as out:
            rc = subprocess.call(cmd, stdout=out, stderr=subprocess.STDOUT, cwd=registry.ROOT)
        with open(log) as f:
            lines = f.read().splitlines()
        summary = [ln for ln in lines if " cases, " in ln]
        print("%-20s exit %d  %s" % (run.name, rc, summary[-1] if summary else "(no summary)"),
              flush=True)
        if rc != 0:
            failed.append(run.name)
    print("report: %s" % opts.report)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
