"""Starting and stopping a server under test, and sampling it from /proc while it runs."""

import os
import queue
import re
import signal
import subprocess
import threading
import time

LISTEN_RE = re.compile(r"listening on http://([^:/\s]+):(\d+)")
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


class ServerError(RuntimeError):
    pass


class Server:
    """One server process: started with --port 0, ready once it prints its listening line."""

    def __init__(self, argv, log_path, cpus=None, start_timeout=60.0):
        self.argv = list(argv)
        self.log_path = log_path
        self.cpus = cpus
        self.start_timeout = start_timeout
        self.proc = None
        self.host = None
        self.port = None
        self.banner = None
        self.exit_code = None
        self.anomalies = []
        self._reader = None
        self._log = None

    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    @property
    def base_url(self):
        return "http://%s:%d" % (self.host, self.port)

    def start(self):
        cmd = list(self.argv)
        if self.cpus:
            cmd = ["taskset", "-c", ",".join(str(c) for c in self.cpus)] + cmd
        self._log = open(self.log_path, "w", buffering=1)
        self._log.write("$ " + " ".join(cmd) + "\n")
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, text=True, bufsize=1,
                                     errors="replace")
        lines = queue.Queue()

        def pump():
            for line in self.proc.stdout:
                self._log.write(line)
                lines.put(line)
            lines.put(None)

        self._reader = threading.Thread(target=pump, daemon=True)
        self._reader.start()
        deadline = time.monotonic() + self.start_timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                self.stop()
                raise ServerError("no 'listening on http://HOST:PORT' line within %.0f s (log: %s)"
                                  % (self.start_timeout, self.log_path))
            try:
                line = lines.get(timeout=left)
            except queue.Empty:
                continue
            if line is None:
                code = self.proc.wait()
                self.exit_code = code
                raise ServerError("exited with code %s before listening (log: %s)"
                                  % (code, self.log_path))
            m = LISTEN_RE.search(line)
            if m:
                self.host, self.port = m.group(1), int(m.group(2))
                self.banner = line.strip()
                return self

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout=10.0):
        """SIGTERM, wait, SIGKILL if needed. Records the exit code and anomalies."""
        if self.proc is None:
            return
        tree = process_tree(self.proc.pid) if self.alive() else []
        if self.alive():
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.exit_code = self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.anomalies.append("did not exit within %.0f s of SIGTERM; killed" % timeout)
                self.proc.kill()
                self.exit_code = self.proc.wait()
        else:
            self.exit_code = self.proc.returncode
            self.anomalies.append("had exited (code %s) before it was stopped" % self.exit_code)
        if self.exit_code not in (0, None) and not self.anomalies:
            self.anomalies.append("exit code %s after SIGTERM (expected 0)" % self.exit_code)
        # Worker processes must not outlive their master.
        time.sleep(0.05)
        for pid in tree[1:]:
            if _pid_alive(pid):
                self.anomalies.append("child process %d still running after the server exited;"
                                      " killed" % pid)
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass
        if self._reader:
            self._reader.join(timeout=2)
        if self._log:
            self._log.write("# exit code %s\n" % self.exit_code)
            self._log.close()
            self._log = None
        self.proc = None


def _pid_alive(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
        return state not in ("Z", "X")
    except (OSError, IndexError):
        return False


def process_tree(pid):
    """pid and all its descendants (via /proc/<pid>/task/<tid>/children)."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        try:
            tids = os.listdir("/proc/%d/task" % p)
        except OSError:
            continue
        for tid in tids:
            try:
                with open("/proc/%d/task/%s/children" % (p, tid)) as f:
                    todo.extend(int(c) for c in f.read().split())
            except (OSError, ValueError):
                pass
    return out


def read_proc(pid):
    """(cpu_seconds, rss_bytes, threads) of one process, or None if it is gone."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    # fields[0] is field 3 (state) of proc(5): utime=14, stime=15, num_threads=20, rss=24
    utime, stime = int(fields[11]), int(fields[12])
    threads, rss = int(fields[17]), int(fields[21])
    return (utime + stime) / CLK_TCK, rss * PAGE, threads


def snapshot(pid):
    """Summed (cpu_seconds, rss_bytes, threads, processes) over pid and its descendants."""
    cpu = rss = threads = procs = 0
    for p in process_tree(pid):
        r = read_proc(p)
        if r is None:
            continue
        cpu += r[0]
        rss += r[1]
        threads += r[2]
        procs += 1
    return cpu, rss, threads, procs


class Sampler:
    """Samples a server's process tree every `interval` seconds in a background thread.

    begin() opens a measurement window; end() closes it and returns the CPU seconds used in
    the window (summed over the process tree), the peak summed RSS and the peak thread count.
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
            snap = snapshot(self.pid)
            with self._lock:
                self.last = snap
                if self._win is not None and snap[3] > 0:
                    w = self._win
                    w["rss_peak"] = max(w["rss_peak"], snap[1])
                    w["threads_peak"] = max(w["threads_peak"], snap[2])
                    w["procs_peak"] = max(w["procs_peak"], snap[3])
                    w["samples"] += 1
            self._stop.wait(self.interval)

    def begin(self):
        snap = snapshot(self.pid)
        with self._lock:
            self._win = {"t0": time.monotonic(), "cpu0": snap[0], "rss_peak": snap[1],
                         "threads_peak": snap[2], "procs_peak": snap[3], "samples": 1}

    def end(self):
        snap = snapshot(self.pid)
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
        }

    def stop(self):
        self._stop.set()
        self._thread.join(timeout=2)
