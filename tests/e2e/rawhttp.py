"""Raw-socket HTTP/1.x client used by the e2e suite.

The tests need to see exactly what goes over the wire (framing, interim
``100 Continue`` responses, pipelining, whether the server closed the
connection), so this module speaks HTTP/1.x by hand on a plain socket.
Every read has a timeout; a read that times out raises ``socket.timeout``.
"""

from __future__ import annotations

import errno
import socket
import time

TIMEOUT = 10.0
NO_BODY_STATUSES = {204, 304}


class Response:
    """One parsed HTTP response as it came over the wire."""

    def __init__(self, version, status, reason, headers, raw_head):
        self.version = version
        self.status = status
        self.reason = reason
        self.headers = headers  # list of (name, value) in wire order
        self.raw_head = raw_head
        self.body = b""
        self.chunked = False
        self.close_delimited = False
        self.chunk_sizes: list[int] = []
        self.informational: list[Response] = []

    def header(self, name: str) -> str | None:
        """First value of header ``name`` (case-insensitive) or None."""
        values = self.header_all(name)
        return values[0] if values else None

    def header_all(self, name: str) -> list[str]:
        name = name.lower()
        return [v for k, v in self.headers if k.lower() == name]

    def connection_tokens(self) -> set[str]:
        tokens = set()
        for value in self.header_all("connection"):
            tokens.update(t.strip().lower() for t in value.split(",") if t.strip())
        return tokens

    def __repr__(self):
        return f"<Response {self.version} {self.status} {self.reason!r} body={self.body[:60]!r}>"


def build_request(
    method="GET", target="/", headers=None, body=b"", version="HTTP/1.1", host="localhost"
):
    """Serialize a request; adds Host (1.1) and Content-Length (if a body is given)."""
    headers = list(headers or [])
    names = {k.lower() for k, _ in headers}
    if host is not None and "host" not in names and version == "HTTP/1.1":
        headers.insert(0, ("Host", host))
    if body and "content-length" not in names and "transfer-encoding" not in names:
        headers.append(("Content-Length", str(len(body))))
    head = f"{method} {target} {version}\r\n"
    head += "".join(f"{k}: {v}\r\n" for k, v in headers)
    return head.encode("latin-1") + b"\r\n" + body


def chunk_encode(pieces, trailers=()):
    """Encode ``pieces`` (bytes) as a chunked body with optional trailers."""
    out = b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in pieces if p)
    out += b"0\r\n" + b"".join(f"{k}: {v}\r\n".encode() for k, v in trailers) + b"\r\n"
    return out


def exchange(addr, data: bytes, *, family=socket.AF_INET, piece: int = 0) -> bytes:
    """Send ``data``, half-close, and return every byte up to EOF.

    ``addr`` is a ``(host, port)`` pair or, with ``family=AF_UNIX``, a path.
    ``piece`` > 0 sends the data in writes of that size. A server that
    refuses the connection (a reset before, while or after we send, which
    Linux may report as ENOTCONN on the half-close) yields ``b""``.
    """
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.settimeout(TIMEOUT)
        s.connect(addr)
        out = b""
        try:
            step = piece or max(len(data), 1)
            for i in range(0, len(data), step):
                s.sendall(data[i : i + step])
            s.shutdown(socket.SHUT_WR)
            while chunk := s.recv(65536):
                out += chunk
        except (ConnectionResetError, BrokenPipeError):
            return b""
        except OSError as e:
            if e.errno != errno.ENOTCONN:
                raise
            return b""
        return out


