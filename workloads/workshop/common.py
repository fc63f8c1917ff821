"""What every exercise's `check` shares: the build, a server on a free port, requests, load,
/stats, and the verdict.

A check is a short script. It builds the programs it needs (meson and ninja, a release build
in build/ unless --build-dir says otherwise), starts servers through the launcher every suite
uses (workloads/runner/launch.py: a free port, a fresh database, SIGTERM at the end), measures
one thing, and ends with one line, `PASS: why` or `FAIL: why`, and exit status 0 or 1. A check
that cannot measure at all (no compiler, a server that does not start) says so and fails.

Measurements are chosen to survive a noisy 2-core machine: ratios with wide bands, counts of
threads, connections and events, gauges read from /stats; never a latency in milliseconds
compared with a fixed number. Where a duration matters it is compared with another duration
measured in the same run (the /cpu request's own length, for instance).
"""

import argparse
import collections
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.dont_write_bytecode = True  # the source tree stays clean

from workloads.runner import launch, sysinfo  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]

BINARIES = {
    "threaded": "servers/threaded/triad-threaded",
    "evloop": "servers/evloop/triad-evloop",
    "coro": "servers/coro/triad-coro",
}


class Failed(Exception):
    """Raised anywhere in a check: the verdict is FAIL with this reason."""


class Check:
    """One check run: its options, its build and its servers. Use as

        with Check("what this checks") as c:
            c.build("evloop")
            with c.server("evloop") as s:
                ...
            c.passed("why")       # or c.fail("why"), or raise Failed("why")
    """

    def __init__(self, title, argv=None, options=None):
        p = argparse.ArgumentParser(description=title)
        p.add_argument("--build-dir", default=os.environ.get("TRIAD_BUILD", str(ROOT / "build")),
                       help="meson build directory (default: build/ in the source root, or "
                            "$TRIAD_BUILD); configured as a release build if it does not exist")
        p.add_argument("--no-build", action="store_true",
                       help="use the programs as they are: no meson, no ninja")
        p.add_argument("--quick", action="store_true",
                       help="shorter runs (what CI uses); the verdict's bands are the same")
        p.add_argument("-v", "--verbose", action="store_true", help="show server stderr")
        for args, kwargs in options or ():
            p.add_argument(*args, **kwargs)
        self.opts = p.parse_args(argv)
        self.build_dir = Path(self.opts.build_dir)
        if not self.build_dir.is_absolute():
            self.build_dir = Path.cwd() / self.build_dir
        self.quick = self.opts.quick
        self.title = title
        self.tmp = None
        self._servers = []

    def __enter__(self):
        self.tmp = tempfile.mkdtemp(prefix="triad-workshop-")
        # Stopped from outside (a suite's timeout, ^C): unwind, so that __exit__ stops the
        # servers, which run in sessions of their own and would otherwise outlive the check.
        signal.signal(signal.SIGTERM, _terminated)
        sysinfo.raise_nofile()
        print("==", self.title)
        return self

    def __exit__(self, kind, value, tb):
        for s in reversed(self._servers):
            s.stop()
        shutil.rmtree(self.tmp, ignore_errors=True)
        if kind is Failed:
            verdict(False, str(value))
        if kind is KeyboardInterrupt:
            return False
        if kind is not None and not issubclass(kind, SystemExit):
            verdict(False, "the check itself broke: %s: %s" % (kind.__name__, value))
        return False

    # -- the build ------------------------------------------------------------------------------

    def build(self, *targets):
        """Builds the named servers ("evloop") or ninja targets ("tests/exec/test_exec_coro"),
        and nothing else: after a patch only what those need is rebuilt."""
        if self.opts.no_build:
            return
        if not (self.build_dir / "build.ninja").exists():
            run(["meson", "setup", str(self.build_dir), "--buildtype=release"], cwd=ROOT,
                what="configuring %s" % self.build_dir)
        names = [BINARIES.get(t, t) for t in targets]
        run(["ninja", "-C", str(self.build_dir)] + names, what="building " + " ".join(targets))

    def program(self, model):
        path = self.build_dir / BINARIES.get(model, model)
        if not path.exists():
            raise Failed("%s is not built (drop --no-build, or build it: ninja -C %s)"
                         % (path, self.build_dir))
        return str(path)

    # -- servers --------------------------------------------------------------------------------

    def server(self, model, *args, env=None, expect_start=True):
        """Starts a server of `model` with `args`; returns a Running (a context manager that
        stops it). `env`: extra environment variables for the server only."""
        label = "%s-%d" % (model, len(self._servers))
        wrapper = ["env"] + ["%s=%s" % kv for kv in env.items()] if env else []
        srv = launch.Server(self.program(model), os.path.join(self.tmp, label + ".db"),
                            [str(a) for a in args], label=label, workdir=self.tmp,
                            wrapper=wrapper)
        running = Running(self, srv, model, args)
        self._servers.append(running)
        try:
            srv.start()
        except launch.StartupError as e:
            running.stop()
            err = srv.stderr_text().strip()
            if not expect_start:
                return running
            raise Failed("%s %s did not start: %s%s" % (
                model, " ".join(map(str, args)), e, ("; stderr: " + err[-400:]) if err else ""))
        print("   started %s%s %s (pid %d)" % (" ".join(wrapper[1:]) + " " if env else "", model,
                                         " ".join(map(str, args)), srv.pid))
        return running

    def passed(self, why):
        verdict(True, why)

    def fail(self, why):
        raise Failed(why)


