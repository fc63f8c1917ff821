"""The CPython peer of triad: the API of triad's threaded model, on CPython and gunicorn.

    run --host H --port P --db PATH [--workers N] [--threads N]
        [--upstream http://HOST:PORT] [--upstream-timeout S]

triad's threaded model (servers/threaded/main.c, gil.c) is a C mirror of a CPython WSGI
server: gunicorn's gthread worker (one acceptor, a pool of threads, each request holding a
thread from start to end), CPython's GIL with its 5 ms switch interval, pre-forked --workers.
This module is the same API as a WSGI application, written as a Python programmer would write
it with the standard library, and run (by ./run) under Debian's gunicorn with the gthread
worker on Debian's /usr/bin/python3. What each endpoint exercises here:

  /plaintext, /json  gunicorn's gthread worker: its main thread polls the sockets (selectors)
                     and hands each ready connection to a ThreadPoolExecutor of --threads
                     threads; the request is parsed and answered in Python on that thread.
  /db, /queries,     the sqlite3 module on the request's thread, one connection per thread:
  /updates,          each call blocks the thread, with the GIL released while sqlite works.
  /fortunes
  /cpu               pure Python holding the GIL: with --threads N, one CPU-bound request
                     takes turns with every other thread at the 5 ms switch interval, and one
                     process never uses more than one core. The u64 digest costs ~6 us per
                     iteration in Python, ~65x triad's C loop.
  /io                time.sleep: the thread is held, the GIL released.
  /fanout            a ThreadPoolExecutor of N threads, each sleeping M ms, joined.
  /upstream          the same executor shape, each thread a call through one requests.Session
                     per process (urllib3's pool: 10 connections kept per host; past that,
                     extra connections are opened and closed after use).
  /health            the model's name, like triad's /health.
  --workers N        N pre-forked processes (gunicorn's arbiter), each with its own GIL,
                     sharing the listening socket.

Where it differs from triad's mirror: the whole request path (HTTP parsing, routing, JSON) is
CPython bytecode under the GIL, where the mirror runs it in C and takes the GIL only around the
endpoint; gunicorn closes idle keep-alive connections after 2 s (triad: 60 s) and sends
`Server: gunicorn` and `Connection: keep-alive`; there is no /stats, /metrics, /items or
/cached-queries, no --max-inflight and no request limits beyond gunicorn's own (4094-byte
request line, 8190-byte header fields). SIGTERM: gunicorn stops accepting and lets the
requests in flight finish (graceful timeout 30 s), exit 0.
"""

import concurrent.futures
import json
import logging
import random
import sqlite3
import time
from http import HTTPStatus
from urllib.parse import parse_qs

import requests

import db

MODEL = "python"
COUNT_MAX = 500
WORLD_ROWS = 10000
ITERATIONS_MAX = 10000000
MS_MAX = 10000
CALLS_MAX = 1000
UPSTREAM_BODY_MAX = 65536   # an /io answer is a few bytes; more is not an /io answer
JSON_TYPE = "application/json"

_upstream = None            # (base URL, timeout in seconds, requests.Session) once configured


class HttpError(Exception):
    def __init__(self, status, message, headers=()):
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = list(headers)


def configure(db_path, upstream=None, upstream_timeout=30.0):
    """Called once per worker process, before it serves."""
    global _upstream
    db.configure(db_path)
    if upstream:
        # urllib3 logs a warning each time it discards a connection past its pool of 10:
        # with wide fan-outs that is every call, and stderr is not where those belong.
        logging.getLogger("urllib3.connectionpool").setLevel(logging.ERROR)
        _upstream = (upstream.rstrip("/"), upstream_timeout, requests.Session())


# ---- parameters (shared/param.c) ---------------------------------------------------------

def _digits(value):
    return value is not None and value.isascii() and value.isdigit()


def count_param(value):
    """TechEmpower's rule: missing, empty, not an integer or below 1 gives 1; above 500, 500."""
    if not _digits(value):
        return 1
    return max(1, min(int(value), COUNT_MAX))


def int_param(value, lo, hi, message):
    """Plain decimal digits within lo..hi, or a 400 with message."""
    if not _digits(value) or not lo <= int(value) <= hi:
        raise HttpError(400, message)
    return int(value)


def ms_param(q):
    return int_param(q.get("ms"), 0, MS_MAX, "ms must be an integer in 0..10000")


def calls_param(q):
    return int_param(q.get("calls"), 1, CALLS_MAX, "calls must be an integer in 1..1000")


def as_json(value):
    return JSON_TYPE, json.dumps(value, separators=(",", ":")).encode()


# ---- the TechEmpower endpoints -----------------------------------------------------------

def random_id():
    return random.randint(1, WORLD_ROWS)


def new_number(old):
    """A new randomNumber that differs from the old one, as triad's /updates picks it."""
    v = random.randint(1, WORLD_ROWS - 1)
    return v + 1 if v >= old else v


def load_worlds(n):
    """One SELECT per row, one after another: TechEmpower forbids batching the reads."""
    ids = [random_id() for _ in range(n)]
    return [(i, db.world(i)) for i in ids]


def worlds_json(rows):
    return as_json([{"id": i, "randomNumber": n} for (i, n) in rows])


def ep_db(q):
    (i, n) = load_worlds(1)[0]
    return as_json({"id": i, "randomNumber": n})


def ep_queries(q):
    return worlds_json(load_worlds(count_param(q.get("queries"))))


