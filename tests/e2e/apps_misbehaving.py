"""The endpoints of ``apps`` that deliberately misbehave (exceptions, bad
headers, str bodies, ``exc_info`` too late), and ``/closing``/``/closed``,
whose response iterable records its close calls in ``CLOSE_LOG``.
Importing the module registers their routes."""

from __future__ import annotations

import sys
import time

from apps_support import _LOCK, CLOSE_LOG, query, record_close, respond, route

# -- misbehaving endpoints ----------------------------------------------------------


@route("/raise")
def raise_error(environ, start_response):
    raise RuntimeError("app-exploded-marker-91c2")


@route("/exc-info")
def exc_info(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain"), ("X-First", "yes")])
    try:
        raise ValueError("replaced before body")
    except ValueError:
        start_response(
            "503 Service Unavailable",
            [("Content-Type", "text/plain"), ("X-Replaced", "yes")],
            sys.exc_info(),
        )
    return [b"replaced"]


@route("/exc-info-late")
def exc_info_late(environ, start_response):
    write = start_response("200 OK", [("Content-Type", "text/plain")])
    write(b"partial-")
    try:
        raise ValueError("too late to replace: exc-info-late-marker")
    except ValueError:
        # PEP 3333: with the headers already sent, this must re-raise.
        start_response("500 Oops", [("Content-Type", "text/plain")], sys.exc_info())
    return [b"never sent"]


@route("/bad-header")
def bad_header(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain"), ("X-Evil", "a\r\nX-Injected: 1")])
    return [b"should not be sent"]


@route("/empty-then-raise")
def empty_then_raise(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])

    def body():
        yield b""
        raise RuntimeError("raised after empty chunk")

    return body()


@route("/str-body")
def str_body(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return ["a str, not bytes"]


class ClosingBody:
    """Iterable body that records close(); ?mode=normal|raise|stream."""

    def __init__(self, key, mode):
        self.key, self.mode = key, mode

    def __iter__(self):
        if self.mode == "raise":
            yield b"partial body "
            raise RuntimeError("raised mid-iteration")
        if self.mode == "stream":
            deadline = time.monotonic() + 30
            chunk = b"s" * 65536
            while time.monotonic() < deadline:
                yield chunk
                time.sleep(0.005)
            return
        yield b"complete body"

    def close(self):
        record_close(self.key)


@route("/closing")
def closing(environ, start_response):
    q = query(environ)
    start_response("200 OK", [("Content-Type", "text/plain")])
    return ClosingBody(q["id"], q.get("mode", "normal"))


@route("/closed")
def closed(environ, start_response):
    with _LOCK:
        n = CLOSE_LOG.get(query(environ)["id"], 0)
    return respond(start_response, str(n).encode())
