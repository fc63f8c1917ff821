#!/usr/bin/env python3
"""Table-driven bad-input suite for the triad servers.

    python3 -m tests.hostile.hostile --server build/servers/threaded/triad-threaded \
        [--label NAME] [-k SUBSTRING] [--list] [--report FILE] [-- extra server args...]

(from the source root: the suites are modules of the package `tests`).

Each row of cases.py is sent as raw bytes on its own connection; every response (or close, or
silence) is classified and compared with what the row accepts. Throughout the run a prober
does GET /health on its own keep-alive connection between cases; the items and World tables
are read back (sqlite3, read-only) after every case and compared with what they must hold;
the server must stay up, exit 0 on SIGTERM and print no sanitizer report. The limitation
cases (cases.LIMITATIONS) run first, all at once, on a "bound" instance with short deadlines
(cases.BOUND_ARGS), while the others run; they accept an answer or the server's close within
a hang guard (cases.BOUND_GUARD). Python 3 standard library only; durations are never asserted
(deadlines only turn hangs into failures).
"""

import argparse
import json
import os
import queue
import re
import shutil
import sqlite3
import sys
import tempfile
import threading
import time
import traceback
import urllib.parse

sys.dont_write_bytecode = True      # keep the source tree clean (it may be read-only)

from tests.conformance import harness, httpraw  # noqa: E402  (split_extra, entry, excerpts)
from tests.hostile import cases, report, wire   # noqa: E402
from workloads.runner import launch             # noqa: E402

HALF_CLOSE_WAIT = 5.0   # after a stall: is the client's half-close noticed?
SHUTDOWN_WAIT = 90  # the servers' --drain-timeout (30 s) and then some
PARK_AFTER = 2.0    # a case not finished by then runs on in the background (no assertion)
PROBE = b"GET /health HTTP/1.1\r\nHost: h\r\n\r\n"
# Shown, never asserted: an answer or close this long after the connection opened (or after
# the previous answer on it) on the bound instance came from its deadline, not at once.
AT_DEADLINE = cases.BOUND_DEADLINE - 0.5
MEANWHILE_AFTER = 0.5   # then the bound instance is probed while the limitation cases are held


# -- pattern matching and response validation ------------------------------------------------

def matches(pattern, ev):
    alts = pattern.split("|")
    if ev.kind in ("close", "reset"):
        return "close" in alts
    if ev.kind != "resp":
        return False
    for alt in alts:
        if alt == "close":
            continue
        if alt == "4xx":
            if 400 <= ev.status < 500:
                return True
            continue
        m = re.fullmatch(r"(\d{3})(j?)", alt)
        if m is None:
            raise ValueError("bad pattern %r" % pattern)
        if int(m.group(1)) == ev.status and (not m.group(2) or ev.ours):
            return True
    return False


def validate_ours(ev, method):
    """README "Errors": our responses carry a type, errors a JSON {"error":"..."} body."""
    resp = ev.resp
    if resp.status != 204 and not resp.header("Content-Type"):
        return "no Content-Type"
    if resp.status == 405 and not resp.header("Allow"):
        return "405 without Allow"
    if resp.status >= 400:
        if (resp.header("Content-Type") or "") != "application/json":
            return "error with Content-Type %r" % resp.header("Content-Type")
        if method == "HEAD":
            return None
        try:
            obj = json.loads(resp.body)
        except ValueError:
            return "error body is not JSON: %s" % wire.short_bytes(resp.body)
        if not (isinstance(obj, dict) and list(obj) == ["error"] and
                isinstance(obj["error"], str) and obj["error"]):
            return "error body is not {\"error\":\"...\"}: %s" % wire.short_bytes(resp.body)
    return None


def is_health(ev, model):
    return (ev.kind == "resp" and ev.status == 200 and
            ev.resp.body == ('{"status":"ok","model":"%s"}' % model).encode())


# -- one case ---------------------------------------------------------------------------------

