"""Case 2: write contention. 32 clients write at once: /updates?queries=20, POST, PUT and
DELETE /items (their own items, and a few items every client overwrites).

Every answer must be a correct 2xx or a 503 with Retry-After: 1, never a 500. Nothing
acknowledged may be lost or torn:
  - an item a client owns reads back (API) exactly as its last acknowledged write, right after
    the write and at the end (API and sqlite); a deleted one is gone;
  - a shared item holds a value a linearizable store could hold (common.Register), and its
    name and qty come from the same write (the name encodes the qty);
  - every World row holds a value some acknowledged /updates could have left last; rows no
    acknowledged /updates touched are unchanged (a refused transaction wrote nothing);
  - the items table holds exactly the acknowledged creates minus the acknowledged deletes.
"""

import json
import random
import threading
import time

from tests.conformance import httpraw
from tests.conformance.harness import check
from tests.faults.common import (JSON_HEADERS, Register, connect, db_connect, expect, fail,
                                 is_proper_503, items_table, log, request, start_instance,
                                 wait_quiet, world_table)

CLIENTS = 32
OPS_PER_CLIENT = 40
SHARED_ITEMS = 8


class Client:
    """One writer with its own keep-alive connection (reopened if the server closes it)."""

    def __init__(self, srv, idx, ledger):
        self.srv = srv
        self.idx = idx
        self.ledger = ledger
        self.rng = random.Random(1000 + idx)
        self.conn = None
        self.own = {}       # id -> (name, qty), as last acknowledged
        self.seq = 0

    def call(self, method, target, body=None):
        if self.conn is None:
            self.conn = connect(self.srv)
        try:
            resp = self.conn.request(method, target, JSON_HEADERS if body is not None else None,
                                     body)
        except (OSError, httpraw.ProtocolError) as e:
            self.conn.close()
            self.conn = None
            raise AssertionError("%s %s: no answer: %s: %s" % (method, target, type(e).__name__, e))
        if resp.has_token("Connection", "close"):
            self.conn.close()
            self.conn = None
        if resp.status >= 500 and not is_proper_503(resp):
            raise AssertionError("%s %s: %s" % (method, target, resp.describe()))
        if resp.status == 503:
            self.ledger.count("503 " + method + " " + target.split("?")[0].rsplit("/", 1)[0])
        return resp

    def body(self, resp, what):
        try:
            return json.loads(resp.body)
        except ValueError:
            raise AssertionError("%s: not JSON: %s" % (what, resp.describe()))

    def read_back(self, item_id, want, what):
        resp = self.call("GET", "/items/%d" % item_id)
        if resp.status == 503:
            return      # reads may be refused too; the final check reads everything again
        got = self.body(resp, what) if resp.status == 200 else None
        if want is None:
            if resp.status != 404:
                raise AssertionError("%s: deleted item %d reads back as %s"
                                     % (what, item_id, resp.describe()))
        elif resp.status != 200 or (got["name"], got["qty"]) != want:
            raise AssertionError("%s: item %d reads back as %s, acknowledged %r"
                                 % (what, item_id, resp.describe(), want))

    def op_create(self):
        self.seq += 1
        name, qty = "w%d-%d" % (self.idx, self.seq), self.rng.randrange(0, 10 ** 12)
        resp = self.call("POST", "/items", json.dumps({"name": name, "qty": qty}).encode())
        if resp.status == 503:
            return
        if resp.status != 201:
            raise AssertionError("POST /items: %s" % resp.describe())
        obj = self.body(resp, "POST /items")
        if list(obj) != ["id", "name", "qty"] or (obj["name"], obj["qty"]) != (name, qty):
            raise AssertionError("POST /items answered %s for %r" % (resp.body, (name, qty)))
        if resp.header("Location") != "/items/%d" % obj["id"]:
            raise AssertionError("POST /items: Location %r for id %d"
                                 % (resp.header("Location"), obj["id"]))
        self.own[obj["id"]] = (name, qty)
        self.ledger.count("201 POST /items")
        self.read_back(obj["id"], (name, qty), "after POST")

    def op_put_own(self):
        if not self.own:
            return self.op_create()
        item_id = self.rng.choice(sorted(self.own))
        self.seq += 1
        name, qty = "w%d-%d" % (self.idx, self.seq), self.rng.randrange(0, 10 ** 12)
        resp = self.call("PUT", "/items/%d" % item_id,
                         json.dumps({"name": name, "qty": qty}).encode())
        if resp.status == 503:
            return
        obj = self.body(resp, "PUT")
        if resp.status != 200 or obj != {"id": item_id, "name": name, "qty": qty}:
            raise AssertionError("PUT /items/%d: %s" % (item_id, resp.describe()))
        self.own[item_id] = (name, qty)
        self.ledger.count("200 PUT /items")
        self.read_back(item_id, (name, qty), "after PUT")

    def op_delete_own(self):
        if not self.own:
            return self.op_create()
        item_id = self.rng.choice(sorted(self.own))
        resp = self.call("DELETE", "/items/%d" % item_id)
        if resp.status == 503:
            return
        if resp.status != 204:
            raise AssertionError("DELETE /items/%d: %s" % (item_id, resp.describe()))
        del self.own[item_id]
        self.ledger.deleted(item_id)
        self.ledger.count("204 DELETE /items")
        self.read_back(item_id, None, "after DELETE")

    def op_put_shared(self):
        item_id = self.rng.choice(self.ledger.shared_ids)
        self.seq += 1
        qty = self.rng.randrange(0, 10 ** 9)
        value = ("s%d-%d-q%d" % (self.idx, self.seq, qty), qty)
        sent = time.monotonic()
        resp = self.call("PUT", "/items/%d" % item_id,
                         json.dumps({"name": value[0], "qty": value[1]}).encode())
        if resp.status == 503:
            return
        acked = time.monotonic()
        obj = self.body(resp, "PUT shared")
        if resp.status != 200 or (obj["name"], obj["qty"]) != value:
            raise AssertionError("PUT /items/%d: %s" % (item_id, resp.describe()))
        self.ledger.ack_shared(item_id, sent, acked, value)
        self.ledger.count("200 PUT /items (shared)")

    def op_updates(self):
        sent = time.monotonic()
        resp = self.call("GET", "/updates?queries=20")
        if resp.status == 503:
            return
        acked = time.monotonic()
        rows = self.body(resp, "/updates")
        if resp.status != 200 or not isinstance(rows, list) or len(rows) != 20:
            raise AssertionError("/updates?queries=20: %s" % resp.describe())
        last = {}
        for r in rows:
            if (list(r) != ["id", "randomNumber"] or not 1 <= r["id"] <= 10000 or
                    not 1 <= r["randomNumber"] <= 10000):
                raise AssertionError("/updates row %r" % r)
            last[r["id"]] = r["randomNumber"]       # a repeated id: the last one is stored
        self.ledger.ack_updates(sent, acked, last)
        self.ledger.count("200 /updates")

    def run(self):
        ops = [(self.op_updates, 25), (self.op_create, 20), (self.op_put_own, 20),
               (self.op_delete_own, 10), (self.op_put_shared, 25)]
        funcs = [f for (f, w) in ops for _k in range(w)]
        try:
            for _k in range(OPS_PER_CLIENT):
                self.rng.choice(funcs)()
        finally:
            if self.conn:
                self.conn.close()


