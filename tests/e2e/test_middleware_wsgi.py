"""Unit-level tests of the middleware, in process under
``wsgiref.validate.validator`` (outside and inside each middleware):
close() propagation, write()-style apps, exc_info, file_wrapper or not,
the Rust Compressor, and the header parsing helpers."""

from __future__ import annotations

import gzip
import os
import sys
import threading
import zlib
from wsgiref.validate import validator

import brotli
import pytest
import zstandard
from mw_wsgi import call
from qiao._qiao import Compressor
from qiao.middleware import Compress, Mount, Router, Static, Transform
from qiao.middleware._http import choose_coding, parse_etags, parse_range
from qiao.middleware.proxy import request_target

BODY = b"some text that compresses well. " * 200


class Recorded:
    """An app whose result records close(); ``style``: list, gen or write."""

    def __init__(self, style="gen", ctype="text/plain", body=BODY):
        self.style, self.ctype, self.body, self.closed = style, ctype, body, 0

    def __call__(self, environ, start_response):
        app = self

        class Body:
            def __init__(self, pieces):
                self.pieces = iter(pieces)

            def __iter__(self):
                return self

            def __next__(self):
                return next(self.pieces)

            def close(self):
                app.closed += 1

        headers = [("Content-Type", self.ctype)]
        if self.style == "write":
            write = start_response("200 OK", headers)
            write(self.body[:1000])
            write(self.body[1000:])
            return Body([])
        start_response("200 OK", headers)
        return Body([self.body[i : i + 1000] for i in range(0, len(self.body), 1000)])


STACKS = {
    "compress": lambda inner: Compress(inner),
    "transform": lambda inner: Transform(inner, lambda b, e: b.upper(), types=["text/plain"]),
    "transform-pass": lambda inner: Transform(inner, lambda b, e: b, types=["text/html"]),
    "router": lambda inner: Router([(r"^/", inner)]),
    "mount": lambda inner: Mount({"/x": inner}),
    "static-fallback": lambda inner: Static(inner, {"/static": "."}),
}


@pytest.mark.parametrize("stack", sorted(STACKS))
@pytest.mark.parametrize("stop_after", [None, 1])
def test_close_reaches_the_inner_app(stack, stop_after):
    inner = Recorded()
    res = call(
        STACKS[stack](validator(inner)),
        "/x/y",
        headers=[("Accept-Encoding", "gzip")],
        stop_after=stop_after,
    )
    assert res.code == 200
    assert inner.closed == 1


@pytest.mark.parametrize("stack", ["compress", "transform", "transform-pass", "mount"])
def test_write_style_apps(stack):
    inner = Recorded("write")
    res = call(STACKS[stack](validator(inner)), "/x/y", headers=[("Accept-Encoding", "gzip")])
    body = gzip.decompress(res.body) if res.header("Content-Encoding") == "gzip" else res.body
    assert body == (BODY.upper() if stack == "transform" else BODY)
    assert inner.closed == 1


def late_failure(environ, start_response):
    """Starts a 200, yields nothing yet, then replaces it with exc_info."""
    start_response("200 OK", [("Content-Type", "text/plain")])
    yield b""
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        start_response(
            "500 Internal Server Error", [("Content-Type", "text/plain")], sys.exc_info()
        )
    yield b"failed: " + BODY


def test_exc_info_after_headers_forwarded():
    # Compress forwarded the 200's headers at the first (empty) piece: the
    # server takes the replacement, which then goes out unchanged.
    res = call(Compress(late_failure), headers=[("Accept-Encoding", "gzip")])
    assert res.code == 500
    assert res.body == b"failed: " + BODY


def test_exc_info_while_collecting():
    # Transform had forwarded nothing: the error page is a new response,
    # transformed like any other of its type.
    res = call(STACKS["transform"](late_failure))
    assert res.code == 500
    assert res.body == b"FAILED: " + BODY.upper()