class Result:
    def __init__(self, case):
        self.case = case
        self.events = []
        self.tail = ""          # what happened after the expected responses
        self.tail_at = None     # when (seconds after the connection opened)
        self.problems = []
        self.notes = []
        self.done = threading.Event()

    def _at_deadline(self, t):
        return self.case.limit is not None and t is not None and t >= AT_DEADLINE

    def answer(self):
        parts = []
        for ev in self.events:
            text = ev.label()
            if ev.kind != "stall" and self._at_deadline(getattr(ev, "at", None)):
                text += " (at the deadline)"
            parts.append(text)
        text = ", ".join(parts) if parts else "-"
        if self.tail:
            text += "; " + self.tail
            if self.tail in ("close", "reset") and self._at_deadline(self.tail_at):
                text += " (at the deadline)"
        return text

    def ok(self):
        return not self.problems

    def strict_met(self):
        """Limitation cases: was the answer also what HTTP wants (cases strict), at once?
        None for other cases and failed ones."""
        c = self.case
        if c.limit is None or not self.ok():
            return None
        if any(self._at_deadline(getattr(ev, "at", None)) for ev in self.events):
            return False
        if self.tail in ("close", "reset") and self._at_deadline(self.tail_at):
            return False
        return all(matches(p, ev) for (p, ev) in zip(c.strict, self.events))


def run_exchange(res, srv, model, timeout):
    """Send the case's bytes, read what comes back, fill res. Never raises."""
    case = res.case
    guard = ""
    if case.limit:
        guard = (" (the hang guard; the bound instance's deadlines are %d s: %s)"
                 % (cases.BOUND_DEADLINE, " ".join(cases.BOUND_ARGS)))
    try:
        s = wire.Session(srv.host, srv.port, timeout)
    except OSError as e:
        res.problems.append("cannot connect: %s" % e)
        res.done.set()
        return
    t0 = time.monotonic()
    try:
        s.send(case.data, case.half_close)
        closed = False
        for (i, pattern) in enumerate(case.expect):
            ev = s.next_event(case.methods[i])
            ev.at = time.monotonic() - t0
            res.events.append(ev)
            if ev.kind == "stall":
                # Seen from the client: a hang. Then, if the client had not yet shut down
                # its side: does the server notice when it does?
                if case.half_close:
                    res.tail = "not closed either"
                    res.problems.append("no answer and no close within %g s of the request "
                                        "and the client's half-close%s" % (timeout, guard))
                    return
                s.half_close()
                s.set_timeout(HALF_CLOSE_WAIT)
                after, _ = s.wait_closed()
                res.tail = "then the client half-closed: %s" % (
                    after.kind if after.kind != "stall" else "still open")
                res.problems.append("no answer and no close within %g s%s" % (timeout, guard))
                return
            if ev.kind == "garbage":
                res.problems.append("not an HTTP response (%s): %s"
                                    % (ev.detail, wire.short_bytes(ev.raw, 200)))
                return
            if not matches(pattern, ev):
                res.problems.append("response %d: expected %s, got %s" % (
                    i + 1, pattern, ev.label() + (" " + wire.short_bytes(ev.resp.body, 120)
                                                  if ev.resp is not None else "")))
                return
            if ev.kind != "resp":
                closed = True
                break
            if ev.status >= 500:
                res.notes.append("%d accepted (see NOTES)" % ev.status)
            if ev.ours:
                why = validate_ours(ev, case.methods[i])
                if why:
                    res.problems.append("response %d: %s" % (i + 1, why))
            res.notes.extend(ev.notes)
        if case.check and res.events and res.events[0].kind == "resp" and not res.problems:
            why = case.check(None, res.events)
            if why:
                res.problems.append(why)
        if closed or case.after == "none":
            return
        announced = any(ev.closing for ev in res.events)
        if announced or case.half_close:
            ev, stray = s.wait_closed()
            res.tail_at = time.monotonic() - t0
            dup_head = any("sent twice" in n for e in res.events for n in e.notes)
            if ev.kind == "stall":
                res.tail = "left open"
                res.problems.append("connection left open %s%s" % (
                    "after Connection: close" if announced else "after the client half-closed",
                    " for %g s%s" % (timeout, guard) if guard else ""))
            else:
                res.tail = ev.kind
            if stray and not dup_head:
                res.problems.append("%d bytes after the last response: %s"
                                    % (len(stray), wire.short_bytes(stray, 200)))
            return
        # The connection is open: was it kept in sync, or (after="close") wrongly kept?
        try:
            s.send_now(PROBE)
        except OSError:
            res.tail = "close"
            return
        ev = s.next_event("GET")
        res.tail_at = time.monotonic() - t0
        if ev.kind in ("close", "reset"):
            res.tail = ev.kind
        elif case.after == "close":
            got = ev.label() + (" " + wire.short_bytes(ev.resp.body, 40) if ev.resp else "")
            res.tail = "open (next answer on it: %s)" % got
            res.problems.append("connection kept open; RFC 9112 requires a close here "
                                "(after sending GET /health on it, the next answer was %s)" % got)
        elif is_health(ev, model):
            res.tail = "open"
        else:
            res.tail = "out of sync"
            res.problems.append("connection out of sync: a following GET /health got %s %s"
                                % (ev.label(), wire.short_bytes(ev.raw or (
                                    ev.resp.body if ev.resp else b""), 120)))
    except Exception as e:     # a suite bug: report it on the case, do not hang the run
        res.problems.append("suite error %s: %s\n%s" % (type(e).__name__, e,
                                                        traceback.format_exc()))
    finally:
        s.close()
        res.done.set()