class Ledger:
    """What the clients were told, shared between them."""

    def __init__(self, world_before):
        self.lock = threading.Lock()
        self.shared_ids = []
        self.shared = {}        # id -> Register of (name, qty)
        self.world = {}         # id -> Register of randomNumber
        self.world_before = world_before
        self.deleted_ids = set()
        self.counts = {}

    def count(self, what):
        with self.lock:
            self.counts[what] = self.counts.get(what, 0) + 1

    def deleted(self, item_id):
        with self.lock:
            self.deleted_ids.add(item_id)

    def ack_shared(self, item_id, sent, acked, value):
        with self.lock:
            self.shared[item_id].add(sent, acked, value)

    def ack_updates(self, sent, acked, rows):
        with self.lock:
            for (wid, value) in rows.items():
                reg = self.world.setdefault(wid, Register(self.world_before[wid]))
                reg.add(sent, acked, value)


def all_items_via_api(srv):
    out = {}
    after = 0
    with connect(srv) as c:
        for _page in range(10000):
            resp = c.request("GET", "/items?limit=100&after=%d" % after)
            if resp.status != 200:
                fail("GET /items?limit=100&after=%d: %s" % (after, resp.describe()))
            page = json.loads(resp.body)
            for it in page["items"]:
                out[it["id"]] = (it["name"], it["qty"])
            if page["next"] is None:
                return out
            after = page["next"]
    fail("the listing never ended")


