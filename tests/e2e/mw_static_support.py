"""Shared by the Static tests over real sockets
(``test_middleware_static_*.py``): the files served (a tree with links and
a secret outside it, made once per test module that imports ``tree``), a
server of each kind serving it under ``/static`` (``site``), and requests."""

from __future__ import annotations

import gzip
import os

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


def get(url, **headers):
    return requests.get(url, headers=headers, timeout=10)


def raw_get(server_url, target, method="GET", headers=()):
    """A request with the target exactly as given (no client normalization)."""
    from rawhttp import Conn

    host, port = server_url.rsplit("/", 1)[1].rsplit(":", 1)
    with Conn(host, int(port)) as conn:
        return conn.request(method, target, headers=list(headers))
