"""Sampling a server's process tree from /proc while a benchmark runs (the processes come
from launch.process_tree: the server and its worker processes)."""

import threading
import time

from workloads.runner import launch


def snapshot(pid, fds=False):
    """Summed (cpu_seconds, rss_bytes, threads, processes, descriptors) over pid and its
    descendants (descriptors only with fds=True, else 0)."""
    cpu = rss = threads = procs = nfds = 0
    for p in launch.process_tree(pid):
        r = launch.usage(p)
        if r is None:
            continue
        cpu += r[0]
        rss += r[1]
        threads += r[2]
        procs += 1
        if fds:
            nfds += launch.open_fds(p) or 0
    return cpu, rss, threads, procs, nfds


class Sampler:
    """Samples a server's process tree every `interval` seconds in a background thread.

    begin() opens a measurement window; end() closes it and returns the CPU seconds used in
    the window (summed over the process tree), the peak summed RSS, the peak thread count and
    the peak number of open descriptors.
    """

    def __init__(self, pid, interval=0.05):
        self.pid = pid
        self.interval = interval
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._win = None
        self.last = None
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        while not self._stop.is_set():
            snap = snapshot(self.pid, fds=True)
            with self._lock:
                self.last = snap
                if self._win is not None and snap[3] > 0:
                    w = self._win
                    w["rss_peak"] = max(w["rss_peak"], snap[1])
                    w["threads_peak"] = max(w["threads_peak"], snap[2])
                    w["procs_peak"] = max(w["procs_peak"], snap[3])
                    w["fds_peak"] = max(w["fds_peak"], snap[4])
                    w["samples"] += 1
            self._stop.wait(self.interval)

    def begin(self):
        snap = snapshot(self.pid, fds=True)
        with self._lock:
            self._win = {"t0": time.monotonic(), "cpu0": snap[0], "rss_peak": snap[1],
                         "threads_peak": snap[2], "procs_peak": snap[3], "fds_peak": snap[4],
                         "samples": 1}

    def end(self):
        snap = snapshot(self.pid, fds=True)
        with self._lock:
            w, self._win = self._win, None
        if w is None:
            return {}
        wall = time.monotonic() - w["t0"]
        cpu = max(0.0, snap[0] - w["cpu0"])
        return {
            "srv_cpu_s": cpu,
            "srv_cpu_cores": cpu / wall if wall > 0 else None,
            "srv_rss_peak_mib": max(w["rss_peak"], snap[1]) / 1048576.0,
            "srv_threads_max": max(w["threads_peak"], snap[2]),
            "srv_procs": max(w["procs_peak"], snap[3]),
            "srv_fds_max": max(w["fds_peak"], snap[4]),
        }

    def stop(self):
        self._stop.set()
        self._thread.join(timeout=2)
