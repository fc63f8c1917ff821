"""Load generators: wrk (closed loop), h2load (open loop, constant rate), idle connections."""

import errno
import http.client
import json
import math
import os
import re
import selectors
import socket
import subprocess
import tempfile
import time
import urllib.parse

WRK_TIMEOUT_S = 8  # TechEmpower's --timeout 8
WARMUP_GRACE_S = 2.0     # a short h2load warm-up is cut this long after its duration


class LoadError(RuntimeError):
    pass


def taskset(cpus):
    return ["taskset", "-c", ",".join(str(c) for c in cpus)] if cpus else []


def percentile(sorted_values, p):
    """Nearest-rank percentile of an already sorted list (p in 0..100)."""
    if not sorted_values:
        return None
    rank = max(1, int(math.ceil(p / 100.0 * len(sorted_values))))
    return sorted_values[min(rank, len(sorted_values)) - 1]


# --------------------------------------------------------------------------- wrk

def run_wrk(url, connections, duration_s, threads, script, script_args=(), cpus=None,
            log=None):
    """One wrk run; returns a flat metrics dict (latencies in ms)."""
    duration = max(1, int(round(duration_s)))
    threads = max(1, min(threads, connections))
    cmd = taskset(cpus) + [
        "wrk", "-t", str(threads), "-c", str(connections), "-d", "%ds" % duration,
        "--timeout", "%ds" % WRK_TIMEOUT_S, "--latency", "-s", script,
        "-H", "Connection: keep-alive",
        "-H", "Accept: application/json,text/html;q=0.9,application/xhtml+xml;q=0.9,"
              "application/xml;q=0.8,*/*;q=0.7",
        url]
    if script_args:
        cmd += ["--"] + list(script_args)
    t0 = time.monotonic()
    try:
        p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           stdin=subprocess.DEVNULL, text=True, errors="replace",
                           timeout=duration + WRK_TIMEOUT_S + 60)
    except subprocess.TimeoutExpired:
        raise LoadError("wrk did not finish: " + " ".join(cmd))
    if log is not None:
        log.write("$ " + " ".join(cmd) + "\n" + p.stdout + "\n")
    data = None
    for line in p.stdout.splitlines():
        if line.startswith("TRIAD_WRK "):
            data = json.loads(line[len("TRIAD_WRK "):])
    if data is None:
        raise LoadError("wrk gave no result (exit %d): %s"
                        % (p.returncode, p.stdout.strip()[-400:]))
    wall = data["duration_us"] / 1e6 or (time.monotonic() - t0)
    e = data["errors"]
    lat = data["latency_us"]
    m = {
        "requests": data["requests"],
        "duration_s": wall,
        "rps": data["requests"] / wall if wall > 0 else 0.0,
        "err_connect": e["connect"], "err_read": e["read"], "err_write": e["write"],
        "err_timeout": e["timeout"], "err_status": e["status"],
    }
    m["errors_total"] = sum(e.values())
    m.update(_latency_ms(lat, data["requests"]))
    return m


def _latency_ms(lat, count):
    out = {}
    keys = (("p50", "lat_p50_ms"), ("p90", "lat_p90_ms"), ("p99", "lat_p99_ms"),
            ("p99.9", "lat_p999_ms"), ("max", "lat_max_ms"), ("mean", "lat_mean_ms"))
    for src, dst in keys:
        v = lat.get(src)
        # An empty histogram (no responses) has no latency, and wrk returns 0 for a percentile
        # it cannot place; neither is a measurement.
        out[dst] = v / 1000.0 if (v and count) else None
    return out


def warmup_h2load(url, connections, duration_s, threads, pipeline=1, method="GET", body=None,
                  content_type=None, cpus=None, tmpdir="/tmp", log=None):
    """A closed-loop warm-up shorter than wrk's 1 s minimum: h2load as fast as it can for
    duration_s on the same number of connections (pipelined like the measured runs).
    Returns the number of failed requests."""
    cmd = taskset(cpus) + ["h2load", "--h1", "-c", str(connections),
                            "-t", str(max(1, min(threads, connections))),
                            "-m", str(max(1, pipeline)), "-D", "%dms" % int(duration_s * 1000)]
    body_file = None
    if method != "GET" or body is not None:
        fd, body_file = tempfile.mkstemp(prefix="triad-bench-body-", dir=tmpdir)
        with os.fdopen(fd, "w") as f:
            f.write(body or "")
        cmd += ["-d", body_file]
    if content_type:
        cmd += ["-H", "content-type: %s" % content_type]
    cmd.append(url)
    # h2load's -D waits for every connection it opened, and some never finish: against a
    # server that stops accepting (gunicorn at worker_connections = 1000) or a burst of 1,000
    # connects to Node's http server, h2load 1.52 waits forever (its -N and -T timeouts do not
    # cover it). A warm-up only has to warm: it is cut WARMUP_GRACE_S after its duration.
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                         stdin=subprocess.DEVNULL, text=True, errors="replace")
    cut = False
    try:
        out, _ = p.communicate(timeout=duration_s + WARMUP_GRACE_S)
    except subprocess.TimeoutExpired:
        cut = True
        p.kill()
        out, _ = p.communicate()
    finally:
        if body_file:
            os.unlink(body_file)
    if log is not None:
        log.write("$ " + " ".join(cmd) + "\n" + out + "\n")
        if cut:
            log.write("# warm-up cut after %.1f s (h2load had not finished)\n"
                      % (duration_s + WARMUP_GRACE_S))
    m = _H2_REQ.search(out)
    return int(m.group(5)) if m else None


