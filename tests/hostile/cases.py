"""The table of hostile cases: one row each, the exact bytes sent and what is acceptable.

Expectations (`expect`) are a list with one pattern per response the bytes should produce, in
order. A pattern is alternatives separated by "|":

    400      that status, written by our code or by libmicrohttpd (recorded as json/mhd-html)
    400j     that status, written by our code: JSON, {"error":"..."} for an error
    4xx      any 4xx
    close    the connection is closed (FIN or RST) without a response

Whatever is not listed fails: any 5xx (unless listed, see BUGS / NOTES), a stall (no answer
before the deadline), bytes that are not HTTP.

After the listed responses (`after`):

    "sync"   (default) the connection is closed, or a following `GET /health` on it is
             answered correctly: the server did not lose its place in the byte stream
    "close"  the connection must be closed; a following `GET /health` being answered is a
             failure (RFC 9112 requires the close: the framing was ambiguous)
    "none"   nothing more is checked (the bytes end with an incomplete request)
    With half_close=True the client shuts down its sending side after the bytes (in the
    same TCP segment as the last of them), and the server must then close.

Cases marked `bug="Bn"` reproduce a server bug found by this suite (BUGS below): they still
fail until it is fixed. Bugs that were fixed are kept in FIXED, with what the server answers
now; their cases run unmarked.

Cases marked `limit="Ln"` meet a limitation of libmicrohttpd 0.9.75's parser that cannot be
fixed from our glue (LIMITATIONS below). What the project promises for them is a bound, not
the right answer: the server never holds such a connection forever (our deadlines shut it
down: --idle-timeout for a request head, --read-timeout for a body) and keeps serving everyone
else meanwhile. They run on the "bound" instance (BOUND_ARGS: 3 s deadlines), all at once on
separate connections, and accept an answer, or the server's close, within BOUND_GUARD seconds
(a hang guard, not a timing assertion: the deadline sweep runs once a second). `strict` keeps
what HTTP wants (an answer at once); it is shown, not required.

Item ids 1..4 exist (the suite seeds them in a fresh database: see SEED); 4 is only ever the
target of requests that must not touch it.
"""

import json
import re

HOST = b"Host: h"
JSON_CT = b"Content-Type: application/json"
INT64_MAX = 9223372036854775807
MAX_BODY = 65536            # --max-body default
BIG_MAX_BODY = 1 << 20      # the "big" instance, for 100,000-level nesting under the limit

# The "bound" instance, for the limitation cases (LIMITATIONS): short deadlines, so that the
# bound is reached well within the hang guard. Its arguments come after the mode's.
BOUND_DEADLINE = 3          # seconds: --idle-timeout and --read-timeout of the bound instance
BOUND_ARGS = ["--idle-timeout", str(BOUND_DEADLINE), "--read-timeout", str(BOUND_DEADLINE)]
BOUND_GUARD = 15.0          # no answer and no close by then: the bound does not hold (a hang)

# Seeded through the API before the run; (name, qty), ids 1..4 in a fresh database.
SEED = [("alpha", 1), ("b\u00e9ta \u2713", 2), ("gamma", 3), ("victim", 4)]

# Bugs found by this suite that are still open (server behaviour to fix; the cases stay and
# fail until then). None at present.
BUGS = {}

# Sanitizer leak reports that are a known bug: the bug, and a function that every leaked
# allocation's stack names (hostile.known_leak). A run then reports that bug, not a new one.
LEAK_BUGS = {}

# Bugs found by this suite and fixed since; their cases run unmarked and pass in every mode.
FIXED = {
    "B1": "A raw NUL byte in the request target truncated it: libmicrohttpd hands the "
          "handler a C string, so `GET /json\\0garbage` was served as `GET /json` (200), "
          "`DELETE /items/4\\0x` deleted item 4, `/io?ms=1\\0` + digits waited 1 ms. Now: "
          "400 `{\"error\":\"NUL byte in the request target\"}` and close (http.c notes where "
          "the target's C string ends; http_check.c refuses a target cut short).",
    "B2": "Two Content-Length fields with different values: libmicrohttpd used the first and "
          "kept the connection; the rest of the body was read as the next request, and "
          "answered (request smuggling / desync). Now: 400 `{\"error\":\"more than one "
          "Content-Length\"}` and close, before the body is read. (One field with a list, "
          "`18, 40`, is refused by libmicrohttpd: fine.)",
    "B3": "Content-Length together with Transfer-Encoding: chunked: the chunked body was used "
          "but the connection kept open (RFC 9112 6.1: MUST close). Now: 400 "
          "`{\"error\":\"Content-Length with Transfer-Encoding\"}` and close, before the "
          "body is read.",
    "B4": "A Transfer-Encoding other than exactly `chunked` (gzip, identity, xchunked, "
          "`chunked, chunked`, `gzip, chunked`, `chunked, gzip`, two fields): no answer, the "
          "server waited for a body that would end at connection close (or used the first of "
          "two fields). Now: 400 `{\"error\":\"unsupported Transfer-Encoding\"}` and close, "
          "before the body is read.",
    "B5": "(whitespace part) Whitespace between a field name and the colon (`X-A : b`, "
          "`X-A<TAB>: b`, `Content-Length : 30`) was accepted (RFC 9112 5.1: MUST be rejected "
          "with 400). Now: 400 `{\"error\":\"malformed header field name\"}` and close. The "
          "empty name (`: value`) is B11.",
    "B6": "An HTTP/1.1 request without Host, or with two Host fields, was served (RFC 9112 "
          "3.2: MUST answer 400). Now: 400 `{\"error\":\"HTTP/1.1 needs exactly one Host "
          "header\"}`, and the connection is kept (in sync).",
    "B11": "A header line with an empty field name (`: x`, `:`) or starting with a NUL byte "
           "ended the request head (libmicrohttpd 0.9.75 writes the name's terminating NUL "
           "over the colon, so the line then reads as the empty line that ends a head; a "
           "NUL-led line reads as empty at once). The request was served without the lines "
           "that follow, and those lines, the real empty line and the body were parsed as the "
           "next request(s): with Content-Length before the line, a body ending in `GET /json "
           "HTTP/1.0` CRLF CRLF got that request answered (smuggling). As the last header line "
           "it was dropped without a word (was limitation L1). Now: 400 `{\"error\":"
           "\"malformed header section\"}` and close, before any body is read (http_check.c "
           "compares the head size libmicrohttpd reports with the end of the last field it "
           "parsed). Refused the same way: obs-fold (RFC 9112 5.2 allows the 400) and a head "
           "ending CRLF then LF (indistinguishable from `:` on an LF-terminated line).",
    "B12": "A connection whose query exhausts libmicrohttpd's per-connection pool (L3: about "
           "130 or more parameters) leaked the glue's request object (allocated in the URI "
           "callback; libmicrohttpd 0.9.75 never reports such a request completed): 20,000 "
           "such requests grew the threaded server's RSS from 7 to 38 MB. Now the connection "
           "table holds the request begun on each connection, and the connection-closed "
           "notification frees one that never completed (conn_close). The LeakSanitizer "
           "report at the bound instance's SIGTERM (end.bound.sanitizers) checks it in the "
           "ASan build.",
}

