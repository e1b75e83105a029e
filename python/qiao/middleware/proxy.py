"""Reverse proxy: :class:`Proxy` forwards each request to one of several
HTTP upstreams and streams the answer back.

What it owns: turning the environ into an upstream request (the path below
``SCRIPT_NAME``, raw as the client sent it when the server says how, dot
segments removed, refused if it resolves outside (``_paths.py``);
end-to-end headers only; ``X-Forwarded-For/-Proto/-Host`` and ``Forwarded``,
the client's own replaced: the target and the header rules are
``_proxy_request.py``'s, imported here), streaming the request body
(``Content-Length`` kept, else chunked) and the response body
(:data:`CHUNK_SIZE` pieces, as they arrive), retrying, and the 502/504
answers. Choosing an upstream, pooling and health are ``upstream.py``'s.

Built on the standard library's ``http.client``: it does exactly HTTP/1.1
framing over a socket we control (``putrequest``/``send`` stream a body,
``read1`` returns what has arrived), and a proxy inside any WSGI server
should not pull in a dependency. Pooling and retries, which a client
library would add, must follow a proxy's rules anyway (below).

Retries (on another upstream, each tried once):

* a connection that cannot be opened: always, whatever the method, since
  nothing was sent;
* a failure after sending (reset, closed without an answer): only for
  idempotent methods (``_upstream_policy.IDEMPOTENT``) without a request
  body, which can be sent again; a POST that reached an upstream is never repeated;
* a timeout waiting for the answer: never (the upstream has the request
  and may be working on it): 504.

Pooled keep-alive connections are used only for requests without a body;
if a reused connection turns out closed by the upstream before any answer,
the request goes again on a new connection to the same upstream. Requests
with a body always get a new connection, so they are never sent twice.
Upgrades (WebSocket) and ``CONNECT`` are not supported.
"""

from __future__ import annotations

import http
import http.client
import socket
from collections.abc import Iterable, Iterator

from ._paths import PathEscape
from ._proxy_request import (
    HOP_BY_HOP,
    confined_rest,
    connection_tokens,
    forwarded_element,
    request_target,
)
from ._upstream_policy import AfterFailure, Failed, after_failure
from ._wsgi import Headers, StartResponse, plain
from .upstream import CONNECT_TIMEOUT, MAX_FAILS, POOL_SIZE, PROBE_INTERVAL, Upstream, Upstreams

#: Bytes read per step from ``wsgi.input`` and from an upstream response.
CHUNK_SIZE = 64 * 1024
#: Seconds an upstream may stay silent: waiting for the response head (then
#: 504) and between two pieces of the body (then the response is cut).
TIMEOUT = 30.0
#: Times a request without a body is sent again, on a new connection to the
#: same upstream, when the pooled one it used turns out closed by the upstream.
STALE_RETRIES = 1
#: Errors of a reused connection that the upstream had closed while idle.
STALE_ERRORS = (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError)


class UpstreamError(OSError):
    """An upstream failed after its response had begun; the response is cut."""


class _ClientBodyError(Exception):
    """Reading the client's body failed: the client's fault, not the upstream's."""


class _Failed(Exception):
    def __init__(self, server: Upstream, reason: str, failed: Failed):
        super().__init__(reason)
        self.server, self.reason, self.failed = server, reason, failed


