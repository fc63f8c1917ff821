#!/usr/bin/env python3
"""The faults suite: clients that vanish, write contention, disk faults,
SIGTERM under load, kill -9 during writes, and 10,000 keep-alive connections, against one server
binary in one mode; in a PostgreSQL mode (--db @pg), PostgreSQL's own faults instead (case_pg).

    python3 -m tests.faults.faults --server build/servers/evloop/triad-evloop \
        [--sanitized] [--load-connections N] [-k SUBSTRING] [--list] [--keep-tmp] \
        [-- extra server args...]

(from the source root: the suites are modules of the package `tests`.)

It runs on the conformance suite's harness (tests/conformance/harness.py): one main instance
started with the extra arguments, further instances per case, `ok NAME` / `FAIL NAME: reason`
lines, SIGTERM and a sanitizer scan of every instance's stderr at the end. Lines starting with
`#` report what the server did (which outcome a fault had, measured memory).

--sanitized (also detected from the binary) marks a sanitizer build: the load case opens fewer
connections and memory bounds are reported, not asserted (ASan's quarantine and shadow memory
make RSS meaningless; LeakSanitizer checks leaks at the clean shutdown instead).

Never asserts durations: every deadline is a hang guard. Python 3 standard library only.
"""

import sys

sys.dont_write_bytecode = True      # keep the source tree clean (it may be read-only)

from tests.conformance import harness   # noqa: E402
from tests.faults import common         # noqa: E402

# The cases, in run order (registration order).
from tests.faults import case_disconnect    # noqa: E402,F401
from tests.faults import case_contention    # noqa: E402,F401
from tests.faults import case_disk          # noqa: E402,F401
from tests.faults import case_shutdown      # noqa: E402,F401
from tests.faults import case_crash         # noqa: E402,F401
from tests.faults import case_load          # noqa: E402,F401
from tests.faults import case_exhaust       # noqa: E402,F401
from tests.faults import case_upstream      # noqa: E402,F401
from tests.faults import case_pg            # noqa: E402,F401
from workloads.runner import pg             # noqa: E402

SANITIZER_SYMBOLS = (b"__asan_init", b"__tsan_init", b"__ubsan_handle_", b"__msan_init")


def looks_sanitized(binary):
    try:
        with open(binary, "rb") as f:
            data = f.read()
    except OSError:
        return False
    return any(s in data for s in SANITIZER_SYMBOLS)


def split_own_options(argv):
    """Take this suite's options out of argv (before any `--`); the rest goes to the harness."""
    if "--" in argv:
        i = argv.index("--")
        head, tail = argv[:i], argv[i:]
    else:
        head, tail = argv, []
    rest = []
    it = iter(head)
    for a in it:
        if a == "--sanitized":
            common.OPTS.sanitized = True
        elif a == "--load-connections":
            common.OPTS.load_connections = int(next(it))
        elif a.startswith("--load-connections="):
            common.OPTS.load_connections = int(a.split("=", 1)[1])
        elif a in ("-h", "--help"):
            print(__doc__)
            rest.append(a)
        else:
            rest.append(a)
    return rest + tail


def timed_run_one(run_one):
    """Report how long each check took (information for the suite's time budget only)."""
    import time

    def run(ctx, rep, name, fn):
        t0 = time.monotonic()
        run_one(ctx, rep, name, fn)
        print("#   (%s: %.1f s)" % (name, time.monotonic() - t0), flush=True)
    return run


def skip_reason(name, opts):
    """A PostgreSQL run (--db @pg) runs PostgreSQL's own faults (pg.*), which only it can;
    the other cases are the sqlite runs' (their files, locks and disks)."""
    on_pg = pg.uses_placeholder(opts.extra)
    if name.startswith("pg.") and not on_pg:
        return "need a PostgreSQL run (a pg mode: --db @pg)"
    if on_pg and not name.startswith("pg."):
        return "are the sqlite runs' (this run checks PostgreSQL's own faults: pg.*)"
    return None


def main():
    argv = split_own_options(sys.argv[1:])
    if "--server" in argv:
        i = argv.index("--server")
        if i + 1 < len(argv) and looks_sanitized(argv[i + 1]):
            common.OPTS.sanitized = True
    sys.argv = [sys.argv[0]] + argv
    harness.run_one = timed_run_one(harness.run_one)
    harness.skip_reason = skip_reason
    if common.OPTS.sanitized:
        print("# sanitizer build: lighter load, memory reported but not bounded", flush=True)
    harness.entry()


if __name__ == "__main__":
    main()
