"""The examples of docs/middleware.md (once the README's "Middleware"
section) run as written: each ``python`` block is executed as a module and
its ``app`` called in process (under ``wsgiref.validate``), and the XSLT
example is the code that ``mw_xslt.py`` serves in
``test_middleware_transform.py``."""

from __future__ import annotations

import gzip
import inspect
import re
from pathlib import Path

import mw_xslt
import pytest
from mw_wsgi import call

PAGE = Path(__file__).resolve().parents[2] / "docs" / "middleware.md"


def examples() -> dict[str, str]:
    """``## Title`` → the python block under it, in docs/middleware.md."""
    text = PAGE.read_text()
    blocks = {}
    for part in text.split("\n## ")[1:]:
        title, _, body = part.partition("\n")
        match = re.search(r"```python\n(.*?)```", body, re.S)
        if match:
            blocks[title.strip()] = match.group(1)
    return blocks


def run(title: str, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    namespace: dict = {"__name__": "readme_example"}
    exec(compile(examples()[title], f"docs/middleware.md ({title})", "exec"), namespace)
    return namespace


def test_every_middleware_has_an_example():
    assert sorted(examples()) == sorted(
        ["Router", "Mount", "Static", "Proxy", "Compress", "Transform"]
    )


def test_router_example(tmp_path, monkeypatch):
    app = run("Router", tmp_path, monkeypatch)["app"]
    assert call(app, "/").body.startswith(b"Welcome!")
    assert call(app, "/hello").body == b"Hello world!"
    assert call(app, "/hello/ada").body == b"Hello ada!"
    assert call(app, "/nope").code == 404


def test_mount_example(tmp_path, monkeypatch):
    app = run("Mount", tmp_path, monkeypatch)["app"]
    assert call(app, "/api/users").body == b"api sees '/api' + '/users'"
    assert call(app, "/apix").body == b"the site"


def test_static_example(tmp_path, monkeypatch):
    (tmp_path / "public").mkdir()
    (tmp_path / "public" / "a.css").write_bytes(b"body{}")
    app = run("Static", tmp_path, monkeypatch)["app"]
    res = call(app, "/static/a.css")
    assert (res.body, res.header("Cache-Control")) == (b"body{}", "public, max-age=600")
    assert call(app, "/other").body == b"not a file"


def test_proxy_example_builds(tmp_path, monkeypatch):
    namespace = run("Proxy", tmp_path, monkeypatch)
    assert [s["url"] for s in namespace["backends"].states()] == [
        "http://127.0.0.1:8001",
        "http://127.0.0.1:8002",
    ]
    assert call(namespace["app"], "/").body.startswith(b"home")


def test_compress_example(tmp_path, monkeypatch):
    app = run("Compress", tmp_path, monkeypatch)["app"]
    res = call(app, "/", headers=[("Accept-Encoding", "gzip")])
    assert res.header("Content-Encoding") == "gzip"
    assert gzip.decompress(res.body).count(b"all quiet") == 100_000


def test_transform_example(tmp_path, monkeypatch):
    namespace = run("Transform", tmp_path, monkeypatch)
    res = call(namespace["app"], "/")
    assert res.header("Content-Type") == "text/html"
    assert b"<li>Things Fall Apart (1958)</li>" in res.body
    # mw_xslt.py, served by the e2e tests, holds the same stylesheet and function
    assert namespace["STYLESHEET"] == mw_xslt.STYLESHEET
    assert inspect.getsource(mw_xslt.to_html) in examples()["Transform"]


@pytest.mark.parametrize("title", ["Router", "Mount", "Static", "Proxy", "Compress", "Transform"])
def test_example_is_a_module_defining_app(title):
    assert "\napp = " in examples()[title]
