"""Static over real sockets (``mw_apps:make_static()``), for what a file
gives: types, validators and 304/412, single ranges (206/416, If-Range),
and HEAD."""

from __future__ import annotations

import email.utils
import subprocess

import pytest
import requests
from mw_static_support import BIG, HELLO, get, raw_get

# Fixtures, imported as themselves (an explicit re-export, which the linter
# does not take for an unused import): the tree is made once per test module.
from mw_static_support import kind as kind
from mw_static_support import site as site
from mw_static_support import tree as tree

# -- content ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name, ctype",
    [
        ("hello.txt", "text/plain; charset=utf-8"),
        ("page.html", "text/html; charset=utf-8"),
        ("app.js", "text/javascript; charset=utf-8"),
        ("style.css", "text/css; charset=utf-8"),
        ("data.json", "application/json; charset=utf-8"),
        ("image.png", "image/png"),
        ("archive.tar.gz", "application/gzip"),
    ],
)
def test_content_type(site, name, ctype):
    resp = get(f"{site}/static/{name}")
    assert resp.status_code == 200
    assert resp.headers["Content-Type"] == ctype
    assert "Content-Encoding" not in resp.headers


def test_get_headers_and_body(site, tree):
    resp = get(site + "/static/hello.txt")
    assert resp.content == HELLO
    assert resp.headers["Content-Length"] == str(len(HELLO))
    assert resp.headers["Accept-Ranges"] == "bytes"
    assert resp.headers["Cache-Control"] == "public, max-age=3600"
    assert resp.headers["ETag"].startswith('"')
    mtime = int((tree / "hello.txt").stat().st_mtime)
    assert email.utils.parsedate_to_datetime(resp.headers["Last-Modified"]).timestamp() == mtime


def test_big_file_whole(site):
    resp = get(site + "/static/big.bin")
    assert resp.status_code == 200 and resp.content == BIG


def test_empty_file(site):
    resp = get(site + "/static/empty.txt")
    assert (resp.status_code, resp.content, resp.headers["Content-Length"]) == (200, b"", "0")
    resp = get(site + "/static/empty.txt", Range="bytes=0-")
    assert resp.status_code == 416
    assert resp.headers["Content-Range"] == "bytes */0"


def test_utf8_file_name_and_symlink_inside(site):
    assert get(site + "/static/caf%C3%A9.txt").content == b"utf-8 name"
    assert get(site + "/static/link_in").content == HELLO


def test_other_paths_reach_the_app(site):
    resp = get(site + "/text?n=10")
    assert (resp.status_code, len(resp.content)) == (200, 10)
    assert get(site + "/staticx/hello.txt").status_code == 404  # not under /static


def test_only_get_and_head(site):
    resp = requests.post(site + "/static/hello.txt", data=b"x", timeout=10)
    assert resp.status_code == 405
    assert resp.headers["Allow"] == "GET, HEAD"


# -- conditional requests ------------------------------------------------------------------


def test_if_none_match_gives_304(site):
    etag = get(site + "/static/hello.txt").headers["ETag"]
    for value in (etag, f'"nope", {etag}', "W/" + etag, "*"):
        resp = get(site + "/static/hello.txt", **{"If-None-Match": value})
        assert resp.status_code == 304, value
        assert resp.content == b""
        assert resp.headers["ETag"] == etag
    assert get(site + "/static/hello.txt", **{"If-None-Match": '"other"'}).status_code == 200


def test_if_modified_since(site):
    last = get(site + "/static/hello.txt").headers["Last-Modified"]
    assert get(site + "/static/hello.txt", **{"If-Modified-Since": last}).status_code == 304
    old = "Sat, 01 Jan 2000 00:00:00 GMT"
    assert get(site + "/static/hello.txt", **{"If-Modified-Since": old}).status_code == 200
    # If-None-Match wins over If-Modified-Since (RFC 9110 §13.2.2)
    resp = get(site + "/static/hello.txt", **{"If-None-Match": '"x"', "If-Modified-Since": last})
    assert resp.status_code == 200


def test_if_match_and_if_unmodified_since_give_412(site):
    etag = get(site + "/static/hello.txt").headers["ETag"]
    assert get(site + "/static/hello.txt", **{"If-Match": etag}).status_code == 200
    assert get(site + "/static/hello.txt", **{"If-Match": '"x"'}).status_code == 412
    old = "Sat, 01 Jan 2000 00:00:00 GMT"
    assert get(site + "/static/hello.txt", **{"If-Unmodified-Since": old}).status_code == 412


# -- ranges -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "spec, first, last",
    [
        ("bytes=0-4", 0, 4),
        ("bytes=100000-700000", 100000, 700000),
        ("bytes=1048000-", 1048000, (1 << 20) - 1),
        ("bytes=-10", (1 << 20) - 10, (1 << 20) - 1),
        ("bytes=1048570-9999999", 1048570, (1 << 20) - 1),
    ],
)
def test_single_range(site, spec, first, last):
    resp = get(site + "/static/big.bin", Range=spec)
    assert resp.status_code == 206
    assert resp.headers["Content-Range"] == f"bytes {first}-{last}/{1 << 20}"
    assert resp.headers["Content-Length"] == str(last - first + 1)
    assert resp.content == BIG[first : last + 1]


def test_unsatisfiable_range_is_416(site):
    resp = get(site + "/static/hello.txt", Range="bytes=100-200")
    assert resp.status_code == 416
    assert resp.headers["Content-Range"] == f"bytes */{len(HELLO)}"
    assert get(site + "/static/hello.txt", Range="bytes=-0").status_code == 416


@pytest.mark.parametrize("spec", ["bytes=0-1,5-6", "bytes=5-1", "items=0-1", "bytes=x-y", "bytes="])
def test_multi_or_invalid_range_gives_whole_file(site, spec):
    resp = get(site + "/static/hello.txt", Range=spec)
    assert (resp.status_code, resp.content) == (200, HELLO)


def test_if_range(site):
    first = get(site + "/static/hello.txt")
    etag, last = first.headers["ETag"], first.headers["Last-Modified"]
    for validator in (etag, last):
        resp = get(site + "/static/hello.txt", Range="bytes=0-4", **{"If-Range": validator})
        assert (resp.status_code, resp.content) == (206, b"hello")
    for stale in ('"other"', "Sat, 01 Jan 2000 00:00:00 GMT"):
        resp = get(site + "/static/hello.txt", Range="bytes=0-4", **{"If-Range": stale})
        assert (resp.status_code, resp.content) == (200, HELLO)


@pytest.mark.needs_curl
def test_curl_range_and_head(site):
    out = subprocess.run(
        ["curl", "-sS", "-r", "1000-1999", site + "/static/big.bin"],
        capture_output=True,
        timeout=30,
        check=True,
    ).stdout
    assert out == BIG[1000:2000]
    head = subprocess.run(
        ["curl", "-sS", "-I", site + "/static/big.bin"],
        capture_output=True,
        timeout=30,
        check=True,
        text=True,
    ).stdout.lower()
    assert head.startswith("http/1.1 200")
    assert f"content-length: {1 << 20}" in head
    assert "etag:" in head and "last-modified:" in head


def test_head_has_headers_and_no_body(site):
    resp = raw_get(site, "/static/big.bin", method="HEAD")
    assert resp.status == 200
    assert resp.header("content-length") == str(1 << 20)
    assert resp.body == b""
    resp = raw_get(site, "/static/big.bin", method="HEAD", headers=[("Range", "bytes=0-1")])
    assert resp.status == 200  # Range is defined for GET only
