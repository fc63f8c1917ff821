"""Case 5: kill -9 during a stream of writes loses nothing that was acknowledged.

Several clients POST /items and GET /updates?queries=20 in a loop, recording every 2xx with its
values and times. The whole server (every process of its group: a pre-forked server's workers
die with it, as in a crash or an OOM kill) gets SIGKILL in the middle of the stream. Then:

  - the database, opened with Python's sqlite3, passes integrity_check and holds every
    acknowledged item with its acknowledged name and qty;
  - every World row an acknowledged /updates wrote holds that value or a later one (a value
    no acknowledged write explains is allowed only for rows the unanswered in-flight requests
    may have committed, and never an older acknowledged value or the value from before);
  - a server restarted on the same file serves every acknowledged item through the API.

Five rounds on the same database, the writes of each round adding to the last.
"""

import json
import threading
import time

from tests.conformance import httpraw
from tests.conformance.harness import check
from tests.faults.common import (JSON_HEADERS, Register, connect, db_connect, expect, fail,
                                 kill_tree, log, start_instance, world_table)

ROUNDS = 5
ITEM_WRITERS = 6
UPDATE_WRITERS = 2
KILL_AFTER_ACKS = (80, 150, 220, 40, 300)    # acknowledged writes before each round's kill


class Writers:
    def __init__(self, srv, rnd, world_before):
        self.srv = srv
        self.rnd = rnd
        self.lock = threading.Lock()
        self.items = {}             # id -> (name, qty), acknowledged
        self.world = {}             # id -> Register
        self.world_before = world_before
        self.unanswered_updates = 0
        self.unanswered_items = []
        self.acks = 0
        self.bad = []
        self.stop = threading.Event()

    def item_writer(self, w):
        seq = 0
        conn = None
        while not self.stop.is_set():
            seq += 1
            name, qty = "k%d-%d-%d" % (self.rnd, w, seq), seq * 1000 + w
            try:
                if conn is None:
                    conn = connect(self.srv, timeout=10)
                resp = conn.request("POST", "/items", JSON_HEADERS,
                                    json.dumps({"name": name, "qty": qty}).encode())
            except (OSError, httpraw.ProtocolError):
                with self.lock:
                    self.unanswered_items.append(name)
                return      # the server is gone
            if resp.status == 201:
                obj = json.loads(resp.body)
                if (obj.get("name"), obj.get("qty")) != (name, qty):
                    self.bad.append("POST answered %s for %r" % (resp.body, (name, qty)))
                with self.lock:
                    self.items[obj["id"]] = (name, qty)
                    self.acks += 1
            elif resp.status != 503:
                self.bad.append("POST /items: %s" % resp.describe())
                return

    def update_writer(self, _w):
        conn = None
        while not self.stop.is_set():
            sent = time.monotonic()
            try:
                if conn is None:
                    conn = connect(self.srv, timeout=10)
                resp = conn.request("GET", "/updates?queries=20")
            except (OSError, httpraw.ProtocolError):
                with self.lock:
                    self.unanswered_updates += 1
                return
            acked = time.monotonic()
            if resp.status == 200:
                last = {r["id"]: r["randomNumber"] for r in json.loads(resp.body)}
                with self.lock:
                    for (wid, v) in last.items():
                        self.world.setdefault(wid, Register(self.world_before[wid])).add(
                            sent, acked, v)
                    self.acks += 1
            elif resp.status != 503:
                self.bad.append("/updates: %s" % resp.describe())
                return


@check("kill9.acknowledged-writes-survive")
def _(ctx):
    srv = start_instance(ctx, "kill9")
    db = srv.db_path
    all_items = {}
    report = []
    try:
        for rnd in range(ROUNDS):
            world_before = world_table(db)
            wr = Writers(srv, rnd, world_before)
            threads = [threading.Thread(target=wr.item_writer, args=(w,), daemon=True)
                       for w in range(ITEM_WRITERS)]
            threads += [threading.Thread(target=wr.update_writer, args=(w,), daemon=True)
                        for w in range(UPDATE_WRITERS)]
            for t in threads:
                t.start()
            end = time.monotonic() + 60     # hang guard: kill anyway
            while (wr.acks < KILL_AFTER_ACKS[rnd % len(KILL_AFTER_ACKS)] and not wr.bad and
                   time.monotonic() < end):
                time.sleep(0.005)
            kill_tree(srv)
            wr.stop.set()
            for t in threads:
                t.join(30)
            expect(not wr.bad, "round %d: wrong answers before the kill: %s"
                   % (rnd + 1, wr.bad[:5]))
            expect(wr.acks > 0, "round %d: no write was acknowledged before the kill" % (rnd + 1))
            all_items.update(wr.items)
            lost_rows = verify_file(db, all_items, wr, rnd)
            srv = start_instance(ctx, "kill9-restart", db_path=db)
            verify_api(srv, all_items, rnd)
            report.append("round %d: %d items and %d World row writes acknowledged, %d requests "
                          "unanswered at the kill; %d World rows hold a value only an unanswered "
                          "/updates explains" % (rnd + 1, len(wr.items),
                                                 sum(len(r.writes) for r in wr.world.values()),
                                                 wr.unanswered_updates + len(wr.unanswered_items),
                                                 lost_rows))
        log("\n".join(report))
    finally:
        ctx.stop_server(srv)


def verify_file(db, items, wr, rnd):
    """Returns the number of World rows whose value only an unanswered /updates explains."""
    conn = db_connect(db)
    try:
        ok = conn.execute("PRAGMA integrity_check").fetchone()[0]
        stored = {i: (n, q) for (i, n, q) in conn.execute("SELECT id, name, qty FROM items")}
        world = dict(conn.execute("SELECT id, randomNumber FROM World"))
    finally:
        conn.close()
    expect(ok == "ok", "round %d: integrity_check after kill -9: %s" % (rnd + 1, ok))
    lost = [(i, v, stored.get(i)) for (i, v) in items.items() if stored.get(i) != v]
    expect(not lost, "round %d: acknowledged items lost or changed by kill -9 (id, acknowledged, "
           "stored): %s" % (rnd + 1, lost[:10]))
    unexplained = 0
    for (wid, reg) in wr.world.items():
        v = world[wid]
        if v in reg.candidates():
            continue
        if v in reg.superseded() or v == reg.initial:
            fail("round %d: World row %d holds %d, which acknowledged writes had replaced "
                 "(last acknowledged: %s): a lost write" % (rnd + 1, wid, v,
                                                            sorted(reg.candidates())))
        unexplained += 1
    # Each unanswered /updates may have committed its 20 rows before the kill.
    expect(unexplained <= 20 * wr.unanswered_updates,
           "round %d: %d World rows hold values no acknowledged /updates wrote, more than the "
           "%d unanswered /updates could have" % (rnd + 1, unexplained, wr.unanswered_updates))
    return unexplained


def verify_api(srv, items, rnd):
    with connect(srv) as c:
        for (i, (name, qty)) in sorted(items.items()):
            resp = c.request("GET", "/items/%d" % i)
            if resp.status != 200 or json.loads(resp.body) != {"id": i, "name": name,
                                                              "qty": qty}:
                fail("round %d: after a restart, acknowledged item %d (%r) reads %s"
                     % (rnd + 1, i, (name, qty), resp.describe()))
