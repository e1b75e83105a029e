"""The well-behaved endpoints of ``apps`` (each exercising one part of
PEP 3333, most of them in ``validated`` too) and the introspection ones,
which report what the application was given. Importing the module
registers their routes."""

from __future__ import annotations

import hashlib
import io
import time

from apps_support import query, read_all, respond, respond_json, route

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
