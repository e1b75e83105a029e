"""HTTP/2 end to end: over TLS (ALPN ``h2``) and in cleartext with prior
knowledge (h2c), with curl, an HTTP/2 client library (``httpx`` on ``h2``)
and ``h2load``, for what a client gets: the environ, several concurrent
streams on one connection, streamed request and response bodies larger than
the flow-control window, a cut response body, heads mapped both ways,
HTTP/1.1 still served, and ``wsgi.file_wrapper``."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import shutil
import subprocess

import pytest
from conftest import Server
from http2_support import APP, client, needs_curl, trust

# Fixtures, imported as themselves (an explicit re-export, which the linter
# does not take for an unused import): one instance per test module.
from http2_support import plain_server as plain_server
from tls_support import pki as pki

httpx = pytest.importorskip("httpx")
pytest.importorskip("h2")

pytestmark = pytest.mark.qiao_only
#: Bigger than HTTP/2's default 64 KiB flow-control window, many times over.
LARGE = 3_000_000


@pytest.fixture(scope="module")
def tls_server(pki):
    srv = Server(APP, options=["--certfile", str(pki.cert), "--keyfile", str(pki.key)]).start()
    yield srv
    srv.cleanup()


def urls(request, pki, tls_server, plain_server):
    """(base URL, client kwargs) of the server a test is parametrized on."""
    if request.param == "tls":
        return f"https://localhost:{tls_server.port}", trust(pki)
    return f"http://127.0.0.1:{plain_server.port}", {"http1": False}


@pytest.fixture(params=["tls", "h2c"])
def target(request, pki, tls_server, plain_server):
    return urls(request, pki, tls_server, plain_server)


def curl(*args) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["curl", "-sS", "--max-time", "20", *args], capture_output=True, timeout=30
    )


@needs_curl
def test_curl_http2_over_tls(tls_server, pki):
    r = curl(
        "--cacert",
        str(pki.ca),
        "--http2",
        "-w",
        "\n%{http_version}",
        f"https://localhost:{tls_server.port}/env",
    )
    assert r.returncode == 0, r.stderr
    body, version = r.stdout.rsplit(b"\n", 1)
    assert version == b"2"
    env = json.loads(body)
    assert env["SERVER_PROTOCOL"] == "HTTP/2"
    assert env["wsgi.url_scheme"] == "https" and env["HTTPS"] == "on"
    assert env["REMOTE_ADDR"] == "127.0.0.1"
    assert env["HTTP_HOST"] == f"localhost:{tls_server.port}"


@needs_curl
def test_curl_h2c_prior_knowledge(plain_server, tmp_path):
    url = f"http://127.0.0.1:{plain_server.port}"
    r = curl("--http2-prior-knowledge", "-w", "\n%{http_version}", url + "/env?a=1")
    assert r.returncode == 0, r.stderr
    body, version = r.stdout.rsplit(b"\n", 1)
    assert version == b"2"
    env = json.loads(body)
    assert env["SERVER_PROTOCOL"] == "HTTP/2"
    assert env["wsgi.url_scheme"] == "http"
    assert env["QUERY_STRING"] == "a=1"
    data = tmp_path / "body.bin"
    data.write_bytes(os.urandom(LARGE))
    r = curl("--http2-prior-knowledge", "--data-binary", f"@{data}", url + "/echo")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["sha256"] == hashlib.sha256(data.read_bytes()).hexdigest()


@needs_curl
def test_http11_still_served_on_both(tls_server, plain_server, pki):
    r = curl(
        "--cacert",
        str(pki.ca),
        "--http1.1",
        "-w",
        "\n%{http_version}",
        f"https://localhost:{tls_server.port}/env",
    )
    assert r.stdout.rsplit(b"\n", 1)[1] == b"1.1"
    r = curl("-w", "\n%{http_version}", f"http://127.0.0.1:{plain_server.port}/env")
    assert r.stdout.rsplit(b"\n", 1)[1] == b"1.1"


def test_library_get(target):
    base, kwargs = target
    with client(kwargs) as c:
        r = c.get(base + "/env")
    assert r.http_version == "HTTP/2"
    assert r.json()["SERVER_PROTOCOL"] == "HTTP/2"
    assert "connection" not in r.headers and "transfer-encoding" not in r.headers


def test_concurrent_streams_on_one_connection(target):
    base, kwargs = target

    async def run():
        async with httpx.AsyncClient(http2=True, timeout=20, **kwargs) as c:
            first = await c.get(base + "/env")
            rs = await asyncio.gather(*[c.get(base + "/sleep?0.3") for _ in range(10)])
            return first, rs

    first, rs = asyncio.run(run())
    assert all(r.status_code == 200 and r.http_version == "HTTP/2" for r in rs)
    # Every stream came over the client's one connection: one client port.
    assert {r.json()["port"] for r in rs} == {first.json()["REMOTE_PORT"]}


def test_streamed_large_request_body(target):
    base, kwargs = target
    pieces = [os.urandom(100_000) for _ in range(LARGE // 100_000)]
    with client(kwargs) as c:
        r = c.post(base + "/echo", content=iter(pieces))  # no length: streamed
        fixed = c.post(base + "/echo", content=b"".join(pieces))
    data = b"".join(pieces)
    for resp, length in ((r, None), (fixed, str(len(data)))):
        facts = resp.json()
        assert facts["len"] == len(data)
        assert facts["sha256"] == hashlib.sha256(data).hexdigest()
        assert facts["content_length"] == length
        assert facts["protocol"] == "HTTP/2"


def test_large_streamed_response_read_slowly(target):
    """A response many windows long, read in small steps: the server may
    only send as the client grants window, and nothing is lost."""
    base, kwargs = target
    total = 0
    with client(kwargs) as c, c.stream("GET", f"{base}/big?{LARGE}") as r:
        assert r.http_version == "HTTP/2"
        for chunk in r.iter_raw(16_384):
            total += len(chunk)
    assert total == LARGE


def big_body(size: int) -> bytes:
    """What ``/big?size`` answers (``tls_apps.app``): 64 KiB pieces, each of
    one letter, the letters counting down from the end."""
    out, left = [], size
    while left:
        n = min(left, 65536)
        left -= n
        out.append(bytes([97 + left % 26]) * n)
    return b"".join(out)


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_answers_past_the_in_memory_limit_arrive_whole_and_in_order(target, method):
    """The loop hands a stream's answer to the front in memory, up to
    64 KiB unread, then over the internal socket pair. Both ways of
    forwarding a stream (without a request body by hand, with one through
    hyper's client) get every byte in order, answer after answer on the
    same connections, small ones after a large one too."""
    base, kwargs = target
    body = b"x" * 1000 if method == "POST" else None
    with client(kwargs) as c:
        for size in (300_000, 10, 200_000, 70_000, 5):
            r = c.request(method, f"{base}/big?{size}", content=body)
            assert r.http_version == "HTTP/2"
            assert r.content == big_body(size), f"{method} /big?{size}"


def test_a_cut_response_body_resets_the_stream(target):
    """An application that fails after its first bytes: the loop can only
    cut the body, and the HTTP/2 client sees the stream reset, never a
    complete response (nothing is silently truncated)."""
    base, kwargs = target
    got = 0
    with client(kwargs) as c:
        with pytest.raises(httpx.HTTPError), c.stream("GET", f"{base}/cut?300000") as r:
            assert r.status_code == 200
            for chunk in r.iter_raw():
                got += len(chunk)
        assert got <= 300_000
        # The connection (and the internal ones) serve the next stream.
        assert c.get(f"{base}/").text == "hello"


@pytest.mark.skipif(shutil.which("h2load") is None, reason="h2load not installed")
def test_h2load(tls_server, plain_server):
    for url in (f"https://127.0.0.1:{tls_server.port}/", f"http://127.0.0.1:{plain_server.port}/"):
        r = subprocess.run(
            ["h2load", "-n", "2000", "-c", "4", "-m", "10", url],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert r.returncode == 0, r.stderr
        assert "2000 succeeded" in r.stdout, r.stdout


def test_heads_mapped_both_ways(target):
    """HTTP/2 sends each cookie as its own field; the app sees them joined
    as HTTP/1.1 would send them. Repeated fields are joined, HEAD has no
    body, and the response has no connection-specific fields."""
    base, kwargs = target
    with client(kwargs) as c:
        r = c.get(
            base + "/cookies",
            headers=[("cookie", "a=1"), ("cookie", "b=2"), ("x-multi", "1"), ("x-multi", "2")],
        )
        head = c.head(base + "/env")
    facts = r.json()
    assert facts["HTTP_COOKIE"] == "a=1; b=2"
    assert facts["HTTP_X_MULTI"] == "1, 2"
    assert head.status_code == 200 and head.content == b""
    assert head.http_version == "HTTP/2"


def test_file_wrapper_through_the_front(target, tmp_path):
    """wsgi.file_wrapper's sendfile(2) path, into an internal connection
    and out as HTTP/2 frames (or TLS records)."""
    base, kwargs = target
    data = os.urandom(2_500_000)
    path = tmp_path / "blob.bin"
    path.write_bytes(data)
    with client(kwargs) as c:
        r = c.get(f"{base}/file?{path}")
    assert r.status_code == 200 and r.content == data
