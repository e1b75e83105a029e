"""Real frameworks on the server: Flask, Django, Falcon and Bottle.

Each app in ``fw/`` has the same routes (see ``fw/__init__.py``). Every test
runs against every framework, once through ``requests`` and once through the
``curl`` binary (skipped when curl is missing).
"""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest
import requests

FRAMEWORKS = {
    "flask": "fw.flask_app:app",
    "django": "fw.django_app:application",
    "falcon": "fw.falcon_app:app",
    "bottle": "fw.bottle_app:app",
}
CURL = shutil.which("curl")
needs_curl = pytest.mark.skipif(CURL is None, reason="curl is not installed")


@pytest.fixture(params=sorted(FRAMEWORKS))
def fw(request, pooled):
    """(framework name, server) for each framework."""
    return request.param, pooled(FRAMEWORKS[request.param])


# -- through requests -----------------------------------------------------------------


def test_get_route_with_query(fw):
    name, srv = fw
    resp = requests.get(f"{srv.url}/hello/w%C3%B6rld", params={"greeting": "Hi there"}, timeout=10)
    assert resp.status_code == 200
    assert resp.content.decode("utf-8") == "Hi there, wörld!"


def test_post_form(fw):
    name, srv = fw
    resp = requests.post(f"{srv.url}/form", data={"a": "1", "b": "x y&z"}, timeout=10)
    assert resp.status_code == 200
    assert resp.json() == {"framework": name, "a": "1", "b": "x y&z"}


def test_post_json(fw):
    name, srv = fw
    payload = {"k": [1, 2, {"z": None}], "s": "é", "big": "x" * 100_000}
    resp = requests.post(f"{srv.url}/json", json=payload, timeout=10)
    assert resp.status_code == 200
    assert resp.json() == {"framework": name, "received": payload}


def test_not_found(fw):
    name, srv = fw
    resp = requests.get(f"{srv.url}/no/such/route", timeout=10)
    assert resp.status_code == 404


def test_cookies_and_headers(fw):
    name, srv = fw
    resp = requests.get(
        f"{srv.url}/cookie",
        cookies={"c": "cookie-value"},
        headers={"X-Req": "header-value"},
        timeout=10,
    )
    assert resp.status_code == 200
    assert resp.json() == {"cookie": "cookie-value", "header": "header-value"}
    assert resp.headers["X-Framework"] == name
    assert resp.cookies.get("served") == name


def test_session_keep_alive(fw):
    name, srv = fw
    with requests.Session() as s:
        for i in range(5):
            resp = s.get(f"{srv.url}/hello/n{i}", timeout=10)
            assert resp.text == f"Hello, n{i}!"
        resp = s.post(f"{srv.url}/form", data={"a": "x"}, timeout=10)
        assert resp.json()["a"] == "x"


def test_head_request(fw):
    name, srv = fw
    get = requests.get(f"{srv.url}/hello/h", timeout=10)
    head = requests.head(f"{srv.url}/hello/h", timeout=10)
    assert head.status_code == 200
    assert head.content == b""
    assert head.headers.get("Content-Type") == get.headers.get("Content-Type")


# -- through curl ---------------------------------------------------------------------


def curl(*args):
    proc = subprocess.run([CURL, "-sS", "--max-time", "10", *args], capture_output=True, timeout=20)
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")
    return proc


def split_response(raw: bytes):
    """Split ``curl -i`` output into (status, headers dict lower-cased, body)."""
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines[1:]:
        key, _, value = line.partition(":")
        headers.setdefault(key.strip().lower(), []).append(value.strip())
    return int(lines[0].split()[1]), headers, body


@needs_curl
def test_curl_get_route_with_query(fw):
    name, srv = fw
    proc = curl(f"{srv.url}/hello/curl?greeting=Yo")
    assert proc.stdout == b"Yo, curl!"


@needs_curl
def test_curl_post_form(fw):
    name, srv = fw
    proc = curl("-d", "a=1", "--data-urlencode", "b=two words", f"{srv.url}/form")
    assert json.loads(proc.stdout) == {"framework": name, "a": "1", "b": "two words"}


@needs_curl
def test_curl_post_json(fw):
    name, srv = fw
    payload = {"list": [1, 2, 3], "nested": {"t": True}}
    proc = curl(
        "-H",
        "Content-Type: application/json",
        "--data-binary",
        json.dumps(payload),
        f"{srv.url}/json",
    )
    assert json.loads(proc.stdout) == {"framework": name, "received": payload}


@needs_curl
def test_curl_not_found(fw):
    name, srv = fw
    proc = curl("-o", "/dev/null", "-w", "%{http_code}", f"{srv.url}/nope")
    assert proc.stdout == b"404"


@needs_curl
def test_curl_cookies_and_headers(fw):
    name, srv = fw
    proc = curl("-i", "-b", "c=from-curl", "-H", "X-Req: curl-header", f"{srv.url}/cookie")
    status, headers, body = split_response(proc.stdout)
    assert status == 200
    assert headers["x-framework"] == [name]
    assert any(v.startswith(f"served={name}") for v in headers["set-cookie"])
    assert json.loads(body) == {"cookie": "from-curl", "header": "curl-header"}


@needs_curl
def test_curl_reuses_connection(fw):
    name, srv = fw
    proc = curl("-v", f"{srv.url}/hello/a", f"{srv.url}/hello/b", f"{srv.url}/hello/c")
    assert proc.stdout == b"Hello, a!Hello, b!Hello, c!"
    err = proc.stderr.decode(errors="replace").lower()
    assert "re-using existing connection" in err or "reusing existing" in err


@needs_curl
def test_curl_http10(fw):
    name, srv = fw
    proc = curl("--http1.0", "-i", f"{srv.url}/hello/old")
    status, headers, body = split_response(proc.stdout)
    assert status == 200
    assert body == b"Hello, old!"


@needs_curl
def test_curl_chunked_upload(fw):
    name, srv = fw
    if name != "flask":
        pytest.skip("only Werkzeug honours wsgi.input_terminated for bodies without a length")
    proc = curl(
        "-H",
        "Transfer-Encoding: chunked",
        "-H",
        "Content-Type: application/json",
        "--data-binary",
        '{"chunked": true}',
        f"{srv.url}/json",
    )
    assert json.loads(proc.stdout) == {"framework": name, "received": {"chunked": True}}
