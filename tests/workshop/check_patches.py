#!/usr/bin/env python3
"""Every workshop solution still applies to the tree, in seconds.

tests/workshop/run proves each solution makes its check pass, but only in the full run (it
needs a release build of its own). A change to a file a solution touches breaks the patch long
before that; this check, run in every build, says so at once and names the exercise.
`git apply --check` reads the patch and the files and writes nothing; it needs no repository.
"""

import glob
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def main():
    patches = sorted(glob.glob(os.path.join(ROOT, "workloads", "workshop", "*", "solution.patch")))
    if not patches:
        print("check_patches: no solution.patch under workloads/workshop/")
        return 1
    bad = 0
    for patch in patches:
        name = os.path.basename(os.path.dirname(patch))
        res = subprocess.run(["git", "apply", "--check", patch], cwd=ROOT,
                             capture_output=True, text=True)
        if res.returncode == 0:
            print("ok   %s" % name)
        else:
            bad += 1
            print("FAIL %s: its solution.patch no longer applies (regenerate it: apply with "
                  "`patch -p1` or `git apply -3`, resolve, `git diff` the exercise's files)\n%s"
                  % (name, res.stderr.strip()))
    print("check_patches: %d solutions, %d do not apply" % (len(patches), bad))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
