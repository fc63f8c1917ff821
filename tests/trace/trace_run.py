"""trace_run.py - start a server with --trace, drive it, stop it, load its trace(s).

Shared by the trace tests (test_trace.py). Standard library only.
"""

import glob
import http.client
import json
import os
import re
import signal
import subprocess
import threading
import time

BANNER = re.compile(r"listening on http://([^:/\s]+):(\d+)")
SANITIZER_MARKERS = ("ERROR: AddressSanitizer", "runtime error:", "WARNING: ThreadSanitizer",
                     "LeakSanitizer")
STARTUP_TIMEOUT = 60.0
SHUTDOWN_TIMEOUT = 60.0


class Failure(Exception):
    pass


def expect(cond, msg):
    if not cond:
        raise Failure(msg)


def get(port, path, timeout=60.0):
    """One GET on a fresh connection; returns (status, body)."""
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        c.request("GET", path)
        r = c.getresponse()
        return r.status, r.read()
    finally:
        c.close()


def in_background(port, path, results, key):
    def run():
        try:
            results[key] = get(port, path)
        except OSError as e:
            results[key] = (0, str(e).encode())
    t = threading.Thread(target=run)
    t.start()
    return t


def run(binary, args, workdir, drive, label="server", env=None):
    """Starts `binary` with --trace, calls drive(port), stops it with SIGTERM. Returns the
    list of (path, doc) of the trace files it wrote: FILE, or FILE.<pid> per worker."""
    trace = os.path.join(workdir, label + ".json")
    for old in [p for p in [trace] if os.path.exists(p)] + glob.glob(trace + ".*"):
        os.unlink(old)
    db = os.path.join(workdir, label + ".db")
    err_path = os.path.join(workdir, label + ".stderr")
    cmd = [binary, "--port", "0", "--db", db, "--trace", trace] + list(args)
    with open(err_path, "wb") as err:
        p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                             stderr=err, cwd=workdir, start_new_session=True,
                             env=dict(os.environ, **(env or {})))
    drive_error = None
    try:
        port = _banner_port(p)
        drive(port)
    except (OSError, Failure) as e:
        drive_error = e
    finally:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
        try:
            p.wait(SHUTDOWN_TIMEOUT)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
            raise Failure("%s did not stop within %ds of SIGTERM" % (label, SHUTDOWN_TIMEOUT))
    with open(err_path, errors="replace") as f:
        stderr = f.read()
    for m in SANITIZER_MARKERS:
        expect(m not in stderr, "%s: sanitizer report:\n%s" % (label, stderr[-6000:]))
    if drive_error is not None:
        raise Failure("%s: %s (exit status %s)\n%s" % (label, drive_error, p.returncode,
                                                       stderr[-2000:]))
    expect(p.returncode == 0, "%s exited %d:\n%s" % (label, p.returncode, stderr[-2000:]))
    files = [trace] if os.path.exists(trace) else sorted(glob.glob(trace + ".*[0-9]"))
    expect(files, "%s wrote no trace (%s)" % (label, trace))
    docs = []
    for path in files:
        with open(path) as f:
            docs.append((path, json.load(f)))
    return docs


def _banner_port(p):
    deadline = time.monotonic() + STARTUP_TIMEOUT
    line = b""
    while time.monotonic() < deadline:
        line = p.stdout.readline()
        if not line:
            break
        m = BANNER.search(line.decode(errors="replace"))
        if m:
            return int(m.group(2))
    raise Failure("no start-up line from the server (got %r)" % line)


# ---- reading a trace ------------------------------------------------------------------------

class Trace:
    """A loaded trace, indexed: tracks by name, slices per track (sorted by ts)."""

    def __init__(self, doc):
        self.doc = doc
        self.events = doc["traceEvents"]
        self.names = {}         # tid -> track name
        for e in self.events:
            if e["ph"] == "M" and e["name"] == "thread_name":
                self.names[e["tid"]] = e["args"]["name"]
        self.by_tid = {}
        for e in self.events:
            if e["ph"] != "M":
                self.by_tid.setdefault(e["tid"], []).append(e)
        for evs in self.by_tid.values():
            evs.sort(key=lambda e: e["ts"])

    def tids(self, pattern):
        """Track ids whose name matches the regular expression."""
        return [t for t, n in self.names.items() if re.fullmatch(pattern, n)]

    def tid(self, name):
        t = self.tids(re.escape(name))
        expect(t, "no track named %r (have %s)" % (name, sorted(self.names.values())))
        return t[0]

    def slices(self, tid, name=None):
        return [e for e in self.by_tid.get(tid, []) if e["ph"] == "X"
                and (name is None or re.fullmatch(name, e["name"]))]

    def all(self, ph, name=None):
        return [e for e in self.events if e["ph"] == ph
                and (name is None or re.fullmatch(name, e["name"]))]

    def children(self, parent, tid):
        """The slices directly inside `parent` on track tid, in order."""
        end = parent["ts"] + parent["dur"]
        inside = [e for e in self.slices(tid) if e is not parent
                  and parent["ts"] <= e["ts"] and e["ts"] + e["dur"] <= end]
        direct = []
        for e in inside:
            if not any(o is not e and o["ts"] <= e["ts"] and e["ts"] + e["dur"] <= o["ts"] + o["dur"]
                       and o["dur"] > e["dur"] for o in inside):
                direct.append(e)
        return direct


def end(e):
    return e["ts"] + e.get("dur", 0)
