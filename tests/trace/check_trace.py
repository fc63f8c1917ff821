#!/usr/bin/env python3
"""check_trace.py - does a file follow the Trace Event Format's rules, as Perfetto applies them?

    check_trace.py FILE...       prints every violation; exit status 1 if any

The rules (the format's document, and what Perfetto's JSON importer requires):

  - the file is a JSON object with a `traceEvents` list (or a bare list); `displayTimeUnit`,
    if present, is "ms" or "ns";
  - every event has a known phase `ph`, a string `name`, integer `pid` and `tid`, and (except
    metadata) a number `ts` >= 0; `X` has `dur` >= 0; `C` has `args` of numbers; flow and
    async events have an `id`; an instant's scope `s` is g, p or t; metadata is one of the
    documented names with its `args`;
  - on each track (pid, tid), timestamps never go backwards in file order, and `B`/`E`/`X`
    slices nest: a slice ends before the slice it started in ends, every `E` closes the
    innermost open `B`, and nothing is left open at the end;
  - nestable async events (`b`/`e`) nest the same way on their track (pid, cat, id);
  - a flow (`s` ... `f`, matched by cat, name and id) starts before it ends, its `f` has a
    matching `s`, and both ends lie inside a slice of their own track (Perfetto binds flow
    ends to the enclosing slice: one outside any slice is dropped). When the trace says
    records were dropped (otherData.dropped_events, triad's budget), the last two are not
    required: a flow's start or its slice may be among the refused records.

Used as a module by the trace tests: check(doc) returns the list of violations.
"""

import json
import sys

PHASES = set("BEXiIbneC stfPOND M".replace(" ", "")) | {"s", "t", "f"}
META_NAMES = {"process_name", "process_labels", "process_sort_index", "thread_name",
              "thread_sort_index"}
EPS = 1e-6  # microseconds: the writer prints three decimals


