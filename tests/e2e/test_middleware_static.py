"""Static over real sockets (``mw_apps:make_static()``): types, validators and
304/412, single ranges (206/416, If-Range), HEAD, precompressed siblings,
directories, caching headers, and every way out of the directory."""

from __future__ import annotations

import email.utils
import gzip
import os
import subprocess

import brotli
import pytest
import requests
from mw_servers import KINDS, build

SECRET = b"TOP SECRET outside the static root\n"
HELLO = b"hello static\n"
BIG = bytes((i * 31 + (i >> 9)) % 251 for i in range(1 << 20))  # 1 MiB
PRE = b"precompressed text " * 200


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    top = tmp_path_factory.mktemp("static")
    (top / "secret.txt").write_bytes(SECRET)
    pub = top / "public"
    (pub / "sub").mkdir(parents=True)
    (pub / "nodir").mkdir()
    files = {
        "hello.txt": HELLO,
        "page.html": b"<h1>page</h1>",
        "app.js": b"console.log(1)",
        "style.css": b"body{}",
        "data.json": b"{}",
        "image.png": b"\x89PNG\r\n\x1a\n" + bytes(100),
        "archive.tar.gz": gzip.compress(b"tar"),
        "big.bin": BIG,
        "empty.txt": b"",
        "sub/index.html": b"<p>sub index</p>",
        ".hidden": SECRET,
        "pre.txt": PRE,
        "pre.txt.br": brotli.compress(PRE),
        "pre.txt.gz": gzip.compress(PRE, mtime=0),
        "café.txt": b"utf-8 name",
    }
    for name, data in files.items():
        (pub / name).write_bytes(data)
    os.symlink(top / "secret.txt", pub / "link_out")
    os.symlink("hello.txt", pub / "link_in")
    os.symlink(top, pub / "dir_out")
    return pub


@pytest.fixture(params=KINDS)
def kind(request):
    return request.param


@pytest.fixture
def site(kind, pooled, tree):
    return build(kind, pooled, "static", {"dirs": {"/static": str(tree)}}).url


@pytest.fixture
def site_weak(kind, pooled, tree):
    opts = {"cache_control": "no-cache", "etag": "weak", "index": None}
    return build(kind, pooled, "static", {"dirs": {"/static/": str(tree)}, "opts": opts}).url


@pytest.fixture
def site_hidden_types(kind, pooled, tree):
    types = {".TXT": "text/x-note", ".png": "image/x-custom", ".gz": "text/x-never"}
    opts = {"hidden": True, "types": types}
    return build(kind, pooled, "static", {"dirs": {"/static": str(tree)}, "opts": opts}).url


def get(url, **headers):
    return requests.get(url, headers=headers, timeout=10)


def raw_get(server_url, target, method="GET", headers=()):
    """A request with the target exactly as given (no client normalization)."""
    from rawhttp import Conn

    host, port = server_url.rsplit("/", 1)[1].rsplit(":", 1)
    with Conn(host, int(port)) as conn:
        return conn.request(method, target, headers=list(headers))


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
