"""Machine and tool versions for the report header, and the CPU split for pinning."""

import json
import os
import platform
import re
import resource
import shutil
import subprocess
import time


def _first_line(cmd):
    """First non-empty output line of cmd (stdout or stderr), or None when it cannot run."""
    if shutil.which(cmd[0]) is None and not os.path.isabs(cmd[0]):
        return None
    try:
        p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           stdin=subprocess.DEVNULL, timeout=10, text=True)
    except (OSError, subprocess.SubprocessError):
        return None
    for line in p.stdout.splitlines():
        if line.strip():
            return line.strip()
    return None


def _pkg_version(name):
    line = _first_line(["pkg-config", "--modversion", name])
    if line:
        return line
    line = _first_line(["dpkg-query", "-W", "-f=${Version}", name])
    return line


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def virtualised():
    try:
        with open("/proc/cpuinfo") as f:
            return " hypervisor" in f.read()
    except OSError:
        return False


def mem_total_mib():
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) // 1024
    except OSError:
        pass
    return None


def cgroup_cpu_limit():
    """The cgroup v2 CPU quota in cores, or None when unlimited/unknown."""
    for path in ("/sys/fs/cgroup/cpu.max",):
        try:
            with open(path) as f:
                quota, period = f.read().split()[:2]
            if quota != "max":
                return int(quota) / int(period)
        except (OSError, ValueError):
            pass
    return None


def read_int(path):
    try:
        with open(path) as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def parse_cpus(text):
    """"0-3,6" -> [0, 1, 2, 3, 6]"""
    out = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        lo, _, hi = part.partition("-")
        out += list(range(int(lo), int(hi or lo) + 1))
    if not out:
        raise ValueError("empty CPU list")
    return sorted(set(out))


def cpu_split(pin=None):
    """Decide the CPU sets for the server and the load generator.

    With at least 4 usable CPUs the first half goes to the server and the second half to the
    load generators (and this runner); with fewer, nothing is pinned and both share all CPUs.
    pin: "SERVER:CLIENT" CPU lists (e.g. "0-3:4-7") to choose the split, or "none".
    Returns (server_cpus, client_cpus, pinned).
    """
    cpus = sorted(os.sched_getaffinity(0))
    if pin == "none":
        return cpus, cpus, False
    if pin:
        srv, _, cli = pin.partition(":")
        return parse_cpus(srv), parse_cpus(cli), True
    if len(cpus) >= 4:
        half = len(cpus) // 2
        return cpus[:half], cpus[half:], True
    return cpus, cpus, False


def cpu_list(cpus):
    return ",".join(str(c) for c in cpus)


def raise_nofile(want=200000):
    """Raise RLIMIT_NOFILE as far as allowed (children inherit it). Returns (soft, hard)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    nr_open = read_int("/proc/sys/fs/nr_open") or hard
    target = min(want, nr_open)
    if hard != resource.RLIM_INFINITY and hard < target:
        try:  # root (CAP_SYS_RESOURCE) may raise the hard limit too
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, target))
        except (ValueError, OSError):
            pass
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        except (ValueError, OSError):
            pass
    return resource.getrlimit(resource.RLIMIT_NOFILE)


def loadavg():
    """The 1, 5 and 15 minute load averages."""
    try:
        with open("/proc/loadavg") as f:
            return [float(x) for x in f.read().split()[:3]]
    except (OSError, ValueError):
        return None


def _cpu_times():
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    idle = v[3] + (v[4] if len(v) > 4 else 0)
    return sum(v[:8]) - idle, sum(v[:8])


def cpu_busy(interval=1.0):
    """Share of all CPUs busy during `interval` seconds (the runner itself sleeps meanwhile)."""
    try:
        b1, t1 = _cpu_times()
        time.sleep(interval)
        b2, t2 = _cpu_times()
    except (OSError, ValueError, IndexError):
        return None
    return (b2 - b1) / (t2 - t1) if t2 > t1 else None


def busy_processes(limit=3, min_pcpu=20.0):
    """Other processes using a lot of CPU right now (a sign of a shared, busy machine)."""
    try:
        p = subprocess.run(["ps", "-eo", "pid=,pcpu=,comm=", "--sort=-pcpu"],
                           stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                           timeout=10)
    except (OSError, subprocess.SubprocessError):
        return []
    out = []
    me = os.getpid()
    for line in p.stdout.splitlines():
        parts = line.split(None, 2)
        if len(parts) == 3 and int(parts[0]) != me and float(parts[1]) >= min_pcpu:
            out.append("%s (%s%%)" % (parts[2], parts[1]))
        if len(out) >= limit:
            break
    return out


def _read_text(path):
    try:
        with open(path) as f:
            return " ".join(f.read().split())
    except OSError:
        return None


def meson_buildtype(build_dir):
    path = os.path.join(build_dir, "meson-info", "intro-buildoptions.json")
    try:
        with open(path) as f:
            for opt in json.load(f):
                if opt.get("name") == "buildtype":
                    return opt.get("value")
    except (OSError, ValueError):
        pass
    return None


def collect(build_dir, server_bins):
    """Everything the report header needs, as a flat dict of strings."""
    cpus = os.cpu_count()
    aff = len(os.sched_getaffinity(0))
    info = {
        "hostname": platform.node(),
        "cpu_model": cpu_model(),
        "cpus_online": cpus,
        "cpus_usable": aff,
        "virtualised": virtualised(),
        "cgroup_cpu_limit": cgroup_cpu_limit(),
        "mem_total_mib": mem_total_mib(),
        "kernel": platform.release(),
        "os": _os_release(),
        "loadavg_start": loadavg(),
        "cpu_busy_start": cpu_busy(),
        "busy_at_start": busy_processes(),
        "somaxconn": read_int("/proc/sys/net/core/somaxconn"),
        "port_range": _read_text("/proc/sys/net/ipv4/ip_local_port_range"),
        "tcp_tw_reuse": read_int("/proc/sys/net/ipv4/tcp_tw_reuse"),
        "versions": {
            "gcc": _first_line(["gcc", "--version"]),
            "clang": _first_line(["clang", "--version"]),
            "libmicrohttpd": _pkg_version("libmicrohttpd"),
            "sqlite3": _pkg_version("sqlite3"),
            "jansson": _pkg_version("jansson"),
            "wrk": _wrk_version(),
            "h2load": _first_line(["h2load", "--version"]),
            "python": platform.python_version(),
            "matplotlib": _matplotlib_version(),
            "meson_buildtype": meson_buildtype(build_dir) if build_dir else None,
        },
        "servers": {},
    }
    for name, path in server_bins.items():
        info["servers"][name] = _first_line([path, "--version"]) if os.path.exists(path) else None
    return info


def _wrk_version():
    line = _first_line(["wrk", "-v"])
    if not line:
        return None
    m = re.match(r"(wrk \S+)", line)
    return m.group(1) if m else line


def _matplotlib_version():
    try:
        import matplotlib  # noqa: F401  (optional dependency)
        return matplotlib.__version__
    except Exception:  # pragma: no cover - depends on the machine
        return None


def _os_release():
    try:
        with open("/etc/os-release") as f:
            for line in f:
                if line.startswith("PRETTY_NAME="):
                    return line.split("=", 1)[1].strip().strip('"')
    except OSError:
        pass
    return platform.system()