# ------------------------------------------------------------------------- h2load

_H2_REQ = re.compile(r"requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, "
                     r"(\d+) failed, (\d+) errored, (\d+) timeout")
_H2_STATUS = re.compile(r"status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx")


def _h2load_cmd(url, clients, rps_per_client, duration_s, warmup_s, log_file, cpus):
    cmd = taskset(cpus) + ["h2load", "--h1", "-c", str(clients), "-t", "1", "-m", "1",
                            "--rps", "%.6g" % rps_per_client, "-D", "%dms" % int(duration_s * 1000)]
    if warmup_s > 0:
        cmd += ["--warm-up-time", "%dms" % int(warmup_s * 1000)]
    if log_file:
        cmd += ["--log-file", log_file]
    return cmd + [url]


class OpenLoop:
    """A constant total request rate spread over `clients` connections.

    h2load fires every client's timer at the same instant, so a single h2load sends its load
    in bursts of `clients` requests. To approach a uniform arrival stream the clients are
    split over `stagger` h2load processes whose start times are spread over one client
    interval. Each process has its own warm-up (not logged) before its measured window.
    """

    def __init__(self, url, rate, clients, duration_s, warmup_s, stagger, cpus, tmpdir, tag):
        self.url, self.rate = url, float(rate)
        self.clients = max(1, int(clients))
        self.duration_s, self.warmup_s = duration_s, warmup_s
        self.stagger = max(1, min(int(stagger), self.clients))
        self.cpus, self.tmpdir, self.tag = cpus, tmpdir, tag
        self.per_client = self.rate / self.clients
        self.interval_s = 1.0 / self.per_client
        self.procs = []

    def _groups(self):
        base, extra = divmod(self.clients, self.stagger)
        return [base + (1 if k < extra else 0) for k in range(self.stagger)]

    def schedule(self):
        """[(start offset in seconds, launcher)] for this load's h2load processes."""
        out = []
        for k, n in enumerate(self._groups()):
            out.append((k * self.interval_s / self.stagger, lambda k=k, n=n: self._launch(k, n)))
        return out

    def _launch(self, k, n):
        log_file = os.path.join(self.tmpdir, "%s.%d.log" % (self.tag, k))
        if os.path.exists(log_file):
            os.unlink(log_file)
        cmd = _h2load_cmd(self.url, n, self.per_client, self.duration_s, self.warmup_s,
                          log_file, self.cpus)
        p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                             stdin=subprocess.DEVNULL, text=True, errors="replace")
        self.procs.append((cmd, p, log_file, n))

    def start(self):
        start_all([self])
        return self

    def wait(self, log=None):
        lat, statuses = [], {"2xx": 0, "3xx": 0, "4xx": 0, "5xx": 0}
        totals = [0] * 7
        late = 0
        for cmd, p, log_file, n in self.procs:
            try:
                out, _ = p.communicate(timeout=self.duration_s + self.warmup_s + 60)
            except subprocess.TimeoutExpired:
                p.kill()
                out, _ = p.communicate()
            if log is not None:
                log.write("$ " + " ".join(cmd) + "\n" + out + "\n")
            m = _H2_REQ.search(out)
            if not m:
                raise LoadError("h2load gave no summary: " + out.strip()[-400:])
            totals = [a + int(b) for a, b in zip(totals, m.groups())]
            s = _H2_STATUS.search(out)
            if s:
                for key, v in zip(("2xx", "3xx", "4xx", "5xx"), s.groups()):
                    statuses[key] += int(v)
            try:
                with open(log_file) as f:
                    for line in f:
                        parts = line.split("\t")
                        if len(parts) >= 3:
                            us = int(parts[2])
                            lat.append(us)
                            if us > self.interval_s * 1e6:
                                late += 1
            except OSError:
                pass
        lat.sort()
        total, started, done, ok, failed, errored, timeout = totals
        m = {
            "requests": done,
            "duration_s": self.duration_s,
            "target_rps": self.rate,
            "rps": done / self.duration_s if self.duration_s else 0.0,
            "err_connect": 0, "err_read": errored, "err_write": 0, "err_timeout": timeout,
            "err_status": statuses["4xx"] + statuses["5xx"],
            "not_sent": max(0, total - started),
            "late_frac": (late / len(lat)) if lat else None,
            "client_interval_ms": self.interval_s * 1000.0,
        }
        if total == 0:  # h2load could not connect at all
            m["err_connect"] = self.clients
        # h2load's "failed" covers 4xx/5xx answers, errored and timed-out requests.
        m["errors_total"] = failed + m["err_connect"]
        for p_, key in ((50, "lat_p50_ms"), (90, "lat_p90_ms"), (99, "lat_p99_ms"),
                        (99.9, "lat_p999_ms"), (100, "lat_max_ms")):
            v = percentile(lat, p_)
            m[key] = v / 1000.0 if v is not None else None
        m["lat_mean_ms"] = (sum(lat) / len(lat) / 1000.0) if lat else None
        return m