# -- the prober -------------------------------------------------------------------------------

class Prober:
    """GET /health on its own keep-alive connection, from its own thread, when asked."""

    def __init__(self, srv, model, timeout, fresh=False):
        self.srv = srv
        self.model = model
        self.timeout = timeout
        # A new connection for every probe: on the bound instance, an idle keep-alive
        # connection is (rightly) closed by the 3 s --idle-timeout between probes.
        self.fresh = fresh
        self.requests = queue.Queue()
        self.results = queue.Queue()
        self.conn = None
        self.count = 0
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while True:
            tag = self.requests.get()
            if tag is None:
                break
            self.results.put((tag, self._probe()))

    def _probe(self):
        try:
            if self.conn is None:
                self.conn = httpraw.Connection(self.srv.host, self.srv.port, self.timeout)
            self.conn.send(PROBE)
            resp = self.conn.read_response("GET")
        except (OSError, httpraw.ProtocolError) as e:
            if self.conn is not None:
                self.conn.close()
            self.conn = None
            return "GET /health on the prober's keep-alive connection failed: %s: %s" % (
                type(e).__name__, e)
        want = ('{"status":"ok","model":"%s"}' % self.model).encode()
        if resp.status != 200 or resp.body != want:
            return "GET /health got %s" % resp.describe(200)
        if resp.has_token("Connection", "close") or self.fresh:
            self.conn.close()
            self.conn = None
        return None

    def probe(self):
        self.count += 1
        tag = self.count
        self.requests.put(tag)
        deadline = time.monotonic() + self.timeout + 10
        while True:
            try:
                (got, why) = self.results.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                return "GET /health: no answer within %g s" % (self.timeout + 10)
            if got == tag:      # (an earlier probe that timed out may answer late)
                return why

    def stop(self):
        self.requests.put(None)
        self.thread.join(5)
        if self.conn is not None:
            self.conn.close()


# -- stored data ------------------------------------------------------------------------------

class Store:
    """Read-only view of one server's database."""

    def __init__(self, path):
        uri = "file:%s?mode=ro" % urllib.parse.quote(os.path.abspath(path))
        self.db = sqlite3.connect(uri, uri=True, timeout=30, isolation_level=None,
                                  check_same_thread=False)

    def items(self):
        rows = self.db.execute("SELECT id, name, qty FROM items ORDER BY id").fetchall()
        seq = self.db.execute("SELECT seq FROM sqlite_sequence WHERE name='items'").fetchall()
        return {"rows": rows, "seq": seq[0][0] if seq else None}

    def world(self):
        return dict(self.db.execute("SELECT id, randomNumber FROM World").fetchall())

    def close(self):
        self.db.close()


