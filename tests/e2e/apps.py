"""WSGI test applications for the e2e suite.

``app`` (also ``application`` and the factory ``create_app()``) dispatches on
PATH_INFO to small endpoints, each exercising one part of PEP 3333. Query
parameters tune them. Endpoints that deliberately misbehave (bad headers,
str bodies, exceptions) live beside the well-behaved ones; ``validated`` is
the well-behaved subset wrapped in ``wsgiref.validate.validator``.

Close calls on response iterables are recorded in ``CLOSE_LOG`` and exposed
through ``/closed?id=...`` (the servers under test run one worker process).
"""

from __future__ import annotations

import hashlib
import io
import json
import sys
import threading
import time
from urllib.parse import parse_qs
from wsgiref.validate import validator

CLOSE_LOG: dict[str, int] = {}
_LOCK = threading.Lock()
ROUTES = {}
GOOD_ROUTES = set()  # endpoints that follow PEP 3333 to the letter


def route(path, good=False):
    def register(func):
        ROUTES[path] = func
        if good:
            GOOD_ROUTES.add(path)
        return func

    return register


def query(environ) -> dict:
    parsed = parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True)
    return {k: v[0] for k, v in parsed.items()}


def respond(start_response, body: bytes, status="200 OK", ctype="text/plain", extra=()):
    headers = [("Content-Type", ctype), ("Content-Length", str(len(body))), *extra]
    start_response(status, headers)
    return [body]


def respond_json(start_response, obj, status="200 OK"):
    return respond(start_response, json.dumps(obj).encode(), status, "application/json")


def read_all(environ) -> bytes:
    """Read the whole body in pieces (validator-safe: read() always gets a size)."""
    inp, parts = environ["wsgi.input"], []
    while True:
        piece = inp.read(65536)
        if not piece:
            return b"".join(parts)
        parts.append(piece)


def record_close(key: str):
    with _LOCK:
        CLOSE_LOG[key] = CLOSE_LOG.get(key, 0) + 1


# -- well-behaved endpoints ----------------------------------------------------


@route("/hello", good=True)
def hello(environ, start_response):
    return respond(start_response, b"hello world", extra=[("X-Test", "hello")])


@route("/echo", good=True)
def echo(environ, start_response):
    body = read_all(environ)
    extra = [("X-Method", environ["REQUEST_METHOD"]), ("X-Body-Length", str(len(body)))]
    return respond(start_response, body, ctype="application/octet-stream", extra=extra)


@route("/chunked", good=True)
def chunked(environ, start_response):
    """Generator body with no Content-Length: chunked on 1.1, close-delimited on 1.0."""
    n = int(query(environ).get("n", "5"))
    start_response("200 OK", [("Content-Type", "text/plain")])
    return (b"chunk-%d\n" % i for i in range(n))


@route("/list", good=True)
def list_body(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"alpha-", b"beta-", b"gamma"]


@route("/write", good=True)
def write_callable(environ, start_response):
    write = start_response("200 OK", [("Content-Type", "text/plain")])
    write(b"first-")
    write(b"second-")
    return [b"third"]


@route("/status", good=True)
def status(environ, start_response):
    code = query(environ).get("code", "200")
    reasons = {
        "200": "OK",
        "201": "Created",
        "204": "No Content",
        "304": "Not Modified",
        "404": "Not Found",
        "418": "I'm a teapot",
    }
    line = f"{code} {reasons.get(code, 'Whatever')}"
    if code in ("204", "304"):
        start_response(line, [])
        return []
    return respond(start_response, f"status {code}".encode(), status=line)


@route("/expect", good=True)
def expect(environ, start_response):
    if query(environ).get("read") == "1":
        body = read_all(environ)
        return respond(start_response, b"read %d" % len(body))
    return respond(start_response, b"not read")


@route("/close")  # hop-by-hop header: PEP 3333 forbids it, qiao honours it
def close_header(environ, start_response):
    return respond(start_response, b"bye", extra=[("Connection", "close")])


@route("/headers", good=True)
def headers(environ, start_response):
    extra = [
        ("Set-Cookie", "a=1; Path=/"),
        ("Set-Cookie", "b=2; Path=/"),
        ("X-Multi", "one"),
        ("X-Multi", "two"),
    ]
    return respond(start_response, b"headers", extra=extra)


@route("/count", good=True)
def count(environ, start_response):
    """Read the body in 64 KiB pieces; report the total and an md5."""
    inp, total, digest = environ["wsgi.input"], 0, hashlib.md5()
    while True:
        piece = inp.read(65536)
        if not piece:
            break
        total += len(piece)
        digest.update(piece)
    return respond_json(start_response, {"total": total, "md5": digest.hexdigest()})


@route("/input-lines", good=True)
def input_lines(environ, start_response):
    inp = environ["wsgi.input"]
    lines = [inp.readline(), inp.readline(4)] + inp.readlines()
    return respond_json(start_response, [x.decode("latin-1") for x in lines])


@route("/file", good=True)
def file_wrapper(environ, start_response):
    path = query(environ)["path"]
    f = open(path, "rb")  # noqa: SIM115 - closed by the file wrapper's close()
    size = f.seek(0, 2)
    f.seek(0)
    start_response(
        "200 OK", [("Content-Type", "application/octet-stream"), ("Content-Length", str(size))]
    )
    return environ["wsgi.file_wrapper"](f, 8192)


@route("/filelike", good=True)
def filelike(environ, start_response):
    data = bytes(range(256)) * 400
    start_response(
        "200 OK", [("Content-Type", "application/octet-stream"), ("Content-Length", str(len(data)))]
    )
    return environ["wsgi.file_wrapper"](io.BytesIO(data), 4096)