def start_all(loads):
    """Start several OpenLoops together, interleaving their staggered process starts."""
    events = sorted((off, i, fn) for i, ld in enumerate(loads) for off, fn in ld.schedule())
    t0 = time.monotonic()
    for off, _, fn in events:
        delay = off - (time.monotonic() - t0)
        if delay > 0:
            time.sleep(delay)
        fn()
    return t0


# ----------------------------------------------------------------- idle connections

def _parse_head(buf):
    """(status, content_length, header_end) once the head is complete, else None."""
    end = buf.find(b"\r\n\r\n")
    if end < 0:
        return None
    head = buf[:end].decode("latin-1").split("\r\n")
    try:
        status = int(head[0].split()[1])
    except (IndexError, ValueError):
        status = 0
    length = 0
    for h in head[1:]:
        k, _, v = h.partition(":")
        if k.strip().lower() == "content-length":
            try:
                length = int(v.strip())
            except ValueError:
                pass
    return status, length, end + 4


class IdleConnections:
    """Open n keep-alive connections, send one GET on each, read the answer, keep them open."""

    def __init__(self, host, port, path="/json"):
        self.host, self.port, self.path = host, port, path
        self.socks = []
        self.failed = 0
        self.non2xx = 0

    def open(self, n, timeout_s=60.0, parallel=256):
        req = ("GET %s HTTP/1.1\r\nHost: %s:%d\r\nConnection: keep-alive\r\n\r\n"
               % (self.path, self.host, self.port)).encode()
        sel = selectors.DefaultSelector()
        deadline = time.monotonic() + timeout_s
        started = 0
        inflight = 0

        def launch():
            nonlocal started, inflight
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setblocking(False)
            started += 1
            err = s.connect_ex((self.host, self.port))
            if err not in (0, errno.EINPROGRESS):
                s.close()
                self.failed += 1
                return
            sel.register(s, selectors.EVENT_WRITE, {"state": "connect", "buf": b""})
            inflight += 1

        while (started < n or inflight) and time.monotonic() < deadline:
            while started < n and inflight < parallel:
                try:
                    launch()
                except OSError:
                    self.failed += 1
                    n -= 1  # out of descriptors: stop trying
            if not inflight:
                break
            for key, ev in sel.select(timeout=0.5):
                s, st = key.fileobj, key.data
                try:
                    if st["state"] == "connect":
                        err = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                        if err:
                            raise OSError(err, os.strerror(err))
                        s.sendall(req)
                        st["state"] = "read"
                        sel.modify(s, selectors.EVENT_READ, st)
                        continue
                    chunk = s.recv(65536)
                    if not chunk:
                        raise OSError("closed before the answer")
                    st["buf"] += chunk
                    head = _parse_head(st["buf"])
                    if head and len(st["buf"]) >= head[2] + head[1]:
                        sel.unregister(s)
                        inflight -= 1
                        if not 200 <= head[0] < 300:
                            self.non2xx += 1
                        self.socks.append(s)
                except OSError:
                    sel.unregister(s)
                    inflight -= 1
                    s.close()
                    self.failed += 1
        for key in list(sel.get_map().values()):  # timed out
            key.fileobj.close()
            self.failed += 1
        sel.close()
        return len(self.socks)

    def alive(self):
        """How many of the held connections the server has not closed."""
        n = 0
        for s in self.socks:
            try:
                if s.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b"":
                    continue
                n += 1  # unexpected data, but open
            except BlockingIOError:
                n += 1
            except OSError:
                pass
        return n

    def close(self):
        for s in self.socks:
            try:
                s.close()
            except OSError:
                pass
        self.socks = []


# ------------------------------------------------------------------ one-off requests

def timed_get(base_url, path, conn=None, timeout=30):
    """GET path over a kept-alive http.client connection; returns (status, seconds, body, conn)."""
    u = urllib.parse.urlsplit(base_url)
    if conn is None:
        conn = http.client.HTTPConnection(u.hostname, u.port or 80, timeout=timeout)
    t0 = time.perf_counter()
    conn.request("GET", path)
    r = conn.getresponse()
    body = r.read()
    dt = time.perf_counter() - t0
    return r.status, dt, body, conn