def diff_items(want, got):
    out = []
    w = {r[0]: r for r in want["rows"]}
    g = {r[0]: r for r in got["rows"]}
    for i in sorted(set(w) | set(g)):
        if w.get(i) != g.get(i):
            out.append("item %d: expected %r, found %r" % (i, w.get(i), g.get(i)))
    if want["seq"] != got["seq"]:
        out.append("items sequence: expected %r, found %r" % (want["seq"], got["seq"]))
    return out


def diff_world(want, got):
    bad = [i for i in sorted(set(want) | set(got)) if want.get(i) != got.get(i)]
    return ["World rows changed: %s" % ", ".join(
        "%d: %r -> %r" % (i, want.get(i), got.get(i)) for i in bad[:10]) +
        (" (%d rows)" % len(bad) if len(bad) > 10 else "")] if bad else []


class Instance:
    """A server under test with its prober, its database view and the data it must hold."""

    def __init__(self, srv, model, timeout, fresh=False):
        self.srv = srv
        self.prober = Prober(srv, model, timeout, fresh)
        self.store = Store(srv.db_path)
        self.items0 = self.store.items()
        self.world0 = self.store.world()
        self.items = self.items0            # what it must hold now
        self.world = dict(self.world0)
        self.world_all = dict(self.world0)  # initial + every /updates answer: the end state


# -- the run ----------------------------------------------------------------------------------

def parse_args(argv):
    (argv, extra) = harness.split_extra(argv)
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                epilog="Arguments after -- are passed to every server instance.")
    p.add_argument("--server", required=True, help="path to a triad-<model> binary")
    p.add_argument("--model", help="model name (default: the binary name after 'triad-')")
    p.add_argument("--label", help="column name in the report (default: model + extra args)")
    p.add_argument("-k", dest="k", default="", metavar="SUBSTRING",
                   help="run only cases whose name contains SUBSTRING")
    p.add_argument("--list", action="store_true", help="list the cases and exit")
    p.add_argument("--report", metavar="FILE",
                   help="add this run's answers to a Markdown report (FILE, with FILE.json)")
    p.add_argument("--answer-timeout", type=float, default=10.0, metavar="S",
                   help="per read; a case with no answer by then is a hang (default 10: "
                   "every answer is expected within milliseconds)")
    p.add_argument("--keep-tmp", action="store_true", help="keep the temporary directory")
    opts = p.parse_args(argv)
    opts.extra = extra
    opts.server = os.path.abspath(opts.server)
    base = os.path.basename(opts.server)
    if not opts.model:
        opts.model = base[len("triad-"):] if base.startswith("triad-") else base
    if not opts.label:
        opts.label = " ".join([opts.model] + extra)
    return opts


def seed(srv):
    ids = []
    with httpraw.Connection(srv.host, srv.port) as conn:
        for (name, qty) in cases.SEED:
            body = json.dumps({"name": name, "qty": qty}, ensure_ascii=False).encode("utf-8")
            resp = conn.request("POST", "/items", [("Content-Type", "application/json")], body)
            if resp.status != 201:
                raise RuntimeError("seeding: POST /items got %s" % resp.describe())
            ids.append(json.loads(resp.body)["id"])
    if ids != list(range(1, len(cases.SEED) + 1)):
        raise RuntimeError("seeding: ids %s in a fresh database, expected 1..%d"
                           % (ids, len(cases.SEED)))


def start(opts, workdir, label, more_args):
    db_dir = os.path.join(workdir, label)
    os.makedirs(db_dir, exist_ok=True)
    srv = launch.Server(opts.server, os.path.join(db_dir, "triad.db"),
                        list(opts.extra) + list(more_args), label=label, workdir=workdir)
    try:
        srv.start()
    except launch.StartupError:
        srv.kill()      # it may still be running: the caller never sees it
        raise
    return srv


