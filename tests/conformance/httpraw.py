"""A deliberately small HTTP/1.1 client over raw sockets, for the conformance suite.

It sends exactly the bytes it is given and parses responses strictly, so the suite can check
framing (keep-alive, pipelining, HEAD, 204) that a higher-level client would hide or repair.

Framing rules applied when reading a response (RFC 9112 section 6.3):
  - responses to HEAD, 1xx, 204 and 304 have no body;
  - otherwise Transfer-Encoding: chunked, then Content-Length, then read-until-close.
The suite asserts elsewhere that the server never uses chunked or read-until-close framing;
the client only supports them so that a wrong server fails a check instead of hanging it.
"""

import re
import socket

DEFAULT_TIMEOUT = 30.0      # seconds per socket operation: turns a hang into a failure
MAX_HEAD_BYTES = 1 << 20

_STATUS_LINE = re.compile(rb"^HTTP/(\d)\.(\d) (\d{3})(?: (.*))?$")
_HEADER_LINE = re.compile(rb"^([!#$%&'*+.^_`|~0-9A-Za-z-]+):[ \t]*(.*?)[ \t]*$")


class ProtocolError(Exception):
    """The server sent bytes that are not a well-formed HTTP/1.1 response."""


class ConnectionClosed(ProtocolError):
    """The server closed the connection where a response was expected."""


class Response:
    def __init__(self, version, status, reason, headers, body, head):
        self.version = version      # "HTTP/1.1"
        self.status = status        # int
        self.reason = reason        # str, may be empty
        self.headers = headers      # [(name, value)] in arrival order, original case
        self.body = body            # bytes
        self.head = head            # raw status line and header bytes, for diagnostics

    def header_all(self, name):
        name = name.lower()
        return [v for (n, v) in self.headers if n.lower() == name]

    def header(self, name):
        values = self.header_all(name)
        return values[0] if values else None

    def has_token(self, name, token):
        """True if a comma-separated header (e.g. Connection) contains token."""
        for value in self.header_all(name):
            for part in value.split(","):
                if part.strip().lower() == token.lower():
                    return True
        return False

    def describe(self, limit=300):
        body = self.body if len(self.body) <= limit else self.body[:limit] + b"..."
        return "%d %s; headers %r; body %r" % (self.status, self.reason, self.headers, body)

    def __repr__(self):
        return "<Response %s>" % self.describe(120)


def build_request(method, target, headers=None, body=None, version="HTTP/1.1", host=None):
    """Serialise one request. headers is a list of (name, value); Host comes first when given;
    Content-Length is added for a body unless the caller supplied it."""
    headers = list(headers or [])
    names = {n.lower() for (n, _) in headers}
    lines = ["%s %s %s" % (method, target, version)]
    if host is not None and "host" not in names:
        lines.append("Host: %s" % host)
    if body is not None and "content-length" not in names and "transfer-encoding" not in names:
        headers.append(("Content-Length", str(len(body))))
    for (n, v) in headers:
        lines.append("%s: %s" % (n, v))
    data = ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8")
    if body is not None:
        data += body if isinstance(body, bytes) else body.encode("utf-8")
    return data


class Connection:
    def __init__(self, host, port, timeout=DEFAULT_TIMEOUT):
        self.host = host
        self.port = port
        self.host_header = "%s:%d" % (host, port)
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = bytearray()
        self.eof = False

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def send(self, data):
        self.sock.sendall(data)

    def send_request(self, method, target, headers=None, body=None, version="HTTP/1.1",
                     host=True):
        self.send(build_request(method, target, headers, body, version,
                                self.host_header if host is True else host))

    def request(self, method, target, headers=None, body=None, version="HTTP/1.1", host=True):
        self.send_request(method, target, headers, body, version, host)
        return self.read_response(method)

    # -- reading ----------------------------------------------------------------------------

    def _fill(self):
        if self.eof:
            return False
        try:
            chunk = self.sock.recv(65536)
        except ConnectionResetError:
            chunk = b""
            if not self.buf:
                raise
        if not chunk:
            self.eof = True
            return False
        self.buf += chunk
        return True

    def _read_until(self, marker, what):
        while True:
            i = self.buf.find(marker)
            if i >= 0:
                data = bytes(self.buf[:i])
                del self.buf[:i + len(marker)]
                return data
            if len(self.buf) > MAX_HEAD_BYTES:
                raise ProtocolError("%s longer than %d bytes" % (what, MAX_HEAD_BYTES))
            if not self._fill():
                if self.buf:
                    raise ProtocolError("connection closed in the middle of %s: %r"
                                        % (what, bytes(self.buf[:200])))
                raise ConnectionClosed("connection closed where %s was expected" % what)

    def _read_exact(self, n, what):
        while len(self.buf) < n:
            if not self._fill():
                raise ProtocolError("connection closed after %d of %d bytes of %s"
                                    % (len(self.buf), n, what))
        data = bytes(self.buf[:n])
        del self.buf[:n]
        return data

    def _read_to_close(self):
        while self._fill():
            pass
        data = bytes(self.buf)
        self.buf.clear()
        return data

    def _read_chunked(self):
        body = bytearray()
        while True:
            line = self._read_until(b"\r\n", "a chunk size line")
            size_text = line.split(b";", 1)[0].strip()
            if not re.fullmatch(rb"[0-9A-Fa-f]+", size_text):
                raise ProtocolError("bad chunk size line %r" % line)
            size = int(size_text, 16)
            if size == 0:
                while self._read_until(b"\r\n", "a trailer line"):
                    pass
                return bytes(body)
            body += self._read_exact(size, "a chunk")
            if self._read_exact(2, "a chunk terminator") != b"\r\n":
                raise ProtocolError("chunk not followed by CRLF")

    def read_response(self, method="GET"):
        """Read one complete response; interim 1xx responses are skipped."""
        while True:
            head = self._read_until(b"\r\n\r\n", "a response head")
            lines = head.split(b"\r\n")
            m = _STATUS_LINE.match(lines[0])
            if not m:
                raise ProtocolError("bad status line %r" % lines[0][:200])
            version = "HTTP/%s.%s" % (m.group(1).decode(), m.group(2).decode())
            status = int(m.group(3))
            reason = (m.group(4) or b"").decode("latin-1")
            headers = []
            for line in lines[1:]:
                hm = _HEADER_LINE.match(line)
                if not hm:
                    raise ProtocolError("bad header line %r" % line[:200])
                headers.append((hm.group(1).decode("latin-1"), hm.group(2).decode("latin-1")))
            resp = Response(version, status, reason, headers, b"", head)
            if 100 <= status < 200:
                continue
            if method == "HEAD" or status in (204, 304):
                return resp
            te = resp.header_all("Transfer-Encoding")
            cl = resp.header_all("Content-Length")
            if te:
                if te[-1].split(",")[-1].strip().lower() == "chunked":
                    resp.body = self._read_chunked()
                else:
                    resp.body = self._read_to_close()
            elif cl:
                if len(set(cl)) != 1 or not re.fullmatch(r"[0-9]+", cl[0]):
                    raise ProtocolError("unusable Content-Length %r" % cl)
                resp.body = self._read_exact(int(cl[0]), "a body")
            else:
                resp.body = self._read_to_close()
            return resp

    def closed_by_peer(self):
        """True if the server has closed the connection (EOF, or a reset) and no unread
        bytes are pending. Blocks up to the socket timeout when the connection is idle, so
        only call it when a close is expected."""
        if self.buf:
            return False
        try:
            return not self._fill()
        except (ConnectionResetError, BrokenPipeError):
            return True
        except socket.timeout:
            return False
