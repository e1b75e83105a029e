"""Transform over real sockets (``mw_apps:make_transform()``): docs/middleware.md's
lxml XSLT example, whole bodies from lists, generators and ``write()``,
headers fixed, the size cap, and what it leaves alone."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
import requests
from mw_apps import text
from mw_servers import KINDS, build
from rawhttp import Conn


@pytest.fixture(params=KINDS)
def kind(request):
    return request.param


@pytest.fixture
def shouting(kind, pooled):
    return build(kind, pooled, "transform", {}).url


@pytest.fixture
def capped(kind, pooled):
    return build(kind, pooled, "transform", {"opts": {"max_size": 10000}}).url


@pytest.fixture
def xslt(kind, pooled):
    return build(kind, pooled, "transform", {"xslt": True}).url


def test_readme_xslt_example(xslt):
    resp = requests.get(xslt + "/xml", timeout=10)
    assert resp.status_code == 200
    assert resp.headers["Content-Type"] == "text/html"
    assert resp.headers["Content-Length"] == str(len(resp.content))
    html = resp.text
    assert "<li>Things Fall Apart (1958)</li>" in html
    assert "<li>One Hundred Years (1967)</li>" in html
    assert "<books>" not in html


def test_whole_body_transformed_and_headers_fixed(shouting):
    resp = requests.get(shouting + "/html?n=3000", timeout=10)
    expected = (b"<html><body><p>" + text(3000) + b"</p></body></html>").upper()
    assert resp.content == expected
    assert resp.headers["Content-Length"] == str(len(expected))
    assert resp.headers["ETag"] == 'W/"h1"'
    assert resp.headers["Content-Type"] == "text/html; charset=utf-8"


def test_streamed_and_write_bodies(shouting):
    resp = requests.get(shouting + "/html-stream?n=5000", timeout=10)
    assert resp.content == text(5000).upper()
    assert resp.headers["Content-Length"] == "5000"
    resp = requests.get(shouting + "/html-write", timeout=10)
    assert resp.content == b"<P>ONE</P><P>TWO</P><P>THREE</P>"


def test_other_types_and_head_untouched(shouting):
    assert requests.get(shouting + "/text?n=100", timeout=10).content == text(100)
    resp = requests.get(shouting + "/error", timeout=10)  # its error page is text/plain
    assert resp.status_code == 500 and resp.content.startswith(b"error page ")
    parts = urlsplit(shouting)
    with Conn(parts.hostname, parts.port) as conn:
        resp = conn.request("HEAD", "/html?n=3000")
    assert resp.status == 200 and resp.body == b""
    assert resp.header("etag") == '"h1"'


def test_size_cap_passes_bodies_through(capped):
    small = requests.get(capped + "/html-stream?n=5000", timeout=10)
    assert small.content == text(5000).upper()
    # declared too long: never collected
    big = requests.get(capped + "/html?n=20000", timeout=10)
    assert big.content == b"<html><body><p>" + text(20000) + b"</p></body></html>"
    assert big.headers["ETag"] == '"h1"'
    # found too long while collecting: what was collected, then the rest, untouched
    streamed = requests.get(capped + "/html-stream?n=50000", timeout=10)
    assert streamed.content == text(50000)
    assert "Content-Length" not in streamed.headers