class Runner:
    def __init__(self, opts, insts, fail):
        self.opts = opts
        self.insts = insts
        self.fail = fail        # fail(name, why): a failed check that is not a case
        self.results = []
        self.failed = []
        self.dead = None

    def out(self, res):
        case = res.case
        tag = ""
        if case.bug:
            tag = " [bug %s]" % case.bug
        elif case.limit:
            tag = " [limitation %s]" % case.limit
        if res.ok():
            notes = " (%s)" % "; ".join(sorted(set(res.notes))) if res.notes else ""
            if case.limit:
                notes += " [%s: %s]" % (case.limit, "as HTTP wants" if res.strict_met() else
                                        "within the bound; strictly %s at once"
                                        % " then ".join(case.strict))
            print("ok %s: %s%s" % (case.name, res.answer(), notes), flush=True)
        else:
            self.failed.append(case.name)
            lines = "\n".join(res.problems).splitlines()
            print("FAIL %s%s: %s -- got: %s" % (case.name, tag, lines[0], res.answer()),
                  flush=True)
            for line in lines[1:]:
                print("    " + line, flush=True)
            print("    request: %s" % case.shown(300), flush=True)

    def after_case(self, res, pending):
        """The checks between cases: prober, process, stored data."""
        inst = self.insts[res.case.instance]
        pend = " (cases still waiting for an answer: %s)" % ", ".join(
            r.case.name for r in pending) if pending else ""
        for (name, i) in self.insts.items():
            if not i.srv.running():
                res.problems.append("the %s server exited (%s)%s"
                                    % (name, launch.describe_status(i.srv.proc.returncode),
                                       harness.stderr_excerpt(i.srv)))
                self.dead = name
        if self.dead:
            return
        for (name, i) in self.insts.items():
            if name == "main" or i is inst:
                why = i.prober.probe()
                if why:
                    res.problems.append("%s server: %s%s" % (name, why, pend))
        # Stored data: the items table after every case, World too (10,000 rows: cheap).
        want = inst.items
        if res.case.changes:
            rows = {r[0]: r for r in want["rows"]}
            for (i, (name, qty)) in res.case.changes.items():
                rows[i] = (i, name, qty)
            want = {"rows": [rows[i] for i in sorted(rows)], "seq": want["seq"]}
        got = inst.store.items()
        d = diff_items(want, got)
        if d:
            res.problems.append("stored items changed: %s%s" % ("; ".join(d), pend))
        inst.items = got
        want_world = dict(inst.world)
        if res.case.world:
            for ev in res.events:
                if ev.kind == "resp" and ev.status == 200:
                    for o in json.loads(ev.resp.body):
                        want_world[o["id"]] = o["randomNumber"]
                        inst.world_all[o["id"]] = o["randomNumber"]
        got_world = inst.store.world()
        d = diff_world(want_world, got_world)
        if d:
            res.problems.append("%s%s" % ("; ".join(d), pend))
        inst.world = got_world

    def launch(self, case):
        inst = self.insts[case.instance]
        res = Result(case)
        timeout = cases.BOUND_GUARD if case.limit else self.opts.answer_timeout
        threading.Thread(target=run_exchange, daemon=True,
                         args=(res, inst.srv, self.opts.model, timeout)).start()
        return res

    def served_meanwhile(self, held):
        """While the limitation cases hold their connections, the bound instance must go on
        serving others: GET /health (prober) and GET /json on a new connection."""
        time.sleep(MEANWHILE_AFTER)     # their bytes are on the way (nothing is timed)
        inst = self.insts["bound"]
        still = [r for r in held if not r.done.is_set()]
        why = inst.prober.probe()
        if why is None:
            try:
                with httpraw.Connection(inst.srv.host, inst.srv.port,
                                        self.opts.answer_timeout) as conn:
                    resp = conn.request("GET", "/json")
                if resp.status != 200 or resp.body != cases.JSON_BODY:
                    why = "GET /json got %s" % resp.describe(200)
            except (OSError, httpraw.ProtocolError) as e:
                why = "GET /json on a new connection failed: %s: %s" % (type(e).__name__, e)
        name = "bound.served-meanwhile"
        if why:
            self.fail(name, "%s (while %d of the %d limitation cases were still waiting: %s)"
                      % (why, len(still), len(held), " ".join(r.case.name for r in still)))
        else:
            print("ok %s: GET /health and GET /json answered while %d of the %d limitation "
                  "connections were still held%s" % (
                      name, len(still), len(held),
                      "" if still else " (none was: nothing shown)"), flush=True)

    def run(self, selected):
        # The limitation cases first, all at once on their own connections: their waits
        # (up to the bound instance's deadlines) overlap with each other and with the rest.
        pending = [self.launch(c) for c in selected if c.limit]
        if pending and not self.dead:
            self.served_meanwhile(pending)
        for case in selected:
            if case.limit:
                continue
            if self.dead:
                res = Result(case)
                res.problems.append("not run: the %s server is gone" % self.dead)
                self.out(res)
                self.results.append(res)
                continue
            res = self.launch(case)
            if not res.done.wait(PARK_AFTER):
                pending.append(res)     # finished (and checked) at the end
                continue
            self.after_case(res, pending)
            self.out(res)
            self.results.append(res)
            still = []
            for p in pending:
                if p.done.is_set():
                    self.after_case(p, [x for x in pending if x is not p and not x.done.is_set()])
                    self.out(p)
                    self.results.append(p)
                else:
                    still.append(p)
            pending = still
        for p in pending:
            p.done.wait(3 * max(self.opts.answer_timeout, cases.BOUND_GUARD) + 30)
            if not p.done.is_set():
                p.problems.append("the suite's exchange did not finish")
            self.after_case(p, [])
            self.out(p)
            self.results.append(p)
        order = {c.name: i for (i, c) in enumerate(selected)}
        self.results.sort(key=lambda r: order[r.case.name])