# Limitations of libmicrohttpd 0.9.75's parser that the glue cannot fix (cases limit="Ln"):
# what it does, the bound we promise instead, and the flag that bounds it. Each was a bug of
# this suite first ("was").
LIMITATIONS = {
    "L2": {"was": "B7",
           "what": "A line that starts with a NUL byte is an empty line to libmicrohttpd "
                   "(C strings), and empty lines before a request are skipped: a request line "
                   "of NUL bytes, or binary garbage starting with NUL after a valid request, "
                   "gets no answer; the connection waits for a request line.",
           "bound": "the head deadline shuts the connection down (no response); the requests "
                    "before it are answered.",
           "flag": "--idle-timeout (default 60 s)",
           "strict": "400 or close at once"},
    "L3": {"was": "B8",
           "what": "Many query parameters (about 130 or more `p=1`, a target far under "
                   "--max-url) exhaust libmicrohttpd's per-connection pool (--conn-buffer "
                   "8192) while it splits the target: no answer. The threaded modes close the "
                   "connection at once; evloop and coro close it at once when it is alone, "
                   "and otherwise (every full run here) leave it until the head deadline. "
                   "(Each such connection leaked until B12 was fixed.) (110 get our 400 \"too many "
                   "query parameters\", 120 libmicrohttpd's 431.)",
           "bound": "closed at once, or by the head deadline; no response either way.",
           "flag": "--idle-timeout (default 60 s); a larger --conn-buffer moves the threshold",
           "strict": "400, 414 or 431"},
    "L4": {"was": "B9",
           "what": "The client's half-close (FIN) is not noticed while a request head or "
                   "body is incomplete, or after a complete request was answered, when it "
                   "arrives in the same segment as the last bytes (the suite corks the socket "
                   "so that it always does). In the modes that drive libmicrohttpd's "
                   "edge-triggered epoll set (evloop, coro): the readiness edge is consumed "
                   "without reading to EOF. The threaded modes (poll(2), and blocking reads "
                   "with --threads 0) notice it at once. A held body no longer holds up "
                   "SIGTERM's drain (a request is in flight only once its body is complete).",
           "bound": "the deadline of the phase shuts the connection down: an incomplete head "
                    "(or an idle connection after an answer) at --idle-timeout, an incomplete "
                    "body at --read-timeout.",
           "flag": "--idle-timeout (head), --read-timeout (body, default 30 s)",
           "strict": "close (or 400) at once"},
    "L5": {"was": "B10",
           "what": "A chunk size over --max-body (0x100000, or ffffffffffffffff) is accepted "
                   "and the server waits for the chunk's data; a Content-Length that large "
                   "gets 413 at once, and 18 hex digits get libmicrohttpd's 413.",
           "bound": "the body deadline shuts the connection down (no response). Nothing "
                    "beyond --max-body is ever stored: the data is read and dropped.",
           "flag": "--read-timeout (default 30 s)",
           "strict": "413 (or 400) at once"},
}

# Accepted answers that a reader might not expect; listed in the report.
NOTES = {
    "N1": "505 (libmicrohttpd's HTML page) for an HTTP major version other than 1: RFC 9110 "
          "15.6.6 designates 505 for this; accepted as the one 5xx allowed.",
    "N2": "libmicrohttpd 0.9.75 sends its status line and headers twice for an invalid "
          "Content-Length (the first head's Content-Length frames the second head); the "
          "status (400/413) and the close are right, so it is accepted and marked.",
    "N3": "A malformed request line without a version (`GET`, `GET /x`, binary garbage) is "
          "closed without a response by libmicrohttpd in some forms and answered 400 in "
          "others; RFC 9112 3 says SHOULD 400, so both are accepted.",
    "N4": "libmicrohttpd treats the client's half-close as an abort of the request in "
          "progress: a complete request followed by FIN is answered, or the connection is "
          "closed without the answer, depending on when the FIN is read. RFC 9112 does not "
          "require either; both are accepted.",
    "N5": "`GET http://h/health` (absolute-form) gets 404: RFC 9112 3.2.2 says a server MUST "
          "accept the absolute-form. Not a safety matter, so accepted here; listed for the "
          "README's limits section or a later fix.",
}


class Case:
    def __init__(self, name, data, expect, after="sync", half_close=False, method="GET",
                 check=None, bug=None, note=None, instance="main", changes=None,
                 world=False, desc=None, limit=None, strict=None):
        self.name = name
        self.data = data if isinstance(data, bytes) else data.encode("latin-1")
        self.expect = [expect] if isinstance(expect, str) else list(expect)
        self.after = after
        self.half_close = half_close
        self.methods = method if isinstance(method, list) else [method] * len(self.expect)
        self.check = check          # fn(ctx, events) -> problem text or None
        self.bug = bug
        self.note = note
        self.instance = instance    # "main", or "big" (--max-body 1 MiB)
        self.changes = changes      # {item id: (name, qty)}: a valid write, verified
        self.world = world          # /updates: World rows may change as answered
        self.desc = desc            # how to show the request in the report (large ones)
        # A limitation case (LIMITATIONS): on the bound instance; `strict` is what HTTP wants
        # (patterns like `expect`, answered at once), shown but not required.
        self.limit = limit
        self.strict = ([strict] if isinstance(strict, str) else list(strict)) if strict \
            else None
        if limit:
            if instance != "main" or not strict:
                raise RuntimeError("%s: a limitation case runs on the bound instance and says "
                                   "what is strictly expected" % name)
            self.instance = "bound"
            self.methods = method if isinstance(method, list) else [method] * max(
                len(self.expect), len(self.strict))

    def shown(self, limit=70):
        if self.desc:
            return self.desc
        text = repr(self.data)[2:-1]
        if len(text) > limit:
            text = text[:limit] + "... (%d bytes)" % len(self.data)
        return text


CASES = []


def case(*args, **kw):
    c = Case(*args, **kw)
    if any(x.name == c.name for x in CASES):
        raise RuntimeError("duplicate case name %s" % c.name)
    CASES.append(c)
    return c


def b(x):
    return x if isinstance(x, bytes) else x.encode("latin-1")


def http(*lines, body=b""):
    """Lines joined with CRLF, the empty line, then the body."""
    return b"\r\n".join(b(x) for x in lines) + b"\r\n\r\n" + b(body)


def get(target, *headers, method="GET", version="HTTP/1.1"):
    return http(b(method) + b" " + b(target) + b" " + b(version), HOST, *headers)


def with_body(method, target, body, *headers, ctype=JSON_CT):
    body = b(body) if not isinstance(body, str) else body.encode("utf-8")
    hs = [ctype] if ctype else []
    return http(b(method) + b" " + b(target) + b" HTTP/1.1", HOST, *hs, *headers,
                b"Content-Length: %d" % len(body), body=body)


def chunked(method, target, raw_chunks, *headers, ctype=JSON_CT):
    hs = [ctype] if ctype else []
    return http(b(method) + b" " + b(target) + b" HTTP/1.1", HOST, *hs, *headers,
                b"Transfer-Encoding: chunked", body=raw_chunks)


def chunks(body, size=7):
    body = b(body)
    out = b"".join(b"%x\r\n%s\r\n" % (len(body[i:i + size]), body[i:i + size])
                   for i in range(0, len(body), size))
    return out + b"0\r\n\r\n"


# -- body checks -----------------------------------------------------------------------------

def exact(body):
    def run(ctx, evs):
        got = evs[0].resp.body
        return None if got == body else "body %r, expected %r" % (got[:200], body)
    return run


JSON_BODY = b'{"message":"Hello, World!"}'


def health_ok(ctx, evs):
    """GET /health's body (the model's name is not known here)."""
    try:
        value = json.loads(evs[0].resp.body)
    except ValueError as e:
        return "body is not JSON: %s" % e
    if not (isinstance(value, dict) and value.get("status") == "ok" and list(value) == [
            "status", "model"]):
        return "not GET /health's body: %r" % evs[0].resp.body[:200]
    return None
PLAINTEXT_BODY = b"Hello, World!"


def world_array(counts):
    """/queries, /cached-queries, /updates: a JSON array of n World objects, n in counts."""
    counts = counts if isinstance(counts, (set, tuple, list)) else {counts}

    def run(ctx, evs):
        try:
            value = json.loads(evs[0].resp.body)
        except ValueError as e:
            return "body is not JSON: %s" % e
        if not isinstance(value, list) or len(value) not in counts:
            return "expected a JSON array of %s objects, got %r" % (
                " or ".join(str(n) for n in sorted(counts)), evs[0].resp.body[:200])
        for o in value:
            if not (isinstance(o, dict) and list(o) == ["id", "randomNumber"]):
                return "not a World object: %r" % (o,)
        return None
    return run


def item_is(i):
    name, qty = SEED[i - 1]
    want = json.dumps({"id": i, "name": name, "qty": qty}, ensure_ascii=False,
                      separators=(",", ":")).encode("utf-8")

    def run(ctx, evs):
        got = evs[0].resp.body
        return None if got == want else "body %r, expected %r" % (got[:200], want)
    return run


def no_passwd(ctx, evs):
    for ev in evs:
        if ev.resp is not None and (b"root:" in ev.resp.body or b"[fonts]" in ev.resp.body):
            return "a file's content in the body: %r" % ev.resp.body[:200]
    return None


def all_of(*fns):
    def run(ctx, evs):
        for fn in fns:
            msg = fn(ctx, evs)
            if msg:
                return msg
        return None
    return run


def if_200(fn):
    """Apply fn only if the first answer is a 200 (for cases where 404 is also fine)."""
    def run(ctx, evs):
        return fn(ctx, evs) if evs[0].status == 200 else None
    return run


