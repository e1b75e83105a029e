"""Static over real sockets (``mw_apps:make_static()``), for which file a
path finds: precompressed siblings, directories, caching headers and types
as configured, hidden names, and every way out of the directory."""

from __future__ import annotations

import gzip
import subprocess

import brotli
import pytest
import requests
from mw_servers import build
from mw_static_support import HELLO, PRE, SECRET, get, raw_get

# Fixtures, imported as themselves (an explicit re-export, which the linter
# does not take for an unused import): the tree is made once per test module.
from mw_static_support import kind as kind
from mw_static_support import site as site
from mw_static_support import tree as tree


@pytest.fixture
def site_weak(kind, pooled, tree):
    opts = {"cache_control": "no-cache", "etag": "weak", "index": None}
    return build(kind, pooled, "static", {"dirs": {"/static/": str(tree)}, "opts": opts}).url


@pytest.fixture
def site_hidden_types(kind, pooled, tree):
    types = {".TXT": "text/x-note", ".png": "image/x-custom", ".gz": "text/x-never"}
    opts = {"hidden": True, "types": types}
    return build(kind, pooled, "static", {"dirs": {"/static": str(tree)}, "opts": opts}).url


# -- precompressed siblings -------------------------------------------------------------------


@pytest.mark.parametrize(
    "accept, coding, body",
    [
        ("br", "br", brotli.compress(PRE)),
        ("gzip", "gzip", gzip.compress(PRE, mtime=0)),
        ("gzip, br", "br", brotli.compress(PRE)),
        ("gzip;q=1, br;q=0.5", "gzip", gzip.compress(PRE, mtime=0)),
        ("zstd", None, PRE),
        ("identity", None, PRE),
        ("br;q=0, gzip;q=0", None, PRE),
    ],
)
def test_precompressed_sibling_by_accept_encoding(site, accept, coding, body):
    resp = raw_get(site, "/static/pre.txt", headers=[("Accept-Encoding", accept)])
    assert resp.status == 200
    assert resp.header("content-encoding") == coding
    assert resp.header("content-type") == "text/plain; charset=utf-8"
    assert resp.header("vary") == "Accept-Encoding"
    assert resp.body == body


def test_precompressed_has_its_own_etag_and_range(site):
    plain_tag = raw_get(site, "/static/pre.txt").header("etag")
    br = raw_get(site, "/static/pre.txt", headers=[("Accept-Encoding", "br")])
    assert br.header("etag") != plain_tag
    resp = raw_get(
        site, "/static/pre.txt", headers=[("Accept-Encoding", "br"), ("Range", "bytes=0-3")]
    )
    assert resp.status == 206 and resp.body == brotli.compress(PRE)[:4]


@pytest.mark.needs_curl
@pytest.mark.parametrize("coding", ["br", "gzip"])
def test_curl_compressed_gets_precompressed(site, coding):
    out = subprocess.run(
        ["curl", "-sS", "-D", "-", "-H", f"Accept-Encoding: {coding}", "--compressed"]
        + [site + "/static/pre.txt"],
        capture_output=True,
        timeout=30,
        check=True,
    ).stdout
    head, _, body = out.partition(b"\r\n\r\n")
    assert f"content-encoding: {coding}".encode() in head.lower()
    assert body == PRE


# -- directories and configuration ----------------------------------------------------------


def test_directory_redirects_then_serves_index(site):
    resp = requests.get(site + "/static/sub?a=1", allow_redirects=False, timeout=10)
    assert resp.status_code == 301
    assert resp.headers["Location"] == "/static/sub/?a=1"
    resp = get(site + "/static/sub/")
    assert (resp.status_code, resp.content) == (200, b"<p>sub index</p>")
    assert get(site + "/static/nodir/").status_code == 404
    assert get(site + "/static/").status_code == 404  # no index.html at the top