def main(argv):
    opts = parse_args(argv)
    selected = [c for c in cases.CASES if opts.k in c.name]
    if opts.list:
        for c in selected:
            print("%-55s %-22s %s%s" % (c.name, " then ".join(c.expect), c.shown(60),
                                        " [%s: strictly %s]" % (c.limit, " then ".join(c.strict))
                                        if c.limit else ""))
        return 0
    if not selected:
        print("FAIL selection: no case name contains %r (use --list)" % opts.k)
        return 1
    if not (os.path.isfile(opts.server) and os.access(opts.server, os.X_OK)):
        print("FAIL server.start: %s is not an executable file" % opts.server)
        return 1
    workdir = tempfile.mkdtemp(prefix="triad-hostile-")
    procs = []
    insts = {}
    failures = []
    runner = None
    t0 = time.monotonic()

    def fail(name, why):
        failures.append(name)
        print("FAIL %s: %s" % (name, why), flush=True)

    try:
        wanted = {"main"} | {c.instance for c in selected}
        for (name, more) in [("main", []), ("big", ["--max-body", str(cases.BIG_MAX_BODY)]),
                             ("bound", cases.BOUND_ARGS)]:
            if name not in wanted:
                continue
            try:
                srv = start(opts, workdir, name, more)
            except launch.StartupError as e:
                fail("server.start", "%s instance: %s" % (name, e))
                return summary(failures, runner, opts, t0)
            finally:
                pass
            procs.append(srv)
            if name == "main":
                try:
                    seed(srv)
                except (RuntimeError, OSError, httpraw.ProtocolError) as e:
                    fail("server.seed", str(e))
                    return summary(failures, runner, opts, t0)
            insts[name] = Instance(srv, opts.model, opts.answer_timeout, fresh=name == "bound")
            print("# %s: %s on %s:%d" % (name, " ".join(srv.command()), srv.host, srv.port),
                  flush=True)
        runner = Runner(opts, insts, fail)
        runner.run(selected)
        # The end: everyone still serving, data as it must be, clean exit, clean stderr.
        for (name, inst) in insts.items():
            if not inst.srv.running():
                fail("end.%s.alive" % name, "the server had exited (%s)" %
                     launch.describe_status(inst.srv.proc.returncode))
                continue
            why = inst.prober.probe()
            if why:
                fail("end.%s.health" % name, why)
            d = diff_items(inst.items0, inst.store.items())
            d += diff_world(inst.world_all, inst.store.world())
            if d:
                fail("end.%s.data-unchanged" % name, "; ".join(d))
            else:
                print("ok end.%s.data-unchanged: items and World as before the run%s" % (
                    name, " (World: plus the rows /updates answered)"
                    if inst.world_all != inst.world0 else ""), flush=True)
        for (name, inst) in insts.items():
            inst.prober.stop()
            inst.store.close()
            was_running = inst.srv.running()
            rc = inst.srv.stop(SHUTDOWN_WAIT)
            if not was_running:
                fail("end.%s.shutdown" % name, "already exited before SIGTERM")
            elif rc is None:
                fail("end.%s.shutdown" % name, "still running %d s after SIGTERM (killed)%s"
                     % (SHUTDOWN_WAIT, harness.stderr_excerpt(inst.srv)))
            reports = inst.srv.sanitizer_reports()
            bug = known_leak(inst.srv.stderr_text()) if reports else None
            tag = " [bug %s]" % bug if bug else ""
            if rc is not None and rc != 0 and was_running:
                # (LeakSanitizer makes the exit status 1: a known leak is tagged here too)
                fail("end.%s.shutdown%s" % (name, tag), "%s after SIGTERM (expected exit "
                     "status 0)%s" % (launch.describe_status(rc),
                                      harness.stderr_excerpt(inst.srv)))
            elif rc == 0:
                print("ok end.%s.shutdown: exit status 0 after SIGTERM" % name, flush=True)
            if reports:
                fail("end.%s.sanitizers%s" % (name, tag), "sanitizer reports on stderr: %s%s"
                     % (", ".join(reports), harness.stderr_excerpt(inst.srv)))
            else:
                print("ok end.%s.sanitizers: no sanitizer report on stderr" % name, flush=True)
        return summary(failures, runner, opts, t0)
    finally:
        for srv in procs:
            srv.kill()
        if opts.keep_tmp:
            print("# kept %s" % workdir)
        else:
            shutil.rmtree(workdir, ignore_errors=True)