@check("contention.concurrent-writers")
def _(ctx):
    srv = start_instance(ctx, "contention")
    try:
        ledger = Ledger(world_table(srv.db_path))
        for k in range(SHARED_ITEMS):
            value = ("shared-%d-q%d" % (k, k), k)
            sent = time.monotonic()
            resp = request(srv, "POST", "/items", JSON_HEADERS,
                           json.dumps({"name": value[0], "qty": value[1]}).encode())
            expect(resp.status == 201, "creating shared item %d: %s" % (k, resp.describe()))
            item_id = json.loads(resp.body)["id"]
            ledger.shared_ids.append(item_id)
            ledger.shared[item_id] = Register()
            ledger.shared[item_id].add(sent, time.monotonic(), value)
        clients = [Client(srv, i, ledger) for i in range(CLIENTS)]
        errors = []
        lock = threading.Lock()

        def run(c):
            try:
                c.run()
            except AssertionError as e:
                with lock:
                    errors.append("client %d: %s" % (c.idx, e))

        threads = [threading.Thread(target=run, args=(c,), daemon=True) for c in clients]
        for t in threads:
            t.start()
        for t in threads:
            t.join(600)
        log("%d clients x %d writes: %s" % (CLIENTS, OPS_PER_CLIENT, ", ".join(
            "%s: %d" % kv for kv in sorted(ledger.counts.items()))))
        expect(not errors, "%d of %d clients got a wrong answer:\n%s"
               % (len(errors), CLIENTS, "\n".join(errors[:10])))
        wait_quiet(srv, "after the writers finished")
        verify_items(srv, ledger, clients)
        verify_world(srv, ledger)
        conn = db_connect(srv.db_path)
        try:
            ok = conn.execute("PRAGMA integrity_check").fetchone()[0]
        finally:
            conn.close()
        expect(ok == "ok", "PRAGMA integrity_check: %s" % ok)
    finally:
        ctx.stop_server(srv)


def verify_items(srv, ledger, clients):
    stored = items_table(srv.db_path)
    via_api = all_items_via_api(srv)
    expect(via_api == stored, "GET /items pages differ from the items table: %d vs %d items"
           % (len(via_api), len(stored)))
    want_ids = set(ledger.shared_ids)
    for c in clients:
        want_ids |= set(c.own)
    extra = sorted(set(stored) - want_ids)
    lost = sorted(want_ids - set(stored))
    expect(not lost, "acknowledged items missing: %s" % lost[:20])
    expect(not extra, "items that no acknowledged write left behind (a refused POST that "
           "created a row, or an acknowledged DELETE that did not delete): %s"
           % [(i, stored[i]) for i in extra[:20]])
    for c in clients:
        for (item_id, value) in c.own.items():
            expect(stored[item_id] == value, "item %d: stored %r, last acknowledged %r"
                   % (item_id, stored[item_id], value))
    for item_id in ledger.shared_ids:
        (name, qty) = stored[item_id]
        expect(name.endswith("-q%d" % qty), "shared item %d is torn: name %r with qty %d"
               % (item_id, name, qty))
        cands = ledger.shared[item_id].candidates()
        expect((name, qty) in cands, "shared item %d: stored %r, but the last acknowledged "
               "writes were %r" % (item_id, (name, qty), sorted(cands)))


def verify_world(srv, ledger):
    after = world_table(srv.db_path)
    for (wid, before) in ledger.world_before.items():
        reg = ledger.world.get(wid)
        if reg is None:
            expect(after[wid] == before, "World row %d changed (%d -> %d) but no acknowledged "
                   "/updates wrote it" % (wid, before, after[wid]))
            continue
        cands = reg.candidates()
        expect(after[wid] in cands, "World row %d holds %d; acknowledged /updates left it at "
               "one of %s (older acknowledged values %s)"
               % (wid, after[wid], sorted(cands), sorted(reg.superseded())))
