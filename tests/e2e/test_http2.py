"""HTTP/2 end to end: over TLS (ALPN ``h2``) and in cleartext with prior
knowledge (h2c), with curl and an HTTP/2 client library (``httpx`` on
``h2``): the environ, several concurrent streams on one connection,
streamed request and response bodies larger than the flow-control
window, a graceful stop with a stream in flight, and ``--no-http2``."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import time

import pytest
from conftest import Server
from tls_support import make_pki

httpx = pytest.importorskip("httpx")
pytest.importorskip("h2")

pytestmark = pytest.mark.qiao_only
APP = "tls_apps:app"
PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
#: Bigger than HTTP/2's default 64 KiB flow-control window, many times over.
LARGE = 3_000_000
needs_curl = pytest.mark.skipif(shutil.which("curl") is None, reason="curl not installed")


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def tls_server(pki):
    srv = Server(APP, options=["--certfile", str(pki.cert), "--keyfile", str(pki.key)]).start()
    yield srv
    srv.cleanup()


@pytest.fixture(scope="module")
def plain_server():
    srv = Server(APP).start()
    yield srv
    srv.cleanup()


def trust(pki) -> dict:
    """Client kwargs that trust the test CA."""
    return {"verify": ssl.create_default_context(cafile=str(pki.ca))}


def urls(request, pki, tls_server, plain_server):
    """(base URL, client kwargs) of the server a test is parametrized on."""
    if request.param == "tls":
        return f"https://localhost:{tls_server.port}", trust(pki)
    return f"http://127.0.0.1:{plain_server.port}", {"http1": False}


@pytest.fixture(params=["tls", "h2c"])
def target(request, pki, tls_server, plain_server):
    return urls(request, pki, tls_server, plain_server)


def client(kwargs, **more) -> httpx.Client:
    return httpx.Client(http2=True, timeout=20, **kwargs, **more)


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


@needs_curl
def test_sigterm_finishes_an_in_flight_stream(pki, tmp_path):
    """SIGTERM while a stream is served: the worker sends GOAWAY, lets the
    stream finish, then exits. With curl: Python's ``h2`` refuses the PING
    that follows a graceful GOAWAY (python-hyper/h2#1199)."""
    srv = Server(APP, options=["--certfile", str(pki.cert), "--keyfile", str(pki.key)]).start()
    try:
        arrived, release = tmp_path / "arrived", tmp_path / "release"
        url = f"https://localhost:{srv.port}/slow?{arrived},{release}"
        proc = subprocess.Popen(
            [
                "curl",
                "-sS",
                "--max-time",
                "30",
                "--cacert",
                str(pki.ca),
                "--http2",
                "-w",
                "\n%{http_version}",
                url,
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + 20
        while not arrived.exists() and time.monotonic() < deadline:
            time.sleep(0.02)
        assert arrived.exists(), srv.stderr()
        srv.proc.send_signal(signal.SIGTERM)
        time.sleep(0.3)  # the drain has begun; the stream is still open
        release.write_text("go")
        out, err = proc.communicate(timeout=30)
        assert proc.returncode == 0, err
        assert out == b"finished\n2"
        assert srv.proc.wait(20) == 0
    finally:
        srv.cleanup()


def test_no_http2(pki):
    plain = Server(APP, options=["--no-http2"]).start()
    tls = Server(
        APP, options=["--no-http2", "--certfile", str(pki.cert), "--keyfile", str(pki.key)]
    ).start()
    try:
        with socket.create_connection((plain.host, plain.port), timeout=10) as s:
            s.sendall(PREFACE)
            out = b""
            while chunk := s.recv(4096):
                out += chunk
        assert out.startswith(b"HTTP/1.1 505 ")
        with client(trust(pki)) as c:
            assert c.get(f"https://localhost:{tls.port}/env").http_version == "HTTP/1.1"
    finally:
        plain.cleanup()
        tls.cleanup()


def test_preface_split_byte_by_byte(plain_server):
    """The loop recognises the preface however it arrives, and answers
    with HTTP/2 frames (a SETTINGS frame first)."""
    with socket.create_connection((plain_server.host, plain_server.port), timeout=10) as s:
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for b in PREFACE:
            s.sendall(bytes([b]))
            time.sleep(0.001)
        s.sendall(b"\x00\x00\x00\x04\x00\x00\x00\x00\x00")  # empty SETTINGS
        head = s.recv(9)
    assert len(head) == 9 and head[3] == 0x4  # frame type SETTINGS


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


def read_frames(s: socket.socket):
    """Yields (type, payload) of the HTTP/2 frames read from ``s``."""
    buf = b""
    while True:
        while len(buf) >= 9 and len(buf) >= 9 + int.from_bytes(buf[:3], "big"):
            n = int.from_bytes(buf[:3], "big")
            yield buf[3], buf[9 : 9 + n]
            buf = buf[9 + n :]
        chunk = s.recv(65536)
        if not chunk:
            return
        buf += chunk


def test_idle_connection_gets_goaway(start_server):
    """An HTTP/2 connection without streams for a --keepalive period is
    closed with GOAWAY (NO_ERROR)."""
    srv = start_server(APP, options=["--keepalive", "1"])
    with socket.create_connection((srv.host, srv.port), timeout=10) as s:
        s.sendall(PREFACE + b"\x00\x00\x00\x04\x00\x00\x00\x00\x00")
        kinds = []
        for kind, payload in read_frames(s):
            kinds.append(kind)
            if kind == 0x7:  # GOAWAY: last stream id, error code
                assert int.from_bytes(payload[4:8], "big") == 0
                break
    assert kinds[0] == 0x4 and kinds[-1] == 0x7


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


def test_loop_refusals_and_app_errors_come_through(start_server, pki):
    """A request the loop refuses (413 here) and an app that raises (500)
    get their status over HTTP/2; the connection goes on serving."""
    srv = start_server(APP, options=["--max-body-size", "1000"])
    with client({"http1": False}) as c:
        base = f"http://127.0.0.1:{srv.port}"
        assert c.post(base + "/echo", content=b"x" * 5000).status_code == 413
        assert c.get(base + "/fail").status_code == 500
        r = c.post(base + "/echo", content=b"y" * 500)
        assert r.status_code == 200 and r.json()["len"] == 500


def test_flow_control_window_is_honoured(plain_server):
    """A client that grants no window beyond the initial 65,535 bytes gets
    exactly that much of a larger response (more would be a flow-control
    error, which the ``h2`` library raises), and the rest once it grants
    more."""
    import h2.config
    import h2.connection
    import h2.events

    window = 65_535
    size = 1_000_000
    conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
    conn.initiate_connection()
    conn.send_headers(
        1,
        [
            (":method", "GET"),
            (":scheme", "http"),
            (":path", f"/big?{size}"),
            (":authority", "127.0.0.1"),
        ],
        end_stream=True,
    )
    with socket.create_connection((plain_server.host, plain_server.port), timeout=10) as s:
        s.sendall(conn.data_to_send())
        got, ended, granted = 0, False, False
        while not ended:
            try:
                data = s.recv(65536)
            except TimeoutError:
                # Stalled: the whole window and no more arrived. Grant the rest.
                assert got == window and not granted
                granted = True
                s.settimeout(10)
                conn.increment_flow_control_window(size)
                conn.increment_flow_control_window(size, stream_id=1)
                s.sendall(conn.data_to_send())
                continue
            assert data, "closed before the end of the response"
            for event in conn.receive_data(data):
                if isinstance(event, h2.events.DataReceived):
                    got += len(event.data)
                elif isinstance(event, h2.events.StreamEnded):
                    ended = True
            s.sendall(conn.data_to_send())  # settings and ping acks only
            if got == window and not granted:
                s.settimeout(0.5)
    assert granted and got == size


def test_reset_upload_then_the_connection_goes_on(plain_server):
    """A client that resets a stream mid-upload costs that stream only:
    the next stream on the same connection is served."""
    import h2.config
    import h2.connection
    import h2.events

    conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
    conn.initiate_connection()
    head = [
        (":method", "POST"),
        (":scheme", "http"),
        (":path", "/echo"),
        (":authority", "127.0.0.1"),
        ("content-length", "100000"),
    ]
    conn.send_headers(1, head)
    conn.send_data(1, b"x" * 1000)
    conn.reset_stream(1)
    conn.send_headers(
        3,
        [(":method", "GET"), (":scheme", "http"), (":path", "/env"), (":authority", "127.0.0.1")],
        end_stream=True,
    )
    body, ended = b"", False
    with socket.create_connection((plain_server.host, plain_server.port), timeout=10) as s:
        s.sendall(conn.data_to_send())
        while not ended:
            data = s.recv(65536)
            assert data, "closed before stream 3 ended"
            for event in conn.receive_data(data):
                if isinstance(event, h2.events.DataReceived) and event.stream_id == 3:
                    body += event.data
                    conn.acknowledge_received_data(event.flow_controlled_length, 3)
                elif isinstance(event, h2.events.StreamEnded) and event.stream_id == 3:
                    ended = True
            s.sendall(conn.data_to_send())
    assert json.loads(body)["SERVER_PROTOCOL"] == "HTTP/2"


def test_streams_around_the_internal_keepalive(start_server):
    """Streams spaced around --keepalive (after which the loop closes an
    idle internal connection) are all served: an internal connection idle
    too long is not reused."""
    srv = start_server(APP, options=["--keepalive", "1"])
    base = f"http://127.0.0.1:{srv.port}"
    with client({"http1": False}) as c:
        for pause in (0, 0.2, 0.45, 0.6, 0.95, 1.05, 0.3):
            time.sleep(pause)
            r = c.post(base + "/echo", content=b"z" * 1000)
            assert r.status_code == 200 and r.json()["len"] == 1000


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


def test_metrics_count_client_connections(start_server):
    """qiao_open_connections counts the client's one HTTP/2 connection,
    not the internal connections its streams went over."""
    from conftest import free_port
    from rawhttp import wait_for
    from test_metrics import scrape

    port = free_port()
    srv = start_server(APP, options=["--metrics-bind", f"127.0.0.1:{port}"])
    metrics = f"http://127.0.0.1:{port}/metrics"

    def open_connections():
        try:
            return scrape(metrics)["qiao_open_connections"][("qiao_open_connections", ())]
        except Exception:  # noqa: BLE001 - not serving yet
            return None

    assert wait_for(lambda: open_connections() == 0, 5)
    base = f"http://127.0.0.1:{srv.port}"

    async def run():
        async with httpx.AsyncClient(http2=True, http1=False, timeout=20) as c:
            await asyncio.gather(*[c.get(base + "/sleep?0.2") for _ in range(8)])
            return open_connections()

    assert asyncio.run(run()) == 1
    assert wait_for(lambda: open_connections() == 0, 5)
