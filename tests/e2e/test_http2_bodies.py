"""HTTP/2 request bodies end to end, over TLS and h2c. A body whose length
the client declared, up to 256 KiB, is taken into memory by the front and
handed to the loop with its head; a larger one, one without a length, one
behind ``Expect: 100-continue``, one that comes slowly, and those past
what one connection may hold in memory are streamed up an internal
connection. Whichever way, the application reads every byte, in order,
with the length the client declared; a body other than declared ends its
stream and only it."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import shutil
import socket
import subprocess
import time

import pytest
from http2_support import APP, client, needs_curl, trust

# Fixtures, imported as themselves (an explicit re-export, which the linter
# does not take for an unused import): one instance per test module.
from http2_support import plain_server as plain_server
from tls_support import pki as pki

httpx = pytest.importorskip("httpx")
pytest.importorskip("h2")

pytestmark = pytest.mark.qiao_only
#: The largest body taken into memory (`upload::BODY_IN_MEMORY`).
IN_MEMORY = 256 * 1024


@pytest.fixture(scope="module")
def tls_server(pki):
    from conftest import Server

    srv = Server(APP, options=["--certfile", str(pki.cert), "--keyfile", str(pki.key)]).start()
    yield srv
    srv.cleanup()


@pytest.fixture(params=["tls", "h2c"])
def target(request, pki, tls_server, plain_server):
    if request.param == "tls":
        return f"https://localhost:{tls_server.port}", trust(pki)
    return f"http://127.0.0.1:{plain_server.port}", {"http1": False}


def facts_of(data: bytes) -> dict:
    """What ``/echo`` answers for a body sent with its length."""
    return {
        "len": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
        "content_length": str(len(data)),
        "protocol": "HTTP/2",
    }


@pytest.mark.parametrize("size", [1, 1000, 65_536, IN_MEMORY, IN_MEMORY + 1, 1_000_000])
def test_bodies_on_both_sides_of_the_in_memory_limit(target, size):
    base, kwargs = target
    with client(kwargs) as c:
        # Twice: the second goes over the internal connection the first left.
        for _ in range(2):
            data = os.urandom(size)
            r = c.post(base + "/echo", content=data)
            assert r.status_code == 200 and r.json() == facts_of(data)


def test_concurrent_bodies_past_what_a_connection_holds(target):
    """Twelve bodies of 200 KB at once on one connection: more than the
    1 MiB a connection may hold in memory, so some are streamed while
    others wait in memory. Each reaches its own stream's application."""
    base, kwargs = target
    bodies = [os.urandom(200_000) for _ in range(12)]

    async def run():
        async with httpx.AsyncClient(http2=True, timeout=30, **kwargs) as c:
            return await asyncio.gather(*[c.post(base + "/echo", content=b) for b in bodies])

    rs = asyncio.run(run())
    assert [r.json() for r in rs] == [facts_of(b) for b in bodies]


@needs_curl
def test_a_body_behind_expect_100_continue(plain_server, tmp_path):
    data = os.urandom(50_000)
    body = tmp_path / "body"
    body.write_bytes(data)
    out = subprocess.run(
        [
            "curl",
            "-sS",
            "--max-time",
            "20",
            "--http2-prior-knowledge",
            "-H",
            "Expect: 100-continue",
            "--data-binary",
            f"@{body}",
            f"http://127.0.0.1:{plain_server.port}/echo",
        ],
        capture_output=True,
        timeout=30,
    )
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == facts_of(data)


