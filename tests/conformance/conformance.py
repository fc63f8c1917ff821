#!/usr/bin/env python3
"""Black-box conformance suite for the triad servers (README.md, "API").

    python3 -m tests.conformance.conformance --server build/servers/threaded/triad-threaded \
        [--model NAME] [-k SUBSTRING] [--list] [-- extra server args...]

(from the source root: the suites are modules of the package `tests`).

The suite starts the server on a free port with a fresh database, talks to it over raw sockets,
reads the database (the sqlite file read-only with sqlite3; PostgreSQL, in a pg mode, with
psql) to check what was stored, and asserts bytes, statuses and behaviour. It never asserts how
long anything took. Python 3 standard library only.
"""

import contextlib
import datetime
import json
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.parse

sys.dont_write_bytecode = True      # keep the source tree clean (it may be read-only)

from tests.conformance import harness, httpraw      # noqa: E402
from tests.conformance.harness import (add_check, check, expect, expect_eq, fail,  # noqa: E402
                                       short)
from workloads.runner import launch, pg     # noqa: E402

VERSION = "0.1.0"
JSON_CT = "application/json"
PLAIN_CT = "text/plain"
HTML_CT = "text/html; charset=utf-8"
METRICS_CT = "text/plain; version=0.0.4"
JSON_HEADERS = [("Content-Type", JSON_CT)]
MAX_BODY = 65536
INT64_MAX = 9223372036854775807

# =============================================================================================
# Response validation shared by every check
# =============================================================================================

IMF_FIXDATE = re.compile(r"^(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d{2} "
                         r"(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) \d{4} "
                         r"\d{2}:\d{2}:\d{2} GMT$")
SINGLETON_HEADERS = ("Date", "Server", "Content-Type", "Content-Length", "Connection",
                     "Location", "Allow", "Retry-After")


def check_headers(ctx, resp, method="GET", ctype=None, what=""):
    """Headers every response must carry (README "API", first paragraph)."""
    where = " (%s)" % what if what else ""
    for name in SINGLETON_HEADERS:
        n = len(resp.header_all(name))
        expect(n <= 1, "%d %s headers%s: %s" % (n, name, where, short(resp.headers)))
    date = resp.header("Date")
    expect(date is not None, "no Date header%s: %s" % (where, short(resp.headers)))
    expect(IMF_FIXDATE.match(date), "Date %r is not an IMF-fixdate%s" % (date, where))
    try:
        parsed = datetime.datetime.strptime(date, "%a, %d %b %Y %H:%M:%S GMT")
    except ValueError as e:
        fail("Date %r does not parse%s: %s" % (date, where, e))
    now = datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)
    # Sanity of the clock reading, not a timing assertion: a day of slack either way.
    expect(abs((parsed - now).total_seconds()) < 86400,
           "Date %r is not today's date (now %s UTC)%s" % (date, now.strftime("%c"), where))
    if ctx.opts.peer:   # a peer names its runtime as that runtime does
        expect(resp.header("Server"), "no Server header%s: %s" % (where, short(resp.headers)))
    else:
        expect_eq(resp.header("Server"), "triad/%s (%s)" % (VERSION, ctx.model),
                  "Server header" + where)
    expect(not resp.header_all("Transfer-Encoding"),
           "Transfer-Encoding present%s: %s" % (where, short(resp.headers)))
    expect(not resp.header_all("Content-Encoding"),
           "Content-Encoding present%s: %s" % (where, short(resp.headers)))
    if resp.status == 204:
        expect(not resp.header_all("Content-Length"),
               "204 response carries Content-Length%s: %s" % (where, short(resp.headers)))
        return
    ct = resp.header("Content-Type")
    expect(ct is not None, "no Content-Type header%s: %s" % (where, short(resp.headers)))
    if ctype is not None:
        expect_eq(ct, ctype, "Content-Type" + where)
    cl = resp.header("Content-Length")
    expect(cl is not None, "no Content-Length header%s: %s" % (where, short(resp.headers)))
    expect(re.fullmatch(r"[0-9]+", cl), "Content-Length %r is not a decimal number%s" % (cl, where))
    if method != "HEAD":
        expect_eq(int(cl), len(resp.body), "Content-Length vs body length" + where)


def check_response(ctx, resp, method, target, status=None, ctype=None):
    what = "%s %s" % (method, target)
    if status is not None and resp.status != status:
        fail("%s: expected status %d, got %s" % (what, status, resp.describe()))
    check_headers(ctx, resp, method, ctype, what)


def fetch(ctx, method, target, headers=None, body=None, status=None, ctype=None, srv=None):
    """One request on a fresh connection; status and headers are checked."""
    with ctx.connect(srv) as conn:
        resp = conn.request(method, target, headers, body)
    check_response(ctx, resp, method, target, status, ctype)
    return resp


def get(ctx, target, status=200, ctype=JSON_CT, srv=None, headers=None):
    return fetch(ctx, "GET", target, headers=headers, status=status, ctype=ctype, srv=srv)


class DuplicateKey(ValueError):
    pass


def _pairs(pairs):
    obj = {}
    for (k, v) in pairs:
        if k in obj:
            raise DuplicateKey("duplicate key %r" % k)
        obj[k] = v
    return obj


def _no_constants(name):
    raise ValueError("non-standard JSON constant %s" % name)


def check_compact(text, what):
    """README: JSON is compact. No whitespace outside strings."""
    in_str = esc = False
    for (i, ch) in enumerate(text):
        if in_str:
            if esc:
                esc = False
            elif ch == "\\":
                esc = True
            elif ch == '"':
                in_str = False
        elif ch == '"':
            in_str = True
        elif ch in " \t\r\n":
            fail("%s: JSON is not compact (whitespace at offset %d): %s" % (what, i, short(text)))


def parse_json(body, what="body"):
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as e:
        fail("%s is not UTF-8: %s (%s)" % (what, e, short(body)))
    try:
        value = json.loads(text, object_pairs_hook=_pairs, parse_constant=_no_constants)
    except ValueError as e:
        fail("%s is not valid JSON: %s (%s)" % (what, e, short(body)))
    check_compact(text, what)
    return value


def is_int(v):
    return isinstance(v, int) and not isinstance(v, bool)