def _terminated(signum, frame):
    raise Failed("stopped by signal %d" % signum)


class Running:
    """A started server: its address, /stats, and what /proc says about it."""

    def __init__(self, check, srv, model, args):
        self.check = check
        self.srv = srv
        self.model = model
        self.args = args
        self.stopped = False
        self.returncode = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()
        return False

    @property
    def host(self):
        return self.srv.host

    @property
    def port(self):
        return self.srv.port

    @property
    def pid(self):
        return self.srv.pid

    @property
    def url(self):
        return self.srv.base_url

    def started(self):
        return self.srv.host is not None

    def stop(self):
        if not self.stopped:
            self.stopped = True
            self.returncode = self.srv.stop()
            if self.check.opts.verbose:
                sys.stdout.write(self.srv.stderr_text())
        return self.returncode

    def stderr(self):
        return self.srv.stderr_text()

    def get(self, path, timeout=30):
        return get(self.host, self.port, path, timeout)

    def stats(self):
        status, _, body = self.get("/stats")
        if status != 200:
            raise Failed("/stats answered %d" % status)
        return json.loads(body)

    def gauge(self, name):
        return self.stats()["gauges"].get(name)

    def usage(self):
        """(cpu seconds, threads) summed over the server's process tree (workers too)."""
        cpu = threads = 0
        for pid in launch.process_tree(self.pid):
            u = launch.usage(pid)
            if u is not None:
                cpu += u[0]
                threads += u[2]
        return cpu, threads

    def threads(self):
        return self.usage()[1]

    def open_fds(self):
        return launch.open_fds(self.pid)


# -- requests ------------------------------------------------------------------------------------

def get(host, port, path, timeout=30):
    """One GET on a fresh connection: (status, headers as a dict, body as text)."""
    c = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        c.request("GET", path)
        r = c.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read().decode()
    finally:
        c.close()


def timed_get(host, port, path, timeout=60):
    """(status, seconds) of one GET on a fresh connection."""
    t0 = time.monotonic()
    status, _, _ = get(host, port, path, timeout)
    return status, time.monotonic() - t0


def burst(server, path, n, timeout=60):
    """Sends `path` n times at once, each on its own connection (the clients wait at a barrier
    so that they start together). Returns the answers as (status, headers, body, seconds),
    with status None for a connection that failed, and the seconds until the last one."""
    start = threading.Barrier(n + 1)
    results = [None] * n

    def client(i):
        start.wait()
        t0 = time.monotonic()
        try:
            status, headers, body = get(server.host, server.port, path, timeout)
            results[i] = (status, headers, body, time.monotonic() - t0)
        except (OSError, http.client.HTTPException) as e:
            results[i] = (None, {}, repr(e), time.monotonic() - t0)

    clients = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(n)]
    for t in clients:
        t.start()
    start.wait()
    t0 = time.monotonic()
    for t in clients:
        t.join(timeout + 5)
    return results, time.monotonic() - t0


