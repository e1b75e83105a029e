"""Applications of the TLS and HTTP/2 tests."""

from __future__ import annotations

import hashlib
import json
import os
import time

ENV_KEYS = (
    "wsgi.url_scheme",
    "HTTPS",
    "REMOTE_ADDR",
    "REMOTE_PORT",
    "SERVER_PROTOCOL",
    "SERVER_NAME",
    "SERVER_PORT",
    "HTTP_HOST",
    "REQUEST_METHOD",
    "PATH_INFO",
    "QUERY_STRING",
    "SSL_PROTOCOL",
    "SSL_CIPHER",
    "SSL_CLIENT_S_DN",
    "SSL_CLIENT_VERIFY",
    "SSL_CLIENT_CERT",
)


def _reply(start_response, body: bytes, ctype="application/json"):
    start_response("200 OK", [("Content-Type", ctype), ("Content-Length", str(len(body)))])
    return [body]


def app(environ, start_response):
    path = environ["PATH_INFO"]
    query = environ.get("QUERY_STRING", "")
    if path == "/env":
        return _reply(start_response, json.dumps({k: environ.get(k) for k in ENV_KEYS}).encode())
    if path == "/echo":
        data = environ["wsgi.input"].read()
        facts = {
            "len": len(data),
            "sha256": hashlib.sha256(data).hexdigest(),
            "content_length": environ.get("CONTENT_LENGTH"),
            "protocol": environ.get("SERVER_PROTOCOL"),
        }
        return _reply(start_response, json.dumps(facts).encode())
    if path == "/big":
        # A streamed response (no Content-Length) of `query` bytes.
        size = int(query or "1000000")
        start_response("200 OK", [("Content-Type", "application/octet-stream")])

        def pieces():
            left = size
            while left:
                n = min(left, 65536)
                left -= n
                yield bytes([97 + left % 26]) * n

        return pieces()
    if path == "/slow":
        # Says it arrived (a file named by the query), then waits for a
        # second file before answering: the test decides when it ends.
        arrived, release = query.split(",")
        with open(arrived, "w") as f:
            f.write(str(os.getpid()))
        deadline = time.monotonic() + 30
        while not os.path.exists(release) and time.monotonic() < deadline:
            time.sleep(0.02)
        return _reply(start_response, b"finished", "text/plain")
    if path == "/sleep":
        time.sleep(float(query or "0.2"))
        return _reply(start_response, json.dumps({"port": environ.get("REMOTE_PORT")}).encode())
    if path == "/file":
        # wsgi.file_wrapper: sendfile(2) into the internal connection.
        f = open(query, "rb")  # noqa: SIM115 - closed by the file wrapper's close()
        size = f.seek(0, 2)
        f.seek(0)
        start_response("200 OK", [("Content-Length", str(size))])
        return environ["wsgi.file_wrapper"](f, 65536)
    if path == "/cookies":
        return cookies(environ, start_response)
    if path == "/fail":
        return failing(environ, start_response)
    if path == "/cut":
        return cut(start_response, int(query or "100000"))
    return _reply(start_response, b"hello", "text/plain")


def cookies(environ, start_response):
    """The cookie header and method, for the HTTP/2 head mapping tests."""
    facts = {k: environ.get(k) for k in ("HTTP_COOKIE", "REQUEST_METHOD", "HTTP_X_MULTI")}
    return _reply(start_response, json.dumps(facts).encode())


def failing(environ, start_response):
    raise RuntimeError("boom")


def cut(start_response, sent):
    """`sent` bytes of a streamed body, then the application fails: the
    response can only end cut."""
    start_response("200 OK", [("Content-Type", "application/octet-stream")])
    yield b"c" * sent
    raise RuntimeError("the body breaks off here")
