#!/usr/bin/env python3
"""Run a command with a file-size limit and/or as another user, replacing this process (the
command keeps its pid, so the suite can signal it).

    limits.py [--fsize BYTES] [--as BYTES] [--nproc N] [--uid UID --gid GID] -- COMMAND [ARGS...]

--fsize sets RLIMIT_FSIZE: a write past BYTES fails (EFBIG, or SIGXFSZ if the command does not
ignore it): a full disk without mounting anything. SIGXFSZ is reset to its default first, so a
server that forgot to ignore it is killed by it, as it would be in production.
--as sets RLIMIT_AS: mmap (goroutine stacks, thread stacks, malloc arenas) fails past BYTES of
address space, as when memory or vm.max_map_count runs out.
--nproc sets RLIMIT_NPROC: thread creation fails (EAGAIN) once the user has N threads. Root is
exempt, so it only bites with --uid.
--uid/--gid drop root (supplementary groups cleared), so file permissions apply to the command.
"""

import argparse
import os
import resource
import signal
import sys


def main(argv):
    if "--" not in argv:
        print("usage: limits.py [--fsize BYTES] [--uid UID --gid GID] -- COMMAND...",
              file=sys.stderr)
        return 2
    i = argv.index("--")
    p = argparse.ArgumentParser()
    p.add_argument("--fsize", type=int)
    p.add_argument("--as", dest="address_space", type=int)
    p.add_argument("--nproc", type=int)
    p.add_argument("--uid", type=int)
    p.add_argument("--gid", type=int)
    opts = p.parse_args(argv[:i])
    cmd = argv[i + 1:]
    signal.signal(signal.SIGXFSZ, signal.SIG_DFL)
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    if opts.fsize is not None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (opts.fsize, opts.fsize))
    if opts.address_space is not None:
        resource.setrlimit(resource.RLIMIT_AS, (opts.address_space, opts.address_space))
    if opts.nproc is not None:
        resource.setrlimit(resource.RLIMIT_NPROC, (opts.nproc, opts.nproc))
    if opts.uid is not None:
        os.setgroups([])
        os.setgid(opts.gid if opts.gid is not None else opts.uid)
        os.setuid(opts.uid)
    os.execv(cmd[0], cmd)
    return 127


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