def in_background(fn, *args):
    """Runs fn(*args) on a thread; returns a function that joins it and returns its result."""
    box = {}

    def body():
        try:
            box["value"] = fn(*args)
        except Exception as e:  # surfaced by the joiner
            box["error"] = e

    t = threading.Thread(target=body, daemon=True)
    t.start()

    def join(timeout=120):
        t.join(timeout)
        if t.is_alive():
            raise Failed("a background request did not finish within %d s" % timeout)
        if "error" in box:
            raise Failed("a background request failed: %s" % box["error"])
        return box["value"]
    return join


class Load:
    """A closed loop: `conns` keep-alive connections, each sending `path` again as soon as its
    answer arrives, on a thread of its own (the client is light next to what these exercises
    make the server do). Use as a context manager; rate() measures completions per second over
    an interval."""

    def __init__(self, server, path, conns, timeout=60):
        self.host, self.port = server.host, server.port
        self.path = path
        self.conns = conns
        self.timeout = timeout
        self.stop_flag = threading.Event()
        self.lock = threading.Lock()
        self.done = 0
        self.statuses = collections.Counter()
        self.errors = []
        self.threads = []

    def __enter__(self):
        for _ in range(self.conns):
            t = threading.Thread(target=self._client, daemon=True)
            t.start()
            self.threads.append(t)
        return self

    def __exit__(self, *exc):
        self.stop_flag.set()
        for t in self.threads:
            t.join(self.timeout + 5)
        return False

    def _client(self):
        c = None
        while not self.stop_flag.is_set():
            try:
                if c is None:
                    c = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
                c.request("GET", self.path)
                r = c.getresponse()
                r.read()
                with self.lock:
                    self.done += 1
                    self.statuses[r.status] += 1
                if r.getheader("Connection", "").lower() == "close":
                    c.close()
                    c = None
            except (OSError, http.client.HTTPException) as e:
                with self.lock:
                    self.errors.append(repr(e))
                if c is not None:
                    c.close()
                c = None
                time.sleep(0.05)
        if c is not None:
            c.close()

    def count(self):
        with self.lock:
            return self.done

    def rate(self, seconds, warmup=0.0):
        """Completions per second over `seconds`, after `warmup` seconds."""
        time.sleep(warmup)
        n0, t0 = self.count(), time.monotonic()
        time.sleep(seconds)
        n1, t1 = self.count(), time.monotonic()
        return (n1 - n0) / (t1 - t0)


class IdleConnections:
    """N keep-alive connections that each got one answer (GET /json) and then stay open,
    saying nothing: what 10,000 mostly idle clients (websockets, long polls, browsers between
    clicks) cost a server. A context manager; closes them all on exit."""

    REQUEST = b"GET /json HTTP/1.1\r\nHost: workshop\r\n\r\n"

    def __init__(self, server, n, timeout=30):
        self.server = server
        self.n = n
        self.timeout = timeout
        self.socks = []

    def __enter__(self):
        try:
            for i in range(self.n):
                s = socket.create_connection((self.server.host, self.server.port), self.timeout)
                self.socks.append(s)
                s.sendall(self.REQUEST)
                if not self._answered(s):
                    raise Failed("connection %d of %d got no complete answer" % (i + 1, self.n))
        except OSError as e:
            self.__exit__()
            raise Failed("could not open connection %d of %d: %s"
                         % (len(self.socks) + 1, self.n, e))
        return self

    @staticmethod
    def _answered(s):
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = s.recv(4096)
            if not chunk:
                return False
            data += chunk
        head, body = data.split(b"\r\n\r\n", 1)
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        while len(body) < length:
            chunk = s.recv(4096)
            if not chunk:
                return False
            body += chunk
        return head.startswith(b"HTTP/1.1 200")

    def __exit__(self, *exc):
        for s in self.socks:
            s.close()
        self.socks = []
        return False


def interleaved(runs, seconds, rounds=3, settle=0.3):
    """Measures several closed loops in turn, `rounds` times each, and returns, per run, the
    median of its rates and its server's CPU use in cores (CPU seconds / wall seconds) over the
    same windows. Taking turns, rather than one run after the other, keeps a machine whose
    other load drifts from favouring whichever run came first. `runs` is a list of
    (server, path, connections)."""
    rates = [[] for _ in runs]
    cores = [[] for _ in runs]
    for _ in range(rounds):
        for i, (server, path, conns) in enumerate(runs):
            with Load(server, path, conns) as load:
                time.sleep(settle)  # every connection has a request in flight
                cpu0, t0 = server.usage()[0], time.monotonic()
                rates[i].append(load.rate(seconds))
                cpu1, t1 = server.usage()[0], time.monotonic()
                cores[i].append((cpu1 - cpu0) / (t1 - t0))
    return [(median(r), median(c)) for r, c in zip(rates, cores)]


