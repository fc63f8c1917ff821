#!/usr/bin/env python3
"""test_checker.py - the format checker catches what it claims to catch, and passes what is
valid. Each case is a small hand-written trace."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import check_trace  # noqa: E402


def ev(ph, name, ts, tid=1, **kw):
    e = {"ph": ph, "name": name, "ts": ts, "pid": 1, "tid": tid, "cat": "t"}
    e.update(kw)
    return e


GOOD = [
    ev("X", "outer", 0, dur=10), ev("X", "inner", 2, dur=3), ev("s", "hand", 3, id="0x1"),
    ev("C", "runq", 3, args={"value": 2}), ev("i", "mark", 4, s="t"),
    ev("X", "other", 5, tid=2, dur=5),
    ev("f", "hand", 6, tid=2, id="0x1", bp="e"), ev("B", "b", 20), ev("E", "b", 25),
    ev("b", "wait", 1, id="0x9"), ev("b", "wait", 2, id="0xa"), ev("e", "wait", 8, id="0x9"),
    ev("e", "wait", 9, id="0xa"),
    {"ph": "M", "name": "thread_name", "pid": 1, "tid": 1, "args": {"name": "loop"}},
]

BAD = {
    "overlapping slices": [ev("X", "a", 0, dur=10), ev("X", "b", 5, dur=10)],
    "time going back": [ev("X", "a", 10, dur=1), ev("X", "b", 5, dur=1)],
    "an E without a B": [ev("E", "a", 1)],
    "a B that never ends": [ev("B", "a", 1)],
    "an unknown phase": [ev("Q", "a", 1)],
    "an X without dur": [ev("X", "a", 1)],
    "a counter with text": [ev("C", "c", 1, args={"value": "x"})],
    "a flow with no start": [ev("X", "a", 0, dur=5), ev("f", "h", 1, id="0x1", bp="e")],
    "a flow end outside slices": [ev("X", "a", 0, dur=5), ev("s", "h", 1, id="0x1"),
                                  ev("f", "h", 9, tid=2, id="0x1", bp="e")],
    "an unclosed async span": [ev("b", "w", 1, id="0x1")],
    "a bad instant scope": [ev("i", "a", 1, s="x")],
    "unknown metadata": [{"ph": "M", "name": "thread_colour", "pid": 1, "tid": 1, "args": {}}],
    "a bad time unit": {"traceEvents": [], "displayTimeUnit": "s"},
}


def main():
    failures = 0
    errs = check_trace.check({"traceEvents": GOOD, "displayTimeUnit": "ns"})
    if errs:
        print("FAIL a valid trace was refused: %s" % errs)
        failures += 1
    else:
        print("ok valid trace")
    for what, events in BAD.items():
        doc = events if isinstance(events, dict) else {"traceEvents": events}
        errs = check_trace.check(doc)
        print("%s %s%s" % ("ok" if errs else "FAIL", what, ": " + errs[0] if errs else " passed"))
        failures += not errs
    print("%d passed, %d failed" % (len(BAD) + 1 - failures, failures))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