# -- lenient integer semantics (README "Parameters"), for expected counts ----------------------

def server_unescape(s):
    """The server's decoding: %XX except %00 and malformed escapes, which stay as they are."""
    out = bytearray()
    i = 0
    raw = b(s)
    while i < len(raw):
        m = re.match(rb"%([0-9A-Fa-f]{2})", raw[i:])
        if m and m.group(1) != b"00":
            out.append(int(m.group(1), 16))
            i += 3
        else:
            out.append(raw[i])
            i += 1
    return bytes(out)


def clamp_count(value):
    v = server_unescape(value)
    if not re.fullmatch(rb"[0-9]+", v):
        return 1
    return max(1, min(500, int(v)))


# =============================================================================================
# The table
# =============================================================================================

# -- controls: the harness itself ------------------------------------------------------------
case("control.health", get("/health"), "200j")
case("control.json", get("/json"), "200j", check=exact(JSON_BODY))
case("control.item", get("/items/2"), "200j", check=item_is(2))
case("control.put-same", with_body("PUT", "/items/2", '{"name":"b\u00e9ta \u2713","qty":2}'),
     "200j", check=item_is(2))

# -- request line ----------------------------------------------------------------------------
case("reqline.missing-version", get("/health", version="").replace(b" \r\n", b"\r\n"),
     "400|close", note="N3")
case("reqline.missing-version-trailing-space", http(b"GET /health ", HOST), "400|close",
     note="N3")
case("reqline.get-alone", b"GET\r\n\r\n", "400|close", note="N3")
case("reqline.get-space", b"GET \r\n\r\n", "400|close", note="N3")
case("reqline.http09", b"GET /health\r\n", "400|close", half_close=True, note="N3")
case("reqline.http09-complete", b"GET /json\r\n\r\n", "400|close", note="N3")
case("reqline.empty-line-only", b"\r\n", "close", half_close=True, limit="L4", strict="close")
case("reqline.leading-empty-lines", b"\r\n\r\n" + get("/health"), "200j|400")
case("reqline.lowercase-method", get("/health", method="get"), "405j|400")
case("reqline.lowercase-method-unrouted", get("/nope", method="get"), "404j|405j|400")
case("reqline.unknown-method-brew", get("/health", method="BREW"), "405j|400")
case("reqline.unknown-method-brew-coffee", get("/coffee", method="BREW"), "404j|405j|400")
case("reqline.trace", get("/health", "X-Secret: s", method="TRACE"), "405j|400")
case("reqline.connect", http(b"CONNECT h:443 HTTP/1.1", HOST), "4xx")
case("reqline.options-asterisk", get("*", method="OPTIONS"), "4xx")
case("reqline.get-asterisk", get("*"), "4xx")
case("reqline.long-method-5000", get("/health", method="A" * 5000), "405j|400|414|431",
     desc="'A'*5000 + ' /health HTTP/1.1' (fits --conn-buffer)")
case("reqline.long-method-10000", get("/health", method="A" * 10000), "400|414|431",
     desc="'A'*10000 + ' /health HTTP/1.1' (over --conn-buffer)")
case("reqline.method-non-token", get("/health", method="GE(T"), "405j|400")
case("reqline.method-nul", get("/health", method="G\x00ET"), "405j|400")
case("reqline.method-utf8", get("/health", method="G\u00c9T".encode("utf-8").decode("latin-1")),
     "405j|400")
case("reqline.double-space", http(b"GET  /health HTTP/1.1", HOST), "200j|400")
case("reqline.tabs", http(b"GET\t/health\tHTTP/1.1", HOST), "200j|400|close", note="N3")
case("reqline.four-words", http(b"GET /health HTTP/1.1 extra", HOST), "400|close")
case("reqline.space-in-target", http(b"GET /json x HTTP/1.1", HOST), "400|404j|close")
case("reqline.version-lowercase", get("/health", version="http/1.1"), "400|505|close",
     note="N1")
case("reqline.version-garbage", get("/health", version="FOO/1.1"), "400|close")
case("reqline.version-1x", get("/health", version="HTTP/1.x"), "400|505|close", note="N1")
case("reqline.version-1.2", get("/health", version="HTTP/1.2"), "200j|400|505", note="N1")
case("reqline.version-2.0", get("/health", version="HTTP/2.0"), "400|505|close", note="N1")
case("reqline.version-9.9", get("/health", version="HTTP/9.9"), "400|505|close", note="N1")
case("reqline.version-long", get("/health", version="HTTP/1.1111111111111111111111"),
     "400|505|close", note="N1")
case("reqline.absolute-form", get("http://h/health"), "200j|400|404j", note="N5")
case("reqline.no-leading-slash", get("health"), "400|404j")
case("reqline.garbage-binary", bytes(range(1, 256)).replace(b"\r", b"").replace(b"\n", b"") +
     b"\r\n\r\n", "400|close", desc="bytes 0x01..0xff (no CR/LF), then CRLF CRLF", note="N3")
case("reqline.garbage-no-newline", b"\x16\xfe\xff\x00" * 256, "400|close", half_close=True,
     limit="L4", strict="400|close",
     desc="1 KiB of binary without a line end, then the client half-closes")
case("reqline.only-nul-bytes", b"\x00" * 100 + b"\r\n\r\n", "400|close", limit="L2",
     strict="400|close")
case("reqline.nul-then-request", b"\x00" + get("/health"), "400|close", limit="L2",
     strict="400|close")

# HTTP/2 and TLS on the plain port.
H2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
H2_SETTINGS = b"\x00\x00\x00\x04\x00\x00\x00\x00\x00"
case("proto.h2-prior-knowledge", H2_PREFACE + H2_SETTINGS, "400|505|close", note="N1",
     desc="HTTP/2 connection preface + empty SETTINGS frame")
case("proto.h2c-upgrade", get("/health", "Connection: Upgrade, HTTP2-Settings",
                              "Upgrade: h2c", "HTTP2-Settings: AAMAAABkAAQAAP__"), "200j|400")