def median(values):
    v = sorted(values)
    n = len(v)
    return v[n // 2] if n % 2 else (v[n // 2 - 1] + v[n // 2]) / 2


def json_during_cpu(server, iters):
    """A /cpu of `iters` iterations and, once the server's threads have burnt 30 ms of CPU on
    it (it is running, not still on its way), a /json on another connection. Returns (seconds
    the /json took, seconds the /cpu took)."""
    base = cpu_ns(server.pid)
    cpu = in_background(timed_get, server.host, server.port, "/cpu?iterations=%d" % iters)
    deadline = time.monotonic() + 30
    while cpu_ns(server.pid) - base < 30e6:  # the digest is running
        if time.monotonic() > deadline:
            raise Failed("the /cpu request never started burning CPU")
        time.sleep(0.002)
    status, json_s = timed_get(server.host, server.port, "/json")
    cpu_status, cpu_s = cpu()
    if status != 200 or cpu_status != 200:
        raise Failed("/json answered %d and /cpu %d" % (status, cpu_status))
    return json_s, cpu_s


def cpu_digest(n):
    """The /cpu digest, as shared/cpu.h defines it (slow: for small n only)."""
    mask = (1 << 64) - 1
    x = 0x243F6A8885A308D3
    for i in range(n):
        x = (x + i) & mask
        for _ in range(64):
            x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & mask
    return format(x, "016x")


def cpu_iterations_for(server, ms):
    """/cpu iterations that cost about `ms` ms of CPU on this machine, measured on `server` by
    the CPU time its threads spend on a few requests (the kernel's per-thread schedstat, in
    nanoseconds), not by wall time: on a busy machine a request may wait for a CPU, but what it
    costs once it has one is what the iteration count should express."""
    n = 100000
    best = None
    for _ in range(3):
        before = cpu_ns(server.pid)
        status, _, _ = server.get("/cpu?iterations=%d" % n)
        if status != 200:
            raise Failed("/cpu answered %d" % status)
        spent = cpu_ns(server.pid) - before
        best = spent if best is None else min(best, spent)
    per_iter_ns = max(best, 1) / n
    return max(1000, min(10000000, int(ms * 1e6 / per_iter_ns)))


def runnable_threads(pid):
    """Threads of the process tree in state R (running, or ready and waiting for a CPU). The
    kernel counts a thread as runnable whether or not the machine has a CPU free for it, so
    this shows how much parallelism the server asks for, even on a busy machine."""
    n = 0
    for p in launch.process_tree(pid):
        try:
            tids = os.listdir("/proc/%d/task" % p)
        except OSError:
            continue
        for tid in tids:
            try:
                with open("/proc/%d/task/%s/stat" % (p, tid), "rb") as f:
                    if f.read().rsplit(b")", 1)[1].split()[0] == b"R":
                        n += 1
            except (OSError, IndexError):
                pass
    return n


def cpu_ns(pid):
    """Nanoseconds the process's live threads have spent on a CPU (/proc/PID/task/*/schedstat)."""
    total = 0
    for tid in os.listdir("/proc/%d/task" % pid):
        try:
            with open("/proc/%d/task/%s/schedstat" % (pid, tid)) as f:
                total += int(f.read().split()[0])
        except (OSError, ValueError, IndexError):
            pass  # the thread has just exited
    return total


# -- running things and the verdict --------------------------------------------------------------

def run(cmd, cwd=None, what=None, timeout=1800, check=True):
    """Runs a command quietly; on failure its output's tail becomes the reason."""
    p = subprocess.run(cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       timeout=timeout)
    out = p.stdout.decode("utf-8", "replace")
    if check and p.returncode != 0:
        raise Failed("%s failed (exit %d): %s" % (what or " ".join(cmd), p.returncode,
                                                   out.strip()[-1500:]))
    return p.returncode, out


def band(value, lo, hi):
    return lo <= value <= hi


def verdict(ok, why):
    print(("PASS: " if ok else "FAIL: ") + why)
    sys.stdout.flush()
    sys.exit(0 if ok else 1)