class Proxy:
    """Forwards requests to ``upstreams`` (``["http://10.0.0.1:8000", ...]``;
    a path in the URL is prepended), chosen by ``balance``: ``"round_robin"``
    or ``"least_conn"`` (fewest requests in flight; ties in turn).

    ``timeout``: see :data:`TIMEOUT`. ``connect_timeout``, ``max_fails``,
    ``probe_interval``, ``pool_size``: see ``upstream.py``. ``health_path``:
    probe down upstreams with a GET of this path instead of a TCP connect.
    ``preserve_host``: send the client's ``Host`` (default: the upstream's
    own; the client's is in ``X-Forwarded-Host`` either way).
    """

    def __init__(
        self,
        upstreams: list[str],
        balance: str = "round_robin",
        *,
        timeout: float = TIMEOUT,
        connect_timeout: float = CONNECT_TIMEOUT,
        max_fails: int = MAX_FAILS,
        probe_interval: float = PROBE_INTERVAL,
        pool_size: int = POOL_SIZE,
        health_path: str | None = None,
        preserve_host: bool = False,
    ):
        self.upstreams = Upstreams(
            list(upstreams),
            balance,
            connect_timeout=connect_timeout,
            max_fails=max_fails,
            probe_interval=probe_interval,
            pool_size=pool_size,
            health_path=health_path,
        )
        self.timeout = timeout
        self.preserve_host = preserve_host

    def states(self) -> list[dict]:
        """Each upstream's ``url``, ``up``, ``active``, ``failures``, ``idle``."""
        return self.upstreams.states()

    def __call__(self, environ: dict, start_response: StartResponse) -> Iterable[bytes]:
        method = environ.get("REQUEST_METHOD", "GET")
        if method == "CONNECT":
            return plain(start_response, "501 Not Implemented", "CONNECT is not supported\n")
        try:
            confined_rest(environ)
        except PathEscape as e:
            return plain(start_response, e.status, e.text)
        body = _RequestBody(environ)
        tried: set[int] = set()
        failures: list[str] = []
        while True:
            picked = self.upstreams.acquire(tried)
            if picked is None:
                break
            index, server = picked
            tried.add(index)
            try:
                conn, resp = self._exchange(server, environ, method, body)
            except _Failed as f:
                self.upstreams.release(server, False)
                failures.append(f"{server.url}: {f.reason}")
                _log(environ, f"upstream {server.url} failed: {f.reason}")
                then = after_failure(f.failed, method, body.present)
                if then is AfterFailure.GATEWAY_TIMEOUT:
                    text = f"Gateway Timeout: {server.url} did not answer within {self.timeout}s\n"
                    return plain(start_response, "504 Gateway Timeout", text)
                if then is AfterFailure.BAD_GATEWAY:
                    break
                continue  # AfterFailure.TRY_ANOTHER
            except _ClientBodyError as e:
                self.upstreams.release(server, None)
                cause = e.__cause__
                assert cause is not None  # raised `from` the client's error
                raise cause from None
            except BaseException:
                self.upstreams.release(server, None)
                raise
            status = f"{resp.status} {resp.reason or _phrase(resp.status)}"
            head = (start_response, status, _response_headers(resp))
            return _ResponseBody(self.upstreams, server, conn, resp, head)
        text = "Bad Gateway: no upstream answered\n" + "".join(f"  {f}\n" for f in failures)
        return plain(start_response, "502 Bad Gateway", text)

    def _exchange(
        self, server: Upstream, environ: dict, method: str, body: _RequestBody
    ) -> tuple[http.client.HTTPConnection, http.client.HTTPResponse]:
        """Sends the request to ``server``; returns the connection and the
        response whose head has arrived. Raises :class:`_Failed`."""
        target = request_target(environ, server.base_path)
        headers = self._request_headers(environ, server, body)
        for attempt in range(1 + STALE_RETRIES):
            try:
                conn, reused = self.upstreams.connect(
                    server, reuse=not body.present and not attempt
                )
            except OSError as e:
                raise _Failed(server, f"cannot connect: {e}", Failed.NOT_SENT) from None
            try:
                conn.sock.settimeout(self.timeout)
                conn.putrequest(method, target, skip_host=True, skip_accept_encoding=True)
                for name, value in headers:
                    conn.putheader(name, value)
                conn.endheaders()
                body.send(conn)
                resp = conn.getresponse()
                if resp.status == http.HTTPStatus.SWITCHING_PROTOCOLS:
                    # Upgrade is never forwarded: a switch nobody asked for.
                    raise http.client.HTTPException("101 to a request that asked for no upgrade")
                return conn, resp
            except socket.timeout:
                conn.close()
                raise _Failed(server, "timed out", Failed.TIMED_OUT) from None
            except STALE_ERRORS as e:
                conn.close()
                if reused and attempt < STALE_RETRIES:
                    continue  # closed by the upstream while idle: once more, on a new one
                raise _Failed(server, f"connection lost: {e!r}", Failed.SENT) from None
            except _ClientBodyError:
                conn.close()
                raise
            except (OSError, http.client.HTTPException) as e:
                conn.close()
                raise _Failed(server, f"bad answer: {e!r}", Failed.SENT) from None
        raise AssertionError("unreachable")

    def _request_headers(self, environ: dict, server: Upstream, body: _RequestBody) -> Headers:
        headers: Headers = []
        for key, value in environ.items():
            if key.startswith("HTTP_"):
                name = key[5:].replace("_", "-").title()
            elif key == "CONTENT_TYPE" and value:
                name = "Content-Type"
            else:
                continue
            headers.append((name, value))
        drop = HOP_BY_HOP | connection_tokens(headers) | {"host", "x-forwarded-for"}
        drop |= {"x-forwarded-proto", "x-forwarded-host", "forwarded"}
        out = [(k, v) for k, v in headers if k.lower() not in drop]
        client_host = environ.get("HTTP_HOST") or environ.get("SERVER_NAME", "")
        out.append(("Host", client_host if self.preserve_host else server.netloc))
        chain = environ.get("HTTP_X_FORWARDED_FOR")
        peer = environ.get("REMOTE_ADDR", "")
        out.append(("X-Forwarded-For", f"{chain}, {peer}" if chain else peer))
        scheme = environ.get("wsgi.url_scheme", "http")
        out.append(("X-Forwarded-Proto", scheme))
        out.append(("X-Forwarded-Host", client_host))
        out.append(("Forwarded", forwarded_element(peer, scheme, client_host)))
        if body.chunked:
            out.append(("Transfer-Encoding", "chunked"))
        elif body.length or environ.get("CONTENT_LENGTH"):
            # One line, from the length the body is sent with: the client's
            # value as sent may be a list ("0, 0"), which upstreams refuse.
            out.append(("Content-Length", str(body.length)))
        return out


