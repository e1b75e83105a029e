"""Compress over real sockets (``mw_apps:make_compress()`` around
``mw_apps.content``): gzip, brotli and zstd chosen by q-values, checked
with independent decoders (Python's gzip, the brotli and zstandard
packages, curl), streaming, and the responses it must leave alone."""

from __future__ import annotations

import gzip
import subprocess
import uuid
import zlib

import brotli
import pytest
import requests
import zstandard
from mw_apps import text
from mw_servers import KINDS, ChunkedReader, build, decode
from rawhttp import Conn


@pytest.fixture(params=KINDS)
def kind(request):
    return request.param


@pytest.fixture
def server(kind, pooled):
    return build(kind, pooled, "compress", {})


@pytest.fixture
def tuned(kind, pooled):
    return build(kind, pooled, "compress", {"opts": {"min_size": 0, "types": ["text/plain"]}})


def fetch(server, target, accept=None, method="GET"):
    headers = [("Accept-Encoding", accept)] if accept is not None else []
    with Conn(server.host, server.port) as conn:
        return conn.request(method, target, headers=headers)


@pytest.mark.parametrize("coding", ["gzip", "br", "zstd"])
def test_each_coding_round_trips(server, coding):
    resp = fetch(server, "/text?n=100000", coding)
    assert resp.status == 200
    assert resp.header("content-encoding") == coding
    assert resp.header("content-length") is None  # streamed: length unknown
    assert resp.header("vary") == "Accept-Encoding"
    assert len(resp.body) < 100000
    assert decode(coding, resp.body) == text(100000)


@pytest.mark.parametrize(
    "accept, coding",
    [
        ("gzip;q=0.5, br;q=0.9", "br"),
        ("br;q=0, gzip", "gzip"),
        ("gzip, zstd;q=0.1", "gzip"),
        ("zstd, br, gzip", "zstd"),
        ("gzip, deflate, br", "br"),
        ("*", "zstd"),
        ("*;q=0.5, gzip;q=0.8", "gzip"),
        ("GZIP", "gzip"),
        ("x-gzip", "gzip"),
        ("*;q=0", None),
        ("identity", None),
        ("gzip;q=0.3, identity;q=0.9", None),
        ("", None),
        (None, None),
    ],
)
def test_negotiation_by_q_values(server, accept, coding):
    resp = fetch(server, "/text?n=5000", accept)
    assert resp.header("content-encoding") == coding
    assert resp.header("vary") == "Accept-Encoding"  # the answer depends on the header
    assert decode(coding, resp.body) == text(5000)


@pytest.mark.parametrize(
    "target",
    [
        "/text?n=100",  # small, known length
        "/list?n=500",  # small list body: length known without a header
        "/binary",  # image/png
        "/events",  # text/event-stream
        "/partial",  # 206
        "/no-transform",
    ],
)
def test_left_alone(server, target):
    resp = fetch(server, target, "gzip, br, zstd")
    assert resp.header("content-encoding") is None
    assert resp.header("content-length") == str(len(resp.body))


def test_already_encoded_is_not_encoded_again(server):
    resp = fetch(server, "/encoded", "gzip, br")
    assert resp.header_all("content-encoding") == ["gzip"]
    assert gzip.decompress(resp.body) == text(8192)


def test_list_body_big_enough_is_compressed(server):
    resp = fetch(server, "/list?n=5000", "gzip")
    assert resp.header("content-encoding") == "gzip"
    assert gzip.decompress(resp.body) == text(5000)


def test_json_is_compressed(server):
    resp = fetch(server, "/json", "br")
    assert resp.header("content-encoding") == "br"
    assert brotli.decompress(resp.body).startswith(b'{"items": [')


def test_strong_etag_becomes_weak_only_when_encoded(server):
    assert fetch(server, "/etag", "gzip").header("etag") == 'W/"v1"'
    assert fetch(server, "/etag").header("etag") == '"v1"'


def test_write_style_app(server):
    resp = fetch(server, "/write?n=100000", "zstd")
    assert resp.header("content-encoding") == "zstd"
    assert decode("zstd", resp.body) == text(100000)


def test_head(server):
    resp = fetch(server, "/text?n=100000", "gzip", method="HEAD")
    assert resp.status == 200
    assert resp.header("content-encoding") == "gzip"
    assert resp.body == b""


def test_exc_info_error_page_is_compressed(server):
    resp = fetch(server, "/error", "gzip")
    assert resp.status == 500
    assert gzip.decompress(resp.body) == b"error page " + text(4096)


@pytest.mark.parametrize("coding", ["gzip", "br", "zstd"])
def test_large_stream(server, coding):
    n = 4_000_000
    url = f"{server.url}/stream?n={n}"
    with requests.get(url, headers={"Accept-Encoding": coding}, timeout=60, stream=True) as resp:
        assert resp.headers["Content-Encoding"] == coding
        data = resp.raw.read(decode_content=False)
    assert decode(coding, data) == text(n)


@pytest.mark.parametrize("coding", ["gzip", "br", "zstd"])
def test_streams_before_the_app_finishes(server, coding):
    """The app yields 1 MiB, then waits for /release: compressed bytes that
    decode to the start of the body must arrive while it waits."""
    key = uuid.uuid4().hex
    with Conn(server.host, server.port, timeout=20) as conn:
        conn.send(
            f"GET /gate?id={key} HTTP/1.1\r\nHost: x\r\nAccept-Encoding: {coding}\r\n\r\n".encode()
        )
        head = conn.read_head()
        assert head.header("content-encoding") == coding
        if coding == "gzip":
            decoder = zlib.decompressobj(31).decompress
        elif coding == "br":
            decoder = brotli.Decompressor().process
        else:
            decoder = zstandard.ZstdDecompressor().decompressobj().decompress
        reader, first, prefix = ChunkedReader(conn), b"", b""
        while len(prefix) < 16 * 1024:  # arrives while the app waits for the gate
            piece = reader.some()
            assert piece, "the body ended before the gate was released"
            first += piece
            prefix += decoder(piece)
        assert text(1 << 20).startswith(prefix)
        assert requests.get(f"{server.url}/release?id={key}", timeout=10).text == "ok"
        rest = reader.rest()
    assert decode(coding, first + rest) == text(1 << 20) + b"\nreleased\n"


@pytest.mark.needs_curl
@pytest.mark.parametrize("coding", ["gzip", "br", "zstd"])
def test_curl_compressed(server, coding):
    out = subprocess.run(
        ["curl", "-sS", "-D", "-", "--compressed", "-H", f"Accept-Encoding: {coding}"]
        + [server.url + "/text?n=50000"],
        capture_output=True,
        timeout=30,
        check=True,
    ).stdout
    head, _, body = out.partition(b"\r\n\r\n")
    assert f"content-encoding: {coding}".encode() in head.lower()
    assert body == text(50000)


def test_min_size_and_types_are_configurable(tuned):
    resp = fetch(tuned, "/text?n=10", "gzip")
    assert resp.header("content-encoding") == "gzip"
    assert gzip.decompress(resp.body) == text(10)
    resp = fetch(tuned, "/json", "gzip")
    assert resp.header("content-encoding") is None
