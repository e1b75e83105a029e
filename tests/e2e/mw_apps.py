"""Applications served by the middleware tests (``test_middleware_*.py``).

Each ``make_*()`` factory builds one middleware stack from the JSON in the
``MW_CONFIG`` environment variable (see ``mw_servers.py``), so one module
serves every configuration a test asks for. ``content`` is the inner app
that Compress and Transform wrap: endpoints whose bodies differ in type,
size, framing (length, list, generator, ``write()``) and encoding.
"""

from __future__ import annotations

import gzip
import json
import os
import random
import threading
from urllib.parse import parse_qs

from qiao.middleware import Compress, Mount, Proxy, Router, Static, Transform

GATES: dict[str, threading.Event] = {}
_LOCK = threading.Lock()
GATE_WAIT = 10.0  # longest a gated response waits for its release


def config() -> dict:
    return json.loads(os.environ.get("MW_CONFIG", "{}"))


def query(environ) -> dict:
    return {k: v[0] for k, v in parse_qs(environ.get("QUERY_STRING", "")).items()}


def respond(
    start_response, body: bytes, ctype="text/plain; charset=utf-8", status="200 OK", extra=()
):
    start_response(status, [("Content-Type", ctype), ("Content-Length", str(len(body))), *extra])
    return [body]


def text(n: int, seed: int = 1) -> bytes:
    """``n`` bytes of word salad: compressible, but not trivially."""
    rng = random.Random(seed)
    words = [
        "".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(2, 9)))
        for _ in range(500)
    ]
    out, size = [], 0
    while size < n:
        word = rng.choice(words) + " "
        out.append(word)
        size += len(word)
    return "".join(out).encode()[:n]


def gate(key: str) -> threading.Event:
    with _LOCK:
        return GATES.setdefault(key, threading.Event())


# -- the app Compress and Transform wrap ---------------------------------------------


def c_text(environ, start_response):
    return respond(start_response, text(int(query(environ).get("n", "4096"))))


