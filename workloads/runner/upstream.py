"""The upstream service of a scenario, and what each run measures around it.

A scenario that declares

    upstream = { model = "evloop", mode = "default", args = [...] }

gets, for each server run, an upstream server of that registry model started on its own port
(the same launcher as the server under test, a fresh database, its own log), and the server
under test is started with `--upstream http://HOST:PORT` (peers take the same flag). The
upstream is stopped after the run, so that no connection, TIME_WAIT or pool state carries over
from one model to the next.

Around every measured run, a Probe adds to the run's metrics:

- the upstream's CPU (cores) and threads, sampled from /proc like the server's, and the
  requests it answered (its /stats): calls per request, and whether it could have been the
  bottleneck (`up_cpu_cores` near 1 for a one-loop upstream);
- for a server that has /stats (the mirrors): the upstream pool's gauges, deltas over the run
  for the counters (dials, reuses, retries, errors by kind) and a snapshot halfway through the
  run for the levels (connections open, idle, in use; goroutines in coro; threads);
- for every server, the kernel's view of its connections to the upstream's port: the SYNs
  sent to it during the run (every dial, counted by an nftables rule in a table of the
  runner's own, when `nft` works here: root and nftables), established connections halfway
  and the TIME_WAIT sockets that appeared (/proc/net/tcp; a lower bound of the connections
  the server closed, since the kernel reuses TIME_WAIT ports on loopback). The only view there
  is of a peer's pool: Go's Transport, Node's Agent and urllib3 keep no counters a server
  shows.
"""

import http.client
import json
import os
import shutil
import subprocess
import tempfile
import threading

from workloads.runner import launch, loadgen, registry
from workloads.runner.sampler import Sampler

# /proc/net/tcp states
TCP_ESTABLISHED = "01"
TCP_TIME_WAIT = "06"


class UpstreamError(RuntimeError):
    pass


def get_json(base_url, path, timeout=5.0):
    """GET a JSON document; None if it fails in any way."""
    try:
        status, _, body, conn = loadgen.timed_get(base_url, path, timeout=timeout)
        conn.close()
        if status != 200:
            return None
        return json.loads(body)
    except (OSError, http.client.HTTPException, ValueError):
        return None


def tcp_to_port(port):
    """Counts of the client-side sockets connected to 127.0.0.1:port (any local address), by
    state, and the set of local ports in TIME_WAIT (to tell new ones from old)."""
    counts, tw = {}, set()
    want = ":%04X" % port
    for name in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(name) as f:
                next(f, None)
                for line in f:
                    parts = line.split()
                    if len(parts) < 4 or not parts[2].endswith(want):
                        continue
                    st = parts[3]
                    counts[st] = counts.get(st, 0) + 1
                    if st == TCP_TIME_WAIT:
                        tw.add(parts[1])
        except OSError:
            pass
    return counts, tw


class SynCounter:
    """SYNs sent to a port on this machine, counted by an nftables rule (output hook, accept
    policy: it counts and changes nothing) in a table of its own, deleted by stop(). Every
    connect() to the port is one SYN (plus the rare retransmission). Unavailable (read() is
    None) without nft or without the right to use it."""

    def __init__(self, port):
        self.port = port
        self.table = "triad_bench_%d_%d" % (os.getpid(), port)
        self.ok = False

    def _nft(self, *args):
        return subprocess.run(["nft"] + list(args), stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True,
                              timeout=10)

    def start(self):
        if shutil.which("nft") is None:
            return self
        try:
            steps = (("add", "table", "inet", self.table),
                     ("add", "chain", "inet", self.table, "out",
                      "{ type filter hook output priority 0; policy accept; }"),
                     ("add", "rule", "inet", self.table, "out", "tcp", "dport", str(self.port),
                      "tcp flags & (syn|ack) == syn", "counter"))
            for st in steps:
                if self._nft(*st).returncode != 0:
                    self.stop()
                    return self
            self.ok = self.read() is not None
        except (OSError, subprocess.TimeoutExpired):
            self.ok = False
        return self

    def read(self):
        try:
            p = self._nft("-j", "list", "table", "inet", self.table)
            doc = json.loads(p.stdout) if p.returncode == 0 else None
        except (OSError, subprocess.TimeoutExpired, ValueError):
            return None
        for item in (doc or {}).get("nftables", []):
            for e in item.get("rule", {}).get("expr", []):
                if "counter" in e:
                    return e["counter"].get("packets")
        return None

    def stop(self):
        try:
            self._nft("delete", "table", "inet", self.table)
        except (OSError, subprocess.TimeoutExpired):
            pass
        self.ok = False


