"""HTTP/2 end to end: in cleartext with prior knowledge (h2c) and over TLS
(ALPN ``h2``), with curl, an HTTP/2 client library (``httpx`` on ``h2``) and
frames made with ``h2`` by hand, for the connection itself: the preface
however it arrives, flow control, a reset stream, GOAWAY when idle, the
internal connections behind the streams, refusals and application errors,
the metrics, a graceful stop with a stream in flight, and ``--no-http2``."""

from __future__ import annotations

import asyncio
import json
import signal
import socket
import subprocess
import time

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
PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"


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
