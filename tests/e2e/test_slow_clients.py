"""Clients that do not read (items 1 and 2 of the hostile-client report,
``docs/security.md``): a response the client does not take is kept by the
event loop (the connection stops being read meanwhile), so neither the
serving threads nor the loop wait for that client, and every other client
of the worker is answered.

Each attack is first driven to its barrier (the server stopped reading the
attacker, or began answering every slow reader), then a well-behaved
client must be answered long before ``--io-timeout`` (60 s here) would
have freed anything."""

from __future__ import annotations

import os
import select
import socket
import time

import pytest
from rawhttp import Conn, build_request

pytestmark = pytest.mark.qiao_only("the engine's output backpressure")

#: The server's --io-timeout: a stall that only this timeout ends fails
#: the well-behaved client's read (rawhttp's 10 s timeout) long before.
IO_TIMEOUT = "60"
#: A receive buffer as small as the kernel allows: the attacker's window.
SMALL_RCVBUF = 4096
#: The body size of hostile_apps.big_app's /big, /gen and /file.
BIG = 8 << 20
#: Longest the attacker keeps sending once the server stops taking bytes.
SETTLE = 0.5


def attacker(srv) -> socket.socket:
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, SMALL_RCVBUF)
    s.connect((srv.host, srv.port))
    return s


