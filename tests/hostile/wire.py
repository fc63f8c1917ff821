"""One hostile exchange over a raw socket: send exact bytes, then read and classify everything
the server does in return (responses, a close, a reset, silence).

Built on the conformance suite's httpraw.Connection (socket and read buffer) and Response;
the response reader is our own so that interim 1xx responses and libmicrohttpd's odd framings
are recorded instead of skipped or raised.
"""

import re
import socket
import threading

from tests.conformance import httpraw

SERVER_PREFIX = "triad/"


class Event:
    """One thing the server did on the connection.

    kind: "resp"    a complete response (resp is an httpraw.Response)
          "close"   EOF where a response could start, nothing pending
          "reset"   ECONNRESET where a response could start, nothing pending
          "stall"   nothing within the deadline
          "garbage" bytes that are not a well-formed HTTP/1.1 response (raw holds them)
    """

    def __init__(self, kind, resp=None, raw=b"", detail=""):
        self.kind = kind
        self.resp = resp
        self.raw = raw
        self.detail = detail
        self.interim = []       # statuses of 1xx responses that came before this one
        self.notes = []         # oddities worth showing (head sent twice, stray bytes...)

    @property
    def status(self):
        return self.resp.status if self.resp is not None else None

    @property
    def ours(self):
        """True if our code wrote the response (it names the server); False for
        libmicrohttpd's own answers to malformed HTTP."""
        if self.resp is None:
            return False
        server = self.resp.header("Server") or ""
        return server.startswith(SERVER_PREFIX)

    @property
    def closing(self):
        return self.resp is not None and self.resp.has_token("Connection", "close")

    def label(self):
        if self.kind == "resp":
            if self.ours:
                ctype = (self.resp.header("Content-Type") or "").split(";")[0].strip()
                kind = {"application/json": "json", "text/plain": "text",
                        "text/html": "html"}.get(ctype, ctype or "no-type")
            else:
                body = self.resp.body.lstrip().lower()
                kind = "mhd-html" if body.startswith(b"<html") else \
                    ("mhd-empty" if not body else "mhd")
            if self.resp.status == 204 and not self.resp.body:
                kind = "empty"
            text = "%d %s" % (self.resp.status, kind)
            if self.interim:
                text = "+".join(str(s) for s in self.interim) + " then " + text
            return text
        if self.kind == "garbage":
            return "garbage %s" % short_bytes(self.raw, 40)
        if self.kind == "stall":
            return "no answer"
        return self.kind


def short_bytes(data, limit=60):
    text = repr(bytes(data[:limit]))
    if len(data) > limit:
        text += "...(%d bytes)" % len(data)
    return text


class Session:
    """A raw connection that sends in the background while the caller reads, so that a
    server answering early (413, 431) and closing is read, not lost to a send error."""

    def __init__(self, host, port, timeout):
        self.conn = httpraw.Connection(host, port, timeout=timeout)
        self.timeout = timeout
        self.send_error = None
        self._sender = None

    def close(self):
        if self._sender is not None:
            self._sender.join(self.timeout + 5)
        self.conn.close()

    def send(self, data, half_close=False):
        sock = self.conn.sock
        if half_close:
            # Corked, the FIN leaves in the same segment as the last bytes: the server
            # sees the request and the end of the stream together, every time.
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_CORK, 1)

        def run():
            try:
                sock.sendall(data)
                if half_close:
                    sock.shutdown(socket.SHUT_WR)
            except OSError as e:
                self.send_error = e
        self._sender = threading.Thread(target=run, daemon=True)
        self._sender.start()

    def send_now(self, data):
        """Send synchronously (small follow-up requests)."""
        self.conn.sock.sendall(data)

    def half_close(self):
        try:
            self.conn.sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass

    def set_timeout(self, t):
        self.conn.sock.settimeout(t)

    # -- reading --------------------------------------------------------------------------

    def next_event(self, method="GET"):
        """Read the next response, or whatever happens instead."""
        c = self.conn
        interim = []
        try:
            while True:
                if not c.buf and not c._fill():
                    return Event("close")
                head = c._read_until(b"\r\n\r\n", "a response head")
                lines = head.split(b"\r\n")
                m = httpraw._STATUS_LINE.match(lines[0])
                if not m:
                    return Event("garbage", raw=head, detail="bad status line")
                headers = []
                for line in lines[1:]:
                    hm = httpraw._HEADER_LINE.match(line)
                    if not hm:
                        return Event("garbage", raw=head, detail="bad header line %r" % line)
                    headers.append((hm.group(1).decode("latin-1"),
                                    hm.group(2).decode("latin-1")))
                version = "HTTP/%s.%s" % (m.group(1).decode(), m.group(2).decode())
                resp = httpraw.Response(version, int(m.group(3)),
                                        (m.group(4) or b"").decode("latin-1"), headers, b"",
                                        head)
                if 100 <= resp.status < 200:
                    interim.append(resp.status)
                    continue
                ev = Event("resp", resp=resp)
                ev.interim = interim
                self._read_body(ev, method)
                return ev
        except ConnectionResetError:
            ev = Event("reset") if not c.buf else Event("garbage", raw=bytes(c.buf),
                                                         detail="reset mid-response")
            ev.interim = interim
            return ev
        except (socket.timeout, TimeoutError):
            ev = Event("stall") if not c.buf else Event("garbage", raw=bytes(c.buf),
                                                         detail="stalled mid-response")
            ev.interim = interim
            return ev
        except httpraw.ProtocolError as e:
            ev = Event("garbage", raw=bytes(c.buf), detail=str(e))
            ev.interim = interim
            return ev

    def _read_body(self, ev, method):
        c = self.conn
        resp = ev.resp
        if method == "HEAD" or resp.status in (204, 304):
            return
        te = resp.header_all("Transfer-Encoding")
        cl = resp.header_all("Content-Length")
        if te:
            ev.notes.append("Transfer-Encoding in a response: %s" % te)
            resp.body = c._read_chunked() if te[-1].strip().lower() == "chunked" \
                else c._read_to_close()
        elif cl:
            if len(set(cl)) != 1 or not re.fullmatch(r"[0-9]+", cl[0]):
                raise httpraw.ProtocolError("unusable Content-Length %r" % cl)
            resp.body = c._read_exact(int(cl[0]), "a body")
            if resp.body.startswith(b"HTTP/1."):
                # libmicrohttpd 0.9.75 writes its status line and headers twice for some
                # errors; the first head's Content-Length then frames the second head.
                ev.notes.append("status line and headers sent twice (the body starts with "
                                "another response head)")
        else:
            resp.body = c._read_to_close()

    def wait_closed(self):
        """After a response announced Connection: close (or after a half-close): the server
        must close. Returns (event, stray_bytes)."""
        c = self.conn
        stray = bytes(c.buf)
        c.buf.clear()
        try:
            while True:
                chunk = c.sock.recv(65536)
                if not chunk:
                    return Event("close"), stray
                stray += chunk
        except ConnectionResetError:
            return Event("reset"), stray
        except (socket.timeout, TimeoutError):
            return Event("stall"), stray