def test_configured_cache_control_weak_etag_no_index(site_weak):
    resp = get(site_weak + "/static/hello.txt")
    assert resp.headers["Cache-Control"] == "no-cache"
    etag = resp.headers["ETag"]
    assert etag.startswith('W/"')
    assert get(site_weak + "/static/hello.txt", **{"If-None-Match": etag}).status_code == 304
    # a weak validator never satisfies If-Range: the whole file
    resp = get(site_weak + "/static/hello.txt", Range="bytes=0-1", **{"If-Range": etag})
    assert resp.status_code == 200
    assert get(site_weak + "/static/sub/").status_code == 404


# -- no way out -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "target, status",
    [
        ("/static/../secret.txt", 404),
        ("/static/%2e%2e/secret.txt", 404),
        ("/static/%2E%2E/%2E%2E/secret.txt", 404),
        ("/static/sub/../../secret.txt", 404),
        ("/static/..%2fsecret.txt", 400),
        ("/static/sub%2F..%2F..%2Fsecret.txt", 400),
        ("/static/%5c..%5csecret.txt", 400),
        ("/static/hello.txt%00.png", 400),
        ("/static/link_out", 404),
        ("/static/dir_out/secret.txt", 404),
        ("/static/.hidden", 404),
        ("/static/%2ehidden", 404),
        ("/static/sub/%2e%2e/%2e%2e/public/../secret.txt", 404),
    ],
)
def test_no_way_out_of_the_directory(site, target, status):
    resp = raw_get(site, target)
    assert resp.status == status, (target, resp.status, resp.body[:100])
    assert SECRET not in resp.body


def test_hidden_names_served_when_asked(site_hidden_types):
    """``hidden=True`` (``--static-hidden``) serves dot names, and nothing
    else changes: ``..`` and links out stay 404."""
    for target in ("/static/.hidden", "/static/%2ehidden", "/static/./.hidden"):
        resp = raw_get(site_hidden_types, target)
        assert (resp.status, resp.body) == (200, SECRET), target
    for target in ("/static/../secret.txt", "/static/link_out", "/static/dir_out/secret.txt"):
        resp = raw_get(site_hidden_types, target)
        assert resp.status == 404 and SECRET not in resp.body, target


@pytest.mark.parametrize(
    "name, ctype",
    [
        ("hello.txt", "text/x-note; charset=utf-8"),  # an override of a text type
        ("image.png", "image/x-custom"),
        ("archive.tar.gz", "application/gzip"),  # compressed: its format, whatever .gz maps to
        ("page.html", "text/html; charset=utf-8"),  # not overridden
    ],
)
def test_types_override_the_content_type(site_hidden_types, name, ctype):
    resp = get(f"{site_hidden_types}/static/{name}")
    assert resp.status_code == 200
    assert resp.headers["Content-Type"] == ctype


def test_backslash_traversal(site):
    resp = raw_get(site, "/static/..\\secret.txt")
    assert resp.status in (400, 404)  # the server itself may refuse the target
    assert SECRET not in resp.body


def test_a_root_of_slash_serves_by_absolute_path(tree):
    """``Static(app, {"/fs": "/"})``, called directly: files are found by
    their absolute path (such a root once refused every file) and hidden
    components are still refused."""
    from qiao.middleware import Static

    app = Static(lambda environ, start_response: [], {"/fs": "/"})

    def call(path):
        seen = {}

        def start_response(status, headers, exc_info=None):
            seen["status"] = status

        env = {
            "REQUEST_METHOD": "GET",
            "PATH_INFO": "/fs" + path,
            "SCRIPT_NAME": "",
            "QUERY_STRING": "",
            "SERVER_PROTOCOL": "HTTP/1.1",
            "wsgi.url_scheme": "http",
        }
        body = b"".join(app(env, start_response))
        return seen["status"], body

    status, body = call(str(tree / "hello.txt"))
    assert status.startswith("200"), status
    assert body == HELLO
    status, body = call(str(tree / ".hidden"))
    assert status.startswith("404"), status
    assert SECRET not in body