def ep_updates(q):
    rows = [(i, new_number(n)) for (i, n) in load_worlds(count_param(q.get("queries")))]
    db.update_worlds(rows)      # committed before the answer
    return worlds_json(rows)


# html.escape writes &#x27; for an apostrophe where triad writes &#39;: spell them out.
_HTML_ESCAPES = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;",
                               "'": "&#39;"})


def ep_fortunes(q):
    rows = db.fortunes() + [(0, "Additional fortune added at request time.")]
    rows.sort(key=lambda r: r[1])   # code point order, which is UTF-8 byte order, as triad's
    cells = "".join("<tr><td>%d</td><td>%s</td></tr>" % (i, m.translate(_HTML_ESCAPES))
                    for (i, m) in rows)
    page = ("<!DOCTYPE html><html><head><title>Fortunes</title></head><body><table>"
            "<tr><th>id</th><th>message</th></tr>%s</table></body></html>" % cells)
    return "text/html; charset=utf-8", page.encode()


# ---- /cpu, /io, /fanout, /upstream -------------------------------------------------------

MASK64 = (1 << 64) - 1


def cpu_digest(iterations):
    """shared/cpu.h's digest; Python's integers do not wrap, so every step is masked."""
    x = 0x243F6A8885A308D3
    for i in range(iterations):
        x = (x + i) & MASK64
        for _ in range(64):
            x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & MASK64
    return format(x, "016x")


def ep_cpu(q):
    n = int_param(q.get("iterations"), 0, ITERATIONS_MAX,
                  "iterations must be an integer in 0..10000000")
    return as_json({"iterations": n, "digest": cpu_digest(n)})


def ep_io(q):
    ms = ms_param(q)
    time.sleep(ms / 1000)
    return as_json({"waited_ms": ms})


def ep_fanout(q):
    calls = calls_param(q)
    ms = ms_param(q)
    with concurrent.futures.ThreadPoolExecutor(max_workers=calls) as pool:
        list(pool.map(time.sleep, [ms / 1000] * calls))
    return as_json({"calls": calls, "ms": ms})


def call_upstream(ms):
    """One GET /io?ms=M: HttpError 504 past the timeout, 502 for anything but a small 200."""
    (base, timeout, session) = _upstream
    try:
        resp = session.get("%s/io?ms=%d" % (base, ms), timeout=timeout)
    except requests.Timeout:
        raise HttpError(504, "upstream timed out")
    except requests.RequestException:
        raise HttpError(502, "upstream request failed")
    if len(resp.content) > UPSTREAM_BODY_MAX:
        raise HttpError(502, "upstream answer too large")
    if resp.status_code != 200:
        raise HttpError(502, "upstream answered with a status other than 200")


def ep_upstream(q):
    calls = calls_param(q)
    ms = ms_param(q)
    if _upstream is None:
        raise HttpError(503, "no upstream configured: start the server with "
                             "--upstream http://HOST:PORT")
    with concurrent.futures.ThreadPoolExecutor(max_workers=calls) as pool:
        futures = [pool.submit(call_upstream, ms) for _ in range(calls)]
        for f in futures:
            f.result()          # the first failure, in call order, once it is known
    return as_json({"calls": calls, "ms": ms})


def ep_health(q):
    return as_json({"status": "ok", "model": MODEL})


ROUTES = {
    "/plaintext": lambda q: ("text/plain", b"Hello, World!"),
    "/json": lambda q: as_json({"message": "Hello, World!"}),
    "/db": ep_db,
    "/queries": ep_queries,
    "/updates": ep_updates,
    "/fortunes": ep_fortunes,
    "/cpu": ep_cpu,
    "/io": ep_io,
    "/fanout": ep_fanout,
    "/upstream": ep_upstream,
    "/health": ep_health,
}


# ---- the WSGI application ----------------------------------------------------------------

def has_body(environ):
    """No route takes a body. One that is announced is read (and dropped) to see whether a
    byte came: triad's rule is "a body on a route that takes none is a 400"."""
    if environ.get("CONTENT_LENGTH", "") in ("", "0") and \
            "HTTP_TRANSFER_ENCODING" not in environ:
        return False
    stream = environ["wsgi.input"]
    seen = 0
    while True:
        chunk = stream.read(65536)
        if not chunk:
            return seen > 0
        seen += len(chunk)


def dispatch(environ):
    endpoint = ROUTES.get(environ.get("PATH_INFO", ""))
    if endpoint is None:
        raise HttpError(404, "no such resource")
    if environ["REQUEST_METHOD"] not in ("GET", "HEAD"):
        raise HttpError(405, "method not allowed for this resource", [("Allow", "GET, HEAD")])
    if has_body(environ):
        raise HttpError(400, "this request takes no body")
    query = parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True)
    return endpoint({name: values[0] for (name, values) in query.items()})


def application(environ, start_response):
    headers = []
    try:
        (ctype, body) = dispatch(environ)
        status = 200
    except (HttpError, sqlite3.Error) as e:
        if isinstance(e, HttpError):
            (status, message, headers) = (e.status, e.message, e.headers)
        else:                   # triad's req_reply_db_error
            (status, message) = (503, "database busy" if db.is_busy(e) else
                                 "database unavailable")
        if status == 503:
            headers.append(("Retry-After", "1"))
        (ctype, body) = as_json({"error": message})
    start_response("%d %s" % (status, HTTPStatus(status).phrase),
                   [("Content-Type", ctype), ("Content-Length", str(len(body)))] + headers)
    return [] if environ["REQUEST_METHOD"] == "HEAD" else [body]