class Service:
    """The upstream server of one server run."""

    def __init__(self, runner, spec, label):
        self.runner, self.spec, self.label = runner, spec, label
        self.server = None
        self.sampler = None
        self.tmp = None
        self.model = registry.find(runner.models, spec["model"])
        if self.model is None:
            raise UpstreamError("upstream model %r is not in the registry" % spec["model"])
        mode = spec.get("mode", "default")
        args = self.model.mode_args(mode)
        if args is None:
            raise UpstreamError("upstream model %s has no mode %s" % (self.model.name, mode))
        self.args = args + list(spec.get("args", []))
        self.mode = mode

    @property
    def url(self):
        return self.server.base_url

    @property
    def pid(self):
        return self.server.pid

    def describe(self):
        return "%s/%s%s" % (self.model.name, self.mode,
                            (" " + " ".join(self.spec.get("args", []))) if self.spec.get("args")
                            else "")

    def start(self):
        if not self.model.built:
            raise UpstreamError("upstream %s is not built" % self.model.name)
        self.tmp = tempfile.mkdtemp(prefix="triad-bench-upstream-")
        self.server = self.runner.new_server(self.model, self.args, self.tmp,
                                             "upstream-%s.log" % self.label)
        try:
            self.server.start()
        except launch.StartupError as e:
            self.server.kill()
            shutil.rmtree(self.tmp, ignore_errors=True)
            raise UpstreamError("the upstream did not start: %s" % e)
        self.sampler = Sampler(self.server.pid)
        self.syns = SynCounter(self.server.port).start()
        return self

    def stop(self):
        """Stops the upstream; returns what went wrong (anomalies)."""
        out = []
        if getattr(self, "syns", None) is not None:
            self.syns.stop()
        if self.sampler:
            self.sampler.stop()
        if self.server is not None and self.server.proc is not None:
            was = self.server.running()
            rc = self.server.stop(10.0)
            if not was:
                out.append("the upstream had exited (%s) before it was stopped"
                           % launch.describe_status(self.server.proc.returncode))
            elif rc not in (0,):
                out.append("the upstream: %s after SIGTERM" % launch.describe_status(rc))
        if self.tmp:
            shutil.rmtree(self.tmp, ignore_errors=True)
        return out

    def requests_total(self):
        doc = get_json(self.url, "/stats")
        return None if doc is None else doc.get("requests", {}).get("total")


def _gauges(base_url):
    doc = get_json(base_url, "/stats")
    return None if doc is None else doc


class Probe:
    """What one measured run adds to its metrics; see the module's docstring."""

    GAUGE_COUNTERS = ("upstream_dials_total", "upstream_reuses_total", "upstream_retries_total")
    GAUGE_LEVELS = ("upstream_connections_open", "upstream_connections_idle",
                    "upstream_connections_in_use", "goroutines", "connections")

    def __init__(self, service, server, model):
        self.service = service
        self.server = server
        self.stats = model is not None and model.serves("/stats")
        self.port = int(service.url.rsplit(":", 1)[1])
        self._mid = None
        self._timer = None

    def begin(self, duration_s):
        self.g0 = _gauges(self.server.base_url) if self.stats else None
        self.up0 = self.service.requests_total()
        self.syn0 = self.service.syns.read() if self.service.syns.ok else None
        _, self.tw0 = tcp_to_port(self.port)
        self.service.sampler.begin()
        self._mid = {}
        self._timer = threading.Timer(max(0.05, duration_s / 2.0), self._halfway)
        self._timer.daemon = True
        self._timer.start()

    def _halfway(self):
        counts, _ = tcp_to_port(self.port)
        mid = {"up_tcp_established_mid": counts.get(TCP_ESTABLISHED, 0)}
        if self.stats:
            doc = _gauges(self.server.base_url)
            if doc:
                g = doc.get("gauges", {})
                for k in self.GAUGE_LEVELS:
                    if isinstance(g.get(k), (int, float)):
                        mid["mid_" + k] = g[k]
        self._mid = mid

    def end(self, requests):
        if self._timer:
            self._timer.cancel()
            self._timer.join(1.0)
        up = self.service.sampler.end()
        m = {"up_cpu_cores": up.get("srv_cpu_cores"), "up_threads_max": up.get("srv_threads_max"),
             "up_cpu_s": up.get("srv_cpu_s")}
        m.update(self._mid or {})
        up1 = self.service.requests_total()
        if self.up0 is not None and up1 is not None:
            m["up_requests"] = max(0, up1 - self.up0 - 1)   # less the probe's own /stats
            if requests:
                m["up_calls_per_req"] = m["up_requests"] / requests
        if self.syn0 is not None:
            syn1 = self.service.syns.read()
            if syn1 is not None:
                # less the runner's own /stats request to the upstream just above
                m["up_dials_kernel"] = max(0, syn1 - self.syn0 - 1)
                if requests:
                    m["up_dials_kernel_per_req"] = m["up_dials_kernel"] / requests
        counts, tw1 = tcp_to_port(self.port)
        # less the TIME_WAIT of the runner's own /stats request to the upstream just above
        m["up_tcp_closed_by_client"] = max(0, len(tw1 - self.tw0) - 1)
        if requests:
            m["up_tcp_closed_per_req"] = m["up_tcp_closed_by_client"] / requests
        if self.stats and self.g0 is not None:
            doc = _gauges(self.server.base_url)
            if doc:
                g0, g1 = self.g0.get("gauges", {}), doc.get("gauges", {})
                for k in self.GAUGE_COUNTERS:
                    if isinstance(g1.get(k), (int, float)) and isinstance(g0.get(k), (int, float)):
                        short = k.replace("upstream_", "up_").replace("_total", "")
                        m[short] = g1[k] - g0[k]
                        if requests:
                            m[short + "_per_req"] = m[short] / requests
                e0 = g0.get("upstream_errors_total") or {}
                e1 = g1.get("upstream_errors_total") or {}
                if isinstance(e1, dict):
                    errs = {kind: v - (e0.get(kind, 0) if isinstance(e0, dict) else 0)
                            for kind, v in e1.items()}
                    m["up_errors"] = sum(errs.values())
                    for kind, v in errs.items():
                        if v:
                            m["up_errors_" + kind] = v
        return m


def start_for(runner, run, label):
    """The Service for a server run whose scenario declares an upstream (started), or None."""
    if not run.upstream:
        return None
    return Service(runner, run.upstream, label).start()


def saturation_note(m):
    """Why the upstream may have been the bottleneck of a run (None if it was not)."""
    c = m.get("up_cpu_cores")
    if c is not None and c >= 0.9:
        return ("the upstream's one loop used %.2f cores: it may have been the bottleneck" % c)
    return None