def flood(s: socket.socket, request: bytes, most: int = 64 << 20) -> int:
    """Sends ``request`` over and over without reading, until the server
    stops taking bytes (nothing leaves for ``SETTLE``): the barrier of the
    pipelining attack. Returns the bytes sent."""
    s.setblocking(False)
    chunk = request * max(1, 65536 // len(request))
    sent = 0
    while sent < most:
        try:
            sent += s.send(chunk)
        except BlockingIOError:
            if not select.select([], [s], [], SETTLE)[1]:
                return sent
    raise AssertionError(f"the server read {sent} bytes it cannot answer")


def answering(s: socket.socket, timeout: float = 10) -> None:
    """Waits until the server has begun a response on ``s`` (bytes are
    there to read), without reading them."""
    s.settimeout(timeout)
    assert s.recv(1, socket.MSG_PEEK), "closed before answering"


def read_response(s: socket.socket, rest: bytearray | None = None) -> tuple[bytes, bytes]:
    """Reads one Content-Length response: (head, body); the body may be
    cut short if the server closes. ``rest``: bytes read past the
    previous response on ``s`` (updated with those past this one)."""
    s.setblocking(True)
    s.settimeout(30)
    data = bytearray(rest or b"")
    while b"\r\n\r\n" not in data:
        more = s.recv(65536)
        assert more, f"closed inside the head: {bytes(data)!r}"
        data += more
    end = data.index(b"\r\n\r\n")
    head = bytes(data[:end])
    fields = head.lower().split(b"\r\n")
    length = next(int(f.split(b":")[1]) for f in fields if f.startswith(b"content-length:"))
    body = data[end + 4 :]
    while len(body) < length:
        more = s.recv(1 << 20)
        if not more:
            break
        body += more
    if rest is not None:
        rest[:] = body[length:]
    return head, bytes(body[:length])


def well_behaved(srv, path="/") -> bytes:
    with Conn(srv.host, srv.port) as c:
        resp = c.request("GET", path)
    assert resp.status == 200, resp
    return resp.body


# -- 1: a pipelining client that never reads stalls only itself ---------------------------


@pytest.mark.parametrize("threads", ["1", "4"])
def test_1_pipelining_flood_stalls_only_its_connection(threads, start_server):
    srv = start_server(
        "hostile_apps:big_app",
        options=["--workers", "1", "--threads", threads, "--io-timeout", IO_TIMEOUT],
    )
    with attacker(srv) as s:
        sent = flood(s, build_request("GET", "/"))
        assert sent > 0
        assert well_behaved(srv) == b"ok"
        # And again: nothing is stuck behind the attacker.
        assert well_behaved(srv) == b"ok"


def test_1_pipelined_health_probes_do_not_block_the_loop(start_server):
    srv = start_server(
        "hostile_apps:big_app",
        options=["--workers", "1", "--io-timeout", IO_TIMEOUT, "--health-path", "/healthz"],
    )
    with attacker(srv) as s:
        flood(s, build_request("GET", "/healthz"))
        assert well_behaved(srv, "/healthz").strip() == b"ok"
        assert well_behaved(srv) == b"ok"


def test_1_a_backlogged_connection_keeps_its_order(start_server):
    """Responses kept for a slow reader come out whole and in order, the
    pipelined request behind them after them."""
    srv = start_server("hostile_apps:big_app", options=["--workers", "1", "--threads", "1"])
    with attacker(srv) as s:
        s.sendall(b"".join(build_request("GET", p) for p in ("/big", "/gen", "/")))
        answering(s)
        assert well_behaved(srv) == b"ok"
        rest = bytearray()
        for want in (b"b" * BIG, b"b" * BIG, b"ok"):
            head, body = read_response(s, rest)
            assert head.startswith(b"HTTP/1.1 200"), head
            assert body == want


# -- 2: slow readers hold no serving thread ---------------------------------------------


@pytest.fixture
def big_file(tmp_path):
    path = tmp_path / "big.bin"
    path.write_bytes(b"f" * BIG)
    return path


@pytest.mark.parametrize("path", ["/big", "/file", "/gen"])
def test_2_slow_readers_hold_no_thread(path, big_file, start_server):
    threads = 4
    srv = start_server(
        "hostile_apps:big_app",
        options=["--workers", "1", "--threads", str(threads), "--io-timeout", IO_TIMEOUT],
        env={"HOSTILE_FILE": str(big_file)},
    )
    readers = [attacker(srv) for _ in range(2 * threads + 2)]
    try:
        for s in readers:
            s.sendall(build_request("GET", path))
        for s in readers:
            answering(s)
        assert well_behaved(srv) == b"ok"
        # Each slow reader that reads at last gets its whole body, or (a
        # generator over the worker's budget for waiting threads) a body
        # visibly cut: never a wrong byte, never a hang.
        fill = b"f" if path == "/file" else b"b"
        whole = 0
        for s in readers:
            head, body = read_response(s)
            assert head.startswith(b"HTTP/1.1 200"), head
            assert body == fill * len(body)
            whole += len(body) == BIG
        if path != "/gen":
            assert whole == len(readers)
        else:
            assert whole >= 1
            # A cut is the operator's to know, not a silent disconnect.
            cut = len(readers) - whole
            logged = srv.stderr().count("Response cut: a slow client")
            assert logged == cut, (logged, cut)
    finally:
        for s in readers:
            s.close()
    assert well_behaved(srv) == b"ok"


def test_2_a_slow_reader_that_reads_gets_everything(big_file, start_server):
    """One thread, a generator response, a client reading slowly: the
    thread waits for it (the worker's budget allows one), the body
    arrives whole."""
    srv = start_server(
        "hostile_apps:big_app",
        options=["--workers", "1", "--threads", "1"],
        env={"HOSTILE_FILE": str(big_file)},
    )
    with attacker(srv) as s:
        s.sendall(build_request("GET", "/gen"))
        answering(s)
        time.sleep(0.2)  # the client is slow: nothing asserted on time
        head, body = read_response(s)
        assert head.startswith(b"HTTP/1.1 200") and body == b"b" * BIG
    assert os.path.exists(big_file)


def test_2_zero_window_http2_client_holds_no_thread(start_server):
    """One h2c connection that opens 64 streams with a zero flow-control
    window (it will never take a byte of body): every stream is answered
    (its head arrives), and other clients are served meanwhile."""
    import h2.config
    import h2.connection
    import h2.events
    import h2.settings

    srv = start_server(
        "hostile_apps:big_app",
        options=["--workers", "1", "--threads", "4", "--io-timeout", IO_TIMEOUT],
    )
    conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
    conn.initiate_connection()
    conn.update_settings({h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 0})
    streams = [1 + 2 * i for i in range(64)]
    head = [(":method", "GET"), (":scheme", "http"), (":path", "/big"), (":authority", "x")]
    for sid in streams:
        conn.send_headers(sid, head, end_stream=True)
    with socket.create_connection((srv.host, srv.port), timeout=10) as s:
        s.sendall(conn.data_to_send())
        answered = set()
        while len(answered) < len(streams):
            data = s.recv(65536)
            assert data, f"closed with {len(answered)} streams answered"
            for event in conn.receive_data(data):
                if isinstance(event, h2.events.ResponseReceived):
                    answered.add(event.stream_id)
            s.sendall(conn.data_to_send())
        assert well_behaved(srv) == b"ok"
        assert well_behaved(srv, "/big") == b"b" * BIG