def _num(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _event_errors(i, e):
    errs = []
    where = "event %d (%s %r)" % (i, e.get("ph"), e.get("name"))
    ph = e.get("ph")
    if ph not in PHASES:
        return ["%s: unknown phase %r" % (where, ph)]
    if not isinstance(e.get("name"), str):
        errs.append("%s: name is not a string" % where)
    for k in ("pid", "tid"):
        if not isinstance(e.get(k), int) or isinstance(e.get(k), bool):
            errs.append("%s: %s is not an integer" % (where, k))
    if ph == "M":
        if e.get("name") not in META_NAMES:
            errs.append("%s: unknown metadata" % where)
        elif not isinstance(e.get("args"), dict):
            errs.append("%s: metadata without args" % where)
        elif e["name"].endswith("_name") and not isinstance(e["args"].get("name"), str):
            errs.append("%s: args.name is not a string" % where)
        elif e["name"].endswith("sort_index") and not isinstance(e["args"].get("sort_index"),
                                                                 int):
            errs.append("%s: args.sort_index is not an integer" % where)
        return errs
    if not _num(e.get("ts")) or e["ts"] < 0:
        errs.append("%s: ts is not a number >= 0" % where)
    if ph == "X" and (not _num(e.get("dur")) or e["dur"] < 0):
        errs.append("%s: X without a dur >= 0" % where)
    if ph == "C":
        a = e.get("args")
        if not isinstance(a, dict) or not a or not all(_num(v) for v in a.values()):
            errs.append("%s: counter args are not numbers" % where)
    if ph in "bnestf" and "id" not in e and "id2" not in e:
        errs.append("%s: no id" % where)
    if ph in "iI" and e.get("s", "t") not in ("g", "p", "t"):
        errs.append("%s: bad instant scope %r" % (where, e.get("s")))
    if ph == "f" and e.get("bp", "e") != "e":
        errs.append("%s: bad binding point %r" % (where, e.get("bp")))
    if "args" in e and not isinstance(e["args"], dict):
        errs.append("%s: args is not an object" % where)
    return errs


class _Track:
    """One (pid, tid) track: the open slices, the last timestamp, the closed slices."""

    def __init__(self, key):
        self.key = key
        self.last_ts = None
        self.stack = []     # [(end or None for an open B, name, index)]
        self.spans = []     # [(begin, end)] of every slice, for the flow binding check

    def advance(self, ts, where, errs):
        if self.last_ts is not None and ts < self.last_ts - EPS:
            errs.append("%s: ts %.3f goes back on track %s (last %.3f)"
                        % (where, ts, self.key, self.last_ts))
        self.last_ts = ts if self.last_ts is None else max(self.last_ts, ts)

    def close_until(self, ts):
        while self.stack and self.stack[-1][0] is not None and self.stack[-1][0] <= ts + EPS:
            self.stack.pop()

    def slice(self, e, i, errs, where):
        ts, end = e["ts"], e["ts"] + e["dur"]
        self.close_until(ts)
        if self.stack and self.stack[-1][0] is not None and end > self.stack[-1][0] + EPS:
            errs.append("%s: [%.3f, %.3f] overlaps %r, which ends at %.3f, on track %s"
                        % (where, ts, end, self.stack[-1][1], self.stack[-1][0], self.key))
        self.stack.append((end, e["name"], i))
        self.spans.append((ts, end))

    def begin(self, e, i):
        self.close_until(e["ts"])
        self.stack.append((None, e["name"], i, e["ts"]))

    def end(self, e, errs, where):
        self.close_until(e["ts"])
        if not self.stack or self.stack[-1][0] is not None:
            errs.append("%s: E with no open B on track %s" % (where, self.key))
            return
        begin = self.stack.pop()
        self.spans.append((begin[3], e["ts"]))

    def finish(self, errs):
        for s in self.stack:
            if s[0] is None:
                errs.append("B %r (event %d) never ends on track %s" % (s[1], s[2], self.key))

    def inside(self, ts):
        return any(b - EPS <= ts <= en + EPS for (b, en) in self.spans)


def check(doc):
    """The list of rule violations in a loaded trace (empty: it follows the rules)."""
    errs = []
    if isinstance(doc, list):
        events, other = doc, {}
    elif isinstance(doc, dict):
        events, other = doc.get("traceEvents"), doc.get("otherData") or {}
        if doc.get("displayTimeUnit", "ms") not in ("ms", "ns"):
            errs.append("displayTimeUnit is %r" % doc.get("displayTimeUnit"))
    else:
        return ["the file is neither an object nor a list"]
    if not isinstance(events, list):
        return ["traceEvents is not a list"]
    truncated = _num(other.get("dropped_events")) and other["dropped_events"] > 0
    tracks, asyncs, flows = {}, {}, []
    for i, e in enumerate(events):
        if not isinstance(e, dict):
            errs.append("event %d is not an object" % i)
            continue
        ee = _event_errors(i, e)
        errs += ee
        if ee or e["ph"] == "M":
            continue
        ph, where = e["ph"], "event %d (%s %r)" % (i, e["ph"], e["name"])
        key = (e["pid"], e["tid"])
        if ph in "bne":
            akey = (e["pid"], e.get("cat"), str(e.get("id", e.get("id2"))))
            t = asyncs.setdefault(akey, _Track(akey))
            t.advance(e["ts"], where, errs)
            if ph == "b":
                t.begin(e, i)
            elif ph == "e":
                t.end(e, errs, where)
            continue
        t = tracks.setdefault(key, _Track(key))
        t.advance(e["ts"], where, errs)
        if ph == "X":
            t.slice(e, i, errs, where)
        elif ph == "B":
            t.begin(e, i)
        elif ph == "E":
            t.end(e, errs, where)
        elif ph in "stf":
            flows.append((e["ts"], "stf".index(ph), i, e, key, where))
    for t in list(tracks.values()) + list(asyncs.values()):
        t.finish(errs)
    errs += _check_flows(flows, tracks, truncated)
    return errs


def _check_flows(flows, tracks, truncated):
    """Flows pair across tracks, so in time order, not file order: s, then t..., then f."""
    errs, open_ = [], {}
    for ts, _, _, e, key, where in sorted(flows, key=lambda x: x[:3]):
        fkey = (e.get("cat"), e["name"], str(e["id"]))
        if e["ph"] == "s":
            if fkey in open_:
                errs.append("%s: flow %s %s starts again before it ended" % (where, e["name"],
                                                                            e["id"]))
            open_[fkey] = ts
        elif fkey in open_:
            if e["ph"] == "f":
                del open_[fkey]
        elif not truncated:
            errs.append("%s: flow %s %s has no start" % (where, e["name"], e["id"]))
        t = tracks.get(key)
        if truncated:
            continue  # its slice, recorded when it ended, may be among the refused records
        if t is None or not t.inside(ts):
            errs.append("%s: flow end at %.3f lies in no slice of track %s" % (where, ts, key))
    return errs


def main(argv):
    bad = 0
    for path in argv[1:]:
        try:
            with open(path) as f:
                doc = json.load(f)
        except (OSError, ValueError) as e:
            print("%s: not JSON: %s" % (path, e))
            bad += 1
            continue
        errs = check(doc)
        for m in errs[:50]:
            print("%s: %s" % (path, m))
        if len(errs) > 50:
            print("%s: ... %d more" % (path, len(errs) - 50))
        n = len(doc["traceEvents"] if isinstance(doc, dict) else doc)
        print("%s: %s (%d events)" % (path, "ok" if not errs else "%d violations" % len(errs), n))
        bad += bool(errs)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
