"""Applications of ``test_hostile.py``: each misbehaves in one way a
server must contain (a status line that is not latin-1, a file wrapper
over an endless device, a body shorter than its ``Content-Length``), plus
the portable proxy mounted under a prefix."""

from __future__ import annotations

import os

from qiao.middleware import Mount, Proxy


def mounted_proxy():
    """``Proxy`` of ``HOSTILE_UPSTREAM`` mounted at ``HOSTILE_PREFIX``."""
    proxy = Proxy([os.environ["HOSTILE_UPSTREAM"]])
    return Mount({os.environ["HOSTILE_PREFIX"]: proxy})


def app(environ, start_response):
    path = environ.get("PATH_INFO", "")
    if path == "/status-not-latin1":
        start_response("200 Ok\u0100", [("Content-Type", "text/plain")])
        return [b"hello"]
    if path in ("/zero", "/zero-text"):
        # An endless non-regular file, with a declared length (and, as
        # text, one --compress takes).
        n = int(environ.get("QUERY_STRING") or 1000)
        ctype = "text/plain" if path == "/zero-text" else "application/octet-stream"
        start_response("200 OK", [("Content-Length", str(n)), ("Content-Type", ctype)])
        return environ["wsgi.file_wrapper"](open("/dev/zero", "rb"), 8192)
    if path in ("/short", "/short-gen"):
        # Declares 4096 bytes, delivers 100: the response must stay cut.
        headers = [("Content-Type", "text/plain"), ("Content-Length", "4096")]
        start_response("200 OK", headers)
        body = [b"x" * 60, b"x" * 40]
        return body if path == "/short" else iter(body)
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"ok"]
