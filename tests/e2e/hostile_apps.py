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


#: A large body the slow-reader tests ask for: far more than the kernel's
#: socket buffers of a client that does not read.
BIG = b"b" * (8 << 20)
#: Piece size of the generator variant.
PIECE = 64 << 10


def big_app(environ, start_response):
    """``/big``: 8 MiB as one bytes object in a list; ``/gen``: the same
    as a generator of 64 KiB pieces; ``/file``: a file wrapper over the
    file named by ``HOSTILE_FILE``; anything else: ``ok``."""
    path = environ.get("PATH_INFO", "")
    if path == "/big":
        start_response("200 OK", [("Content-Length", str(len(BIG)))])
        return [BIG]
    if path == "/gen":
        start_response("200 OK", [("Content-Length", str(len(BIG)))])
        return (BIG[i : i + PIECE] for i in range(0, len(BIG), PIECE))
    if path == "/file":
        f = open(os.environ["HOSTILE_FILE"], "rb")
        size = os.fstat(f.fileno()).st_size
        start_response("200 OK", [("Content-Length", str(size))])
        return environ["wsgi.file_wrapper"](f)
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"ok"]