class Conn:
    """A client connection with its own read buffer (safe for pipelining)."""

    def __init__(
        self, host="127.0.0.1", port=None, *, unix_path=None, family=None, timeout=TIMEOUT
    ):
        if unix_path is not None:
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self.sock.settimeout(timeout)
            self.sock.connect(unix_path)
        else:
            family = family or (socket.AF_INET6 if ":" in host else socket.AF_INET)
            self.sock = socket.socket(family, socket.SOCK_STREAM)
            self.sock.settimeout(timeout)
            self.sock.connect((host, port))
        self.buf = b""
        self.eof = False

    # -- low level -------------------------------------------------------
    def send(self, data: bytes):
        self.sock.sendall(data)

    def shutdown_write(self):
        self.sock.shutdown(socket.SHUT_WR)

    def _fill(self) -> bool:
        if self.eof:
            return False
        try:
            data = self.sock.recv(65536)
        except ConnectionResetError:
            data = b""
        if not data:
            self.eof = True
            return False
        self.buf += data
        return True

    def read_until(self, delim: bytes, limit=1 << 20) -> bytes:
        while delim not in self.buf:
            if len(self.buf) > limit:
                raise AssertionError(f"no {delim!r} within {limit} bytes: {self.buf[:200]!r}")
            if not self._fill():
                raise EOFError(f"connection closed before {delim!r}; got {self.buf[:200]!r}")
        idx = self.buf.index(delim) + len(delim)
        out, self.buf = self.buf[:idx], self.buf[idx:]
        return out

    def read_exact(self, n: int) -> bytes:
        while len(self.buf) < n:
            if not self._fill():
                raise EOFError(f"connection closed after {len(self.buf)} of {n} bytes")
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def read_to_eof(self) -> bytes:
        while self._fill():
            pass
        out, self.buf = self.buf, b""
        return out

    # -- responses ---------------------------------------------------------
    def read_head(self) -> Response:
        raw = self.read_until(b"\r\n\r\n")
        lines = raw[:-4].decode("latin-1").split("\r\n")
        version, _, rest = lines[0].partition(" ")
        code, _, reason = rest.partition(" ")
        assert version.startswith("HTTP/1."), f"bad status line {lines[0]!r}"
        headers = []
        for line in lines[1:]:
            name, sep, value = line.partition(":")
            assert sep and name == name.strip(), f"bad header line {line!r}"
            headers.append((name, value.strip(" \t")))
        return Response(version, int(code), reason, headers, raw)

    def read_response(self, head=False, allow_informational=False) -> Response:
        """Read one response; interim 1xx responses are collected unless
        ``allow_informational`` (then a 1xx is returned by itself)."""
        interim = []
        while True:
            resp = self.read_head()
            if 100 <= resp.status < 200 and resp.status != 101:
                if allow_informational:
                    return resp
                interim.append(resp)
                continue
            break
        resp.informational = interim
        if head or resp.status in NO_BODY_STATUSES:
            return resp
        te = ",".join(resp.header_all("transfer-encoding")).lower()
        if te:
            assert te.replace(" ", "").split(",")[-1] == "chunked", f"unexpected TE {te!r}"
            resp.chunked = True
            resp.body = self._read_chunked(resp)
        elif resp.header("content-length") is not None:
            lengths = {v.strip() for v in resp.header_all("content-length")}
            assert len(lengths) == 1, f"conflicting Content-Length {lengths}"
            resp.body = self.read_exact(int(lengths.pop()))
        else:
            resp.close_delimited = True
            resp.body = self.read_to_eof()
        return resp

    def _read_chunked(self, resp: Response) -> bytes:
        body = b""
        while True:
            line = self.read_until(b"\r\n")
            size = int(line.split(b";")[0].strip(), 16)
            resp.chunk_sizes.append(size)
            if size == 0:
                while self.read_until(b"\r\n") != b"\r\n":  # trailers
                    pass
                return body
            body += self.read_exact(size)
            assert self.read_exact(2) == b"\r\n", "chunk not terminated by CRLF"

    def request(
        self, method="GET", target="/", headers=None, body=b"", version="HTTP/1.1", host="localhost"
    ) -> Response:
        self.send(build_request(method, target, headers, body, version, host))
        return self.read_response(head=(method == "HEAD"))

    def is_closed(self, timeout=3.0) -> bool:
        """True if the server closes the connection within ``timeout`` seconds.

        Raises AssertionError if the server sends unexpected bytes instead."""
        if self.buf:
            raise AssertionError(f"unexpected extra bytes from server: {self.buf[:200]!r}")
        if self.eof:
            return True
        old = self.sock.gettimeout()
        self.sock.settimeout(timeout)
        try:
            data = self.sock.recv(65536)
        except socket.timeout:
            return False
        except (ConnectionResetError, BrokenPipeError):
            return True
        finally:
            self.sock.settimeout(old)
        if data:
            raise AssertionError(f"unexpected extra bytes from server: {data[:200]!r}")
        self.eof = True
        return True

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def wait_for(predicate, timeout=10.0, interval=0.05):
    """Poll ``predicate`` until it returns a truthy value or ``timeout`` passes."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(interval)
