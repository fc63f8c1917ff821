"""The one launcher: a triad server process started on a free port with its own database, and
the walk over its process tree. The benchmark runner and every test suite start servers here.

    srv = Server(program, db_path, args, label="main", workdir=tmp)
    srv.start()                     # raises StartupError; the process may still be running
    ... srv.host, srv.port ...
    rc = srv.stop()                 # SIGTERM; the exit status, or None if it had to be killed

A server prints one line on stdout when it listens ("listening on http://HOST:PORT"); it is
started with --port 0 so that the kernel picks the port and nothing collides.

`--db @pg` in a server's arguments (a PostgreSQL mode of workloads/models.toml) gives it a fresh
PostgreSQL database instead of db_path (runner/pg.py); a db_path that already names PostgreSQL
(a restart on the same database) is kept.
"""

import os
import re
import signal
import subprocess
import threading
import time

from workloads.runner import pg

STARTUP_TIMEOUT = 60.0      # sanitizer builds start slowly; exceeding it is a failure
SHUTDOWN_TIMEOUT = 30.0     # the servers' --drain-timeout
BANNER = re.compile(r"listening on http://([^:/\s]+):(\d+)")
SANITIZER_MARKERS = ("ERROR: AddressSanitizer", "runtime error:", "WARNING: ThreadSanitizer",
                     "LeakSanitizer")


class StartupError(Exception):
    pass


def short(value, limit=300):
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "...(%d chars)" % len(text)


def describe_status(rc):
    """An exit status as subprocess reports it, in words."""
    if rc is None:
        return "still running"
    if rc < 0:
        try:
            return "killed by %s" % signal.Signals(-rc).name
        except ValueError:
            return "killed by signal %d" % -rc
    return "exit status %d" % rc


