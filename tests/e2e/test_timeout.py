"""``--timeout``: only time inside the application counts, and a request
that runs over ends alone.

- A request stuck in the application is given up: the worker logs its
  stack, retires gracefully (the requests of its other threads finish,
  whole) and exits; a new worker serves meanwhile.
- Waiting for a slow client (an upload trickling in, a download read
  slowly) is not application time: no timeout, whatever it lasts.

gunicorn differs: its sync worker is killed on a timeout, cutting whatever
else it was doing, and its gthread worker (``--threads`` > 1) never times
out a request at all; the retirement tests are Qiao's. The slow-client
tests pass under gunicorn's gthread worker too (it has no request clock).

The test apps (timeout_apps.py) write a marker file as a request enters
the application; the tests wait for those and for the supervisor's log
lines with bounded polls, not for fixed delays. The slow clients pace
themselves with sleeps: that is what a slow client is.
"""

from __future__ import annotations

import hashlib
import socket
import time

import pytest
from rawhttp import build_request, chunk_encode
from timeout_apps import MIB, PIECE_BYTES, WORK_BODY_BYTES

APP = "timeout_apps:app"
TIMEOUT = 2
#: Options of the retirement tests: one worker, room for the stuck request
#: and the ones beside it, a graceful timeout the tests never reach.
RETIRE_OPTIONS = [
    "--workers",
    "1",
    "--threads",
    "4",
    "--timeout",
    str(TIMEOUT),
    "--graceful-timeout",
    "20",
]
#: Longest a test waits for a marker file or a log line.
WAIT_SECONDS = 15.0
POLL_SECONDS = 0.02
#: The streamed download: larger than what the socket buffers hold, read
#: at READ_PIECE_BYTES per READ_PAUSE_SECONDS (~3 MB/s).
STREAM_MB = 20
READ_PIECE_BYTES = 64 * 1024
READ_PAUSE_SECONDS = 0.02
#: The slow upload: UPLOAD_PIECES pieces of UPLOAD_PIECE_BYTES, one per
#: UPLOAD_PAUSE_SECONDS (200 kB over 4 s, twice --timeout).
UPLOAD_PIECE_BYTES = 5_000
UPLOAD_PIECES = 40
UPLOAD_PAUSE_SECONDS = 0.1
#: The large response read slowly: BIG_MB over at least SLOW_READ_SECONDS.
BIG_MB = 32
SLOW_READ_SECONDS = 4.0

GUNICORN_DIFFERS = (
    "gunicorn kills a timed-out sync worker, cutting its other requests, "
    "and its gthread worker never times out a request"
)


def wait_for(what: str, predicate, seconds: float = WAIT_SECONDS):
    deadline = time.monotonic() + seconds
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"no {what} within {seconds}s")
        time.sleep(POLL_SECONDS)


def wait_log(srv, text: str) -> str:
    wait_for(f"{text!r} in the log:\n{srv.stderr()}", lambda: text in srv.stderr())
    return srv.stderr()


def entered(path) -> int:
    """The pid of the worker whose request wrote marker ``path``."""
    return int(wait_for(f"marker {path}", lambda: path.exists() and path.read_text()))


def worker_pid(srv) -> int:
    with srv.connect() as c:
        r = c.request("GET", "/pid", headers=[("Connection", "close")])
    assert r.status == 200
    return int(r.body)


def start_stuck(srv, tmp_path):
    """A connection whose request is stuck in the application (it has entered)."""
    marker = tmp_path / "stuck"
    conn = srv.connect(timeout=30)
    conn.send(build_request("GET", f"/stuck?marker={marker}", [("Connection", "close")]))
    return conn, entered(marker)


def no_complete_response(conn) -> bool:
    """The server closed ``conn`` without a whole response."""
    data = conn.read_to_eof()
    return b"woke up" not in data


def read_slowly(conn, total: int, until=None) -> tuple[int, int]:
    """Reads the rest of a ``total``-byte body a piece at a time, pausing
    between pieces; returns (bytes read, bytes read when ``until()`` first
    held)."""
    got, conn.buf = len(conn.buf), b""
    at = None
    while got < total:
        if at is None and until is not None and until():
            at = got
        data = conn.sock.recv(READ_PIECE_BYTES)
        if not data:
            break
        got += len(data)
        time.sleep(READ_PAUSE_SECONDS)
    return got, got if at is None else at