def c_list(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    body = text(int(query(environ).get("n", "4096")))
    return [body[: len(body) // 2], body[len(body) // 2 :]]


def c_stream(environ, start_response):
    q = query(environ)
    n, chunk = int(q.get("n", "1000000")), int(q.get("chunk", "65536"))
    start_response("200 OK", [("Content-Type", q.get("type", "text/plain"))])
    body = text(n)
    return (body[i : i + chunk] for i in range(0, n, chunk))


def c_gate(environ, start_response):
    """``n`` bytes (1 MiB) at once, then the rest only once ``/release?id=`` is
    called. The first piece is large because Qiao coalesces small pieces
    (below 64 KiB) until more come: compressed, it must still exceed that."""
    q = query(environ)
    start_response("200 OK", [("Content-Type", "text/plain")])
    yield text(int(q.get("n", str(1 << 20))))
    key = q["id"]
    released = gate(key).wait(GATE_WAIT)
    yield b"\nreleased\n" if released else b"\ntimed out\n"


def c_release(environ, start_response):
    gate(query(environ)["id"]).set()
    return respond(start_response, b"ok")


def c_write(environ, start_response):
    write = start_response("200 OK", [("Content-Type", "text/plain")])
    body = text(int(query(environ).get("n", "100000")))
    for i in range(0, len(body), 10000):
        write(body[i : i + 10000])
    return []


def c_binary(environ, start_response):
    return respond(start_response, bytes(range(256)) * 16, "image/png")


def c_encoded(environ, start_response):
    body = gzip.compress(text(8192))
    return respond(start_response, body, extra=[("Content-Encoding", "gzip")])


def c_events(environ, start_response):
    return respond(start_response, text(8192), "text/event-stream")


def c_partial(environ, start_response):
    body = text(4096)
    return respond(
        start_response,
        body,
        status="206 Partial Content",
        extra=[("Content-Range", "bytes 0-4095/9000")],
    )


def c_no_transform(environ, start_response):
    return respond(start_response, text(8192), extra=[("Cache-Control", "no-transform")])


def c_etag(environ, start_response):
    return respond(start_response, text(8192), extra=[("ETag", '"v1"')])


def c_json(environ, start_response):
    body = json.dumps({"items": [{"id": i, "name": f"item {i}"} for i in range(200)]}).encode()
    return respond(start_response, body, "application/json")


def c_html(environ, start_response):
    n = int(query(environ).get("n", "2000"))
    body = b"<html><body><p>" + text(n) + b"</p></body></html>"
    return respond(start_response, body, "text/html; charset=utf-8", extra=[("ETag", '"h1"')])


def c_html_stream(environ, start_response):
    n = int(query(environ).get("n", "2000"))
    start_response("200 OK", [("Content-Type", "text/html")])
    body = text(n)
    return (body[i : i + 1000] for i in range(0, n, 1000))


def c_html_write(environ, start_response):
    write = start_response("200 OK", [("Content-Type", "text/html")])
    write(b"<p>one</p>")
    write(b"<p>two</p>")
    return [b"<p>three</p>"]


BOOKS_XML = b"""<?xml version="1.0"?>
<books><book year="1958">Things Fall Apart</book><book year="1967">One Hundred Years</book></books>
"""


def c_xml(environ, start_response):
    return respond(start_response, BOOKS_XML, "application/xml")


def c_error(environ, start_response):
    """Starts a 200, fails before any body, and replaces it with exc_info."""
    start_response("200 OK", [("Content-Type", "text/html")])
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        import sys

        start_response(
            "500 Internal Server Error", [("Content-Type", "text/plain")], sys.exc_info()
        )
    return [b"error page " + text(4096)]


content = Router(
    [
        (r"^/text$", c_text),
        (r"^/list$", c_list),
        (r"^/stream$", c_stream),
        (r"^/gate$", c_gate),
        (r"^/release$", c_release),
        (r"^/write$", c_write),
        (r"^/binary$", c_binary),
        (r"^/encoded$", c_encoded),
        (r"^/events$", c_events),
        (r"^/partial$", c_partial),
        (r"^/no-transform$", c_no_transform),
        (r"^/etag$", c_etag),
        (r"^/json$", c_json),
        (r"^/html$", c_html),
        (r"^/html-stream$", c_html_stream),
        (r"^/html-write$", c_html_write),
        (r"^/xml$", c_xml),
        (r"^/error$", c_error),
    ]
)


# -- factories -------------------------------------------------------------------------


def make_compress():
    return Compress(content, **config().get("opts", {}))


def shout(body: bytes, environ: dict) -> bytes:
    return body.upper()


def make_transform():
    cfg = config()
    if cfg.get("xslt"):
        from mw_xslt import to_html

        return Transform(content, to_html, types=["application/xml"], content_type="text/html")
    return Transform(content, shout, **cfg.get("opts", {}))


def make_static():
    cfg = config()
    return Static(content, cfg["dirs"], **cfg.get("opts", {}))


def make_proxy():
    cfg = config()
    proxy = Proxy(cfg["upstreams"], cfg.get("balance", "round_robin"), **cfg.get("opts", {}))

    def state(environ, start_response):
        return respond(start_response, json.dumps(proxy.states()).encode(), "application/json")

    return Mount({"/_proxy/state": state}, default=proxy)


def echo_environ(environ, start_response):
    keys = ("SCRIPT_NAME", "PATH_INFO", "QUERY_STRING")
    info = {k: environ.get(k) for k in keys}
    info["routing_args"] = environ.get("wsgiorg.routing_args")
    info["app"] = environ.get("mw.app")
    return respond(start_response, json.dumps(info).encode(), "application/json")


def named(name):
    def app(environ, start_response):
        environ["mw.app"] = name
        return echo_environ(environ, start_response)

    return app


def index(environ, start_response):
    return respond(start_response, b"index")


def hello(environ, start_response):
    args, kwargs = environ.get("wsgiorg.routing_args", ((), {}))
    name = kwargs.get("name") or (args[0] if args else None) or "world"
    return respond(start_response, f"Hello {name}!".encode())


def teapot(environ, start_response):
    return respond(start_response, b"no route here", status="418 I'm a teapot")


def make_routing():
    """Mount over Routers: docs/middleware.md's classic regex router, and prefixes."""
    site = Router(
        [
            (r"^/$", index),
            (r"^/hello/?$", hello),
            (r"^/hello/(?P<name>[^/]+)$", hello),
            (r"^/items/(\d+)/(?P<part>\w+)$", named("item")),
        ]
    )
    api = Router(
        [(r"^/v(\d+)/(?P<what>\w+)$", named("api-router"))], not_found=named("api-fallback")
    )
    return Mount(
        {
            "/api": api,
            "/api/v2/": named("api-v2"),
            "/admin": named("admin"),
            "/teapot": Router([], not_found=teapot),
        },
        default=site,
    )