def test_exc_info_after_body_sent_reraises():
    def app(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/plain")])
        yield BODY
        try:
            raise RuntimeError("late")
        except RuntimeError:
            start_response("500 Oops", [("Content-Type", "text/plain")], sys.exc_info())

    with pytest.raises(RuntimeError, match="late"):
        call(Compress(app), headers=[("Accept-Encoding", "gzip")], validate=False)


def test_declined_response_keeps_the_inner_iterable(tmp_path):
    (tmp_path / "a.png").write_bytes(b"png" * 1000)
    env = {"wsgi.file_wrapper": lambda f, size: ("wrapped", f, size)}
    captured = {}

    def outer(environ, start_response):
        captured["result"] = Compress(Static(None, {"/s": tmp_path}))(environ, start_response)
        for _ in captured["result"][1]:
            pass
        captured["result"][1].close()
        return []

    call(outer, "/s/a.png", headers=[("Accept-Encoding", "gzip")], validate=False, environ=env)
    assert captured["result"][0] == "wrapped"  # the file_wrapper object itself, untouched


def test_static_without_file_wrapper_and_with_range(tmp_path):
    data = bytes(range(256)) * 1000
    (tmp_path / "f.bin").write_bytes(data)
    app = Static(None, {"/": tmp_path})
    assert call(app, "/f.bin", file_wrapper=False).body == data
    for wrapper in (False, True):
        res = call(app, "/f.bin", headers=[("Range", "bytes=1000-70999")], file_wrapper=wrapper)
        assert (res.code, res.body) == (206, data[1000:71000])


def test_static_callable_cache_control_gets_the_name_below_the_root(tmp_path):
    (tmp_path / "css").mkdir()
    (tmp_path / "css" / "site.css").write_bytes(b"body{}")
    (tmp_path / "top.txt").write_bytes(b"top")
    seen = []

    def policy(rel):
        seen.append(rel)
        return "max-age=60" if rel.startswith("css") else None

    app = Static(None, {"/s": tmp_path}, cache_control=policy)
    assert call(app, "/s/css/site.css").header("Cache-Control") == "max-age=60"
    assert call(app, "/s/top.txt").header("Cache-Control") is None
    assert seen == [f"css{os.sep}site.css", "top.txt"]


def test_transform_must_return_bytes():
    app = Transform(Recorded(ctype="text/html"), lambda body, environ: "text")
    with pytest.raises(TypeError, match="not bytes"):
        call(app, validate=False)


def test_compress_over_transform():
    app = Compress(Transform(Recorded(), lambda b, e: b.upper(), types=["text/plain"]))
    res = call(app, headers=[("Accept-Encoding", "br")])
    assert res.header("Content-Encoding") == "br"
    assert brotli.decompress(res.body) == BODY.upper()


def test_nested_routers_merge_routing_args():
    def show(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [repr(environ["wsgiorg.routing_args"]).encode()]

    inner = Router([(r"/(?P<id>\d+)$", show)])
    outer = Router([(r"^/(\w+)/", inner)])
    assert call(outer, "/users/7").body == b"(['users'], {'id': '7'})"


# -- the Rust codec -----------------------------------------------------------------


def zstd_decode(data):
    return zstandard.ZstdDecompressor().decompressobj().decompress(data)


DECODERS = {"gzip": gzip.decompress, "br": brotli.decompress, "zstd": zstd_decode}


@pytest.mark.parametrize("kind", sorted(DECODERS))
def test_compressor_streams_and_flushes(kind):
    c = Compressor(kind)
    assert c.kind == kind
    out = c.compress(BODY)
    out += c.flush()
    if kind == "gzip":
        assert zlib.decompressobj(31).decompress(out) == BODY  # decodable after flush
    big = bytes(range(256)) * 4096  # 1 MiB: compressed with the GIL released
    out += c.compress(big) + c.finish()
    assert DECODERS[kind](out) == BODY + big
    with pytest.raises(RuntimeError):
        c.compress(b"more")


@pytest.mark.parametrize("kind, level", [("deflate", None), ("gzip", 10), ("br", 12), ("zstd", 0)])
def test_compressor_rejects_bad_arguments(kind, level):
    with pytest.raises(ValueError):
        Compressor(kind, level)


def test_compressors_in_threads():
    results = {}

    def work(i):
        c = Compressor(("gzip", "br", "zstd")[i % 3])
        data = bytes([i]) * 300_000 + BODY
        results[i] = DECODERS[c.kind](c.compress(data) + c.finish()) == data

    threads = [threading.Thread(target=work, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert results == {i: True for i in range(6)}


# -- header helpers --------------------------------------------------------------------


@pytest.mark.parametrize(
    "value, result",
    [
        ("bytes=0-9", (0, 9)),
        ("bytes=5-", (5, 99)),
        ("bytes=-5", (95, 99)),
        ("bytes=90-200", (90, 99)),
        (" bytes = 1-2 ", (1, 2)),
        ("bytes=100-", "unsatisfiable"),
        ("bytes=-0", "unsatisfiable"),
        ("bytes=0-1,3-4", None),
        ("bytes=9-1", None),
        ("bytes=a-b", None),
        ("bytes=١-٢", None),  # non-ASCII digits
        ("pages=1-2", None),
        (None, None),
    ],
)
def test_parse_range(value, result):
    assert parse_range(value, 100) == result


def test_choose_coding_and_etags():
    assert choose_coding("gzip;q=0.2, br;q=0.2", ["zstd", "br", "gzip"]) == "br"
    assert choose_coding("gzip;q=bad", ["gzip"]) is None
    assert parse_etags('W/"a", "b" ,"c"') == [(True, '"a"'), (False, '"b"'), (False, '"c"')]
    assert parse_etags("*") == "*"


@pytest.mark.parametrize(
    "environ, target",
    [
        ({"PATH_INFO": "/a/b", "RAW_URI": "/a%2Fb"}, "/base/a%2Fb"),
        ({"SCRIPT_NAME": "/api", "PATH_INFO": "/x%y", "RAW_URI": "/api/x%25y?q=1"}, "/base/x%25y"),
        ({"SCRIPT_NAME": "/a%2Fpi", "PATH_INFO": "/x", "RAW_URI": "/a%252Fpi/x"}, "/base/x"),
        ({"SCRIPT_NAME": "/api", "PATH_INFO": "/x y"}, "/base/x%20y"),
        ({"PATH_INFO": "/changed", "RAW_URI": "/original"}, "/base/changed"),
        ({"PATH_INFO": "", "RAW_URI": "http://h.example"}, "/base"),
    ],
)
def test_request_target(environ, target):
    environ.setdefault("QUERY_STRING", "")
    assert request_target(environ, "/base") == target
