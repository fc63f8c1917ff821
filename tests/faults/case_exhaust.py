"""Case 7: the coroutine model out of stacks or out of threads.

A goroutine needs a stack (an mmap) and, to run in parallel, an M (an OS thread). When either
cannot be had, the server must refuse the work it cannot start with a 503 and Retry-After (the
request goroutine, each /fanout call), keep answering, and still drain and exit 0 on SIGTERM
within --drain-timeout. Before this was checked, a stack that could not be mapped made the
request run as a plain call on the shard's own goroutine (a double resume, then an abort at
shutdown), and an M that could not be started left the only poller asleep with work queued (a
hang at shutdown).

  - stacks: RLIMIT_AS just above what an idle server uses, with 8 MiB goroutine stacks, so that
    a dozen goroutines fit and a burst of 40 does not. Thread stacks and malloc arenas need
    address space too, so Ms fail as well.
  - threads: RLIMIT_NPROC as an unprivileged user (root is exempt): the main thread, sysmon and
    one M fit, a second M for the second P does not.

Other models: not applicable (logged). Sanitizer builds: skipped (ASan and TSan reserve
terabytes of shadow memory, so an address-space limit stops them at start; TSan also runs a
thread of its own, which changes the thread count).
"""

import json
import os
import threading

from tests.conformance import harness, httpraw
from tests.conformance.harness import check
from tests.faults.common import (HANG_GUARD, OPTS, connect, expect, fail, log, new_instance,
                                 request, sanitizer_free, start_instance, stats, wait_exit)
from workloads.runner.launch import StartupError, describe_status

NOBODY = 65534
STACK_KIB = 8192
STACKS_THAT_FIT = 12
BURST = 40
DRAIN_S = 10


def applicable(ctx, what):
    if ctx.model != "coro":
        log("%s: not applicable to the %s model" % (what, ctx.model))
        return False
    if OPTS.sanitized:
        log("%s: skipped in a sanitizer build (shadow memory and the sanitizer's own threads)"
            % what)
        return False
    return True


def vm_size(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024
    fail("no VmSize in /proc/%d/status" % pid)


def expect_answer(resp, what):
    """200, or a proper refusal: 503, Retry-After: 1 and a JSON error."""
    if resp.status == 200:
        return 200
    expect(resp.status == 503 and resp.header("Retry-After") == "1",
           "%s: expected 200 or 503 with Retry-After: 1, got %s" % (what, resp.describe()))
    try:
        body = json.loads(resp.body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        fail("%s: 503 without a JSON body: %s" % (what, resp.describe()))
    expect(isinstance(body, dict) and isinstance(body.get("error"), str),
           "%s: 503 body %r" % (what, resp.body[:200]))
    return 503


def burst(srv, target, n):
    """n concurrent GETs on fresh connections; every one must be answered."""
    out = [None] * n

    def one(i):
        try:
            with connect(srv, timeout=HANG_GUARD) as c:
                out[i] = c.request("GET", target)
        except (OSError, httpraw.ProtocolError) as e:
            out[i] = e

    threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    codes = []
    for (i, r) in enumerate(out):
        if isinstance(r, Exception):
            fail("GET %s #%d got no answer: %s: %s%s" % (target, i, type(r).__name__, r,
                                                        harness.stderr_excerpt(srv)))
        codes.append(expect_answer(r, "GET %s #%d" % (target, i)))
    return codes


def stop_cleanly(ctx, srv, what):
    """SIGTERM: drained and exit 0 within --drain-timeout (plus a hang guard for the rest)."""
    srv.terminate()
    rc = wait_exit(srv, DRAIN_S + HANG_GUARD)
    if rc is None:
        srv.kill()
        fail("%s: still running %d s after SIGTERM (--drain-timeout %d)%s"
             % (what, DRAIN_S + HANG_GUARD, DRAIN_S, harness.stderr_excerpt(srv)))
    expect(rc == 0, "%s: exit status %s after SIGTERM, expected 0%s"
           % (what, describe_status(rc), harness.stderr_excerpt(srv)))
    sanitizer_free(srv, what)


@check("exhaustion.stacks")
def _(ctx):
    what = "out of stacks"
    if not applicable(ctx, what):
        return
    args = ["--procs", "1", "--stack-kib", str(STACK_KIB), "--drain-timeout", str(DRAIN_S)]
    probe = start_instance(ctx, "as-probe", args)
    request(probe, "GET", "/io?ms=1")       # an M, its thread stack and malloc arena exist now
    limit = vm_size(probe.pid) + STACKS_THAT_FIT * STACK_KIB * 1024
    ctx.stop_server(probe)
    srv = new_instance(ctx, "as-limit", args, address_space=limit)
    try:
        srv.start()
    except StartupError as e:
        fail("%s: did not start under RLIMIT_AS=%d: %s%s"
             % (what, limit, e, harness.stderr_excerpt(srv)))
    codes = burst(srv, "/io?ms=1000", BURST)
    log("%s: RLIMIT_AS %d MiB, %d concurrent /io: %d answered 200, %d refused with 503"
        % (what, limit >> 20, BURST, codes.count(200), codes.count(503)))
    expect(503 in codes, "%s: %d goroutines of %d KiB fit in %d MiB of address space?"
           % (what, BURST, STACK_KIB, limit >> 20))
    fan = expect_answer(request(srv, "GET", "/fanout?calls=100&ms=50"), "GET /fanout")
    log("%s: /fanout?calls=100 answered %d" % (what, fan))
    expect(fan == 503, "%s: 100 goroutines of %d KiB started within the limit" % (what, STACK_KIB))
    expect_answer(request(srv, "GET", "/json"), "GET /json after the burst")
    stop_cleanly(ctx, srv, what)


@check("exhaustion.threads")
def _(ctx):
    what = "out of threads"
    if not applicable(ctx, what):
        return
    if os.geteuid() != 0:
        log("%s: skipped: RLIMIT_NPROC needs a user to switch to (run as root)" % what)
        return
    os.chmod(ctx.workdir, 0o755)        # the unprivileged server creates its database there
    # main, sysmon and one M; the second P's M cannot be started.
    args = ["--procs", "2", "--drain-timeout", str(DRAIN_S)]
    srv = new_instance(ctx, "nproc-limit", args, uid=NOBODY, gid=NOBODY, nproc=3)
    db_dir = os.path.dirname(srv.db_path)
    os.makedirs(db_dir, exist_ok=True)
    os.chown(db_dir, NOBODY, NOBODY)
    try:
        srv.start()
    except StartupError as e:
        fail("%s: did not start with RLIMIT_NPROC=3: %s%s"
             % (what, e, harness.stderr_excerpt(srv)))
    codes = burst(srv, "/io?ms=200", 20)
    log("%s: 20 concurrent /io: %d answered 200, %d refused with 503"
        % (what, codes.count(200), codes.count(503)))
    expect(503 in codes, "%s: no request was refused although no second M could start" % what)
    s = stats(srv)
    failed = s["gauges"].get("threads_failed_total", 0)
    log("%s: threads_failed_total %s, threads_started %s"
        % (what, failed, s["gauges"].get("threads_started")))
    expect(failed >= 1, "%s: gauges.threads_failed_total is %r" % (what, failed))
    stop_cleanly(ctx, srv, what)