# -- introspection --------------------------------------------------------------


@route("/environ")
def environ_dump(environ, start_response):
    inp, err = environ["wsgi.input"], environ["wsgi.errors"]
    info = {
        "str": {k: v for k, v in environ.items() if isinstance(v, str)},
        "types": {k: type(v).__name__ for k, v in environ.items() if k.isupper() and "." not in k},
        "environ_type": type(environ).__name__,
        "wsgi.version": list(environ["wsgi.version"]),
        "wsgi.version_type": type(environ["wsgi.version"]).__name__,
        "wsgi.url_scheme": environ["wsgi.url_scheme"],
        "wsgi.multithread": environ["wsgi.multithread"],
        "wsgi.multiprocess": environ["wsgi.multiprocess"],
        "wsgi.run_once": environ["wsgi.run_once"],
        "wsgi.input_terminated": environ.get("wsgi.input_terminated"),
        "wsgi.file_wrapper": callable(environ.get("wsgi.file_wrapper")),
        "input_methods": [
            m for m in ("read", "readline", "readlines", "__iter__") if hasattr(inp, m)
        ],
        "errors_methods": [m for m in ("write", "writelines", "flush") if hasattr(err, m)],
        "body": read_all(environ).decode("latin-1"),
    }
    return respond_json(start_response, info)


@route("/input")
def input_modes(environ, start_response):
    """Exercise one wsgi.input reading style, chosen by ?mode=."""
    inp, mode = environ["wsgi.input"], query(environ).get("mode", "read")
    if mode == "read":
        parts = [inp.read()]
    elif mode == "read-n":
        parts = [inp.read(5), inp.read(5), inp.read()]
    elif mode == "readline":
        parts = [inp.readline(), inp.readline(), inp.readline()]
    elif mode == "readline-n":
        parts = [inp.readline(3), inp.readline(), inp.readline(-1)]
    elif mode == "readlines":
        parts = inp.readlines()
    elif mode == "iter":
        parts = list(inp)
    else:
        parts = [b"unknown mode"]
    parts.append(inp.read())  # whatever is left
    parts.append(inp.read(10))  # at EOF: must be b""
    return respond_json(start_response, [p.decode("latin-1") for p in parts])


@route("/errors-write")
def errors_write(environ, start_response):
    err = environ["wsgi.errors"]
    err.write("wsgi-errors-marker-7f3a\n")
    err.flush()
    return respond(start_response, b"written")


@route("/short-read")
def short_read(environ, start_response):
    """Try to read the declared body; record what happened into ?record=FILE."""
    want = int(environ.get("CONTENT_LENGTH") or 0)
    try:
        got = b""
        while len(got) < want:
            piece = environ["wsgi.input"].read(want - len(got))
            if not piece:
                break
            got += piece
        outcome = f"read {len(got)}"
    except Exception as exc:  # the server signalled the truncated body
        outcome = f"error {type(exc).__name__}"
    with open(query(environ)["record"], "w") as f:
        f.write(outcome)
    return respond(start_response, outcome.encode())


@route("/sleep")
def sleep(environ, start_response):
    time.sleep(float(query(environ).get("s", "0.5")))
    return respond(start_response, b"slept")


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


def not_found(environ, start_response):
    info = {
        "error": "no such endpoint",
        "PATH_INFO": environ.get("PATH_INFO"),
        "QUERY_STRING": environ.get("QUERY_STRING"),
    }
    return respond_json(start_response, info, status="404 Not Found")


def app(environ, start_response):
    handler = ROUTES.get(environ.get("PATH_INFO", ""), not_found)
    return handler(environ, start_response)


application = app


def create_app():
    """Factory form, for ``apps:create_app()``."""
    return app


def _good_app(environ, start_response):
    path = environ.get("PATH_INFO", "")
    handler = ROUTES[path] if path in GOOD_ROUTES else not_found
    return handler(environ, start_response)


validated = validator(_good_app)


# -- hardening suites (test_corpus.py, test_security.py, test_limits.py) -----------

PROBE_HITS: dict[str, int] = {}


def probe(environ, start_response):
    """Any path: 200 with what the server parsed, as JSON; counts requests per path.

    ``/__hits?path=P`` answers how many requests reached PATH_INFO ``P`` (a
    smuggled request must never count); ``path=read-error:P`` how many of them
    had their ``wsgi.input`` read raise. A query holding ``noread`` leaves the
    body unread, for the drain tests.
    """
    path = environ.get("PATH_INFO", "")
    if path == "/__hits":
        with _LOCK:
            n = PROBE_HITS.get(query(environ).get("path", ""), 0)
        return respond(start_response, str(n).encode())
    with _LOCK:
        PROBE_HITS[path] = PROBE_HITS.get(path, 0) + 1
    unread = "noread" in environ.get("QUERY_STRING", "")
    try:
        body = b"" if unread else read_all(environ)
    except Exception as exc:  # the server refused the body mid-read
        with _LOCK:
            PROBE_HITS[f"read-error:{path}"] = PROBE_HITS.get(f"read-error:{path}", 0) + 1
        raise RuntimeError(f"probe: body read failed: {exc!r}") from exc
    info = {
        "method": environ["REQUEST_METHOD"],
        "path": path,
        "query": environ.get("QUERY_STRING", ""),
        "protocol": environ.get("SERVER_PROTOCOL", ""),
        "content_length": environ.get("CONTENT_LENGTH", ""),
        "content_type": environ.get("CONTENT_TYPE", ""),
        "headers": {k: v for k, v in environ.items() if k.startswith("HTTP_")},
        "body": body.decode("latin-1"),
    }
    return respond_json(start_response, info)