def known_leak(text):
    """The bug (cases.LEAK_BUGS) behind a server's sanitizer reports, if every report on its
    stderr is a LeakSanitizer leak whose allocation stack names that bug's function."""
    if any(m in text for m in ("ERROR: AddressSanitizer", "runtime error:",
                               "WARNING: ThreadSanitizer")):
        return None
    direct = [b.split("\n\n")[0] for b in re.split(r"\n(?=Direct leak of )", text)[1:]]
    for (bug, function) in cases.LEAK_BUGS.items():
        if direct and all((" in %s " % function) in b for b in direct):
            return bug
    return None


def summary(failures, runner, opts, t0):
    results = runner.results if runner else []
    bad = [r for r in results if not r.ok()]
    print("%d cases, %d passed, %d failed; %d end checks failed (%.0f s)" % (
        len(results), len(results) - len(bad), len(bad), len(failures),
        time.monotonic() - t0), flush=True)
    end_bugs = {m.group(1) for f in failures for m in [re.search(r"\[bug (B\d+)\]", f)] if m}
    if bad or end_bugs:
        bugs = sorted({r.case.bug for r in bad if r.case.bug} | end_bugs,
                      key=lambda b: int(b[1:]))
        unmarked = [r.case.name for r in bad if not r.case.bug and not r.case.limit]
        unbound = [r.case.name for r in bad if r.case.limit]
        if unbound:
            print("the bound did not hold (limitation cases): %s" % " ".join(unbound))
        if bugs:
            print("known bugs reproduced: %s" % ", ".join(bugs))
            for b in bugs:
                print("  %s: %s" % (b, cases.BUGS[b]))
        if unmarked:
            print("failed (not a known bug): %s" % " ".join(unmarked))
    shown = {}
    for r in results:
        if r.strict_met() is False:
            shown.setdefault(r.case.limit, []).append(r.case.name)
    if shown:
        print("limitations met, within the bound (answered or closed in time; not what HTTP "
              "wants): %s" % "; ".join("%s: %s" % (k, " ".join(v))
                                      for (k, v) in sorted(shown.items())))
    if opts.report and results:
        report.add_run(opts.report, opts.label, results, failures)
        print("# report: %s" % opts.report)
    return 1 if bad or failures else 0


if __name__ == "__main__":
    harness.entry(main)