@pytest.mark.qiao_only(reason=GUNICORN_DIFFERS)
def test_a_timeout_ends_only_the_stuck_request(start_server, tmp_path):
    srv = start_server(APP, options=RETIRE_OPTIONS)
    old = worker_pid(srv)
    stuck, pid = start_stuck(srv, tmp_path)
    assert pid == old
    # Two requests beside it, in the application on the same worker: they
    # wait for their body (the client's time, not theirs), then work 1 s.
    beside = []
    for i in range(2):
        marker = tmp_path / f"work{i}"
        conn = srv.connect(timeout=30)
        head = build_request(
            "POST", f"/work?s=1&marker={marker}", [("Transfer-Encoding", "chunked")]
        )
        conn.send(head + b"5\r\nfirst\r\n")
        assert entered(marker) == old
        beside.append(conn)
    wait_log(srv, f"WORKER TIMEOUT (pid:{old})")
    for conn in beside:  # the rest of their bodies: they work once the worker is retiring
        conn.send(chunk_encode([b"second"]))
    for conn in beside:
        r = conn.read_response()
        assert r.status == 200, srv.stderr()
        assert r.body == b"work 11\n" + b"w" * WORK_BODY_BYTES
        conn.close()
    assert no_complete_response(stuck)
    log = wait_log(srv, f"Worker (pid:{old}) exited with code 1")  # by itself, once drained
    assert "aborted request GET /stuck" in log
    assert "in stuck_sleeping_here_b7e3" in log, log  # the stuck thread's traceback
    assert "killed by signal" not in log
    assert worker_pid(srv) != old  # the replacement serves


@pytest.mark.qiao_only(reason=GUNICORN_DIFFERS)
def test_a_request_running_over_while_the_worker_retires_is_given_up_too(start_server, tmp_path):
    srv = start_server(APP, options=RETIRE_OPTIONS)
    first, pid = start_stuck(srv, tmp_path)
    # The second gets stuck only once the worker retires: its body comes then.
    marker = tmp_path / "second"
    second = srv.connect(timeout=30)
    head = build_request("POST", f"/stuck?marker={marker}", [("Transfer-Encoding", "chunked")])
    second.send(head + b"1\r\nx\r\n")
    assert entered(marker) == pid
    wait_log(srv, f"WORKER TIMEOUT (pid:{pid})")
    second.send(chunk_encode([b"y"]))
    # Given up too (not waited for until --graceful-timeout): the worker exits.
    log = wait_log(srv, f"Worker (pid:{pid}) exited with code 1")
    assert "aborted request GET /stuck" in log and "aborted request POST /stuck" in log
    assert log.count("WORKER TIMEOUT") == 1 and "killed by signal" not in log
    assert no_complete_response(first) and no_complete_response(second)


@pytest.mark.qiao_only(reason=GUNICORN_DIFFERS)
def test_a_download_beside_a_stuck_request_completes(start_server, tmp_path):
    srv = start_server(APP, options=RETIRE_OPTIONS)
    stuck, pid = start_stuck(srv, tmp_path)
    total = STREAM_MB * MIB
    download = srv.connect(timeout=30)
    download.send(build_request("GET", f"/stream?mb={STREAM_MB}", [("Connection", "close")]))
    r = download.read_head()
    assert r.status == 200 and r.header("content-length") == str(total)
    timed_out = f"WORKER TIMEOUT (pid:{pid})"
    got, at_timeout = read_slowly(download, total, until=lambda: timed_out in srv.stderr())
    assert got == total, srv.stderr()
    assert at_timeout < total, "the download ended before the timeout: it proves nothing"
    assert total // PIECE_BYTES * PIECE_BYTES == total
    assert no_complete_response(stuck)
    wait_log(srv, f"Worker (pid:{pid}) exited with code 1")


def test_a_slow_upload_is_not_application_time(start_server):
    srv = start_server(APP, options=["--workers", "1", "--threads", "2", "--timeout", str(TIMEOUT)])
    piece = bytes(range(250)) * (UPLOAD_PIECE_BYTES // 250)
    with srv.connect(timeout=30) as conn:
        conn.send(build_request("POST", "/upload", [("Transfer-Encoding", "chunked")]))
        for _ in range(UPLOAD_PIECES):
            conn.send(b"%x\r\n%s\r\n" % (len(piece), piece))
            time.sleep(UPLOAD_PAUSE_SECONDS)
        conn.send(b"0\r\n\r\n")
        r = conn.read_response()
    body = piece * UPLOAD_PIECES
    assert r.status == 200, srv.stderr()
    assert r.body == b"%d %s" % (len(body), hashlib.sha256(body).hexdigest().encode())
    assert "WORKER TIMEOUT" not in srv.stderr()


def test_a_slow_reader_is_not_application_time(start_server):
    srv = start_server(APP, options=["--workers", "1", "--threads", "2", "--timeout", str(TIMEOUT)])
    total = BIG_MB * MIB
    sock = socket.create_connection((srv.host, srv.port), timeout=30)
    with sock:
        sock.sendall(build_request("GET", f"/big?mb={BIG_MB}", [("Connection", "close")]))
        started = time.monotonic()
        data = b""
        while b"\r\n\r\n" not in data:
            data += sock.recv(READ_PIECE_BYTES)
        head, _, got = data.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200"), head
        received = len(got)
        pause = SLOW_READ_SECONDS / (total / READ_PIECE_BYTES)
        while received < total:
            piece = sock.recv(READ_PIECE_BYTES)
            if not piece:
                break
            received += len(piece)
            time.sleep(pause)
    assert received == total, srv.stderr()
    assert time.monotonic() - started > TIMEOUT * 1.5  # the client was slow
    assert "WORKER TIMEOUT" not in srv.stderr()
