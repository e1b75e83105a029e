"""Applications of the ``--compress`` tests (``test_compress_native.py``):
``app`` is ``mw_apps.content`` plus the responses the shared suite does not
cover (304, ``wsgi.file_wrapper`` files, an empty generator, a failure
mid-stream, an existing ``Vary``); ``portable`` is the same app inside the
portable ``Compress``, so the two can be compared response by response."""

from __future__ import annotations

import os
import tempfile

from mw_apps import content, query, respond, text
from qiao.middleware import Compress, Router

#: The file the ``/file`` endpoint sends, written once per process.
FILE_SIZE = 50_000
_FILE = os.path.join(tempfile.mkdtemp(prefix="qiao-compress-"), "body.txt")
with open(_FILE, "wb") as f:
    f.write(text(FILE_SIZE))


def not_modified(environ, start_response):
    start_response("304 Not Modified", [("ETag", '"v1"'), ("Content-Type", "text/plain")])
    return []


def file_body(environ, start_response):
    """A real file through ``wsgi.file_wrapper`` (sendfile when left alone),
    with a Content-Length unless ``?cl=0``."""
    headers = [("Content-Type", "text/plain")]
    if query(environ).get("cl", "1") == "1":
        headers.append(("Content-Length", str(FILE_SIZE)))
    start_response("200 OK", headers)
    return environ["wsgi.file_wrapper"](open(_FILE, "rb"), 8192)


def empty_stream(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return (piece for piece in ())


def fail_midway(environ, start_response):
    """100 kB of text (past one codec flush), then an exception."""
    start_response("200 OK", [("Content-Type", "text/plain")])
    yield text(100_000)
    raise RuntimeError("failed mid-stream (expected by the test)")


def vary(environ, start_response):
    return respond(start_response, text(5000), extra=[("Vary", "Cookie")])


def empty_list(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return []


app = Router(
    [
        (r"^/not-modified$", not_modified),
        (r"^/file$", file_body),
        (r"^/empty-stream$", empty_stream),
        (r"^/empty-list$", empty_list),
        (r"^/fail-midway$", fail_midway),
        (r"^/vary$", vary),
    ],
    not_found=content,
)

portable = Compress(app)