def by_hand(server, frames) -> dict[int, tuple[dict, bytes, bool]]:
    """Sends what ``frames(conn)`` makes (a generator of byte strings to
    send, in steps), then reads until every stream it opened has ended or
    was reset: stream → (headers, body, reset)."""
    import h2.config
    import h2.connection
    import h2.events

    conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
    conn.initiate_connection()
    got: dict[int, tuple[dict, bytes, bool]] = {}
    with socket.create_connection((server.host, server.port), timeout=10) as s:
        opened = set()
        for _ in frames(conn, opened):
            s.sendall(conn.data_to_send())
        s.sendall(conn.data_to_send())
        while set(got) != opened or not all(done for *_, done in got.values()):
            data = s.recv(65536)
            assert data, f"closed with streams open: {got}"
            for e in conn.receive_data(data):
                sid = getattr(e, "stream_id", None)
                head, body, _ = got.get(sid, ({}, b"", False))
                if isinstance(e, h2.events.ResponseReceived):
                    got[sid] = (dict(e.headers), body, False)
                elif isinstance(e, h2.events.DataReceived):
                    conn.acknowledge_received_data(e.flow_controlled_length, sid)
                    got[sid] = (head, body + e.data, False)
                elif isinstance(e, (h2.events.StreamEnded, h2.events.StreamReset)):
                    got[sid] = (head, body, True)
            s.sendall(conn.data_to_send())
    return got


def post_head(length: int) -> list[tuple[str, str]]:
    return [
        (":method", "POST"),
        (":scheme", "http"),
        (":path", "/echo"),
        (":authority", "127.0.0.1"),
        ("content-length", str(length)),
    ]


def test_a_slow_body_goes_on_to_the_loop_and_arrives_whole(plain_server):
    """A body that has not come whole after the front's wait (100 ms) goes
    on with what came of it first, then the rest as it comes."""
    data = os.urandom(30_000)

    def frames(conn, opened):
        opened.add(1)
        conn.send_headers(1, post_head(len(data)))
        conn.send_data(1, data[:10_000])
        yield
        time.sleep(0.5)  # past the front's wait: the loop has the first part
        conn.send_data(1, data[10_000:20_000])
        conn.send_data(1, data[20_000:], end_stream=True)
        yield

    got = by_hand(plain_server, frames)
    head, body, _ = got[1]
    assert head[b":status"] == b"200" and json.loads(body) == facts_of(data)


def test_a_body_shorter_than_declared_ends_its_stream_only(plain_server):
    """A stream whose body ends before its declared length gets no 200 (the
    stream is reset, or refused); the next stream is served."""

    def frames(conn, opened):
        opened.update((1, 3))
        conn.send_headers(1, post_head(100))
        conn.send_data(1, b"x" * 50, end_stream=True)
        conn.send_headers(3, post_head(5))
        conn.send_data(3, b"hello", end_stream=True)
        yield

    got = by_hand(plain_server, frames)
    assert got[1][0].get(b":status") != b"200"
    head, body, _ = got[3]
    assert head[b":status"] == b"200" and json.loads(body) == facts_of(b"hello")


@pytest.mark.skipif(shutil.which("h2load") is None, reason="h2load not installed")
@pytest.mark.parametrize("threads", [1, 2])
def test_more_uploads_than_threads_all_finish(start_server, tmp_path, threads):
    """Sixteen streams uploading 1 MiB at once over two connections, more
    than the worker has threads: every thread ends up in an application
    reading a body only the front (HTTP/2) can deliver, and the front runs
    while a thread leads the loop. The pool's monitor runs it then; and
    each stream's flow-control window is its own (the connection's has
    room for them all), so a stream waiting for a thread holds no window
    a running one needs. Either missing stalled every stream until
    ``--io-timeout``. (h2load: ``httpx`` sends one stream's body at a time,
    so it waits on a stream no thread reads yet, whatever the server.)"""
    srv = start_server(APP, options=["--threads", str(threads)])
    body = tmp_path / "body"
    body.write_bytes(os.urandom(1 << 20))
    url = f"http://127.0.0.1:{srv.port}/echo"
    cmd = ["h2load", "-c", "2", "-m", "8", "-n", "32", "-d", str(body), url]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=25)
    assert "32 succeeded" in r.stdout, r.stdout