def is_number(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def expect_keys(obj, keys, what):
    expect(isinstance(obj, dict), "%s: expected a JSON object, got %s" % (what, short(obj)))
    expect_eq(list(obj.keys()), list(keys), "%s: keys (in order)" % what)


def expect_error(ctx, resp, status, what):
    """README "Errors": status, JSON Content-Type, body {"error":"<non-empty>"}."""
    if resp.status != status:
        fail("%s: expected status %d, got %s" % (what, status, resp.describe()))
    check_headers(ctx, resp, "GET", JSON_CT, what)
    obj = parse_json(resp.body, what + " body")
    expect_keys(obj, ["error"], what + " body")
    expect(isinstance(obj["error"], str) and obj["error"],
           "%s: error must be a non-empty string, got %s" % (what, short(resp.body)))


def fetch_error(ctx, method, target, status, headers=None, body=None, srv=None):
    with ctx.connect(srv) as conn:
        resp = conn.request(method, target, headers, body)
    expect_error(ctx, resp, status, "%s %s" % (method, target))
    return resp


# =============================================================================================
# Start-up, command line, database file
# =============================================================================================

@check("server.banner")
def _(ctx):
    banner = ctx.server.banner
    pat = (r"^triad-%s %s listening on http://[^:\s]+:%d \(model=%s( [^()]*)?\)$"
           % (re.escape(ctx.model), re.escape(VERSION), ctx.port, re.escape(ctx.model)))
    expect(re.match(pat, banner), "start-up line %r does not match %r" % (banner, pat))


def run_cli(ctx, args):
    try:
        p = subprocess.run([ctx.binary] + args, stdin=subprocess.DEVNULL, capture_output=True,
                           timeout=30, cwd=ctx.workdir)
    except subprocess.TimeoutExpired:
        fail("%s did not exit within 30 s" % " ".join([ctx.binary] + args))
    return p


@check("cli.version")
def _(ctx):
    p = run_cli(ctx, ["--version"])
    expect_eq(p.returncode, 0, "exit status of --version")
    out = p.stdout.decode("utf-8", "replace")
    expect(VERSION in out, "--version output %s does not name %s" % (short(out), VERSION))


@check("cli.help")
def _(ctx):
    p = run_cli(ctx, ["--help"])
    expect_eq(p.returncode, 0, "exit status of --help")
    out = p.stdout.decode("utf-8", "replace")
    for flag in ("--host", "--port", "--db"):
        expect(flag in out, "--help output does not mention %s: %s" % (flag, short(out)))


@check("database.schema")
def _(ctx):
    if ctx.pg:
        return pg_schema(ctx)

    def columns(table):
        return [(r[1], r[2].upper(), r[5]) for r in ctx.query("PRAGMA table_info(%s)" % table)]
    expect_eq(columns("World"), [("id", "INTEGER", 1), ("randomNumber", "INTEGER", 0)],
              "World columns (name, type, pk)")
    expect_eq([c[0] for c in columns("Fortune")], ["id", "message"], "Fortune columns")
    expect_eq(columns("items"), [("id", "INTEGER", 1), ("name", "TEXT", 0), ("qty", "INTEGER", 0)],
              "items columns (name, type, pk)")
    notnull = {r[1]: r[3] for r in ctx.query("PRAGMA table_info(items)")}
    expect(notnull["name"] and notnull["qty"], "items.name and items.qty must be NOT NULL")
    sql = ctx.query("SELECT sql FROM sqlite_master WHERE type='table' AND name='items'")[0][0]
    expect("AUTOINCREMENT" in sql.upper(), "items.id is not AUTOINCREMENT: %s" % sql)


# PostgreSQL's names fold to lower case (World is world), as in TechEmpower's schema.
PG_COLUMNS = [("fortune", "id", "integer", "NO"), ("fortune", "message", "text", "NO"),
              ("items", "id", "bigint", "NO"), ("items", "name", "text", "NO"),
              ("items", "qty", "bigint", "NO"), ("triad_meta", "schema_version", "integer", "NO"),
              ("world", "id", "integer", "NO"), ("world", "randomnumber", "integer", "NO")]


def pg_schema(ctx):
    cols = ctx.query("SELECT table_name::text AS t, column_name::text AS c, data_type::text AS d, "
                     "is_nullable::text AS n FROM information_schema.columns "
                     "WHERE table_schema = 'public' ORDER BY table_name, ordinal_position")
    expect_eq(cols, PG_COLUMNS, "columns (table, name, type, nullable)")
    pks = ctx.query("SELECT c.conrelid::regclass::text AS t, a.attname::text AS c "
                    "FROM pg_constraint c JOIN pg_attribute a ON a.attrelid = c.conrelid "
                    "AND a.attnum = ANY (c.conkey) WHERE c.contype = 'p' "
                    "AND c.connamespace = 'public'::regnamespace ORDER BY 1, 2")
    expect_eq(pks, [("fortune", "id"), ("items", "id"), ("world", "id")], "primary keys")
    default = ctx.query("SELECT column_default::text AS d FROM information_schema.columns "
                        "WHERE table_name = 'items' AND column_name = 'id'")[0][0]
    expect(default.startswith("nextval("), "items.id does not come from a sequence (ids must "
           "never be reused, like AUTOINCREMENT): default %r" % default)
    checks = ctx.query("SELECT pg_get_constraintdef(oid) AS d FROM pg_constraint "
                       "WHERE conrelid = 'items'::regclass AND contype = 'c'")
    expect_eq(checks, [("CHECK ((qty >= 0))",)], "items' CHECK constraints")


def table_names(ctx, srv=None):
    """The tables of a server's database, as the database names them."""
    if pg.is_pg((srv or ctx.server).db_path):
        sql = "SELECT tablename::text AS t FROM pg_tables WHERE schemaname = 'public' ORDER BY 1"
    else:
        sql = "SELECT name FROM sqlite_master WHERE type='table' ORDER BY name"
    return [r[0] for r in ctx.query(sql, srv=srv)]


@check("database.wal")
def _(ctx):
    expect_eq(ctx.query("PRAGMA journal_mode")[0][0].lower(), "wal", "journal_mode")


@check("database.world-seeded")
def _(ctx):
    (count, lo, hi) = ctx.query("SELECT count(*), min(id), max(id) FROM World")[0]
    expect_eq((count, lo, hi), (10000, 1, 10000), "World (rows, min id, max id)")
    # PostgreSQL's column is an integer by its type; sqlite's may hold anything
    bad = ctx.query("SELECT count(*) FROM World WHERE randomNumber < 1 OR randomNumber > 10000" +
                    ("" if ctx.pg else " OR typeof(randomNumber) != 'integer'"))[0][0]
    expect_eq(bad, 0, "World rows with randomNumber outside 1..10000")
    distinct = ctx.query("SELECT count(DISTINCT randomNumber) FROM World")[0][0]
    expect(distinct > 1000, "World.randomNumber does not look random: %d distinct values"
           % distinct)


FORTUNES = [
    (1, "fortune: No such file or directory"),
    (2, "A computer scientist is someone who fixes things that aren't broken."),
    (3, "After enough decimal places, nobody gives a damn."),
    (4, "A bad random number generator: 1, 1, 1, 1, 1, 4.33e+67, 1, 1, 1"),
    (5, "A computer program does what you tell it to do, not what you want it to do."),
    (6, "Emacs is a nice operating system, but I prefer UNIX. \u2014 Tom Christaensen"),
    (7, "Any program that runs right is obsolete."),
    (8, "A list is only as strong as its weakest link. \u2014 Donald Knuth"),
    (9, "Feature: A bug with seniority."),
    (10, "Computers make very fast, very accurate mistakes."),
    (11, '<script>alert("This should not be displayed in a browser alert box.");</script>'),
    (12, "\u30d5\u30ec\u30fc\u30e0\u30ef\u30fc\u30af\u306e\u30d9\u30f3\u30c1\u30de\u30fc\u30af"),
]


def html_escape(s):
    return (s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
            .replace('"', "&quot;").replace("'", "&#39;"))


def expected_fortunes_body():
    rows = FORTUNES + [(0, "Additional fortune added at request time.")]
    # strcmp order over UTF-8 bytes equals code-point order of Python strings.
    rows.sort(key=lambda r: r[1].encode("utf-8"))
    cells = "".join("<tr><td>%d</td><td>%s</td></tr>" % (i, html_escape(m)) for (i, m) in rows)
    return ("<!DOCTYPE html><html><head><title>Fortunes</title></head><body><table>"
            "<tr><th>id</th><th>message</th></tr>%s</table></body></html>" % cells).encode("utf-8")


FORTUNES_BODY = expected_fortunes_body()
assert len(FORTUNES_BODY) == 1226, len(FORTUNES_BODY)  # TechEmpower's Fortunes test, &#39; + &quot;


@check("database.fortunes-seeded")
def _(ctx):
    rows = ctx.query("SELECT id, message FROM Fortune ORDER BY id")
    expect_eq(rows, FORTUNES, "Fortune rows")


@check("database.items-table-empty-at-start")
def _(ctx):
    # Runs before any items check; a fresh database has no items.
    expect_eq(ctx.query("SELECT count(*) FROM items")[0][0], 0, "items rows in a fresh database")


# =============================================================================================
# TechEmpower routes
# =============================================================================================

@check("plaintext")
def _(ctx):
    resp = get(ctx, "/plaintext", ctype=PLAIN_CT)
    expect_eq(resp.body, b"Hello, World!", "body")


@check("plaintext.tfb-request-headers")
def _(ctx):
    hdrs = [("Accept", "text/plain,text/html;q=0.9,application/xhtml+xml;q=0.9,"
                       "application/xml;q=0.8,*/*;q=0.7"),
            ("Connection", "keep-alive"), ("Accept-Encoding", "gzip, deflate"),
            ("User-Agent", "python-conformance/1")]
    with ctx.connect() as conn:
        resp = conn.request("GET", "/plaintext", hdrs, host="tfb-server")
    check_response(ctx, resp, "GET", "/plaintext", 200, PLAIN_CT)
    expect_eq(resp.body, b"Hello, World!", "body")


@check("json")
def _(ctx):
    resp = get(ctx, "/json")
    expect_eq(resp.body, b'{"message":"Hello, World!"}', "body")


@check("json.ignores-query-string")
def _(ctx):
    resp = get(ctx, "/json?x=1&queries=5")
    expect_eq(resp.body, b'{"message":"Hello, World!"}', "body")


WORLD_OBJECT = re.compile(rb'^\{"id":([0-9]+),"randomNumber":([0-9]+)\}$')


def world_object(body, what):
    m = WORLD_OBJECT.match(body)
    expect(m, "%s: body %s does not match %s" % (what, short(body), WORLD_OBJECT.pattern))
    (i, rn) = (int(m.group(1)), int(m.group(2)))
    expect(1 <= i <= 10000 and 1 <= rn <= 10000,
           "%s: id %d / randomNumber %d outside 1..10000" % (what, i, rn))
    expect(m.group(1) == str(i).encode() and m.group(2) == str(rn).encode(),
           "%s: numbers with leading zeros: %s" % (what, short(body)))
    return (i, rn)


def world_list(body, n, what):
    """Exact shape: [{"id":I,"randomNumber":R},...] with n objects. Returns [(id, rn)]."""
    value = parse_json(body, what)
    expect(isinstance(value, list), "%s: expected a JSON array, got %s" % (what, short(body)))
    expect_eq(len(value), n, "%s: array length" % what)
    rows = []
    for obj in value:
        expect_keys(obj, ["id", "randomNumber"], what + " element")
        (i, rn) = (obj["id"], obj["randomNumber"])
        expect(is_int(i) and is_int(rn), "%s: non-integer values in %s" % (what, short(obj)))
        expect(1 <= i <= 10000 and 1 <= rn <= 10000,
               "%s: %s outside 1..10000" % (what, short(obj)))
        rows.append((i, rn))
    rebuilt = ("[" + ",".join('{"id":%d,"randomNumber":%d}' % r for r in rows) + "]").encode()
    expect_eq(body, rebuilt, "%s: exact bytes" % what)
    return rows


def world_rows(ctx, ids):
    ids = sorted(set(ids))
    found = {}
    for k in range(0, len(ids), 500):
        part = ids[k:k + 500]
        sql = "SELECT id, randomNumber FROM World WHERE id IN (%s)" % ",".join("?" * len(part))
        found.update(dict(ctx.query(sql, part)))
    return found


def world_table(ctx):
    return dict(ctx.query("SELECT id, randomNumber FROM World"))


@check("db")
def _(ctx):
    resp = get(ctx, "/db")
    world_object(resp.body, "GET /db")


@check("db.matches-database")
def _(ctx):
    for _k in range(5):
        resp = get(ctx, "/db")
        (i, rn) = world_object(resp.body, "GET /db")
        expect_eq(world_rows(ctx, [i]).get(i), rn, "stored randomNumber of World id %d" % i)


@check("db.random-ids")
def _(ctx):
    # 20 draws from 10000 ids are all equal with probability 1e-76.
    ids = {world_object(get(ctx, "/db").body, "GET /db")[0] for _k in range(20)}
    expect(len(ids) > 1, "20 requests to /db all returned id %s" % ids)


# (check-name suffix, query value or None for "parameter missing", expected count)
CLAMP_CASES = [
    ("2", "2", 2),
    ("0", "0", 1),
    ("foo", "foo", 1),
    ("501", "501", 500),
    ("500", "500", 500),
    ("1", "1", 1),
    ("empty", "", 1),
    ("missing", None, 1),
    ("-5", "-5", 1),
    ("99999999999999999999", "99999999999999999999", 500),
    ("1.5", "1.5", 1),
    ("%32", "%32", 2),          # percent-encoded "2"
]


def make_clamp_check(route, param, count_value, expected, verify):
    def run(ctx):
        target = route if count_value is None else "%s?%s=%s" % (route, param, count_value)
        resp = get(ctx, target)
        rows = world_list(resp.body, expected, "GET " + target)
        if verify:
            verify(ctx, rows, target)
    return run


def verify_against_db(ctx, rows, target):
    stored = world_rows(ctx, [i for (i, _) in rows])
    for (i, rn) in rows:
        expect_eq(stored.get(i), rn, "%s: stored randomNumber of World id %d" % (target, i))


def verify_updates_committed(ctx, rows, target):
    last = {}
    for (i, rn) in rows:
        last[i] = rn        # a repeated id: the last occurrence is what was stored
    stored = world_rows(ctx, last.keys())
    for (i, rn) in last.items():
        expect_eq(stored.get(i), rn,
                  "%s: World id %d after the response (last value returned)" % (target, i))


for (suffix, value, n) in CLAMP_CASES:
    add_check("queries.queries=" + suffix,
              make_clamp_check("/queries", "queries", value, n, verify_against_db))
for (suffix, value, n) in CLAMP_CASES:
    add_check("updates.queries=" + suffix,
              make_clamp_check("/updates", "queries", value, n, verify_updates_committed))
for (suffix, value, n) in CLAMP_CASES:
    add_check("cached-queries.count=" + suffix,
              make_clamp_check("/cached-queries", "count", value, n, None))


@check("queries.random-ids")
def _(ctx):
    rows = world_list(get(ctx, "/queries?queries=20").body, 20, "GET /queries?queries=20")
    expect(len({i for (i, _) in rows}) > 1, "20 queries returned one id: %s" % short(rows))


@check("updates.changes-exactly-the-returned-rows")
def _(ctx):
    before = world_table(ctx)
    rows = world_list(get(ctx, "/updates?queries=500").body, 500, "GET /updates?queries=500")
    after = world_table(ctx)
    last = {}
    for (i, rn) in rows:
        last[i] = rn
    expect_eq(len(after), 10000, "World rows after the update")
    untouched = [i for i in after if i not in last and after[i] != before[i]]
    expect(not untouched, "rows not in the response changed: ids %s" % short(untouched[:20]))
    wrong = [(i, rn, after[i]) for (i, rn) in last.items() if after[i] != rn]
    expect(not wrong, "stored values differ from the response (id, returned, stored): %s"
           % short(wrong[:20]))
    changed = sum(1 for i in last if after[i] != before[i])
    # Each row keeps its old value with probability 1/10000 only.
    expect(changed >= len(last) - 5, "only %d of %d updated rows changed value"
           % (changed, len(last)))


@check("cached-queries.values-in-range")
def _(ctx):
    rows = world_list(get(ctx, "/cached-queries?count=100").body, 100,
                      "GET /cached-queries?count=100")
    expect(len({i for (i, _) in rows}) > 1, "100 cached queries returned one id")


@check("fortunes")
def _(ctx):
    for _k in range(2):     # the extra fortune must not accumulate across requests
        resp = get(ctx, "/fortunes", ctype=HTML_CT)
        if resp.body != FORTUNES_BODY:
            at = first_diff(resp.body, FORTUNES_BODY)
            fail("body differs from the expected %d bytes (got %d bytes) from byte %d:\n"
                 "  expected ...%r\n  got      ...%r"
                 % (len(FORTUNES_BODY), len(resp.body), at,
                    FORTUNES_BODY[max(0, at - 40):at + 80], resp.body[max(0, at - 40):at + 80]))
    expect_eq(ctx.query("SELECT id, message FROM Fortune ORDER BY id"), FORTUNES,
              "Fortune rows after /fortunes (the extra fortune is never stored)")


# TechEmpower's statement counts (tfb-requirements.md 4.3: the verifier's verify_queries_count,
# run with siege -c 512 -r 1). Its totals come from pg_stat_statements, for the statements that
# name the table as a word; here they are taken for the server's database alone, and exactly:
# one SELECT per row read, one batched UPDATE per /updates request (which TechEmpower allows),
# one SELECT per /fortunes, and nothing else on those tables.
TFB_REQUESTS = 128
TFB_CLIENTS = 16


def tfb_counts(ctx, target, table, check_body):
    """Sends TFB_REQUESTS GET target over TFB_CLIENTS keep-alive connections; returns the
    difference of the database's statement totals, and the answers checked by check_body."""
    admin = pg.server()
    expect(admin is not None, "no PostgreSQL cluster to read pg_stat_statements from")
    dbname = pg.dbname_of(ctx.db_path)
    try:
        before = pg.statement_totals(admin, dbname, table)
    except pg.PgError as e:
        fail("pg_stat_statements is not readable (the cluster must preload it and have the "
             "extension in its database postgres): %s" % e)
    answers = []

    def client(k):
        with ctx.connect() as conn:
            for _r in range(TFB_REQUESTS // TFB_CLIENTS):
                resp = conn.request("GET", target)
                ctype = HTML_CT if table == "fortune" else JSON_CT
                check_response(ctx, resp, "GET", target, 200, ctype)
                answers.append(check_body(resp.body))
    errors = run_threads(TFB_CLIENTS, client)
    expect(not errors, "%d clients failed:\n%s" % (len(errors), "\n".join(errors[:5])))
    after = pg.statement_totals(admin, dbname, table)
    return ({k: after[k] - before[k] for k in after}, answers)


def expect_counts(got, want, target):
    for (k, v) in want.items():
        expect_eq(got[k], v, "%d x GET %s: %s on its table (pg_stat_statements; TechEmpower "
                             "requires at least the expected number, warns above 5%% more)"
                  % (TFB_REQUESTS, target, k.replace("_", " ")))


@check("tfb.statements.db")
def _(ctx):
    (got, _) = tfb_counts(ctx, "/db", "world", lambda b: world_object(b, "GET /db"))
    expect_counts(got, {"calls": TFB_REQUESTS, "select_rows": TFB_REQUESTS}, "/db")


@check("tfb.statements.queries")
def _(ctx):
    target = "/queries?queries=20"
    (got, _) = tfb_counts(ctx, target, "world", lambda b: world_list(b, 20, target))
    expect_counts(got, {"calls": 20 * TFB_REQUESTS, "select_rows": 20 * TFB_REQUESTS,
                        "update_rows": 0}, target)


@check("tfb.statements.updates")
def _(ctx):
    target = "/updates?queries=20"
    (got, answers) = tfb_counts(ctx, target, "world", lambda b: world_list(b, 20, target))
    # Ids may repeat within a request: each distinct id is one updated row.
    updated = sum(len({i for (i, _) in rows}) for rows in answers)
    n = TFB_REQUESTS
    # 20 SELECTs and one UPDATE per request; TechEmpower's "rows read" also counts the rows of
    # the UPDATE, whose text has a SELECT (of the two arrays) in it.
    expect_counts(got, {"calls": 21 * n, "update_rows": updated,
                        "select_rows": 20 * n + updated}, target)
    expect(updated * 1.05 >= 20 * n, "updated rows %d: TechEmpower's bulk rule needs 1.05 x "
           "updated >= %d" % (updated, 20 * n))


@check("tfb.statements.fortunes")
def _(ctx):
    def body(b):
        expect_eq(b, FORTUNES_BODY, "GET /fortunes body")
    (got, _) = tfb_counts(ctx, "/fortunes", "fortune", body)
    expect_counts(got, {"calls": TFB_REQUESTS, "select_rows": 12 * TFB_REQUESTS}, "/fortunes")


def threads_of(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("Threads:"):
                return int(line.split()[1])
    return None


# The models whose drivers wait on the socket run PostgreSQL on no thread of its own: evloop on
# its loop (node-postgres has no pool thread), coro by parking goroutines on the netpoller (pgx
# and lib/pq: a few Ms, not one per query in flight, as a blocking sqlite call makes).
PG_EXTRA_THREADS = {"evloop": 0, "coro": 3}


@check("postgresql.threads")
def _(ctx):
    srv = ctx.server
    if srv.pid is None:
        harness.skip("counts the server's threads in /proc: a server this suite started")
    get(ctx, "/json")
    before = threads_of(srv.pid)
    peak = [before]
    done = threading.Event()

    def sample():
        while not done.is_set():
            n = threads_of(srv.pid)
            peak[0] = max(peak[0], n or 0)
            done.wait(0.005)

    def client(k):
        with ctx.connect() as conn:
            for _r in range(25):
                for target in ("/db", "/queries?queries=5", "/updates?queries=5", "/fortunes"):
                    resp = conn.request("GET", target)
                    check_response(ctx, resp, "GET", target, 200,
                                   HTML_CT if target == "/fortunes" else JSON_CT)
    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        errors = run_threads(8, client)
    finally:
        done.set()
        sampler.join()
    expect(not errors, "%d clients failed:\n%s" % (len(errors), "\n".join(errors[:5])))
    extra = PG_EXTRA_THREADS.get(ctx.model)
    print("#   %s: %d threads before, at most %d during 800 database requests over 8 "
          "connections" % (ctx.model, before, peak[0]), flush=True)
    if extra is not None:
        expect(peak[0] - before <= extra, "%s started %d threads while serving PostgreSQL "
               "queries (at most %d: its driver waits on the socket, not on a thread)"
               % (ctx.model, peak[0] - before, extra))


def first_diff(a, b):
    for k in range(min(len(a), len(b))):
        if a[k] != b[k]:
            return k
    return min(len(a), len(b))


# =============================================================================================
# /cpu, /io, /fanout
# =============================================================================================

MASK64 = (1 << 64) - 1


def cpu_digest(n):
    x = 0x243F6A8885A308D3
    for i in range(n):
        x = (x + i) & MASK64
        for _r in range(64):
            x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & MASK64
    return format(x, "016x")


def make_cpu_check(n):
    def run(ctx):
        resp = get(ctx, "/cpu?iterations=%d" % n)
        want = '{"iterations":%d,"digest":"%s"}' % (n, cpu_digest(n))
        expect_eq(resp.body, want.encode(), "body")
    return run


for _n in (0, 1, 2, 1000, 12345):
    add_check("cpu.iterations=%d" % _n, make_cpu_check(_n))


@check("cpu.iterations=10000000")
def _(ctx):
    resp = get(ctx, "/cpu?iterations=10000000")
    expect(re.fullmatch(rb'\{"iterations":10000000,"digest":"[0-9a-f]{16}"\}', resp.body),
           "body %s" % short(resp.body))


def make_bad_param_check(target):
    def run(ctx):
        fetch_error(ctx, "GET", target, 400)
    return run


# (check name, target) pairs that must be 400
BAD_PARAMS = [
    ("cpu.bad.missing", "/cpu"),
    ("cpu.bad.empty", "/cpu?iterations="),
    ("cpu.bad.-1", "/cpu?iterations=-1"),
    ("cpu.bad.abc", "/cpu?iterations=abc"),
    ("cpu.bad.10000001", "/cpu?iterations=10000001"),
    ("cpu.bad.1e3", "/cpu?iterations=1e3"),
    ("cpu.bad.1.5", "/cpu?iterations=1.5"),
    ("cpu.bad.space5", "/cpu?iterations=%205"),
    ("cpu.bad.plus5", "/cpu?iterations=+5"),
    ("cpu.bad.encoded-plus5", "/cpu?iterations=%2B5"),
    ("cpu.bad.5x", "/cpu?iterations=5x"),
    ("cpu.bad.2^64+5", "/cpu?iterations=18446744073709551621"),
    ("cpu.bad.wrong-name", "/cpu?iteration=5"),
    ("io.bad.missing", "/io"),
    ("io.bad.empty", "/io?ms="),
    ("io.bad.-1", "/io?ms=-1"),
    ("io.bad.abc", "/io?ms=abc"),
    ("io.bad.10001", "/io?ms=10001"),
    ("io.bad.1.5", "/io?ms=1.5"),
    ("io.bad.plus5", "/io?ms=+5"),
    ("io.bad.2^64", "/io?ms=18446744073709551616"),
    ("fanout.bad.calls=0", "/fanout?calls=0&ms=1"),
    ("fanout.bad.calls=1001", "/fanout?calls=1001&ms=1"),
    ("fanout.bad.calls=abc", "/fanout?calls=abc&ms=1"),
    ("fanout.bad.calls=-1", "/fanout?calls=-1&ms=1"),
    ("fanout.bad.calls-missing", "/fanout?ms=1"),
    ("fanout.bad.ms-missing", "/fanout?calls=2"),
    ("fanout.bad.both-missing", "/fanout"),
    ("fanout.bad.ms=10001", "/fanout?calls=2&ms=10001"),
    ("fanout.bad.ms=-1", "/fanout?calls=2&ms=-1"),
    ("fanout.bad.ms=empty", "/fanout?calls=2&ms="),
]


@check("io.ms=0")
def _(ctx):
    expect_eq(get(ctx, "/io?ms=0").body, b'{"waited_ms":0}', "body")


@check("io.ms=25")
def _(ctx):
    expect_eq(get(ctx, "/io?ms=25").body, b'{"waited_ms":25}', "body")


@check("fanout.calls=1,ms=0")
def _(ctx):
    expect_eq(get(ctx, "/fanout?calls=1&ms=0").body, b'{"calls":1,"ms":0}', "body")


@check("fanout.calls=8,ms=20")
def _(ctx):
    expect_eq(get(ctx, "/fanout?ms=20&calls=8").body, b'{"calls":8,"ms":20}', "body")


@check("fanout.calls=1000,ms=1")
def _(ctx):
    expect_eq(get(ctx, "/fanout?calls=1000&ms=1").body, b'{"calls":1000,"ms":1}', "body")


for (_name, _target) in BAD_PARAMS:
    add_check(_name, make_bad_param_check(_target))


# =============================================================================================
# Items
# =============================================================================================

def item_json(i, name, qty):
    return '{"id":%d,"name":%s,"qty":%d}' % (i, json.dumps(name, ensure_ascii=False), qty)


def items_state(ctx):
    """Everything a rejected request must leave untouched."""
    rows = ctx.query("SELECT id, name, qty FROM items ORDER BY id")
    if ctx.pg:
        seq = ctx.query("SELECT last_value, is_called FROM items_id_seq")
    else:
        seq = ctx.query("SELECT seq FROM sqlite_sequence WHERE name='items'")
    return (rows, seq, table_names(ctx))


def expect_unchanged(ctx, before, what):
    after = items_state(ctx)
    if after != before:
        (rb, sb, tb) = before
        (ra, sa, ta) = after
        fail("%s changed stored data: items rows %d -> %d, sequence %s -> %s, tables %s -> %s; "
             "new/changed rows %s" % (what, len(rb), len(ra), sb, sa, tb, ta,
                                      short([r for r in ra if r not in rb][:5])))


def check_item_body(resp, what, name=None, qty=None, item_id=None):
    obj = parse_json(resp.body, what)
    expect_keys(obj, ["id", "name", "qty"], what)
    expect(is_int(obj["id"]) and obj["id"] >= 1, "%s: bad id in %s" % (what, short(resp.body)))
    expect(is_int(obj["qty"]), "%s: qty is not an integer in %s" % (what, short(resp.body)))
    if item_id is not None:
        expect_eq(obj["id"], item_id, what + ": id")
    if name is not None:
        expect_eq(obj["name"], name, what + ": name")
    if qty is not None:
        expect_eq(obj["qty"], qty, what + ": qty")
    return obj


def create_item(ctx, name="apple", qty=3, body=None, headers=None, srv=None):
    """POST /items and check 201, Location, body and stored row. Returns (id, body bytes)."""
    if body is None:
        body = json.dumps({"name": name, "qty": qty}, ensure_ascii=False).encode("utf-8")
    resp = fetch(ctx, "POST", "/items", headers or JSON_HEADERS, body, 201, JSON_CT, srv)
    obj = check_item_body(resp, "POST /items", name, qty)
    i = obj["id"]
    expect_eq(resp.header("Location"), "/items/%d" % i, "Location header")
    if name.isascii() and name.isprintable() and '"' not in name and "\\" not in name:
        expect_eq(resp.body, item_json(i, name, qty).encode(), "POST /items body bytes")
    stored = ctx.query("SELECT name, qty FROM items WHERE id=?", (i,), srv)
    expect_eq(stored, [(name, qty)], "stored row of item %d" % i)
    return (i, resp.body)


@check("items.create")
def _(ctx):
    (i, body) = create_item(ctx, "apple", 3)
    resp = get(ctx, "/items/%d" % i)
    expect_eq(resp.body, body, "GET /items/%d body (same bytes as the POST answer)" % i)


@check("items.create.ids-increase")
def _(ctx):
    (a, _) = create_item(ctx, "first", 1)
    (b, _) = create_item(ctx, "second", 2)
    expect(b > a, "second item id %d is not above first %d" % (b, a))


@check("items.update")
def _(ctx):
    (i, _) = create_item(ctx, "pear", 1)
    body = b'{"name":"pear tree","qty":7}'
    resp = fetch(ctx, "PUT", "/items/%d" % i, JSON_HEADERS, body, 200, JSON_CT)
    expect_eq(resp.body, item_json(i, "pear tree", 7).encode(), "PUT body")
    expect_eq(get(ctx, "/items/%d" % i).body, resp.body, "GET after PUT")
    expect_eq(ctx.query("SELECT name, qty FROM items WHERE id=?", (i,)), [("pear tree", 7)],
              "stored row after PUT")


@check("items.update.key-order-free")
def _(ctx):
    (i, _) = create_item(ctx, "plum", 1)
    resp = fetch(ctx, "PUT", "/items/%d" % i, JSON_HEADERS, b'{"qty":0,"name":"plums"}', 200,
                 JSON_CT)
    expect_eq(resp.body, item_json(i, "plums", 0).encode(), "PUT body")


@check("items.delete")
def _(ctx):
    (i, _) = create_item(ctx, "doomed", 1)
    target = "/items/%d" % i
    with ctx.connect() as conn:
        resp = conn.request("DELETE", target)
        check_response(ctx, resp, "DELETE", target, 204)
        expect_eq(resp.body, b"", "204 body")
        if not resp.has_token("Connection", "close"):
            # The 204 carried no body and no Content-Length; the connection must still be
            # in sync for the next request.
            resp2 = conn.request("GET", "/json")
            check_response(ctx, resp2, "GET", "/json after a 204", 200, JSON_CT)
            expect_eq(resp2.body, b'{"message":"Hello, World!"}', "body after a 204")
    expect_eq(ctx.query("SELECT count(*) FROM items WHERE id=?", (i,))[0][0], 0,
              "rows left after DELETE")
    fetch_error(ctx, "GET", target, 404)
    fetch_error(ctx, "DELETE", target, 404)
    fetch_error(ctx, "PUT", target, 404, JSON_HEADERS, b'{"name":"back","qty":1}')
    expect_eq(ctx.query("SELECT count(*) FROM items WHERE id=?", (i,))[0][0], 0,
              "rows after PUT on a deleted item (PUT must not create)")


@check("items.missing")
def _(ctx):
    before = items_state(ctx)
    for method in ("GET", "DELETE"):
        fetch_error(ctx, method, "/items/%d" % INT64_MAX, 404)
    fetch_error(ctx, "PUT", "/items/%d" % INT64_MAX, 404, JSON_HEADERS, b'{"name":"x","qty":1}')
    expect_unchanged(ctx, before, "requests on a missing item")


@check("items.delete-with-body")
def _(ctx):
    (i, _) = create_item(ctx, "keep me", 1)
    before = items_state(ctx)
    fetch_error(ctx, "DELETE", "/items/%d" % i, 400, JSON_HEADERS, b'{"a":1}')
    expect_unchanged(ctx, before, "DELETE with a body")


@check("items.qty-zero")
def _(ctx):
    create_item(ctx, "none left", 0)


@check("items.qty-int64-max")
def _(ctx):
    (i, body) = create_item(ctx, "lots", INT64_MAX)
    expect(b'"qty":9223372036854775807}' in body, "body %s" % short(body))
    expect_eq(get(ctx, "/items/%d" % i).body, body, "GET body")


@check("items.content-type-with-charset")
def _(ctx):
    create_item(ctx, "charset", 1, headers=[("Content-Type", "application/json; charset=utf-8")])
    create_item(ctx, "charset2", 2, headers=[("Content-Type", "application/json;charset=UTF-8")])


@check("items.trailing-whitespace-in-body")
def _(ctx):
    create_item(ctx, "ws", 4, body=b' {"name" : "ws", "qty" : 4}\r\n ')


@check("items.body-of-exactly-max-body")
def _(ctx):
    core = b'{"name":"big","qty":5}'
    body = core[:-1] + b" " * (MAX_BODY - len(core)) + b"}"
    expect_eq(len(body), MAX_BODY, "suite: body size")
    create_item(ctx, "big", 5, body=body)


ROUND_TRIP_NAMES = [
    ("unicode", "h\u00e9llo w\u00f6rld \u2014 \u65e5\u672c\u8a9e \u2713"),
    ("emoji", "party \U0001F389 time \U0001F600"),
    ("quotes", 'say "hi" and \'bye\''),
    ("backslash", "back\\slash \\n \\u0041 \\"),
    ("control-chars", "tab\there\nnew line\r\x01\x1f\x7f"),
    ("html", "<script>alert('x')</script> & &amp; <b>"),
    ("sql-injection", "'); DROP TABLE items;--"),
    ("sql-injection-2", "x' OR '1'='1\"; DELETE FROM items; --"),
    ("printf-format", "100% %s %d %n %x %%"),
    ("slashes", "a/b\\/c//"),
    ("space", " "),
    ("line-separators", "\u2028\u2029"),
    ("bom", "\ufeffbom"),
    ("one-char", "x"),
    ("200-ascii", "a" * 200),
    ("200-e-acute", "\u00e9" * 200),
    ("200-emoji", "\U0001F600" * 200),
    ("200-cjk", "\u65e5" * 200),
]


def make_round_trip_check(name, ascii_escapes):
    def run(ctx):
        body = json.dumps({"name": name, "qty": 42}, ensure_ascii=ascii_escapes).encode("utf-8")
        (i, post_body) = create_item(ctx, name, 42, body=body)
        resp = get(ctx, "/items/%d" % i)
        expect_eq(resp.body, post_body, "GET body (same bytes as the POST answer)")
        check_item_body(resp, "GET /items/%d" % i, name, 42, i)
        tables = {t.lower() for t in table_names(ctx)}
        expect({"world", "fortune", "items"} <= tables, "tables after the request: %s" % tables)
        # and again through PUT
        new_name = name[::-1] if len(name) > 1 else name + "!"
        body = json.dumps({"name": new_name, "qty": 43}, ensure_ascii=ascii_escapes).encode()
        resp = fetch(ctx, "PUT", "/items/%d" % i, JSON_HEADERS, body, 200, JSON_CT)
        check_item_body(resp, "PUT /items/%d" % i, new_name, 43, i)
        expect_eq(ctx.query("SELECT name, qty FROM items WHERE id=?", (i,)), [(new_name, 43)],
                  "stored row after PUT")
    return run


for (_suffix, _name) in ROUND_TRIP_NAMES:
    add_check("items.round-trip.%s" % _suffix, make_round_trip_check(_name, False))
add_check("items.round-trip.unicode-as-escapes",
          make_round_trip_check(ROUND_TRIP_NAMES[0][1], True))
add_check("items.round-trip.emoji-as-surrogate-escapes",
          make_round_trip_check(ROUND_TRIP_NAMES[1][1], True))


INVALID_BODIES = [
    ("malformed", b'{"name":"a",,"qty":1}'),
    ("unquoted-key", b'{name:"a","qty":1}'),
    ("single-quotes", b"{'name':'a','qty':1}"),
    ("truncated", b'{"name":"a","qty":'),
    ("truncated-string", b'{"name":"a'),
    ("array", b"[]"),
    ("array-of-object", b'[{"name":"a","qty":1}]'),
    ("string", b'"x"'),
    ("null", b"null"),
    ("number", b"1"),
    ("empty-object", b"{}"),
    ("empty-body", b""),
    ("whitespace-body", b"   "),
    ("missing-name", b'{"qty":1}'),
    ("missing-qty", b'{"name":"a"}'),
    ("qty-negative", b'{"name":"a","qty":-1}'),
    ("qty-float", b'{"name":"a","qty":1.5}'),
    ("qty-string", b'{"name":"a","qty":"1"}'),
    ("qty-bool", b'{"name":"a","qty":true}'),
    ("qty-null", b'{"name":"a","qty":null}'),
    ("qty-1e999", b'{"name":"a","qty":1e999}'),
    ("qty-huge", b'{"name":"a","qty":99999999999999999999}'),
    ("qty-int64-max+1", b'{"name":"a","qty":9223372036854775808}'),
    ("qty-array", b'{"name":"a","qty":[1]}'),
    ("name-number", b'{"name":1,"qty":1}'),
    ("name-null", b'{"name":null,"qty":1}'),
    ("name-bool", b'{"name":false,"qty":1}'),
    ("name-array", b'{"name":["a"],"qty":1}'),
    ("name-empty", b'{"name":"","qty":1}'),
    ("name-nul", b'{"name":"a\\u0000b","qty":1}'),
    ("name-201-ascii", b'{"name":"' + b"a" * 201 + b'","qty":1}'),
    ("name-201-e-acute", ('{"name":"%s","qty":1}' % ("\u00e9" * 201)).encode("utf-8")),
    ("name-201-emoji", ('{"name":"%s","qty":1}' % ("\U0001F600" * 201)).encode("utf-8")),
    ("name-lone-surrogate", b'{"name":"a\\ud800b","qty":1}'),
    ("name-invalid-utf8", b'{"name":"\xff\xfe","qty":1}'),
    ("name-overlong-utf8", b'{"name":"\xc0\xaf","qty":1}'),
    ("name-truncated-utf8", b'{"name":"\xe6\x97","qty":1}'),
    ("name-bad-escape", b'{"name":"a\\qb","qty":1}'),
    ("name-raw-newline", b'{"name":"a\nb","qty":1}'),
    ("unknown-key", b'{"name":"a","qty":1,"colour":"red"}'),
    ("id-key", b'{"id":1,"name":"a","qty":1}'),
    ("duplicate-name", b'{"name":"a","name":"b","qty":1}'),
    ("duplicate-qty", b'{"name":"a","qty":1,"qty":2}'),
    ("nested", b'{"name":{"a":{"b":1}},"qty":1}'),
    ("nested-extra", b'{"name":"a","qty":1,"x":{"y":[1]}}'),
    ("trailing-garbage", b'{"name":"a","qty":1}x'),
    ("trailing-comma", b'{"name":"a","qty":1,}'),
    ("two-objects", b'{"name":"a","qty":1}{"name":"b","qty":2}'),
    ("nan", b'{"name":"a","qty":NaN}'),
]


def put_target(ctx):
    """One item that the PUT-rejection checks try (and must fail) to modify."""
    if getattr(ctx, "_put_target", None) is None:
        ctx._put_target = create_item(ctx, "unchanged", 11)
    return ctx._put_target


def make_invalid_body_check(method, body):
    def run(ctx):
        if method == "PUT":
            (i, item_body) = put_target(ctx)
            target = "/items/%d" % i
        else:
            target = "/items"
        before = items_state(ctx)
        fetch_error(ctx, method, target, 400, JSON_HEADERS, body)
        expect_unchanged(ctx, before, "%s %s with an invalid body" % (method, target))
        if method == "PUT":
            expect_eq(get(ctx, target).body, item_body, "item after a rejected PUT")
    return run


for (_suffix, _body) in INVALID_BODIES:
    add_check("items.post.invalid.%s" % _suffix, make_invalid_body_check("POST", _body))
for (_suffix, _body) in INVALID_BODIES:
    add_check("items.put.invalid.%s" % _suffix, make_invalid_body_check("PUT", _body))


def make_media_type_check(method, headers):
    def run(ctx):
        if method == "PUT":
            target = "/items/%d" % put_target(ctx)[0]
        else:
            target = "/items"
        before = items_state(ctx)
        fetch_error(ctx, method, target, 415, headers, b'{"name":"a","qty":1}')
        expect_unchanged(ctx, before, "%s %s with the wrong media type" % (method, target))
    return run


for (_suffix, _headers) in [("text-plain", [("Content-Type", "text/plain")]),
                            ("form", [("Content-Type", "application/x-www-form-urlencoded")]),
                            ("json-suffix", [("Content-Type", "application/jsonp")]),
                            ("missing", [])]:
    add_check("items.post.content-type.%s" % _suffix, make_media_type_check("POST", _headers))
    add_check("items.put.content-type.%s" % _suffix, make_media_type_check("PUT", _headers))


@check("items.body-too-large")
def _(ctx):
    head = b'{"name":"'
    tail = b'","qty":1}'
    body = head + b"a" * (MAX_BODY + 1 - len(head) - len(tail)) + tail
    expect_eq(len(body), MAX_BODY + 1, "suite: body size")
    before = items_state(ctx)
    req = httpraw.build_request("POST", "/items", JSON_HEADERS, body, host="%s:%d" %
                                (ctx.host, ctx.port))
    with ctx.connect() as conn:
        try:
            conn.send(req)
        except (BrokenPipeError, ConnectionResetError):
            pass        # the server may answer 413 and close before reading everything
        resp = read_413(conn)
    expect_error(ctx, resp, 413, "POST /items with %d bytes" % len(body))
    expect_unchanged(ctx, before, "an oversized POST")


def read_413(conn, method="POST"):
    try:
        return conn.read_response(method)
    except ConnectionResetError:
        fail("connection reset without a response (expected 413)")
    except httpraw.ConnectionClosed:
        fail("connection closed without a response (expected 413)")


@check("items.put-body-too-large")
def _(ctx):
    (i, item_body) = put_target(ctx)
    head = b'{"name":"'
    tail = b'","qty":1}'
    body = head + b"b" * (MAX_BODY + 1 - len(head) - len(tail)) + tail
    before = items_state(ctx)
    req = httpraw.build_request("PUT", "/items/%d" % i, JSON_HEADERS, body,
                                host="%s:%d" % (ctx.host, ctx.port))
    with ctx.connect() as conn:
        try:
            conn.send(req)
        except (BrokenPipeError, ConnectionResetError):
            pass
        resp = read_413(conn, "PUT")
    expect_error(ctx, resp, 413, "PUT /items/%d with %d bytes" % (i, len(body)))
    expect_unchanged(ctx, before, "an oversized PUT")
    expect_eq(get(ctx, "/items/%d" % i).body, item_body, "item after a rejected PUT")


@check("items.body-declared-too-large")
def _(ctx):
    # Content-Length alone says the body is too large: the answer must not wait for it.
    before = items_state(ctx)
    with ctx.connect() as conn:
        conn.send_request("POST", "/items", JSON_HEADERS + [("Content-Length", "1000000")])
        conn.send(b'{"name":"a",')
        resp = read_413(conn)
    expect_error(ctx, resp, 413, "POST /items with Content-Length: 1000000")
    expect_unchanged(ctx, before, "an oversized POST")


def upload_too_large(ctx, size, concurrent):
    """One POST with a declared body of `size` bytes, sent in full. concurrent: written by
    another thread while this one reads, and the client gives up at the first write error
    (Node's fetch, Go's net/http); else sent whole before reading (Python's http.client).
    Returns None, or why the client would not have read the 413."""
    import socket
    import threading
    sock = socket.create_connection((ctx.host, ctx.port), timeout=30)
    head = ("POST /items HTTP/1.1\r\nHost: %s:%d\r\nContent-Type: application/json\r\n"
            "Content-Length: %d\r\n\r\n" % (ctx.host, ctx.port, size)).encode()
    chunk = b"x" * 65536
    answered = threading.Event()
    failed = []

    def write():
        try:
            sock.sendall(head)
            left = size
            while left > 0:
                n = min(left, len(chunk))
                sock.sendall(chunk[:n])
                left -= n
        except OSError as e:
            if not answered.is_set():
                failed.append("a write failed before the answer was read: %s" % e)

    try:
        writer = threading.Thread(target=write, daemon=True)
        writer.start()
        if not concurrent:
            writer.join()
            if failed:
                return failed[0]
        data = b""
        while b"\r\n\r\n" not in data or len(data) < data.index(b"\r\n\r\n") + 4 + 40:
            got = sock.recv(4096)
            if not got:
                break
            data += got
        if failed:      # the writer gave up first: a real client would not read on
            return failed[0]
        answered.set()
        if not data.startswith(b"HTTP/1.1 413 ") or b'"error"' not in data:
            return "expected a 413 with a JSON error, got %r" % data[:200]
        return None
    except OSError as e:
        return "reading the answer failed: %s" % e
    finally:
        answered.set()
        sock.close()


def make_upload_check(size, concurrent, attempts):
    def run(ctx):
        before = items_state(ctx)
        for i in range(attempts):
            why = upload_too_large(ctx, size, concurrent)
            expect(why is None, "attempt %d of %d, %d-byte body: %s" % (i + 1, attempts, size, why))
        expect_unchanged(ctx, before, "oversized uploads")
    return run


# A refused upload closes in stages (linger.h), so that the client reads its 413.
for (_size, _concurrent) in ((2 << 20, True), (10 << 20, True), (2 << 20, False)):
    add_check("items.body-too-large.%s-%dmb" % ("writes-while-reading" if _concurrent
                                                else "sends-then-reads", _size >> 20),
              make_upload_check(_size, _concurrent, 20))


BAD_ITEM_PATHS = ["/items/abc", "/items/0", "/items/-1", "/items/99999999999999999999",
                  "/items/9223372036854775808", "/items/+1", "/items/1.5", "/items/1x",
                  "/items/0x10", "/items/", "/items/1/extra"]


@check("items.bad-path-ids")
def _(ctx):
    before = items_state(ctx)
    for path in BAD_ITEM_PATHS:
        fetch_error(ctx, "GET", path, 404)
    for path in ("/items/abc", "/items/0", "/items/99999999999999999999"):
        fetch_error(ctx, "DELETE", path, 404)
        fetch_error(ctx, "PUT", path, 404, JSON_HEADERS, b'{"name":"a","qty":1}')
    expect_unchanged(ctx, before, "requests on invalid item paths")


# -- listing ---------------------------------------------------------------------------------

def parse_page(resp, what):
    obj = parse_json(resp.body, what)
    expect_keys(obj, ["items", "next"], what)
    expect(isinstance(obj["items"], list), "%s: items is not an array" % what)
    for item in obj["items"]:
        expect_keys(item, ["id", "name", "qty"], what + " item")
    expect(obj["next"] is None or is_int(obj["next"]), "%s: next %s" % (what, short(obj["next"])))
    return ([(it["id"], it["name"], it["qty"]) for it in obj["items"]], obj["next"])


def page_bytes(rows, nxt):
    return ('{"items":[%s],"next":%s}' % (",".join(item_json(*r) for r in rows),
                                         "null" if nxt is None else nxt)).encode()


def walk(ctx, after, limit):
    """All pages from `after`; checks the page invariants. Returns [rows per page]."""
    pages = []
    while True:
        target = "/items?after=%d" % after if limit is None else \
            "/items?limit=%d&after=%d" % (limit, after)
        (rows, nxt) = parse_page(get(ctx, target), "GET " + target)
        pages.append(rows)
        ids = [r[0] for r in rows]
        expect(ids == sorted(ids) and len(set(ids)) == len(ids) and all(i > after for i in ids),
               "GET %s: ids %s are not ascending above %d" % (target, short(ids), after))
        expect(len(rows) <= (limit or 20), "GET %s: %d items" % (target, len(rows)))
        if nxt is None:
            return pages
        expect(rows and nxt == rows[-1][0],
               "GET %s: next %s is not the last id on the page" % (target, nxt))
        expect(len(rows) == (limit or 20), "GET %s: next is set on a short page" % target)
        expect(len(pages) < 10000, "pagination does not end")
        after = nxt


@check("items.list.pages")
def _(ctx):
    made = [create_item(ctx, "page-%d" % k, k)[0] for k in range(7)]
    expected = [(i, "page-%d" % k, k) for (k, i) in enumerate(made)]
    start = made[0] - 1
    # exact bytes: 3 + 3 + 1 items
    for (lo, hi, nxt) in ((0, 3, made[2]), (3, 6, made[5]), (6, 7, None)):
        after = start if lo == 0 else made[lo - 1]
        target = "/items?limit=3&after=%d" % after
        expect_eq(get(ctx, target).body, page_bytes(expected[lo:hi], nxt), "GET " + target)
    # the last page is full: next must still be null
    target = "/items?limit=7&after=%d" % start
    expect_eq(get(ctx, target).body, page_bytes(expected, None), "GET " + target)
    target = "/items?limit=6&after=%d" % made[0]
    expect_eq(get(ctx, target).body, page_bytes(expected[1:], None), "GET " + target)
    pages = walk(ctx, start, 2)
    expect_eq([r for p in pages for r in p], expected, "items seen walking with limit=2")
    expect_eq([len(p) for p in pages], [2, 2, 2, 1], "page sizes walking with limit=2")


@check("items.list.default-limit")
def _(ctx):
    made = [create_item(ctx, "d%d" % k, k)[0] for k in range(21)]
    target = "/items?after=%d" % (made[0] - 1)
    (rows, nxt) = parse_page(get(ctx, target), "GET " + target)
    expect_eq([r[0] for r in rows], made[:20], "GET %s ids" % target)
    expect_eq(nxt, made[19], "GET %s next" % target)
    target = "/items?after=%d" % made[19]
    expect_eq(get(ctx, target).body, page_bytes([(made[20], "d20", 20)], None), "GET " + target)


@check("items.list.matches-database")
def _(ctx):
    if not ctx.query("SELECT count(*) FROM items")[0][0]:
        create_item(ctx, "something", 1)
    stored = ctx.query("SELECT id, name, qty FROM items ORDER BY id")
    for limit in (None, 1, 7, 100):
        pages = walk(ctx, 0, limit)
        expect_eq([r for p in pages for r in p], stored, "all items walking with limit=%s" % limit)
    # no parameters at all: the first 20
    (rows, nxt) = parse_page(get(ctx, "/items"), "GET /items")
    expect_eq(rows, stored[:20], "GET /items")
    expect_eq(nxt, stored[19][0] if len(stored) > 20 else None, "GET /items next")


@check("items.list.past-the-end")
def _(ctx):
    for target in ("/items?after=%d" % INT64_MAX, "/items?limit=100&after=%d" % INT64_MAX):
        expect_eq(get(ctx, target).body, b'{"items":[],"next":null}', "GET " + target)


BAD_LISTINGS = ["limit=0", "limit=101", "limit=abc", "limit=-1", "limit=", "limit=1.5",
                "limit=+5", "limit=99999999999999999999", "after=abc", "after=-1", "after=",
                "after=9223372036854775808", "after=1.5", "limit=5&after=x"]

for _q in BAD_LISTINGS:
    add_check("items.list.bad.%s" % _q, make_bad_param_check("/items?" + _q))


@check("items.list.limit-bounds-accepted")
def _(ctx):
    for q in ("limit=1", "limit=100", "limit=100&after=0", "after=0"):
        parse_page(get(ctx, "/items?" + q), "GET /items?" + q)


# =============================================================================================
# Errors: 404, 405, body rules
# =============================================================================================

@check("errors.unknown-route")
def _(ctx):
    for path in ("/nope", "/", "/jsonx", "/json/extra", "/item", "/items/1/2", "/plaintext2"):
        fetch_error(ctx, "GET", path, 404)


def check_405(ctx, method, target, allow, body=None, headers=None):
    with ctx.connect() as conn:
        resp = conn.request(method, target, headers, body)
    expect_error(ctx, resp, 405, "%s %s" % (method, target))
    expect_eq(resp.header("Allow"), allow, "Allow header of %s %s" % (method, target))


FIXED_GET_ROUTES = ["/plaintext", "/json", "/db", "/queries", "/updates", "/fortunes",
                    "/cached-queries", "/cpu?iterations=1", "/io?ms=0", "/fanout?calls=1&ms=0",
                    "/health", "/stats", "/metrics"]


@check("errors.405.post-json")
def _(ctx):
    check_405(ctx, "POST", "/json", "GET, HEAD", b"", JSON_HEADERS)


@check("errors.405.fixed-routes")
def _(ctx):
    for target in FIXED_GET_ROUTES:
        check_405(ctx, "POST", target, "GET, HEAD", b"", JSON_HEADERS)
    for method in ("PUT", "DELETE", "PATCH", "OPTIONS"):
        check_405(ctx, method, "/plaintext", "GET, HEAD")


@check("errors.405.items-collection")
def _(ctx):
    before = items_state(ctx)
    check_405(ctx, "DELETE", "/items", "GET, HEAD, POST")
    check_405(ctx, "PUT", "/items", "GET, HEAD, POST", b'{"name":"a","qty":1}', JSON_HEADERS)
    check_405(ctx, "PATCH", "/items", "GET, HEAD, POST")
    expect_unchanged(ctx, before, "405s on /items")


@check("errors.405.item")
def _(ctx):
    (i, body) = create_item(ctx, "target of 405", 1)
    before = items_state(ctx)
    check_405(ctx, "POST", "/items/%d" % i, "GET, HEAD, PUT, DELETE", b'{"name":"a","qty":1}',
              JSON_HEADERS)
    check_405(ctx, "PATCH", "/items/%d" % i, "GET, HEAD, PUT, DELETE", b'{"qty":2}',
              JSON_HEADERS)
    check_405(ctx, "POST", "/items/1", "GET, HEAD, PUT, DELETE", b"", JSON_HEADERS)
    expect_unchanged(ctx, before, "405s on an item")
    expect_eq(get(ctx, "/items/%d" % i).body, body, "item after 405s")


@check("errors.get-with-body")
def _(ctx):
    with ctx.connect() as conn:
        conn.send(b"GET /json HTTP/1.1\r\nHost: %s:%d\r\nContent-Length: 5\r\n\r\nhello"
                  % (ctx.host.encode(), ctx.port))
        resp = conn.read_response("GET")
    expect_error(ctx, resp, 400, "GET /json with a 5-byte body")


@check("errors.get-items-with-body")
def _(ctx):
    before = items_state(ctx)
    fetch_error(ctx, "GET", "/items", 400, JSON_HEADERS, b'{"name":"a","qty":1}')
    fetch_error(ctx, "GET", "/db", 400, JSON_HEADERS, b"{}")
    expect_unchanged(ctx, before, "GET with a body")


# =============================================================================================
# Operations: /health, /stats, /metrics
# =============================================================================================

@check("health")
def _(ctx):
    expect_eq(get(ctx, "/health").body, ('{"status":"ok","model":"%s"}' % ctx.model).encode(),
              "body")


def stats_after(ctx, target, status):
    """GET target then GET /stats on the same connection. A pre-forked server keeps
    statistics per process, and a connection stays with the process that accepted it."""
    with ctx.connect() as conn:
        r = conn.request("GET", target)
        check_response(ctx, r, "GET", target, status)
        expect(not r.has_token("Connection", "close"),
               "GET %s answered with Connection: close" % target)
        r = conn.request("GET", "/stats")
    check_response(ctx, r, "GET", "/stats", 200, JSON_CT)
    return parse_json(r.body, "GET /stats")


@check("stats.shape")
def _(ctx):
    s = stats_after(ctx, "/json", 200)
    expect(isinstance(s, dict), "not an object")
    for key in ("model", "version", "pid", "uptime_s", "requests", "process", "gauges"):
        expect(key in s, "no key %r in %s" % (key, short(s)))
    expect_eq(s["model"], ctx.model, "model")
    expect_eq(s["version"], VERSION, "version")
    expect(is_int(s["pid"]) and s["pid"] > 0, "pid %s" % short(s["pid"]))
    expect(is_number(s["uptime_s"]) and s["uptime_s"] >= 0, "uptime_s %s" % short(s["uptime_s"]))
    r = s["requests"]
    expect(isinstance(r, dict), "requests is not an object: %s" % short(r))
    for key in ("total", "in_flight", "by_status"):
        expect(key in r, "no key requests.%s in %s" % (key, short(r)))
    expect(is_int(r["total"]) and r["total"] >= 1, "requests.total %s" % short(r["total"]))
    expect(is_int(r["in_flight"]) and r["in_flight"] >= 1,
           "requests.in_flight %s (the /stats request itself is in flight)" % short(r["in_flight"]))
    bs = r["by_status"]
    expect(isinstance(bs, dict) and bs, "requests.by_status %s" % short(bs))
    for (k, v) in bs.items():
        expect(re.fullmatch(r"[1-5][0-9][0-9]", k) and is_int(v) and v >= 0,
               "requests.by_status entry %r: %r" % (k, v))
    expect(bs.get("200", 0) >= 1, "by_status has no 200s after many 200 responses: %s" % short(bs))
    p = s["process"]
    expect(isinstance(p, dict), "process is not an object: %s" % short(p))
    for key in ("threads", "rss_bytes", "cpu_s"):
        expect(key in p, "no key process.%s in %s" % (key, short(p)))
    expect(is_int(p["threads"]) and p["threads"] >= 1, "process.threads %s" % short(p["threads"]))
    expect(is_int(p["rss_bytes"]) and p["rss_bytes"] > 0, "process.rss_bytes %s"
           % short(p["rss_bytes"]))
    expect(is_number(p["cpu_s"]) and p["cpu_s"] >= 0, "process.cpu_s %s" % short(p["cpu_s"]))
    g = s["gauges"]
    expect(isinstance(g, dict), "gauges is not an object: %s" % short(g))
    for (k, v) in g.items():
        # A labelled family (a run queue per P, a summary's quantiles) is an object of numbers
        # keyed by the label's values.
        values = v.values() if isinstance(v, dict) and v else [v]
        expect(all(is_number(x) for x in values),
               "gauge %r is not a number or an object of numbers: %s" % (k, short(v)))


@check("stats.counts-404")
def _(ctx):
    s = stats_after(ctx, "/no-such-route", 404)
    n = s.get("requests", {}).get("by_status", {}).get("404", 0)
    expect(is_int(n) and n >= 1, "requests.by_status[\"404\"] is %s after a 404" % short(n))


PROM_NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
PROM_LABEL = r'[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\[\\"n])*"'
PROM_VALUE = r"(?:[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?|NaN|[+-]Inf)"
PROM_SAMPLE = re.compile(r"^(%s)(\{(?:%s(?:,%s)*,?)?\})? (%s)(?: -?[0-9]+)?$"
                         % (PROM_NAME, PROM_LABEL, PROM_LABEL, PROM_VALUE))
PROM_TYPE = re.compile(r"^# TYPE (%s) (counter|gauge|histogram|summary|untyped)$" % PROM_NAME)


def get_metrics(ctx):
    with ctx.connect() as conn:     # the same process answers both (see stats_after)
        r = conn.request("GET", "/json")
        check_response(ctx, r, "GET", "/json", 200, JSON_CT)
        resp = conn.request("GET", "/metrics")
    check_response(ctx, resp, "GET", "/metrics", 200, METRICS_CT)
    try:
        return resp.body.decode("utf-8")
    except UnicodeDecodeError:
        fail("metrics are not UTF-8")


@check("metrics.format")
def _(ctx):
    text = get_metrics(ctx)
    expect(text.endswith("\n"), "the last line does not end with a newline")
    seen = set()
    typed = set()
    for line in text.split("\n")[:-1]:
        if line.startswith("#"):
            if line.startswith("# TYPE"):
                m = PROM_TYPE.match(line)
                expect(m, "bad TYPE line %r" % line)
                expect(m.group(1) not in typed, "second TYPE line for %s" % m.group(1))
                typed.add(m.group(1))
            continue
        if not line.strip():
            continue
        m = PROM_SAMPLE.match(line)
        expect(m, "line %r is not `name{labels} value`" % line)
        series = (m.group(1), m.group(2) or "")
        expect(series not in seen, "series %s%s appears twice" % series)
        seen.add(series)


@check("metrics.promtool")
def _(ctx):
    """Prometheus' own linter: base units, _total counters, labels instead of numbered names."""
    promtool = shutil.which("promtool")
    expect(promtool is not None, "promtool not found (Debian package prometheus)")
    text = get_metrics(ctx)
    r = subprocess.run([promtool, "check", "metrics"], input=text.encode(), capture_output=True,
                       timeout=60)
    problems = (r.stdout + r.stderr).decode("utf-8", "replace").strip()
    expect(r.returncode == 0 and not problems,
           "promtool check metrics exited %d: %s" % (r.returncode, problems))


@check("metrics.required-series")
def _(ctx):
    text = get_metrics(ctx)
    lines = text.split("\n")
    for prefix in ('triad_requests_total{status="200"} ', "triad_in_flight_requests ",
                   "triad_uptime_seconds "):
        expect(any(line.startswith(prefix) for line in lines),
               "no sample line starting with %r in:\n%s" % (prefix, text[:3000]))
    info = 'triad_info{model="%s",version="%s"} 1' % (ctx.model, VERSION)
    expect(info in lines, "no line %r in:\n%s" % (info, text[:3000]))


# =============================================================================================
# HTTP behaviour: keep-alive, pipelining, HEAD, HTTP/1.0
# =============================================================================================

def follow_up(ctx, conn, resp, what):
    """Unless the response announced a close, prove the connection is still in sync."""
    if resp.has_token("Connection", "close"):
        expect(conn.closed_by_peer(), "%s: Connection: close but the connection stayed open"
               % what)
        return
    r = conn.request("GET", "/plaintext")
    check_response(ctx, r, "GET", "/plaintext after " + what, 200, PLAIN_CT)
    expect_eq(r.body, b"Hello, World!", "GET /plaintext after %s: body" % what)


@check("http.keep-alive")
def _(ctx):
    (i, item_body) = create_item(ctx, "keep-alive", 5)
    steps = [("GET", "/plaintext", None, 200, PLAIN_CT, b"Hello, World!"),
             ("GET", "/json", None, 200, JSON_CT, b'{"message":"Hello, World!"}'),
             ("GET", "/db", None, 200, JSON_CT, None),
             ("GET", "/queries?queries=5", None, 200, JSON_CT, None),
             ("GET", "/fortunes", None, 200, HTML_CT, FORTUNES_BODY),
             ("GET", "/items/%d" % i, None, 200, JSON_CT, item_body),
             ("PUT", "/items/%d" % i, b'{"name":"kept","qty":6}', 200, JSON_CT,
              item_json(i, "kept", 6).encode()),
             ("GET", "/nope", None, 404, JSON_CT, None),
             ("GET", "/health", None, 200, JSON_CT, None),
             ("DELETE", "/items/%d" % i, None, 204, None, b""),
             ("GET", "/plaintext", None, 200, PLAIN_CT, b"Hello, World!")]
    with ctx.connect() as conn:
        for (k, (method, target, body, status, ctype, want)) in enumerate(steps):
            what = "request %d on one connection, %s %s" % (k + 1, method, target)
            try:
                resp = conn.request(method, target, JSON_HEADERS if body else None, body)
            except httpraw.ConnectionClosed:
                fail("%s: the server closed the connection" % what)
            check_response(ctx, resp, method, what, status, ctype)
            if want is not None:
                expect_eq(resp.body, want, what + ": body")
            expect(not resp.has_token("Connection", "close"),
                   "%s: response has Connection: close" % what)


def pipeline(ctx, requests, what):
    """Send all requests in one write, then read the answers in order."""
    data = b"".join(httpraw.build_request(m, t, h, b, host="%s:%d" % (ctx.host, ctx.port))
                    for (m, t, h, b) in requests)
    out = []
    with ctx.connect() as conn:
        conn.send(data)
        for (k, (m, t, _h, _b)) in enumerate(requests):
            try:
                out.append(conn.read_response(m))
            except httpraw.ConnectionClosed:
                fail("%s: connection closed after %d of %d responses" % (what, k, len(requests)))
        for (k, resp) in enumerate(out):
            expect(not resp.has_token("Connection", "close"),
                   "%s: response %d has Connection: close" % (what, k + 1))
        follow_up(ctx, conn, out[-1], what)
    return out


@check("http.pipeline.plaintext16")
def _(ctx):
    out = pipeline(ctx, [("GET", "/plaintext", None, None)] * 16, "16 pipelined /plaintext")
    for (k, resp) in enumerate(out):
        check_response(ctx, resp, "GET", "/plaintext (pipelined #%d)" % (k + 1), 200, PLAIN_CT)
        expect_eq(resp.body, b"Hello, World!", "pipelined response %d body" % (k + 1))


@check("http.pipeline.mixed16")
def _(ctx):
    (i, item_body) = create_item(ctx, "pipelined", 9)
    plan = [("/json", 200, JSON_CT, b'{"message":"Hello, World!"}'),
            ("/db", 200, JSON_CT, WORLD_OBJECT),
            ("/plaintext", 200, PLAIN_CT, b"Hello, World!"),
            ("/queries?queries=3", 200, JSON_CT, 3),
            ("/items/%d" % i, 200, JSON_CT, item_body),
            ("/fortunes", 200, HTML_CT, FORTUNES_BODY),
            ("/cached-queries?count=2", 200, JSON_CT, 2),
            ("/nope", 404, JSON_CT, None),
            ("/cpu?iterations=2", 200, JSON_CT,
             ('{"iterations":2,"digest":"%s"}' % cpu_digest(2)).encode()),
            ("/io?ms=1", 200, JSON_CT, b'{"waited_ms":1}'),
            ("/updates?queries=2", 200, JSON_CT, 2),
            ("/health", 200, JSON_CT, ('{"status":"ok","model":"%s"}' % ctx.model).encode()),
            ("/json", 200, JSON_CT, b'{"message":"Hello, World!"}'),
            ("/items/%d" % INT64_MAX, 404, JSON_CT, None),
            ("/db", 200, JSON_CT, WORLD_OBJECT),
            ("/plaintext", 200, PLAIN_CT, b"Hello, World!")]
    out = pipeline(ctx, [("GET", t, None, None) for (t, _s, _c, _w) in plan], "16 mixed")
    for (k, ((target, status, ctype, want), resp)) in enumerate(zip(plan, out)):
        what = "pipelined #%d GET %s" % (k + 1, target)
        check_response(ctx, resp, "GET", what, status, ctype)
        if isinstance(want, bytes):
            expect_eq(resp.body, want, what + ": body")
        elif isinstance(want, int):
            world_list(resp.body, want, what)
        elif want is WORLD_OBJECT:
            world_object(resp.body, what)


@check("http.pipeline.with-bodies")
def _(ctx):
    (i, _) = create_item(ctx, "pipelined-2", 1)
    item = "/items/%d" % i
    reqs = [("POST", "/items", JSON_HEADERS, b'{"name":"piped","qty":2}'),
            ("PUT", item, JSON_HEADERS, b'{"name":"piped-put","qty":3}'),
            ("GET", item, None, None),
            ("HEAD", "/json", None, None),
            ("DELETE", item, None, None),
            ("GET", item, None, None),
            ("GET", "/json", None, None)]
    out = pipeline(ctx, reqs, "pipelined requests with bodies")
    expect_eq([r.status for r in out], [201, 200, 200, 200, 204, 404, 200], "statuses")
    for (k, ((m, t, _h, _b), resp)) in enumerate(zip(reqs, out)):
        check_response(ctx, resp, m, "pipelined #%d %s %s" % (k + 1, m, t))
    obj = check_item_body(out[0], "pipelined POST", "piped", 2)
    expect_eq(ctx.query("SELECT name, qty FROM items WHERE id=?", (obj["id"],)),
              [("piped", 2)], "stored row of the pipelined POST")
    expect_eq(out[1].body, item_json(i, "piped-put", 3).encode(), "pipelined PUT body")
    expect_eq(out[2].body, out[1].body, "pipelined GET after PUT")
    expect_eq(out[3].body, b"", "pipelined HEAD body")
    expect_eq(out[6].body, b'{"message":"Hello, World!"}', "last body")


def make_head_check(target, fixed_length):
    def run(ctx):
        path = target
        if "{item}" in path:
            path = path.replace("{item}", str(create_item(ctx, "head", 1)[0]))
        with ctx.connect() as conn:
            g = conn.request("GET", path)
        check_response(ctx, g, "GET", path)
        with ctx.connect() as conn:
            h = conn.request("HEAD", path)
            check_response(ctx, h, "HEAD", path, g.status)
            expect_eq(h.body, b"", "HEAD body")
            gnames = sorted({n.lower() for (n, _) in g.headers})
            hnames = sorted({n.lower() for (n, _) in h.headers})
            expect_eq(hnames, gnames, "HEAD %s header names (GET's)" % path)
            for name in ("Server", "Content-Type", "Allow", "Location", "Connection"):
                expect_eq(h.header(name), g.header(name), "HEAD %s %s" % (path, name))
            if fixed_length:
                expect_eq(h.header("Content-Length"), str(len(g.body)),
                          "HEAD %s Content-Length (GET body length)" % path)
            follow_up(ctx, conn, h, "HEAD " + path)
    return run


for (_target, _fixed) in [("/plaintext", True), ("/json", True), ("/db", False),
                          ("/fortunes", True), ("/health", True), ("/queries?queries=3", False),
                          ("/cached-queries?count=2", False), ("/items/{item}", True),
                          ("/items?limit=2", False), ("/nope", True),
                          ("/cpu?iterations=3", True)]:
    add_check("http.head%s" % _target.replace("{item}", "ID"), make_head_check(_target, _fixed))


@check("http.head-pipelined")
def _(ctx):
    reqs = [("HEAD", "/plaintext", None, None), ("HEAD", "/json", None, None),
            ("HEAD", "/fortunes", None, None), ("GET", "/json", None, None)]
    out = pipeline(ctx, reqs, "pipelined HEADs")
    for (resp, length) in zip(out[:3], (13, 27, len(FORTUNES_BODY))):
        expect_eq(resp.header("Content-Length"), str(length), "HEAD Content-Length")
    expect_eq(out[3].body, b'{"message":"Hello, World!"}', "GET after pipelined HEADs")


@check("http.http10-without-host")
def _(ctx):
    with ctx.connect() as conn:
        conn.send(b"GET /json HTTP/1.0\r\n\r\n")
        resp = conn.read_response("GET")
        check_response(ctx, resp, "GET", "/json over HTTP/1.0", 200, JSON_CT)
        expect_eq(resp.body, b'{"message":"Hello, World!"}', "body")
        expect(resp.version in ("HTTP/1.0", "HTTP/1.1"), "version %s" % resp.version)
        if not resp.has_token("Connection", "keep-alive"):
            expect(conn.closed_by_peer(),
                   "HTTP/1.0 response without keep-alive but the connection stayed open")


@check("http.connection-close")
def _(ctx):
    with ctx.connect() as conn:
        resp = conn.request("GET", "/plaintext", [("Connection", "close")])
        check_response(ctx, resp, "GET", "/plaintext with Connection: close", 200, PLAIN_CT)
        expect_eq(resp.body, b"Hello, World!", "body")
        expect(conn.closed_by_peer(), "the server did not close after Connection: close")


@check("http.large-header")
def _(ctx):
    # The request line and headers must fit the per-connection buffer (--conn-buffer, 8 KiB by
    # default, shared with libmicrohttpd's own read and write buffers): 3 KB fits, 20 KB does
    # not and gets libmicrohttpd's 431.
    with ctx.connect() as conn:
        resp = conn.request("GET", "/json", [("Cookie", "c=" + "x" * 2000),
                                             ("X-Padding", "y" * 1000)])
    check_response(ctx, resp, "GET", "/json with 3 KB of headers", 200, JSON_CT)
    expect_eq(resp.body, b'{"message":"Hello, World!"}', "body")
    with ctx.connect() as conn:
        resp = conn.request("GET", "/json", [("Cookie", "c=" + "x" * 20000)])
    expect_eq(resp.status, 431, "GET /json with 20 KB of headers: status")


def send_in_pieces(conn, data, cuts):
    """Write data in pieces, pausing between them so the server sees separate reads. The
    pauses only encourage fragmentation; nothing is asserted about time."""
    last = 0
    for cut in list(cuts) + [len(data)]:
        conn.send(data[last:cut])
        last = cut
        time.sleep(0.05)


@check("http.fragmented-get")
def _(ctx):
    data = httpraw.build_request("GET", "/queries?queries=3", host="%s:%d" % (ctx.host, ctx.port))
    with ctx.connect() as conn:
        send_in_pieces(conn, data, [1, 5, 12, 20, len(data) - 3, len(data) - 1])
        resp = conn.read_response("GET")
        check_response(ctx, resp, "GET", "/queries?queries=3 sent in pieces", 200, JSON_CT)
        world_list(resp.body, 3, "GET /queries?queries=3 sent in pieces")
        follow_up(ctx, conn, resp, "a fragmented GET")


@check("http.fragmented-post")
def _(ctx):
    name = "split \u00e9\u00e9\u00e9 \U0001F600 across writes"
    body = json.dumps({"name": name, "qty": 12}, ensure_ascii=False).encode("utf-8")
    data = httpraw.build_request("POST", "/items", JSON_HEADERS, body,
                                 host="%s:%d" % (ctx.host, ctx.port))
    head_len = len(data) - len(body)
    e_acute = head_len + body.index("\u00e9".encode()) + 1     # inside a 2-byte character
    emoji = head_len + body.index("\U0001F600".encode()) + 2   # inside a 4-byte character
    with ctx.connect() as conn:
        send_in_pieces(conn, data, [head_len - 2, head_len, e_acute, emoji, len(data) - 1])
        resp = conn.read_response("POST")
        check_response(ctx, resp, "POST", "/items sent in pieces", 201, JSON_CT)
        obj = check_item_body(resp, "POST /items sent in pieces", name, 12)
        follow_up(ctx, conn, resp, "a fragmented POST")
    expect_eq(ctx.query("SELECT name, qty FROM items WHERE id=?", (obj["id"],)), [(name, 12)],
              "stored row")


@check("http.expect-100-continue")
def _(ctx):
    body = b'{"name":"expecting","qty":100}'
    with ctx.connect() as conn:
        conn.send_request("POST", "/items", JSON_HEADERS + [
            ("Content-Length", str(len(body))), ("Expect", "100-continue")])
        # The server must answer 100 (or a final status) before it gets the body.
        head = conn._read_until(b"\r\n\r\n", "a 100 Continue (the body is held back)")
        expect(re.match(rb"HTTP/1\.1 100 ", head), "expected 100 Continue, got %s" % short(head))
        conn.send(body)
        resp = conn.read_response("POST")
    check_response(ctx, resp, "POST", "/items after 100 Continue", 201, JSON_CT)
    check_item_body(resp, "POST /items after 100 Continue", "expecting", 100)


def chunked(body, size):
    out = b""
    for k in range(0, len(body), size):
        piece = body[k:k + size]
        out += b"%x\r\n%s\r\n" % (len(piece), piece)
    return out + b"0\r\n\r\n"


@check("items.chunked-body")
def _(ctx):
    body = b'{"name":"chunky \xc3\xa9","qty":8}'
    with ctx.connect() as conn:
        conn.send_request("POST", "/items", JSON_HEADERS + [("Transfer-Encoding", "chunked")])
        conn.send(chunked(body, 5))
        resp = conn.read_response("POST")
        check_response(ctx, resp, "POST", "/items with a chunked body", 201, JSON_CT)
        obj = check_item_body(resp, "POST /items with a chunked body", "chunky \u00e9", 8)
        follow_up(ctx, conn, resp, "a chunked POST")
    expect_eq(ctx.query("SELECT name, qty FROM items WHERE id=?", (obj["id"],)),
              [("chunky \u00e9", 8)], "stored row")


@check("items.chunked-body-too-large")
def _(ctx):
    core = b'{"name":"big","qty":5}'
    body = core[:-1] + b" " * (MAX_BODY + 1 - len(core)) + b"}"
    before = items_state(ctx)
    with ctx.connect() as conn:
        conn.send_request("POST", "/items", JSON_HEADERS + [("Transfer-Encoding", "chunked")])
        try:
            conn.send(chunked(body, 4096))
        except (BrokenPipeError, ConnectionResetError):
            pass        # the server may answer 413 and close before reading everything
        resp = read_413(conn)
    expect_error(ctx, resp, 413, "POST /items with a %d-byte chunked body" % len(body))
    expect_unchanged(ctx, before, "an oversized chunked POST")


# Requests answered with an error; afterwards the connection must be closed (announced with
# Connection: close) or still in sync, i.e. the server consumed exactly the request's bytes.
ERRORS_IN_SYNC = [
    ("404", "GET", "/nope", None, None, 404),
    ("405-with-body", "POST", "/json", JSON_HEADERS, b'{"a":1}', 405),
    ("400-bad-param", "GET", "/cpu?iterations=x", None, None, 400),
    ("400-invalid-json", "POST", "/items", JSON_HEADERS, b'{"name":"a","qty":1}x', 400),
    ("400-get-with-body", "GET", "/plaintext", None, b"hello", 400),
    ("415", "POST", "/items", [("Content-Type", "text/plain")], b'{"name":"a","qty":1}', 415),
    ("404-put-with-body", "PUT", "/items/%d" % INT64_MAX, JSON_HEADERS,
     b'{"name":"a","qty":1}', 404),
]


def make_in_sync_check(method, target, headers, body, status):
    def run(ctx):
        with ctx.connect() as conn:
            resp = conn.request(method, target, headers, body)
            expect_error(ctx, resp, status, "%s %s" % (method, target))
            follow_up(ctx, conn, resp, "a %d to %s %s" % (status, method, target))
    return run


for (_suffix, _m, _t, _h, _b, _st) in ERRORS_IN_SYNC:
    add_check("http.in-sync-after.%s" % _suffix, make_in_sync_check(_m, _t, _h, _b, _st))


def run_threads(n, fn):
    """Run fn(k) in n threads; return the first failures (strings)."""
    import threading
    errors = []

    def body(k):
        try:
            fn(k)
        except Exception as e:      # collected and reported by the check
            errors.append("client %d: %s: %s" % (k, type(e).__name__, e))
    threads = [threading.Thread(target=body, args=(k,)) for k in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return errors


@check("concurrency.mixed-clients")
def _(ctx):
    created = {}

    def client(k):
        mine = []
        with ctx.connect() as conn:
            for r in range(12):
                for (method, target, body, status) in (
                        ("GET", "/json", None, 200), ("GET", "/db", None, 200),
                        ("GET", "/queries?queries=5", None, 200),
                        ("GET", "/updates?queries=5", None, 200),
                        ("POST", "/items", b'{"name":"c%d-%d","qty":%d}' % (k, r, r), 201),
                        ("GET", "/fortunes", None, 200),
                        ("GET", "/cached-queries?count=3", None, 200)):
                    resp = conn.request(method, target, JSON_HEADERS if body else None, body)
                    what = "client %d round %d %s %s" % (k, r, method, target)
                    check_response(ctx, resp, method, what, status)
                    expect(not resp.has_token("Connection", "close"), what + ": closed")
                    if target == "/json":
                        expect_eq(resp.body, b'{"message":"Hello, World!"}', what)
                    elif target == "/db":
                        world_object(resp.body, what)
                    elif target.startswith(("/queries", "/updates")):
                        world_list(resp.body, 5, what)
                    elif target.startswith("/cached"):
                        world_list(resp.body, 3, what)
                    elif target == "/fortunes":
                        expect_eq(resp.body, FORTUNES_BODY, what)
                    else:
                        obj = check_item_body(resp, what, "c%d-%d" % (k, r), r)
                        mine.append((obj["id"], resp.body))
                for (i, item_body) in mine[-1:]:
                    resp = conn.request("GET", "/items/%d" % i)
                    check_response(ctx, resp, "GET", "/items/%d" % i, 200, JSON_CT)
                    expect_eq(resp.body, item_body, "client %d GET /items/%d" % (k, i))
        created[k] = mine

    errors = run_threads(8, client)
    expect(not errors, "%d clients failed:\n%s" % (len(errors), "\n".join(errors[:5])))
    ids = [i for mine in created.values() for (i, _) in mine]
    expect_eq(len(set(ids)), len(ids), "distinct ids of concurrently created items")
    stored = dict((r[0], (r[1], r[2])) for r in ctx.query(
        "SELECT id, name, qty FROM items WHERE id IN (%s)" % ",".join(map(str, ids))))
    expect_eq(len(stored), len(ids), "stored rows of concurrently created items")


@check("concurrency.pipelining-clients")
def _(ctx):
    def client(k):
        data = httpraw.build_request("GET", "/plaintext", host="%s:%d" % (ctx.host, ctx.port))
        with ctx.connect() as conn:
            for r in range(4):
                conn.send(data * 16)
                for j in range(16):
                    resp = conn.read_response("GET")
                    what = "client %d batch %d response %d" % (k, r, j + 1)
                    check_response(ctx, resp, "GET", what, 200, PLAIN_CT)
                    expect_eq(resp.body, b"Hello, World!", what)
    errors = run_threads(16, client)
    expect(not errors, "%d clients failed:\n%s" % (len(errors), "\n".join(errors[:5])))


@contextlib.contextmanager
def write_lock(ctx):
    """Another session holds the database's write lock: sqlite's (BEGIN IMMEDIATE), or in
    PostgreSQL a lock on World and items that lets readers in and keeps writers waiting (LOCK
    TABLE ... IN EXCLUSIVE MODE). Released (rolled back) when the block ends."""
    if ctx.pg:
        locker = pg.Session(ctx.db_path)
        lock = ["BEGIN", "LOCK TABLE World, items IN EXCLUSIVE MODE"]
    else:
        import sqlite3
        locker = sqlite3.connect(ctx.db_path, isolation_level=None, timeout=30)
        lock = ["BEGIN IMMEDIATE"]
    try:
        for sql in lock:
            locker.execute(sql)
        yield
    finally:
        try:
            locker.execute("ROLLBACK")
        finally:
            locker.close()


@check("database.busy-503")
def _(ctx):
    """README: the database busy gives 503 with Retry-After: 1 (not a 500, not a hang)."""
    before = items_state(ctx)
    world_before = world_table(ctx)
    with write_lock(ctx):
        for (method, target, body) in (("GET", "/updates?queries=2", None),
                                       ("POST", "/items", b'{"name":"locked out","qty":1}')):
            with ctx.connect() as conn:
                resp = conn.request(method, target, JSON_HEADERS if body else None, body)
            expect_error(ctx, resp, 503, "%s %s while another process holds the write lock"
                         % (method, target))
            expect_eq(resp.header("Retry-After"), "1", "Retry-After of %s %s" % (method, target))
    expect_unchanged(ctx, before, "a POST refused with 503")
    expect_eq(world_table(ctx), world_before, "World after an /updates refused with 503")
    rows = world_list(get(ctx, "/updates?queries=2").body, 2, "GET /updates after the lock")
    verify_updates_committed(ctx, rows, "/updates?queries=2 after the lock")


# Odd but well-formed requests: any 2xx/4xx with the usual headers, never a 5xx or a drop.
ODD_REQUESTS = [
    ("nul-in-query", "GET", "/queries?queries=%00", None, None),
    ("nul-in-cpu-param", "GET", "/cpu?iterations=1%00", None, None),
    ("invalid-utf8-in-query", "GET", "/items?limit=%FF%FE", None, None),
    ("nul-in-item-id", "GET", "/items/1%00", None, None),
    ("invalid-utf8-in-path", "GET", "/items/%FF", None, None),
    ("bare-percent", "GET", "/db?%=%", None, None),
    ("empty-params", "GET", "/json?&&&=&", None, None),
    ("repeated-limit", "GET", "/items?limit=5&limit=6", None, None),
    ("repeated-iterations", "GET", "/cpu?iterations=1&iterations=2", None, None),
    ("long-query", "GET", "/queries?queries=" + "9" * 3000, None, None),
    ("long-path", "GET", "/items/" + "1" * 3000, None, None),
    # (bodies stay under --max-body so the parser, not the size limit, has to cope)
    ("deep-json-array", "POST", "/items", JSON_HEADERS, b"[" * 30000 + b"]" * 30000),
    ("deep-json-object", "POST", "/items", JSON_HEADERS,
     b'{"a":' * 10000 + b"1" + b"}" * 10000),
    ("deep-json-in-name", "POST", "/items", JSON_HEADERS,
     b'{"name":' + b"[" * 30000 + b"]" * 30000 + b',"qty":1}'),
    ("many-keys", "POST", "/items", JSON_HEADERS,
     b"{" + b",".join(b'"k%d":%d' % (k, k) for k in range(5000)) + b"}"),
    ("binary-body", "POST", "/items", JSON_HEADERS, bytes(range(256)) * 16),
    ("nul-after-json", "POST", "/items", JSON_HEADERS, b'{"name":"a","qty":1}\x00'),
    ("utf8-bom", "POST", "/items", JSON_HEADERS, b'\xef\xbb\xbf{"name":"bom","qty":1}'),
    ("utf16-body", "POST", "/items", JSON_HEADERS,
     '{"name":"u16","qty":1}'.encode("utf-16")),
    ("huge-exponent", "POST", "/items", JSON_HEADERS, b'{"name":"a","qty":1e99999999999}'),
    ("long-number", "POST", "/items", JSON_HEADERS,
     b'{"name":"a","qty":' + b"1" * 60000 + b"}"),
    ("content-type-params", "POST", "/items",
     [("Content-Type", "application/json; charset=utf-8; boundary=x; q=\"1\"")],
     b'{"name":"params","qty":1}'),
]


def make_odd_request_check(method, target, headers, body):
    def run(ctx):
        before = items_state(ctx)
        with ctx.connect() as conn:
            try:
                resp = conn.request(method, target, headers, body)
            except httpraw.ConnectionClosed:
                fail("the server closed the connection without a response")
            check_response(ctx, resp, method, target)
            expect(200 <= resp.status < 500 and resp.status not in (301, 302),
                   "%s %s: status %d (%s)" % (method, target[:80], resp.status,
                                              short(resp.body)))
            if resp.status >= 400:
                expect_error(ctx, resp, resp.status, "%s %s" % (method, target[:80]))
            follow_up(ctx, conn, resp, "an odd request")
        if resp.status >= 400:
            expect_unchanged(ctx, before, "a rejected %s %s" % (method, target[:80]))
    return run


for (_suffix, _m, _t, _h, _b) in ODD_REQUESTS:
    add_check("robustness.%s" % _suffix, make_odd_request_check(_m, _t, _h, _b))


# =============================================================================================
# Checks with their own server instance
# =============================================================================================

def stats_on(ctx, conn):
    r = conn.request("GET", "/stats")
    check_response(ctx, r, "GET", "/stats", 200, JSON_CT)
    expect(not r.has_token("Connection", "close"), "GET /stats answered with Connection: close")
    return parse_json(r.body, "GET /stats")


def poll_stats(ctx, conn, pred, what, deadline_s=30.0):
    """Poll /stats on conn until pred(stats) holds. The deadline only turns a hang into a
    failure."""
    end = time.monotonic() + deadline_s
    while True:
        s = stats_on(ctx, conn)
        if pred(s):
            return s
        if time.monotonic() > end:
            fail("%s: not reached within %d s; last /stats %s" % (what, deadline_s, short(s)))
        time.sleep(0.02)


def in_flight(s):
    r = s.get("requests") if isinstance(s, dict) else None
    n = r.get("in_flight") if isinstance(r, dict) else None
    return n if is_int(n) else -1


def connections_to_one_process(ctx, srv, n, tries=64):
    """n keep-alive connections served by the same process (same /stats pid). With
    pre-forked workers, in-flight counts and limits are per process, and a connection stays
    with the process that accepted it; a single-process server passes on the first n."""
    by_pid = {}
    opened = []
    try:
        for _k in range(tries):
            conn = ctx.connect(srv)
            opened.append(conn)
            pid = stats_on(ctx, conn).get("pid")
            group = by_pid.setdefault(pid, [])
            group.append(conn)
            if len(group) == n:
                for c in opened:
                    if c not in group:
                        c.close()
                return group
        fail("none of %d connections' processes served %d of them (pids %s)"
             % (tries, n, {p: len(g) for (p, g) in by_pid.items()}))
    except BaseException:
        for c in opened:
            c.close()
        raise


@check("saturation.503")
def _(ctx):
    srv = ctx.start_server("max-inflight", ["--max-inflight", "2"])
    try:
        for attempt in range(3):
            ms = 3000 * (attempt + 1)
            if saturate_once(ctx, srv, ms):
                break
        else:
            fail("the /io requests finished before the third request could be refused, "
                 "three times")
    finally:
        ctx.stop_server(srv)


def saturate_once(ctx, srv, ms):
    """Returns False when the run was inconclusive (the waits ended before the probe)."""
    target = "/io?ms=%d" % ms
    conns = connections_to_one_process(ctx, srv, 4)
    (hold1, hold2, stats, probe) = conns
    try:
        for c in (hold1, hold2):
            c.send_request("GET", target)
        poll_stats(ctx, stats, lambda s: in_flight(s) >= 3, "requests.in_flight >= 3 with two "
                   "%s in flight and --max-inflight 2" % target)
        resp = probe.request("GET", "/json")
        if resp.status == 200:
            return False
        expect_error(ctx, resp, 503, "GET /json while saturated")
        expect_eq(resp.header("Retry-After"), "1", "Retry-After of the 503")
        # the operational routes are exempt from the limit
        r = stats.request("GET", "/health")
        check_response(ctx, r, "GET", "/health while saturated", 200, JSON_CT)
        expect_eq(r.body, ('{"status":"ok","model":"%s"}' % ctx.model).encode(),
                  "GET /health while saturated")
        r = stats.request("GET", "/metrics")
        check_response(ctx, r, "GET", "/metrics while saturated", 200, METRICS_CT)
        s = stats_on(ctx, stats)
        expect(s["requests"]["by_status"].get("503", 0) >= 1,
               "by_status has no 503 after a 503: %s" % short(s["requests"]))
        for (k, c) in enumerate((hold1, hold2)):
            r = c.read_response("GET")
            check_response(ctx, r, "GET", "%s #%d (held while saturated)" % (target, k + 1),
                           200, JSON_CT)
            expect_eq(r.body, ('{"waited_ms":%d}' % ms).encode(), "%s body" % target)
        # and the process takes work again
        r = stats.request("GET", "/json")
        check_response(ctx, r, "GET", "/json after the saturation ended", 200, JSON_CT)
        expect_eq(r.body, b'{"message":"Hello, World!"}', "GET /json after the saturation")
        return True
    finally:
        for c in conns:
            c.close()


@check("shutdown.finishes-requests-in-flight")
def _(ctx):
    srv = ctx.start_server("drain")
    try:
        (conn, stats) = connections_to_one_process(ctx, srv, 2)
        try:
            conn.send_request("GET", "/io?ms=1500")
            poll_stats(ctx, stats, lambda s: in_flight(s) >= 2, "GET /io?ms=1500 in flight")
            srv.terminate()
            try:
                resp = conn.read_response("GET")
            except httpraw.ConnectionClosed:
                fail("SIGTERM dropped a request in flight (closed without a response)")
            check_response(ctx, resp, "GET", "/io?ms=1500 across SIGTERM", 200, JSON_CT)
            expect_eq(resp.body, b'{"waited_ms":1500}', "body")
        finally:
            conn.close()
            stats.close()
    finally:
        ctx.stop_server(srv)


@check("shutdown.sigint")
def _(ctx):
    srv = ctx.start_server("sigint")
    expect_eq(get(ctx, "/json", srv=srv).body, b'{"message":"Hello, World!"}', "body")
    srv.proc.send_signal(signal.SIGINT)
    try:
        rc = srv.proc.wait(launch.SHUTDOWN_TIMEOUT)
    except subprocess.TimeoutExpired:
        srv.kill()
        fail("did not exit within %d s of SIGINT" % launch.SHUTDOWN_TIMEOUT)
    expect_eq(rc, 0, "exit status after SIGINT")
    ctx.stop_server(srv)    # sanitizer scan of its stderr


@check("database.persists-across-restart")
def _(ctx):
    srv = ctx.start_server("restart")
    db_path = srv.db_path
    (i, body) = create_item(ctx, "survivor \u2713", 77, srv=srv)
    rows = world_list(get(ctx, "/updates?queries=5", srv=srv).body, 5, "GET /updates?queries=5")
    world_before = world_table_of(ctx, srv)
    ctx.stop_server(srv)
    srv2 = ctx.start_server("restart", db_path=db_path)
    try:
        expect_eq(get(ctx, "/items/%d" % i, srv=srv2).body, body, "item after a restart")
        expect_eq(world_table_of(ctx, srv2), world_before,
                  "World after a restart (re-seeded or lost updates?)")
        last = dict(rows)       # a repeated id: the last occurrence was stored
        for (wid, rn) in last.items():
            expect_eq(world_before[wid], rn, "World row %d after /updates" % wid)
        expect_eq(ctx.query("SELECT count(*) FROM Fortune", srv=srv2)[0][0], 12,
                  "Fortune rows after a restart")
        (j, _) = create_item(ctx, "after restart", 1, srv=srv2)
        expect(j > i, "id %d after a restart is not above %d" % (j, i))
    finally:
        ctx.stop_server(srv2)


def world_table_of(ctx, srv):
    return dict(ctx.query("SELECT id, randomNumber FROM World", srv=srv))


# =============================================================================================
# Peers and subsets (workloads/peers/): which checks apply to a server
# =============================================================================================
#
# A peer implements part of the API in a real runtime (Node, Go, CPython). Two options select
# the checks that apply to it:
#   --endpoints /plaintext,/json,...  the paths it serves (default: TRIAD_ENDPOINTS); a check
#                                     that needs another path is skipped
#   --peer                            it is not triad: skip the checks of triad's own command
#                                     line, start-up line and limits, accept any Server header,
#                                     and run the PEER checks that stand in for the skipped ones
#   --lacks pipelining                it does not answer pipelined requests (gunicorn's gthread
#                                     worker): skip the checks that pipeline
# What a check needs comes from its name: the family before the first dot names an endpoint
# (cpu.bad.abc needs /cpu), so does a /path inside it (http.head/fortunes); NEEDS adds what a
# check uses beyond its name.

TRIAD_ENDPOINTS = ("/plaintext", "/json", "/db", "/queries", "/updates", "/fortunes",
                   "/cached-queries", "/cpu", "/io", "/fanout", "/upstream", "/items", "/health",
                   "/stats", "/metrics")
KNOWN_ENDPOINTS = TRIAD_ENDPOINTS
TRIAD = "triad"     # triad's command line, start-up line, limit flags
PEER = "peer"       # a stand-in for a triad-only check
SQLITE = "sqlite"   # the database is a sqlite file (WAL, the file itself)
POSTGRES = "PostgreSQL"     # the database is PostgreSQL (a pg mode: --db @pg)
FEATURES = ("pipelining",)      # what --lacks may name

NEEDS_PREFIX = [
    ("database.wal", {SQLITE}),
    ("tfb.", {POSTGRES}),
    ("postgresql.", {POSTGRES}),
    ("server.banner", {TRIAD}),
    ("cli.", {TRIAD}),
    ("saturation.", {TRIAD, "/stats", "/io"}),             # --max-inflight
    ("http.large-header", {TRIAD}),                        # --conn-buffer
    ("shutdown.finishes-requests-in-flight", {"/stats", "/io"}),
    ("shutdown.sigint", {"/json"}),
    # The upper bound costs ~0.9 s in C and about a minute in CPython, past the 30 s deadline.
    ("cpu.iterations=10000000", {TRIAD}),
    ("database.busy-503", {"/updates", "/items"}),
    ("database.persists-across-restart", {"/updates", "/items"}),
    ("errors.405.fixed-routes", set(p.split("?")[0] for p in FIXED_GET_ROUTES)),
    ("errors.405.item", {"/items"}),         # and errors.405.items-collection
    ("errors.get-items-with-body", {"/items", "/db"}),
    ("errors.get-with-body", {"/json"}),
    ("errors.405.post-json", {"/json"}),
    ("http.keep-alive", {"/plaintext", "/json", "/db", "/queries", "/fortunes", "/items",
                         "/health"}),
    ("http.pipeline.", {"pipelining"}),
    ("http.head-pipelined", {"pipelining"}),
    ("concurrency.pipelining-clients", {"pipelining"}),
    ("http.pipeline.plaintext16", {"/plaintext"}),
    ("http.pipeline.mixed16", {"/json", "/db", "/plaintext", "/queries", "/items", "/fortunes",
                               "/cached-queries", "/cpu", "/io", "/updates", "/health"}),
    ("http.pipeline.with-bodies", {"/items", "/json"}),
    ("http.head-pipelined", {"/plaintext", "/json", "/fortunes"}),
    ("http.http10-without-host", {"/json"}),
    ("http.connection-close", {"/plaintext"}),
    ("http.fragmented-get", {"/queries", "/plaintext"}),
    ("http.fragmented-post", {"/items", "/plaintext"}),
    ("http.expect-100-continue", {"/items"}),
    ("concurrency.mixed-clients", {"/json", "/db", "/queries", "/updates", "/items",
                                   "/fortunes", "/cached-queries"}),
    ("concurrency.pipelining-clients", {"/plaintext"}),
]


def endpoint_of(target):
    """The known endpoint a request target addresses ("/items/5" -> "/items"), or None."""
    path = "/" + target.split("?", 1)[0].lstrip("/").split("/", 1)[0]
    return path if path in KNOWN_ENDPOINTS else None


# Checks made from tables: their targets say what they need.
NEEDS_EXACT = {}
for (_suffix, _m, _t, _h, _b) in ODD_REQUESTS:
    NEEDS_EXACT["robustness." + _suffix] = {endpoint_of(_t)} - {None}
for (_suffix, _m, _t, _h, _b, _st) in ERRORS_IN_SYNC:
    NEEDS_EXACT["http.in-sync-after." + _suffix] = ({endpoint_of(_t)} | {"/plaintext"}) - {None}


def check_needs(name):
    needs = set(NEEDS_EXACT.get(name, ()))
    family = "/" + name.split(".", 1)[0]
    if family in KNOWN_ENDPOINTS:
        needs.add(family)
    needs.update(p for p in re.findall(r"/[a-z-]+", name) if p in KNOWN_ENDPOINTS)
    for (prefix, more) in NEEDS_PREFIX:
        if name.startswith(prefix):
            needs |= more
    return needs


def served(opts):
    """What the server under test offers: its endpoints, and TRIAD or PEER."""
    endpoints = TRIAD_ENDPOINTS if opts.endpoints is None else opts.endpoints
    backend = POSTGRES if pg.uses_placeholder(opts.extra) else SQLITE
    return (set(endpoints) | {PEER if opts.peer else TRIAD, backend} |
            (set(FEATURES) - set(opts.lacks)))


def skip_reason(name, opts):
    missing = check_needs(name) - served(opts)
    if not missing:
        return None
    if TRIAD in missing:
        return "test triad's own command line or limits"
    if PEER in missing:
        return "stand in for triad-only checks (--peer)"
    if SQLITE in missing:
        return "look at sqlite's own file (the server runs on PostgreSQL)"
    if POSTGRES in missing:
        return "need the server on PostgreSQL (a pg mode: --db @pg)"
    return "need " + ", ".join(sorted(missing))


harness.skip_reason = skip_reason


def implements(ctx, target):
    return endpoint_of(target) in served(ctx.opts)


# -- checks for every server that the checks above leave out -----------------------------

@check("errors.messages")
def _(ctx):
    """The error messages are part of the API's bytes: a peer must send triad's."""
    cases = [("GET", "/nope", 404, "no such resource"),
             ("DELETE", "/json", 405, "method not allowed for this resource"),
             ("GET", "/cpu?iterations=x", 400, "iterations must be an integer in 0..10000000"),
             ("GET", "/io?ms=10001", 400, "ms must be an integer in 0..10000"),
             ("GET", "/fanout?calls=0&ms=1", 400, "calls must be an integer in 1..1000"),
             ("GET", "/fanout?calls=1", 400, "ms must be an integer in 0..10000")]
    for (method, target, status, message) in cases:
        if implements(ctx, target) or status == 404:
            resp = fetch_error(ctx, method, target, status)
            expect_eq(resp.body, ('{"error":"%s"}' % message).encode(),
                      "%s %s body" % (method, target))
    with ctx.connect() as conn:
        conn.send(b"GET /json HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc")
        resp = conn.read_response("GET")
    expect_error(ctx, resp, 400, "GET /json with a body")
    expect_eq(resp.body, b'{"error":"this request takes no body"}', "GET /json with a body")


@check("database.schema-version")
def _(ctx):
    """A file made by any server (triad or peer) must be usable by every other one."""
    if ctx.pg:
        expect_eq(ctx.query("SELECT schema_version FROM triad_meta"), [(1,)],
                  "triad_meta (triad's schema version)")
        expect_eq(table_names(ctx), ["fortune", "items", "triad_meta", "world"], "tables")
        return
    expect_eq(ctx.query("PRAGMA user_version")[0][0], 1, "PRAGMA user_version")
    sql = [r[0] for r in ctx.query("SELECT sql FROM sqlite_master WHERE type='table' "
                                   "ORDER BY name")]
    expect_eq(sql, [
        "CREATE TABLE Fortune (id INTEGER PRIMARY KEY, message TEXT NOT NULL)",
        "CREATE TABLE World (id INTEGER PRIMARY KEY, randomNumber INTEGER NOT NULL)",
        "CREATE TABLE items (id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT NOT NULL,"
        " qty INTEGER NOT NULL CHECK (qty >= 0))",
        "CREATE TABLE sqlite_sequence(name,seq)"], "the tables' SQL (triad's schema version 1)")


# -- stand-ins for triad-only checks (--peer) ------------------------------------------------

@check("errors.405.served-routes")
def _(ctx):
    for target in FIXED_GET_ROUTES:
        if implements(ctx, target):
            check_405(ctx, "POST", target, "GET, HEAD", b"", JSON_HEADERS)
            check_405(ctx, "PUT", target, "GET, HEAD")


NEEDS_PREFIX.append(("errors.405.served-routes", {PEER, "/json"}))


@check("database.updates-busy-503")
def _(ctx):
    world_before = world_table(ctx)
    with write_lock(ctx):
        resp = fetch_error(ctx, "GET", "/updates?queries=2", 503)
        expect_eq(resp.header("Retry-After"), "1", "Retry-After of the 503")
        expect_eq(resp.body, b'{"error":"database busy"}', "body of the 503")
    expect_eq(world_table(ctx), world_before, "World after an /updates refused with 503")
    rows = world_list(get(ctx, "/updates?queries=2").body, 2, "GET /updates after the lock")
    verify_updates_committed(ctx, rows, "/updates?queries=2 after the lock")


NEEDS_PREFIX.append(("database.updates-busy-503", {PEER, "/updates"}))


@check("database.world-persists-across-restart")
def _(ctx):
    srv = ctx.start_server("restart-world")
    db_path = srv.db_path
    rows = world_list(get(ctx, "/updates?queries=5", srv=srv).body, 5, "GET /updates?queries=5")
    world_before = world_table_of(ctx, srv)
    ctx.stop_server(srv)
    srv2 = ctx.start_server("restart-world", db_path=db_path)
    try:
        expect_eq(world_table_of(ctx, srv2), world_before,
                  "World after a restart (re-seeded or lost updates?)")
        for (wid, rn) in dict(rows).items():
            expect_eq(world_before[wid], rn, "World row %d after /updates" % wid)
        expect_eq(ctx.query("SELECT count(*) FROM Fortune", srv=srv2)[0][0], 12,
                  "Fortune rows after a restart")
    finally:
        ctx.stop_server(srv2)


NEEDS_PREFIX.append(("database.world-persists-across-restart", {PEER, "/updates"}))


@check("shutdown.finishes-request-in-flight.unobserved")
def _(ctx):
    """Without /stats to see the request arrive, the check gives it half a second to get there
    before SIGTERM; the pause is not asserted, it only makes the race unlikely."""
    srv = ctx.start_server("drain")
    try:
        with ctx.connect(srv) as conn:
            conn.send_request("GET", "/io?ms=1500")
            time.sleep(0.5)
            srv.terminate()
            try:
                resp = conn.read_response("GET")
            except httpraw.ConnectionClosed:
                fail("SIGTERM dropped a request in flight (closed without a response)")
            check_response(ctx, resp, "GET", "/io?ms=1500 across SIGTERM", 200, JSON_CT)
            expect_eq(resp.body, b'{"waited_ms":1500}', "body")
    finally:
        ctx.stop_server(srv)


NEEDS_PREFIX.append(("shutdown.finishes-request-in-flight.unobserved", {PEER, "/io"}))


# -- /upstream --------------------------------------------------------------------------------

UPSTREAM_BAD_PARAMS = [("calls=0", "/upstream?calls=0&ms=1"),
                       ("calls=1001", "/upstream?calls=1001&ms=1"),
                       ("calls=abc", "/upstream?calls=abc&ms=1"),
                       ("calls-missing", "/upstream?ms=1"),
                       ("ms-missing", "/upstream?calls=2"),
                       ("ms=10001", "/upstream?calls=2&ms=10001"),
                       ("ms=-1", "/upstream?calls=2&ms=-1")]

for (_name, _target) in UPSTREAM_BAD_PARAMS:
    # Bad parameters are a 400 before the missing --upstream is a 503.
    add_check("upstream.bad." + _name, make_bad_param_check(_target))


@check("upstream.not-configured")
def _(ctx):
    resp = fetch_error(ctx, "GET", "/upstream?calls=1&ms=0", 503)
    expect_eq(resp.header("Retry-After"), "1", "Retry-After of the 503")
    expect_eq(parse_json(resp.body), {"error": "no upstream configured: start the server with "
                                               "--upstream http://HOST:PORT"}, "the 503's body")


@check("upstream.calls")
def _(ctx):
    """Another instance of the same server is the upstream: its /io answers the calls."""
    io = ctx.start_server("upstream-io")
    srv = ctx.start_server("upstream", ["--upstream", "http://%s:%d" % (io.host, io.port)])
    try:
        with ctx.connect(srv) as conn:   # and again on the same connections: pooled sockets
            for (calls, ms) in ((1, 0), (5, 20), (1, 0), (100, 10), (5, 20)):
                target = "/upstream?calls=%d&ms=%d" % (calls, ms)
                resp = conn.request("GET", target)
                check_response(ctx, resp, "GET", target, 200, JSON_CT)
                expect_eq(resp.body, ('{"calls":%d,"ms":%d}' % (calls, ms)).encode(), target)
    finally:
        ctx.stop_server(srv)
        ctx.stop_server(io)


class FakeUpstream:
    """An upstream that fails in one way: "status-500", "garbage", "too-large" or "hang"."""

    def __init__(self, mode):
        import http.server
        import threading
        self.release = threading.Event()
        fake = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self):
                if mode == "status-500":
                    body = b'{"error":"fake"}'
                    self.send_response(500)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                elif mode == "garbage":
                    self.wfile.write(b"this is not HTTP\r\n\r\n")
                    self.close_connection = True
                elif mode == "too-large":
                    self.send_response(200)
                    self.send_header("Content-Length", str(4 << 20))
                    self.end_headers()
                    try:
                        for _k in range(64):
                            self.wfile.write(b"x" * 65536)
                    except OSError:
                        pass        # the server gave up reading, as it should
                    self.close_connection = True
                else:               # hang: answer nothing until the check ends
                    fake.release.wait(30)
                    self.close_connection = True

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = "http://127.0.0.1:%d" % self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


def closed_port():
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]       # nothing listens there once it is closed


class CountingUpstream:
    """A well-behaved upstream that counts what it sees: connections accepted and requests
    answered. /io?ms=M waits M ms and answers as triad does, keeping the connection alive."""

    def __init__(self):
        import http.server
        import threading
        self.lock = threading.Lock()
        self.connections = 0
        self.requests = 0
        counter = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self):
                with counter.lock:
                    counter.connections += 1
                super().setup()

            def do_GET(self):
                q = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query)
                ms = int(q.get("ms", ["0"])[0])
                time.sleep(ms / 1000.0)
                body = ('{"waited_ms":%d}' % ms).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                with counter.lock:
                    counter.requests += 1

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = "http://127.0.0.1:%d" % self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@check("upstream.keep-alive-reuse")
def _(ctx):
    """Ten calls one after another travel over one connection, as the upstream counts them."""
    up = CountingUpstream()
    try:
        srv = ctx.start_server("upstream-reuse", ["--upstream", up.url])
        try:
            with ctx.connect(srv) as conn:
                for i in range(10):
                    resp = conn.request("GET", "/upstream?calls=1&ms=0")
                    check_response(ctx, resp, "GET", "/upstream?calls=1&ms=0", 200, JSON_CT)
                    expect_eq(resp.body, b'{"calls":1,"ms":0}', "call %d" % i)
        finally:
            ctx.stop_server(srv)
        expect_eq(up.requests, 10, "requests the upstream answered")
        expect_eq(up.connections, 1, "connections the upstream accepted for 10 sequential calls")
    finally:
        up.close()