class _RequestBody:
    """The request body, sent from ``wsgi.input`` in pieces, never held whole."""

    def __init__(self, environ: dict):
        self.input = environ.get("wsgi.input")
        try:
            self.length = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            self.length = 0
        te = environ.get("HTTP_TRANSFER_ENCODING", "").lower()
        self.chunked = self.length == 0 and "chunked" in te
        self.present = self.length > 0 or self.chunked

    def send(self, conn: http.client.HTTPConnection) -> None:
        if not self.present:
            return
        left = self.length if not self.chunked else None
        while left is None or left > 0:
            want = CHUNK_SIZE if left is None else min(CHUNK_SIZE, left)
            try:
                assert self.input is not None  # present: there is a wsgi.input
                piece = self.input.read(want)
            except Exception as e:
                raise _ClientBodyError() from e
            if not piece:
                break
            if left is not None:
                left -= len(piece)
                conn.send(piece)
            else:
                conn.send(b"%x\r\n%s\r\n" % (len(piece), piece))
        if self.chunked:
            conn.send(b"0\r\n\r\n")


def _response_headers(resp: http.client.HTTPResponse) -> Headers:
    headers = resp.getheaders()
    drop = HOP_BY_HOP | connection_tokens(headers)
    return [(k, v) for k, v in headers if k.lower() not in drop]


def _phrase(status: int) -> str:
    try:
        return http.HTTPStatus(status).phrase
    except ValueError:
        return "Unknown"


def _log(environ: dict, message: str) -> None:
    errors = environ.get("wsgi.errors")
    if errors is not None:
        try:
            errors.write(f"qiao.middleware.Proxy: {message}\n")
            errors.flush()
        except Exception:
            pass


class _ResponseBody:
    """The upstream's body as it arrives; the connection goes back to the pool
    only if the body was read to its end and the upstream keeps it open.

    ``start_response`` is called with the upstream's head once its first
    piece of body has been read (PEP 3333 allows it until the first piece is
    yielded, and no server sends a head before that anyway): an upstream
    that fails before any byte of its body (a malformed first chunk) is then
    answered ``502``, as nginx does, rather than cut or turned into a 500.
    """

    def __init__(
        self,
        upstreams: Upstreams,
        server: Upstream,
        conn: http.client.HTTPConnection,
        resp: http.client.HTTPResponse,
        head: tuple[StartResponse, str, Headers],
    ) -> None:
        self._upstreams, self._server, self._conn, self._resp = upstreams, server, conn, resp
        self._head: tuple[StartResponse, str, Headers] | None = head
        self._done = False
        self._released = False

    def __iter__(self) -> Iterator[bytes]:
        return self

    def __next__(self) -> bytes:
        if self._done:
            raise StopIteration
        failure = None
        try:
            data = self._resp.read1(CHUNK_SIZE)
        except (OSError, http.client.HTTPException) as e:
            failure, data = f"failed: {e!r}", b""
        if not data and self._resp.length:  # closed before its Content-Length
            failure = failure or "closed before the end of the body"
        if self._head is not None:
            start_response, status, headers = self._head
            self._head = None
            if failure is not None:
                self._finish(ok=False)
                text = f"Bad Gateway: no upstream answered\n  {self._server.url}: {failure}\n"
                return plain(start_response, "502 Bad Gateway", text)[0]
            try:
                start_response(status, headers)
            except BaseException:
                self.close()
                raise
        if failure is not None:  # cut ours too
            self._finish(ok=False)
            raise UpstreamError(f"upstream {self._server.url} {failure} mid-response")
        if not data:
            resp = self._resp
            # Reusable once read to its end: the length reached, or the last chunk.
            reusable = not resp.will_close and (resp.length == 0 or resp.isclosed())
            self._finish(ok=True, reusable=reusable)
            raise StopIteration
        return data

    def _finish(self, ok: bool, reusable: bool = False) -> None:
        self._done = True
        if self._released:
            return
        self._released = True
        self._resp.close()  # the response object only; the socket stays with conn
        if reusable:
            self._upstreams.give_back(self._server, self._conn)
        else:
            self._conn.close()
        self._upstreams.release(self._server, ok)

    def close(self) -> None:
        self._done = True
        if not self._released:
            self._released = True
            self._conn.close()
            self._upstreams.release(self._server, None)