class Server:
    """One server process, started with --port 0 and a database of its own.

    stdout is read by a thread (the start-up line, stdout_lines). stderr goes to a file of its
    own (stderr_path, default WORKDIR/LABEL.stderr), written by the server directly, so that
    a sanitizer report survives whatever happens to the suite; with merge_stderr it joins
    stdout instead. log_path, if given, receives the command, every stdout line and the exit
    status. `wrapper` goes in front of the command (taskset, a launcher that sets limits and
    execs: the server keeps the pid). With new_session (the default) the server runs in a
    session of its own: a server that signals its process group (a pre-fork master stopping
    its workers with kill(0, ...)) must not hit whoever started it.
    """

    def __init__(self, program, db_path, args=(), label="server", workdir=None,
                 wrapper=(), log_path=None, stderr_path=None, merge_stderr=False,
                 new_session=True):
        self.binary = program
        self.db_path = db_path
        self.args = list(args)
        self.label = label
        self.workdir = workdir
        self.wrapper = list(wrapper)
        self.log_path = log_path
        self.merge_stderr = merge_stderr
        if stderr_path is None and not merge_stderr:
            stderr_path = os.path.join(workdir or os.path.dirname(db_path), label + ".stderr")
        self.stderr_path = stderr_path
        self.new_session = new_session
        self.proc = None
        self.host = None
        self.port = None
        self.banner = None
        self.stdout_lines = []
        self.returncode = None
        self.orphans = []           # worker processes that outlived the server (killed)
        self._banner_seen = threading.Event()
        self._terminated = False
        self._reader = None
        self._log = None

    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    @property
    def base_url(self):
        return "http://%s:%d" % (self.host, self.port)

    def command(self):
        return self.wrapper + [self.binary, "--port", "0", "--db", self.db_path] + self.args

    def start(self, timeout=STARTUP_TIMEOUT):
        """Starts the server and waits for its start-up line. On StartupError the process is
        left as it is (it may still be running): the caller kills it, or waits for its exit."""
        try:
            (self.db_path, self.args) = pg.resolve(self.db_path, self.args)
        except pg.PgError as e:
            raise StartupError(str(e))
        cmd = self.command()
        if self.log_path:
            self._log = open(self.log_path, "a", buffering=1)
            self._log.write("$ " + " ".join(cmd) + "\n")
        if self.merge_stderr:
            err = subprocess.STDOUT
        else:
            err = open(self.stderr_path, "ab")
        try:
            self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                         stderr=err, cwd=self.workdir,
                                         start_new_session=self.new_session)
        except OSError as e:
            raise StartupError("cannot run %s: %s" % (self.binary, e))
        finally:
            if err is not subprocess.STDOUT:
                err.close()
        self._reader = threading.Thread(target=self._read_stdout, daemon=True)
        self._reader.start()
        deadline = time.monotonic() + timeout
        while not self._banner_seen.wait(0.1):
            if self.proc.poll() is not None:
                self._reader.join(2)
                if self._banner_seen.is_set():
                    break
                raise StartupError("server exited with status %s before printing its "
                                   "start-up line; stdout %s" %
                                   (self.proc.returncode, short(self.stdout_lines)))
            if time.monotonic() >= deadline:
                raise StartupError("no 'listening on http://HOST:PORT' line on stdout within "
                                   "%d s; stdout so far %s" % (timeout, short(self.stdout_lines)))
        m = BANNER.search(self.banner)
        self.host = m.group(1)
        if self.host in ("0.0.0.0", "*", "localhost"):
            self.host = "127.0.0.1"
        self.port = int(m.group(2))
        if self.port == 0:
            raise StartupError("start-up line names port 0: %r" % self.banner)
        return self

    def _read_stdout(self):
        for raw in self.proc.stdout:
            line = raw.decode("utf-8", "replace").rstrip("\r\n")
            self.stdout_lines.append(line)
            if self._log:
                self._log.write(line + "\n")
            if not self._banner_seen.is_set() and BANNER.search(line):
                self.banner = line
                self._banner_seen.set()

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def terminate(self):
        """Send SIGTERM once (a second one may legitimately mean "exit now")."""
        if self.proc is not None and self.proc.poll() is None and not self._terminated:
            self._terminated = True
            self.proc.send_signal(signal.SIGTERM)

    def stop(self, timeout=SHUTDOWN_TIMEOUT):
        """SIGTERM, then wait; SIGKILL after `timeout`. Returns the exit status, or None if it
        had to be killed. Worker processes that outlive the server are killed and their pids
        kept in `orphans`: nothing a run starts may outlast it."""
        if self.proc is None:
            return None
        tree = process_tree(self.proc.pid) if self.running() else []
        rc = None
        if self.proc.poll() is None:
            self.terminate()
            try:
                rc = self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        else:
            rc = self.proc.returncode
        self.returncode = rc
        if tree[1:]:
            time.sleep(0.05)    # workers exit right after their master
        for pid in tree[1:]:
            if alive(pid):
                self.orphans.append(pid)
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass
        self._close_log()
        return rc

    def kill(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self._close_log()

    def _close_log(self):
        if self._reader:
            self._reader.join(timeout=2)
            if not self._reader.is_alive():     # else a process that kept the pipe has it
                self.proc.stdout.close()
        if self._log:
            self._log.write("# exit status %s\n" % self.proc.returncode)
            self._log.close()
            self._log = None

    def stderr_text(self):
        if self.merge_stderr:
            return "\n".join(self.stdout_lines)
        try:
            with open(self.stderr_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def sanitizer_reports(self):
        text = self.stderr_text()
        return [m for m in SANITIZER_MARKERS if m in text]


# -- the process tree ------------------------------------------------------------------------

def _stat_fields(pid):
    """The fields of /proc/PID/stat after the command name (field 3, state, first), or None.
    The name may hold spaces and parentheses: split after its last ')'."""
    try:
        with open("/proc/%d/stat" % pid, "rb") as f:
            return f.read().rsplit(b")", 1)[1].split()
    except (OSError, IndexError):
        return None


def alive(pid):
    """Running, and not a zombie waiting for its parent."""
    fields = _stat_fields(pid)
    return fields is not None and fields[0] not in (b"Z", b"X")


# Two ways to find a process's children: /proc/PID/task/TID/children, one file per thread
# (needs CONFIG_PROC_CHILDREN, which Debian has), or the parent pid of every process, one file
# per process. A thread-per-connection server can have 10,000 threads and the machine a few
# hundred processes: each call takes whichever reads fewer files.
HAVE_CHILDREN_FILE = os.path.exists("/proc/self/task/%d/children" % os.getpid())


def children(pid):
    """The direct children of pid."""
    try:
        tids = os.listdir("/proc/%d/task" % pid)
    except OSError:
        return []
    procs = [int(n) for n in os.listdir("/proc") if n.isdigit()]
    if not HAVE_CHILDREN_FILE or len(tids) > len(procs):
        return _children_by_ppid(pid, procs)
    kids = set()
    for tid in tids:
        try:
            with open("/proc/%d/task/%s/children" % (pid, tid)) as f:
                kids.update(int(c) for c in f.read().split())
        except (OSError, ValueError):
            pass    # the thread or the process has gone meanwhile
    return sorted(kids)


def _children_by_ppid(pid, procs):
    kids = []
    for p in procs:
        fields = _stat_fields(p)
        if fields is not None and len(fields) > 1 and int(fields[1]) == pid:
            kids.append(p)
    return sorted(kids)


def process_tree(pid):
    """pid and all its descendants, parents before children."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop(0)
        out.append(p)
        todo.extend(children(p))
    return out


CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


def usage(pid):
    """(cpu_seconds, rss_bytes, threads) of one process, or None if it is gone."""
    fields = _stat_fields(pid)
    if fields is None or len(fields) < 22:
        return None
    # fields[0] is field 3 (state) of proc(5): utime=14, stime=15, num_threads=20, rss=24
    utime, stime = int(fields[11]), int(fields[12])
    threads, rss = int(fields[17]), int(fields[21])
    return (utime + stime) / CLK_TCK, rss * PAGE, threads


def open_fds(pid):
    try:
        return len(os.listdir("/proc/%d/fd" % pid))
    except OSError:
        return None
