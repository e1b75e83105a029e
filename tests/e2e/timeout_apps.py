"""The application of test_timeout.py: a request stuck in the application,
requests that work a little after reading their body, a streamed
download, an upload that is read whole, a large response.

``?marker=PATH`` on any request makes it write PATH (its worker's pid)
as it enters the application: the test knows then that the request is in
flight, without sleeping.
"""

from __future__ import annotations

import hashlib
import os
import time
from urllib.parse import parse_qs

#: How long /stuck keeps its thread: far beyond any --timeout under test.
STUCK_SECONDS = 30
#: Bytes of /work's answer beyond its header line.
WORK_BODY_BYTES = 256 * 1024
#: Bytes per piece of /stream.
PIECE_BYTES = 64 * 1024
MIB = 1 << 20


def stuck_sleeping_here_b7e3():
    """The function the stuck thread's logged traceback must name."""
    time.sleep(STUCK_SECONDS)


def _answer(start_response, body: bytes):
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]


def app(environ, start_response):
    query = {k: v[0] for k, v in parse_qs(environ.get("QUERY_STRING", "")).items()}
    if "marker" in query:
        with open(query["marker"], "w") as f:
            f.write(str(os.getpid()))
    path = environ["PATH_INFO"]
    if path == "/pid":
        return _answer(start_response, str(os.getpid()).encode())
    if path == "/stuck":
        environ["wsgi.input"].read()  # a POST's body first: the client says when it is stuck
        stuck_sleeping_here_b7e3()
        return _answer(start_response, b"woke up")
    if path == "/work":
        # The client decides when the body ends; then a second of work.
        data = environ["wsgi.input"].read()
        time.sleep(float(query.get("s", "1")))
        return _answer(start_response, b"work %d\n" % len(data) + b"w" * WORK_BODY_BYTES)
    if path == "/stream":
        total = int(query["mb"]) * MIB
        start_response("200 OK", [("Content-Length", str(total))])
        return (b"s" * PIECE_BYTES for _ in range(total // PIECE_BYTES))
    if path == "/upload":
        data = environ["wsgi.input"].read()
        return _answer(
            start_response, b"%d %s" % (len(data), hashlib.sha256(data).hexdigest().encode())
        )
    if path == "/big":
        return _answer(start_response, b"b" * (int(query["mb"]) * MIB))
    start_response("404 Not Found", [("Content-Length", "0")])
    return [b""]