@check("upstream.fan-out-1000")
def _(ctx):
    """1,000 concurrent calls to another instance of the same server, twice."""
    io = ctx.start_server("upstream-io-1000")
    srv = ctx.start_server("upstream-1000", ["--upstream", "http://%s:%d" % (io.host, io.port)])
    try:
        for _round in range(2):
            resp = fetch(ctx, "GET", "/upstream?calls=1000&ms=20", srv=srv)
            check_response(ctx, resp, "GET", "/upstream?calls=1000&ms=20", 200, JSON_CT)
            expect_eq(resp.body, b'{"calls":1000,"ms":20}', "/upstream?calls=1000&ms=20")
    finally:
        ctx.stop_server(srv)
        ctx.stop_server(io)


UPSTREAM_MESSAGES = {
    "refused": "upstream request failed",
    "garbage": "upstream request failed",
    "status-500": "upstream answered with a status other than 200",
    "too-large": "upstream answer too large",
    "hang": "upstream timed out",
}


def make_upstream_failure_check(mode, status):
    def run(ctx):
        fake = FakeUpstream(mode) if mode != "refused" else None
        url = fake.url if fake else "http://127.0.0.1:%d" % closed_port()
        try:
            srv = ctx.start_server("upstream-" + mode,
                                   ["--upstream", url, "--upstream-timeout", "1"])
            try:
                with ctx.connect(srv) as conn:
                    resp = conn.request("GET", "/upstream?calls=3&ms=0")
                    expect_error(ctx, resp, status, "GET /upstream with an upstream that %s"
                                 % mode)
                    expect_eq(parse_json(resp.body), {"error": UPSTREAM_MESSAGES[mode]},
                              "the %d's body" % status)
                    follow_up(ctx, conn, resp, "a %d from /upstream" % status)
            finally:
                ctx.stop_server(srv)
        finally:
            if fake:
                fake.close()
    return run


for (_mode, _status) in (("refused", 502), ("status-500", 502), ("garbage", 502),
                         ("too-large", 502), ("hang", 504)):
    add_check("upstream.%d.%s" % (_status, _mode), make_upstream_failure_check(_mode, _status))


if __name__ == "__main__":
    harness.entry()