case("proto.websocket-upgrade", get("/health", "Connection: Upgrade", "Upgrade: websocket",
                                    "Sec-WebSocket-Version: 13",
                                    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ=="),
     "200j|400|426")


def tls_client_hello(random32):
    """A TLS 1.2-style ClientHello record (fixed bytes; no SNI)."""
    suites = b"\x13\x01\x13\x02\xc0\x2b\xc0\x2f\x00\x9c\x00\x2f"
    point_formats = b"\x00\x0b\x00\x02\x01\x00"   # (supported_groups is type 0x000a: LF)
    versions = b"\x00\x2b\x00\x03\x02\x03\x04"
    renegotiation = b"\xff\x01\x00\x01\x00"
    exts = point_formats + versions + renegotiation
    body = (b"\x03\x03" + random32 + b"\x00" + len(suites).to_bytes(2, "big") + suites +
            b"\x01\x00" + len(exts).to_bytes(2, "big") + exts)
    hs = b"\x01" + len(body).to_bytes(3, "big") + body
    return b"\x16\x03\x01" + len(hs).to_bytes(2, "big") + hs


TLS_HELLO = tls_client_hello(bytes(range(0x20, 0x40)))
assert b"\n" not in TLS_HELLO and b"\r" not in TLS_HELLO
case("proto.tls-client-hello", TLS_HELLO, "400|close", half_close=True, limit="L4",
     strict="400|close",
     desc="TLS ClientHello record (%d bytes, no CR/LF); the client then half-closes"
     % len(TLS_HELLO))
TLS_HELLO_LF = tls_client_hello(b"\r\n" * 16)
case("proto.tls-client-hello-crlf", TLS_HELLO_LF, "400|close", note="N3",
     desc="TLS ClientHello whose random is CR LF x16 (the server can see line ends)")

# -- headers ---------------------------------------------------------------------------------
case("header.no-colon", get("/health", "NoColonHere"), "400")
case("header.empty-name", get("/health", ": value"), "400", after="close",
     desc="GET /health, Host, then `: value` as the last header line (was L1)")
# Elsewhere than last, the same line ended the head (B11): what follows was a new request.
case("header.empty-name-first", http(b"GET /health HTTP/1.1", b": value", HOST), "400",
     after="close", desc="GET /health, `: value` as the first header line, then Host")
ITEM2_JSON = '{"name":"b\u00e9ta \u2713","qty":2}'.encode("utf-8")
case("header.empty-name-then-fields",
     http(b"PUT /items/2 HTTP/1.1", HOST, b": x", JSON_CT, b"Content-Length: %d" % len(ITEM2_JSON),
          body=ITEM2_JSON), "400", after="close",
     desc="PUT /items/2, Host, `: x`, then Content-Type and Content-Length, item 2 unchanged")
# Request smuggling: the line after Content-Length shifts the body by the bytes that follow
# it (X-Pad, its CRLF and the head's empty line: 22 bytes), so the body's last 22 bytes, a
# complete request, would be read as the next request on the connection.
SMUGGLED_10 = b"GET /json HTTP/1.0\r\n\r\n"
PAD_LINE = b"X-Pad: " + b"p" * 11
assert len(PAD_LINE) + 4 == len(SMUGGLED_10)
for (label, line, shown) in [("empty-name", b": x", "`: x`"),
                             ("nul-line", b"\x00X-A: b", "`<NUL>X-A: b`")]:
    body = b'{"name":1,"qty":1}' + SMUGGLED_10
    case("header.%s-after-content-length" % label,
         http(b"POST /items HTTP/1.1", HOST, JSON_CT, b"Content-Length: %d" % len(body), line,
              PAD_LINE, body=body), "400", after="close",
         desc="POST /items, Content-Length: %d, then %s and `X-Pad: ppppppppppp`; the body: an "
         "invalid item, then `GET /json HTTP/1.0` CRLF CRLF (must not be answered)"
         % (len(body), shown))
case("header.space-before-colon", get("/health", "X-A : b"), "400")
case("header.space-before-colon-content-length",
     http(b"POST /items HTTP/1.1", HOST, JSON_CT, b"Content-Length : 30"), "400",
     desc="POST /items with `Content-Length : 30` and no body: never waits for 30 bytes")
case("header.tab-before-colon", get("/health", "X-A\t: b"), "400")
case("header.nul-in-name", get("/health", "X-\x00A: b"), "400")
case("header.nul-in-value", get("/health", "X-A: a\x00b"), "200j|400")
case("header.nul-in-content-type",
     with_body("POST", "/items", '{"name":"x","qty":-1}', ctype=b"Content-Type: application/"
               b"json\x00text/plain"), "400|415j")
case("header.obs-fold", get("/health", "X-A: b", " continued"), "400", after="close")
case("header.obs-fold-first", http(b"GET /health HTTP/1.1", b" X-A: b", HOST), "200j|400")
case("header.obs-fold-tab", get("/health", "X-A: b", "\tcontinued"), "400", after="close")
case("header.cr-without-lf", get("/health", "X-A: a\rX-B: b"), "200j|400")
case("header.cr-without-lf-content-length",
     http(b"POST /items HTTP/1.1", HOST, JSON_CT, b"X-A: a\rContent-Length: 30"), "400",
     desc="POST /items, `X-A: a<CR>Content-Length: 30`, no body: never waits for 30 bytes")
case("header.bare-lf", b"GET /health HTTP/1.1\nHost: h\n\n", "200j|400")
case("header.bare-lf-mixed", b"GET /health HTTP/1.1\r\nHost: h\nX-A: b\r\n\n", "200j|400")
case("header.obs-text-value", get("/health", "X-A: \xff\xfe caf\xe9"), "200j|400")
case("header.utf8-name", get("/health", "X-\u00c9: b".encode("utf-8").decode("latin-1")),
     "200j|400")
case("header.missing-host", http(b"GET /health HTTP/1.1"), "400")
case("header.two-hosts", http(b"GET /health HTTP/1.1", HOST, b"Host: other"), "400")
case("header.missing-host-http10", http(b"GET /health HTTP/1.0"), "200j")
case("header.63-plus-host", get("/health", *["X-H%d: v" % i for i in range(63)]), "200j",
     desc="GET /health with Host + 63 headers (= --max-headers)")
case("header.64-plus-host", get("/health", *["X-H%d: v" % i for i in range(64)]), "431j",
     desc="GET /health with Host + 64 headers (over --max-headers)")
case("header.200", get("/health", *["X-H%d: v" % i for i in range(200)]), "431",
     desc="GET /health with 200 headers")
case("header.2000-tiny", get("/health", *["X%d:" % i for i in range(2000)]), "431",
     desc="GET /health with 2000 empty headers (over --conn-buffer)")
case("header.7kb-value", get("/health", "X-Big: " + "a" * 7000), "200j",
     desc="GET /health with a 7,000-byte header value (fits --conn-buffer)")
case("header.20kb-value", get("/health", "X-Big: " + "a" * 20000), "431",
     desc="GET /health with a 20,000-byte header value")
case("header.20kb-name", get("/health", "X" * 20000 + ": v"), "431",
     desc="GET /health with a 20,000-byte header name")
case("header.1mb-value", get("/health", "X-Big: " + "a" * (1 << 20)), "431|close",
     desc="GET /health with a 1 MiB header value")
case("header.5000-name", get("/health", "X" * 5000 + ": v"), "200j",
     desc="GET /health with a 5,000-byte header name")
case("header.expect-unknown", get("/health", "Expect: teapot"), "200j|417")

# -- request target: length -------------------------------------------------------------------
case("target.5000-bytes", get("/health?" + "a" * 5000), "414",
     desc="GET /health?aaaa... (5,000 bytes: over --max-url, fits --conn-buffer)")
case("target.10000-bytes", get("/health?" + "a" * 10000), "414|431",
     desc="GET /health?aaaa... (10,000 bytes: over --conn-buffer)")
case("target.path-5000", get("/" + "a" * 5000), "414|404j",
     desc="GET /aaaa... (a 5,000-byte path)")
case("target.17-params", get("/json?" + "&".join("p%d=1" % i for i in range(17))), "400j")
case("target.16-params", get("/json?" + "&".join("p%d=1" % i for i in range(16))), "200j",
     check=exact(JSON_BODY))
case("target.110-params", get("/json?" + "&".join("p=1" for _ in range(110))), "400j|414|431",
     desc="GET /json?p=1&p=1... (110 parameters)")
case("target.200-params", get("/json?" + "&".join("p=1" for _ in range(200))),
     "400j|414|431|close", limit="L3", strict="400j|414|431",
     desc="GET /json?p=1&p=1... (200 parameters, 799 bytes)")
case("target.1000-params", get("/json?" + "&".join("p=1" for _ in range(1000))),
     "400j|414|431|close", limit="L3", strict="400j|414|431",
     desc="GET /json?p=1&p=1... (1,000 parameters, 3,999 bytes)")

# -- percent-encoding, NUL bytes and invalid UTF-8 in the path ---------------------------------
for (label, target, pat, chk) in [
        ("pct-alone", "/%", "404j|400", None),
        ("pct-zz", "/%zz", "404j|400", None),
        ("pct-truncated", "/%0", "404j|400", None),
        ("pct-after-route", "/json%", "404j|400", None),
        ("pct-half-after-route", "/json%2", "404j|400", None),
        ("pct-valid-letters", "/j%73on", "200j|404j", if_200(exact(JSON_BODY))),
        ("pct-whole-path", "/%6a%73%6f%6e", "200j|404j", if_200(exact(JSON_BODY))),
        ("pct-slash", "/%2fjson", "404j|400", None),
        ("pct-00", "/json%00", "404j|400", None),
        ("pct-00-suffix", "/json%00.html", "404j|400", None),
        ("pct-00-id", "/items/1%00", "404j|400", None),
        ("overlong-slash", "/%c0%afjson", "404j|400", None),
        ("overlong-slash-3byte", "/%e0%80%afjson", "404j|400", None),
        ("overlong-nul", "/json%c0%80", "404j|400", None),
        ("utf8-invalid-escaped", "/json%ff%fe", "404j|400", None),
        ("utf8-invalid-raw", "/json\xff\xfe", "404j|400", None),
        ("utf8-overlong-raw", "/\xc0\xafjson", "404j|400", None),
        ("utf8-surrogate-raw", "/json\xed\xa0\x80", "404j|400", None),
        ("utf8-valid-raw", "/caf\xc3\xa9", "404j|400", None),
        ("fragment", "/json#frag", "200j|404j|400", if_200(exact(JSON_BODY))),
        ("control-chars", "/json\x01\x7f", "404j|400", None),
]:
    case("path." + label, get(target), pat, check=chk)

# Raw NUL bytes: the target must not be silently shortened.
case("path.nul-raw", get("/json\x00garbage"), "400|404j")
case("path.nul-raw-end", get("/json\x00"), "400|404j")
case("path.nul-raw-item", get("/items/1\x00junk"), "400|404j")
case("path.nul-raw-query", get("/io?ms=1\x0000000"), "400",
     desc="GET /io?ms=1<NUL>00000: must not wait 1 ms, nor 100,000")
case("path.nul-raw-lenient-param", get("/queries?queries=5\x00"), "400|200j",
     check=if_200(world_array(1)), desc="GET /queries?queries=5<NUL>: 400, or 1 row (not a "
     "plain integer), never 5 rows")

# -- path traversal ---------------------------------------------------------------------------
for (label, target, pat) in [
        ("dotdot-passwd", "/../etc/passwd", "404j|400"),
        ("dotdot-deep", "/../../../../../../etc/passwd", "404j|400"),
        ("dotdot-item-to-json", "/items/../json", "404j|400|200j"),
        ("dotdot-json-self", "/json/../json", "404j|400|200j"),
        ("dotdot-escaped", "/%2e%2e/%2e%2e/etc/passwd", "404j|400"),
        ("dotdot-escaped-slash", "/..%2f..%2fetc%2fpasswd", "404j|400"),
        ("dotdot-all-escaped", "/%2e%2e%2f%2e%2e%2fetc%2fpasswd", "404j|400"),
        ("dotdot-overlong", "/%c0%ae%c0%ae/%c0%ae%c0%ae/etc/passwd", "404j|400"),
        ("backslashes", "/..\\..\\windows\\win.ini", "404j|400"),
        ("absolute-file", "/etc/passwd", "404j|400"),
        ("dot-segment", "/./json", "404j|400|200j"),
        ("double-slash", "//json", "404j|400|200j"),
        ("trailing-slash", "/json/", "404j|400|200j"),
        ("uppercase", "/JSON", "404j|400"),
        ("item-dotdot", "/items/..%2f1", "404j|400"),
        ("item-dotdot-plain", "/items/1/../2", "404j|400"),
        ("proc-self", "/../../proc/self/environ", "404j|400"),
]:
    case("traversal." + label, get(target), pat,
         check=all_of(no_passwd, if_200(exact(JSON_BODY))))

# -- query parameters ------------------------------------------------------------------------
BAD_NUMBERS = [
    ("negative", "-1"), ("minus-zero", "-0"), ("float", "1.5"), ("exponent", "1e3"),
    ("hex", "0x10"), ("plus", "+5"), ("leading-space", "%205"), ("trailing-space", "5%20"),
    ("alpha", "abc"), ("empty", ""), ("digits-then-alpha", "5abc"),
    ("u64-overflow", "18446744073709551616"), ("i64-overflow", "9223372036854775808"),
    ("400-digits", "9" * 400), ("sql-or", "1%20OR%201=1"),
    ("sql-drop", "1');%20DROP%20TABLE%20items;--"), ("pct00", "5%00"), ("pct-bad", "5%zz"),
    ("fullwidth-digit", "%EF%BC%95"), ("invalid-utf8", "%ff"), ("invalid-utf8-raw", "\xff"),
    ("overlong-digit", "%c0%b5"), ("pct-alone", "%"), ("pct-truncated", "5%0"),
]

# Lenient (TechEmpower): anything not a plain integer is 1, above 500 is 500; never an error.
for (label, value) in BAD_NUMBERS:
    n = clamp_count(value)
    case("param.queries.%s" % label, get("/queries?queries=" + value), "200j",
         check=world_array(n))
    case("param.count.%s" % label, get("/cached-queries?count=" + value), "200j",
         check=world_array(n))
for (label, value) in [("negative", "-1"), ("alpha", "abc"), ("sql-drop",
                                                             "1');%20DROP%20TABLE%20World;--")]:
    case("param.updates.%s" % label, get("/updates?queries=" + value), "200j",
         check=world_array(clamp_count(value)), world=True)
case("param.queries.zero", get("/queries?queries=0"), "200j", check=world_array(1))
case("param.queries.501", get("/queries?queries=501"), "200j", check=world_array(500))
case("param.queries.duplicate", get("/queries?queries=2&queries=3"), "200j",
     check=world_array({2, 3}))
case("param.queries.name-only", get("/queries?queries"), "200j", check=world_array(1))
case("param.queries.name-pct00", get("/queries?queries%00=5"), "200j|400j",
     check=if_200(world_array(1)))
case("param.queries.raw-utf8-key", get("/queries?qu\xc3\xa9ries=5"), "200j",
     check=world_array(1))

# Strict: a 400 for anything but an in-range plain integer.
STRICT = [
    ("iterations", "/cpu?iterations=%s", ["10000001"]),
    ("ms", "/io?ms=%s", ["10001"]),
    ("calls", "/fanout?ms=0&calls=%s", ["0", "1001"]),
    ("fanout-ms", "/fanout?calls=1&ms=%s", ["10001"]),
    ("upstream-calls", "/upstream?ms=0&calls=%s", ["0", "1001"]),
    ("upstream-ms", "/upstream?calls=1&ms=%s", ["10001"]),
    ("limit", "/items?limit=%s", ["0", "101"]),
    ("after", "/items?after=%s", []),
]
for (pname, fmt, out_of_range) in STRICT:
    for (label, value) in BAD_NUMBERS + [("range-%s" % v, v) for v in out_of_range]:
        case("param.%s.%s" % (pname, label), get(fmt % value), "400j")
for (pname, target) in [("iterations", "/cpu"), ("ms", "/io"), ("calls", "/fanout?ms=0"),
                        ("fanout-ms", "/fanout?calls=1"), ("upstream-calls", "/upstream?ms=0"),
                        ("upstream-ms", "/upstream?calls=1")]:
    case("param.%s.missing" % pname, get(target), "400j")
# Valid parameters with no --upstream (the suite's servers have none): 503, never a call.
case("param.upstream.valid-unconfigured", get("/upstream?calls=1000&ms=10000"), "503j")
case("param.upstream.duplicate-bad-second", get("/upstream?calls=1&calls=abc&ms=0"),
     "503j|400j")
case("param.iterations.duplicate-bad-second", get("/cpu?iterations=5&iterations=abc"),
     "200j|400j")
case("param.after.max", get("/items?after=%d" % INT64_MAX), "200j",
     check=exact(b'{"items":[],"next":null}'))

# Item ids in the path: anything but 1..INT64_MAX in plain decimal is a 404, for every method.
BAD_IDS = [
    ("zero", "0"), ("negative", "-1"), ("float", "1.5"), ("alpha", "abc"),
    ("leading-zero", "01"), ("plus", "+1"), ("leading-space", "%201"),
    ("trailing-space", "1%20"), ("i64-max-missing", str(INT64_MAX)),
    ("i64-overflow", "9223372036854775808"), ("u64-overflow", "18446744073709551616"),
    ("400-digits", "9" * 400), ("sql-or", "1%20OR%201=1"), ("sql-quote", "1'%20OR%20'1'='1"),
    ("sql-drop", "1;DROP%20TABLE%20items"), ("sql-comment", "1--"), ("pct00", "1%00"),
    ("hex", "0x1"), ("empty", ""), ("two-segments", "1/2"), ("invalid-utf8", "%ff"),
    ("fullwidth", "%EF%BC%91"),
]
PWNED = '{"name":"pwned","qty":666}'
for (label, value) in BAD_IDS:
    target = "/items/" + value
    case("id.get.%s" % label, get(target), "404j")
    case("id.put.%s" % label, with_body("PUT", target, PWNED), "404j")
    case("id.delete.%s" % label, get(target, method="DELETE"), "404j")
case("id.get.pct-encoded-digit", get("/items/%31"), "200j|404j", check=if_200(item_is(1)))
case("id.put.nul-raw", with_body("PUT", "/items/4\x00junk", PWNED), "400|404j",
     desc="PUT /items/4<NUL>junk {\"name\":\"pwned\",\"qty\":666}: must not write item 4")
case("id.delete.nul-raw", get("/items/4\x00junk", method="DELETE"), "400|404j",
     desc="DELETE /items/4<NUL>junk: must not delete item 4")

# -- JSON bodies (POST /items and PUT /items/2) ------------------------------------------------
BAD_BODIES = [
    # malformed / truncated
    ("empty", ""), ("space", " "), ("open-brace", "{"), ("truncated-key", '{"name":'),
    ("truncated-object", '{"name":"x","qty":1'), ("truncated-string", '{"name":"x'),
    ("bare-word", "nul"), ("single-quotes", "{'name':'x','qty':1}"),
    ("trailing-garbage", '{"name":"x","qty":1}x'), ("two-objects", '{"name":"x","qty":1}{}'),
    ("trailing-comma", '{"name":"x","qty":1,}'), ("missing-comma", '{"name":"x" "qty":1}'),
    ("unquoted-key", '{name:"x",qty:1}'), ("comment", '{"name":"x",/*c*/"qty":1}'),
    ("bom-and-bad-qty", '\ufeff{"name":"x","qty":-1}'),
    # wrong types and values
    ("array", "[]"), ("string", '"x"'), ("number", "1"), ("null", "null"), ("true", "true"),
    ("name-number", '{"name":1,"qty":1}'), ("name-null", '{"name":null,"qty":1}'),
    ("name-array", '{"name":["x"],"qty":1}'), ("name-object", '{"name":{"a":1},"qty":1}'),
    ("qty-string", '{"name":"x","qty":"1"}'), ("qty-float", '{"name":"x","qty":1.5}'),
    ("qty-float-integral", '{"name":"x","qty":1.0}'), ("qty-exponent", '{"name":"x","qty":1e3}'),
    ("qty-negative", '{"name":"x","qty":-1}'), ("qty-bool", '{"name":"x","qty":true}'),
    ("qty-null", '{"name":"x","qty":null}'),
    ("qty-i64-overflow", '{"name":"x","qty":9223372036854775808}'),
    ("qty-i64-underflow", '{"name":"x","qty":-9223372036854775809}'),
    ("qty-huge-float", '{"name":"x","qty":1e400}'), ("qty-nan", '{"name":"x","qty":NaN}'),
    ("qty-infinity", '{"name":"x","qty":Infinity}'), ("qty-hex", '{"name":"x","qty":0x10}'),
    ("qty-leading-zero", '{"name":"x","qty":01}'), ("qty-plus", '{"name":"x","qty":+1}'),
    ("missing-qty", '{"name":"x"}'), ("missing-name", '{"qty":1}'), ("empty-object", "{}"),
    ("unknown-key", '{"name":"x","qty":1,"extra":1}'), ("id-key", '{"id":1,"name":"x","qty":1}'),
    ("name-empty", '{"name":"","qty":1}'), ("name-201", '{"name":"%s","qty":1}' % ("x" * 201)),
    # duplicates
    ("duplicate-name", '{"name":"x","name":"y","qty":1}'),
    ("duplicate-qty", '{"name":"x","qty":1,"qty":2}'),
    ("duplicate-qty-same", '{"qty":1,"name":"x","qty":1}'),
    # strings
    ("name-escaped-nul", '{"name":"a\\u0000b","qty":1}'),
    ("name-lone-surrogate", '{"name":"\\ud800","qty":1}'),
    ("name-lone-low-surrogate", '{"name":"\\udc00x","qty":1}'),
    ("name-bad-escape", '{"name":"\\x41","qty":1}'),
    ("name-short-escape", '{"name":"\\u12","qty":1}'),
    ("name-raw-control", '{"name":"a\nb","qty":1}'),
    # SQL-looking, in bodies that are invalid for another reason
    ("sql-name-bad-qty", '{"name":"\'); DROP TABLE items;--","qty":-1}'),
    ("sql-qty", '{"name":"x","qty":"1 OR 1=1"}'),
    ("sql-key", '{"name":"x","qty":1,"\'); DROP TABLE items;--":1}'),
    ("sql-id-key", '{"name":"x","qty":1,"id":"1 OR 1=1"}'),
]
RAW_BAD_BODIES = [  # bytes that are not UTF-8
    ("name-raw-nul", b'{"name":"a\x00b","qty":1}'),
    ("name-invalid-utf8", b'{"name":"\xff\xfe","qty":1}'),
    ("name-overlong-utf8", b'{"name":"\xc0\xaf","qty":1}'),
    ("name-surrogate-utf8", b'{"name":"\xed\xa0\x80","qty":1}'),
    ("name-truncated-utf8", b'{"name":"caf\xc3","qty":1}'),
]
for (label, body) in BAD_BODIES + RAW_BAD_BODIES:
    case("body.post.%s" % label, with_body("POST", "/items", body), "400j")
    case("body.put.%s" % label, with_body("PUT", "/items/2", body), "400j")

# Valid writes with SQL-looking and awkward names: stored exactly, nothing else touched, then
# restored (so the whole-run comparison still holds).
for (i, label, name) in [(1, "sql-drop", "'); DROP TABLE items;--"),
                         (1, "sql-or", "1 OR 1=1"), (3, "quotes-and-escapes", 'a"b\\c%s%n\'')]:
    body = json.dumps({"name": name, "qty": 7}, ensure_ascii=False)
    case("write.put.%s" % label, with_body("PUT", "/items/%d" % i, body), "200j",
         changes={i: (name, 7)})
    orig = json.dumps({"name": SEED[i - 1][0], "qty": SEED[i - 1][1]}, ensure_ascii=False)
    case("write.put.%s.restore" % label, with_body("PUT", "/items/%d" % i, orig), "200j",
         changes={i: SEED[i - 1]}, check=item_is(i))

# Content types.
GOOD_ITEM = '{"name":"x","qty":1}'
for (label, ct, pat) in [
        ("missing", None, "415j"), ("text-plain", b"Content-Type: text/plain", "415j"),
        ("json-prefix", b"Content-Type: application/jsonx", "415j"),
        ("json-seq", b"Content-Type: application/json-seq", "415j"),
        ("form", b"Content-Type: application/x-www-form-urlencoded", "415j"),
        ("multipart", b"Content-Type: multipart/form-data; boundary=x", "415j"),
        ("empty", b"Content-Type:", "415j"),
]:
    case("ctype.post.%s" % label, with_body("POST", "/items", GOOD_ITEM, ctype=ct), pat)
case("ctype.two-headers", with_body("POST", "/items", '{"name":"x","qty":-1}',
                                    b"Content-Type: text/plain"), "400j|415j")

# Sizes and nesting. --max-body is 65536 on the main instance.
def pad_body(total, head=b'{"name":"b\xc3\xa9ta \xe2\x9c\x93","qty":2}'):
    return head + b" " * (total - len(head))


case("size.put-valid-at-limit", with_body("PUT", "/items/2", pad_body(MAX_BODY)), "200j",
     check=item_is(2), desc="PUT /items/2, a valid body padded to exactly 65,536 bytes")
case("size.post-malformed-at-limit",
     with_body("POST", "/items", b'{"name":"' + b"a" * (MAX_BODY - 9)), "400j",
     desc="POST /items, a 65,536-byte unterminated string")
case("size.post-one-over", with_body("POST", "/items", pad_body(MAX_BODY + 1)), "413j",
     after="close", desc="POST /items, a valid body padded to 65,537 bytes")
case("size.post-5mb", with_body("POST", "/items", pad_body(5 << 20)), "413j", after="close",
     desc="POST /items, 5 MiB (declared in Content-Length, sent at once)")
case("size.declared-only", http(b"POST /items HTTP/1.1", HOST, JSON_CT,
                                b"Content-Length: 100000"), "413j", after="close",
     desc="POST /items, Content-Length: 100000, no body sent")
case("size.expect-100-over-limit",
     http(b"POST /items HTTP/1.1", HOST, JSON_CT, b"Content-Length: 100000",
          b"Expect: 100-continue"), "413j", after="close",
     desc="POST /items, Expect: 100-continue, Content-Length: 100000: 413 before any body")
case("size.get-declared-over-limit", http(b"GET /json HTTP/1.1", HOST,
                                          b"Content-Length: 100000"), "413j|400j",
     after="close", desc="GET /json with Content-Length: 100000 and no body")
case("size.chunked-over-limit",
     chunked("POST", "/items", b"".join(b"3e8\r\n" + b" " * 1000 + b"\r\n" for _ in range(70)) +
             b"0\r\n\r\n"), "413j", after="close",
     desc="POST /items, chunked, 70 chunks of 1,000 bytes")
case("size.chunked-5mb", chunked("POST", "/items", b"".join(
    b"186a0\r\n" + b" " * 100000 + b"\r\n" for _ in range(52)) + b"0\r\n\r\n"),
    "413j|close", after="close", desc="POST /items, chunked, 52 chunks of 100,000 bytes")

case("nest.array-65000", with_body("POST", "/items", "[" * 65000), "400j",
     desc="POST /items, 65,000 x '[' (under --max-body)")
case("nest.object-13000", with_body("POST", "/items", '{"a":' * 13000), "400j",
     desc="POST /items, 13,000 x '{\"a\":' (65,000 bytes)")
case("nest.closed-array-32000", with_body("PUT", "/items/2", "[" * 32000 + "]" * 32000),
     "400j", desc="PUT /items/2, 32,000 x '[' then 32,000 x ']'")
case("nest.in-name-valid-depth", with_body("POST", "/items", '{"name":{"a":{"b":1}},"qty":1}'),
     "400j")
case("nest.array-100000-over-limit", with_body("POST", "/items", "[" * 100000), "413j",
     after="close", desc="POST /items, 100,000 x '[' (over --max-body)")
case("nest.object-100000-over-limit", with_body("POST", "/items", '{"a":' * 100000), "413j",
     after="close", desc="POST /items, 100,000 x '{\"a\":' (over --max-body)")
# The same on an instance with --max-body 1 MiB, so that the depth check itself is reached.
case("nest.big.array-100000", with_body("POST", "/items", "[" * 100000), "400j",
     instance="big", desc="POST /items, 100,000 x '[' (--max-body 1 MiB)")
case("nest.big.object-100000", with_body("POST", "/items", '{"a":' * 100000), "400j",
     instance="big", desc="POST /items, 100,000 x '{\"a\":' (--max-body 1 MiB)")
case("nest.big.closed-100000", with_body("POST", "/items", "[" * 100000 + "]" * 100000),
     "400j", instance="big", desc="POST /items, 100,000 x '[' then 100,000 x ']'")
case("nest.big.mixed-100000", with_body("POST", "/items", '[{"a":' * 50000), "400j",
     instance="big", desc="POST /items, 50,000 x '[{\"a\":'")
case("nest.big.string-900k", with_body("POST", "/items", '{"name":"%s","qty":1}' % ("x" * 900000)),
     "400j", instance="big", desc="POST /items, a 900,000-character name")
case("nest.big.chunked-array-100000", chunked("POST", "/items", chunks("[" * 100000, 4096)),
     "400j", instance="big", desc="POST /items, chunked, 100,000 x '['")

# -- bodies where none belongs ----------------------------------------------------------------
case("nobody.get-json", with_body("GET", "/json", "{}"), "400j")
case("nobody.get-health-chunked", chunked("GET", "/health", b"2\r\n{}\r\n0\r\n\r\n"), "400j")
case("nobody.get-item", with_body("GET", "/items/1", "{}"), "400j")
case("nobody.delete-item", with_body("DELETE", "/items/3", '{"name":"x","qty":1}'), "400j")
case("nobody.delete-item-chunked", chunked("DELETE", "/items/3", chunks('{"a":1}')), "400j")
case("nobody.head-json", with_body("HEAD", "/json", "{}"), "400j", method="HEAD")
case("nobody.get-updates", with_body("GET", "/updates?queries=5", "{}"), "400j")
case("nobody.get-zero-length", http(b"GET /json HTTP/1.1", HOST, b"Content-Length: 0"), "200j",
     check=exact(JSON_BODY))

# -- chunked bodies ---------------------------------------------------------------------------
ITEM2 = '{"name":"b\u00e9ta \u2713","qty":2}'.encode("utf-8")
INVALID = b'{"name":1,"qty":1}'
case("chunked.valid", chunked("PUT", "/items/2", chunks(ITEM2)), "200j", check=item_is(2))
case("chunked.one-byte-chunks", chunked("PUT", "/items/2", chunks(ITEM2, 1)), "200j",
     check=item_is(2))
case("chunked.extension", chunked("PUT", "/items/2", b"%x;foo=bar\r\n%s\r\n0;x\r\n\r\n"
                                  % (len(ITEM2), ITEM2)), "200j", check=item_is(2))
case("chunked.extension-quoted", chunked("PUT", "/items/2", b"%x;a=\"x;y\\\"z\"\r\n%s\r\n0\r\n\r\n"
                                         % (len(ITEM2), ITEM2)), "200j|400",
     check=if_200(item_is(2)))
case("chunked.extension-long", chunked("PUT", "/items/2", b"%x;%s\r\n%s\r\n0\r\n\r\n"
                                       % (len(ITEM2), b"e" * 6000, ITEM2)), "200j|400",
     check=if_200(item_is(2)), desc="PUT /items/2, chunked, a 6,000-byte chunk extension")
case("chunked.trailer", chunked("PUT", "/items/2", b"%x\r\n%s\r\n0\r\nX-Trailer: 1\r\n\r\n"
                                % (len(ITEM2), ITEM2)), "200j", check=item_is(2))
case("chunked.trailer-content-length", chunked("PUT", "/items/2", b"%x\r\n%s\r\n0\r\n"
                                               b"Content-Length: 50\r\n\r\n" % (len(ITEM2), ITEM2)),
     "200j|400", check=if_200(item_is(2)))
case("chunked.uppercase-coding", http(b"POST /items HTTP/1.1", HOST, JSON_CT,
                                      b"Transfer-Encoding: Chunked", body=chunks(INVALID)),
     "400j")
case("chunked.uppercase-hex", chunked("POST", "/items", b"%X\r\n%s\r\n0\r\n\r\n"
                                      % (len(INVALID), INVALID)), "400j")
case("chunked.size-zz", chunked("POST", "/items", b"zz\r\n{}\r\n0\r\n\r\n"), "400")
case("chunked.size-negative", chunked("POST", "/items", b"-2\r\n{}\r\n0\r\n\r\n"), "400")
case("chunked.size-0x", chunked("POST", "/items", b"0x2\r\n{}\r\n0\r\n\r\n"), "400")
case("chunked.size-empty", chunked("POST", "/items", b"\r\n{}\r\n0\r\n\r\n"), "400")
case("chunked.size-space", chunked("POST", "/items", b"%x \r\n%s\r\n0\r\n\r\n"
                                   % (len(INVALID), INVALID)), "400")
case("chunked.size-overflow", chunked("POST", "/items", b"ffffffffffffffffff\r\n{}\r\n0\r\n\r\n"),
     "400|413")
case("chunked.size-u64-max", chunked("POST", "/items", b"ffffffffffffffff\r\n{}\r\n0\r\n\r\n"),
     "400|413|close", limit="L5", strict="400|413")
case("chunked.size-over-max-body", chunked("POST", "/items", b"100000\r\n{\"name\":"),
     "413|400|close", after="close", limit="L5", strict="413|400",
     desc="POST /items, chunked, a chunk size of 1 MiB, 8 bytes of it")
case("chunked.data-longer-than-size", chunked("POST", "/items", b"2\r\n{}xx\r\n0\r\n\r\n"), "400")
case("chunked.data-no-crlf", chunked("POST", "/items", b"2\r\n{}0\r\n\r\n"), "400")
case("chunked.bare-lf", chunked("PUT", "/items/2", b"%x\n%s\n0\n\n" % (len(ITEM2), ITEM2)),
     "200j|400", check=if_200(item_is(2)))

# -- Transfer-Encoding and Content-Length conflicts -------------------------------------------
BODY_INVALID_CHUNKED = chunks(INVALID)
case("te.gzip", http(b"POST /items HTTP/1.1", HOST, JSON_CT, b"Transfer-Encoding: gzip",
                     body=INVALID), "400", after="close")
case("te.identity", http(b"POST /items HTTP/1.1", HOST, JSON_CT, b"Transfer-Encoding: identity",
                         body=INVALID), "400", after="close")
case("te.chunked-twice", http(b"POST /items HTTP/1.1", HOST, JSON_CT,
                              b"Transfer-Encoding: chunked, chunked", body=BODY_INVALID_CHUNKED),
     "400", after="close")
case("te.gzip-then-chunked", http(b"POST /items HTTP/1.1", HOST, JSON_CT,
                                  b"Transfer-Encoding: gzip, chunked", body=BODY_INVALID_CHUNKED),
     "400|501", after="close")
case("te.chunked-then-gzip", http(b"POST /items HTTP/1.1", HOST, JSON_CT,
                                  b"Transfer-Encoding: chunked, gzip", body=BODY_INVALID_CHUNKED),
     "400", after="close")
case("te.two-headers", http(b"POST /items HTTP/1.1", HOST, JSON_CT, b"Transfer-Encoding: chunked",
                            b"Transfer-Encoding: gzip", body=BODY_INVALID_CHUNKED),
     "400", after="close")
case("te.xchunked", http(b"POST /items HTTP/1.1", HOST, JSON_CT, b"Transfer-Encoding: xchunked",
                         body=INVALID), "400", after="close")
case("te.chunked-http10", http(b"POST /items HTTP/1.0", JSON_CT, b"Transfer-Encoding: chunked",
                               body=BODY_INVALID_CHUNKED), "400", after="close")
case("te.with-content-length",
     http(b"POST /items HTTP/1.1", HOST, JSON_CT, b"Content-Length: 4",
          b"Transfer-Encoding: chunked", body=BODY_INVALID_CHUNKED), "400", after="close",
     desc="POST /items, Content-Length: 4 and Transfer-Encoding: chunked, "
     "a chunked invalid item")
case("te.content-length-after",
     http(b"POST /items HTTP/1.1", HOST, JSON_CT, b"Transfer-Encoding: chunked",
          b"Content-Length: %d" % len(BODY_INVALID_CHUNKED), body=BODY_INVALID_CHUNKED), "400",
     after="close")
SMUGGLED = b"GET /json HTTP/1.1\r\n\r\n"
case("cl.two-different",
     http(b"POST /items HTTP/1.1", HOST, JSON_CT, b"Content-Length: %d" % len(INVALID),
          b"Content-Length: %d" % len(INVALID + SMUGGLED), body=INVALID + SMUGGLED),
     "400", after="close",
     desc="POST /items, Content-Length: %d and %d; an invalid item, then "
     "`GET /json HTTP/1.1` CRLF CRLF" % (len(INVALID), len(INVALID + SMUGGLED)))
case("cl.list-different", http(b"POST /items HTTP/1.1", HOST, JSON_CT, b"Content-Length: %d, %d"
                               % (len(INVALID), len(INVALID + SMUGGLED)),
                               body=INVALID + SMUGGLED), "400", after="close", note="N2")
case("cl.two-same", http(b"POST /items HTTP/1.1", HOST, JSON_CT, b"Content-Length: 18",
                         b"Content-Length: 18", body=INVALID), "400")
case("cl.negative", http(b"POST /items HTTP/1.1", HOST, JSON_CT, b"Content-Length: -1",
                         body=b"{}"), "400", after="close", note="N2")
case("cl.alpha", http(b"POST /items HTTP/1.1", HOST, JSON_CT, b"Content-Length: abc",
                      body=b"{}"), "400", after="close", note="N2")
case("cl.plus", http(b"POST /items HTTP/1.1", HOST, JSON_CT, b"Content-Length: +2",
                     body=b"{}"), "400", after="close", note="N2")
case("cl.hex", http(b"POST /items HTTP/1.1", HOST, JSON_CT, b"Content-Length: 0x2",
                    body=b"{}"), "400", after="close", note="N2")
case("cl.float", http(b"POST /items HTTP/1.1", HOST, JSON_CT, b"Content-Length: 2.0",
                      body=b"{}"), "400", after="close", note="N2")
case("cl.empty", http(b"POST /items HTTP/1.1", HOST, JSON_CT, b"Content-Length:",
                      body=b"{}"), "400", after="close", note="N2")
case("cl.overflow", http(b"POST /items HTTP/1.1", HOST, JSON_CT,
                         b"Content-Length: 99999999999999999999999", body=b"{}"),
     "400|413", after="close", note="N2")
case("cl.u64-max", http(b"POST /items HTTP/1.1", HOST, JSON_CT,
                        b"Content-Length: 18446744073709551615", body=b"{}"),
     "400|413", after="close", note="N2")
case("cl.leading-zeros", http(b"POST /items HTTP/1.1", HOST, JSON_CT, b"Content-Length: 0018",
                              body=INVALID), "400j")
case("cl.smaller-than-body", http(b"POST /items HTTP/1.1", HOST, JSON_CT, b"Content-Length: 2",
                                  body=b'{}garbage\x00\xff\r\n\r\n'), ["400j", "400|close"],
     after="close", desc="POST /items, Content-Length: 2, body `{}` + binary garbage")

# -- pipelined garbage after a valid request --------------------------------------------------
case("pipeline.valid-then-binary", get("/json") + b"\x00\xff\xfe garbage \x01\r\n\r\n",
     ["200j", "400|close"], after="close", check=exact(JSON_BODY), limit="L2",
     strict=["200j", "400|close"])
case("pipeline.valid-then-binary-no-nul", get("/json") + b"\xff\xfe garbage \x01\r\n\r\n",
     ["200j", "400|close"], after="close", check=exact(JSON_BODY))
case("pipeline.valid-then-get-alone", get("/json") + b"GET\r\n\r\n", ["200j", "400|close"],
     after="close", check=exact(JSON_BODY))
case("pipeline.valid-then-http09", get("/json") + b"GET /json\r\n\r\n", ["200j", "400|close"],
     after="close", check=exact(JSON_BODY))
case("pipeline.valid-then-partial", get("/json") + b"\x16\x03\x01garbage", "200j", after="none",
     check=exact(JSON_BODY))
case("pipeline.two-valid-then-garbage-then-valid",
     get("/json") + get("/plaintext") + b"BLAH\x00\r\n\r\n" + get("/json"),
     ["200j", "200j", "400|close"], after="close", check=exact(JSON_BODY))
case("pipeline.post-then-garbage", with_body("POST", "/items", INVALID) + b"\xff\xff\r\n\r\n",
     ["400j", "400|close"], after="close")
case("pipeline.valid-then-h2-preface", get("/json") + H2_PREFACE + H2_SETTINGS,
     ["200j", "400|505|close"], after="close", note="N1", check=exact(JSON_BODY))
case("pipeline.valid-then-tls", get("/json") + TLS_HELLO, "200j", after="none",
     check=exact(JSON_BODY))
case("pipeline.valid-then-huge-header", get("/json") + get("/json", "X-Big: " + "a" * 20000),
     ["200j", "431|close"], after="close", check=exact(JSON_BODY),
     desc="GET /json, then GET /json with a 20,000-byte header")
case("pipeline.valid-then-bad-content-length",
     get("/json") + http(b"POST /items HTTP/1.1", HOST, JSON_CT, b"Content-Length: -1"),
     ["200j", "400|close"], after="close", check=exact(JSON_BODY), note="N2")


# -- the client shuts down its side mid-request (L4 for the incomplete ones) ----------------
case("halfclose.get-declared-body", http(b"GET /json HTTP/1.1", HOST, b"Content-Length: 10"),
     "close|400", half_close=True, desc="GET /json, Content-Length: 10, no body, half-close",
     limit="L4", strict="close|400")
case("halfclose.chunked-missing-terminator", chunked("POST", "/items", b"5\r\n{\"a\":\r\n"),
     "close|400", half_close=True,
     desc="POST /items, chunked, one chunk and no last chunk; the client half-closes",
     limit="L4", strict="close|400")
case("halfclose.chunked-missing-final-crlf", chunked("POST", "/items", b"%x\r\n%s\r\n0\r\n"
                                           % (len(INVALID), INVALID)),
     "close|400", half_close=True,
     desc="POST /items, chunked, last chunk without the final CRLF; half-close",
     limit="L4", strict="close|400")
case("halfclose.chunked-truncated-data", chunked("POST", "/items", b"64\r\n{\"name\":"),
     "close|400", half_close=True, desc="POST /items, chunked, chunk of 100 with 8 sent",
     limit="L4", strict="close|400")
case("halfclose.content-length-larger", http(b"POST /items HTTP/1.1", HOST, JSON_CT,
                                             b"Content-Length: 100", body=INVALID),
     "close|400", half_close=True,
     desc="POST /items, Content-Length: 100, 18 bytes sent, half-close",
     limit="L4", strict="close|400")
case("halfclose.complete-request", get("/json"), "200j|close", half_close=True, note="N4",
     limit="L4", strict="200j|close", check=if_200(exact(JSON_BODY)))
case("halfclose.complete-request-http10", b"GET /json HTTP/1.0\r\n\r\n", "200j|close",
     half_close=True, note="N4", check=if_200(exact(JSON_BODY)))
