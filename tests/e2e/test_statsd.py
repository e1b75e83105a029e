"""``--statsd-host``: the datagrams a statsd daemon receives, read from a
real UDP socket on 127.0.0.1 and a real Unix datagram socket. The lines
are gunicorn's (names, types, prefix, DogStatsD tags), so these tests
also pass against gunicorn (QIAO_TEST_SERVER=gunicorn).
"""

from __future__ import annotations

import contextlib
import re
import socket
import time

import pytest
import requests

PREFIX = "web"
TAGS = "env:e2e,canary"
#: How long to wait for the datagrams of requests already answered (they
#: are sent once the response is done, possibly after the client has it).
ARRIVAL_TIMEOUT = 10.0
#: Each request: (path, status code).
REQUESTS = (("/hello", 200), ("/no-such-page", 404), ("/raise", 500))
#: Requests whose datagrams (3 each) overflow a Unix datagram socket's
#: queue (net.unix.max_dgram_qlen, 512 at most by default) that nobody reads.
FILL_REQUESTS = 400


class Listener:
    """A statsd daemon's socket: collects the lines it receives."""

    def __init__(self, sock: socket.socket, address: str) -> None:
        self.sock = sock
        self.address = address
        self.lines: list[str] = []

    def wait_for(self, *wanted: str) -> list[str]:
        """Receives until every line of ``wanted`` (regular expressions)
        has arrived; returns all the lines received so far."""
        deadline = time.monotonic() + ARRIVAL_TIMEOUT
        missing = list(wanted)
        while True:
            missing = [w for w in missing if not any(re.fullmatch(w, x) for x in self.lines)]
            if not missing:
                return self.lines
            left = deadline - time.monotonic()
            assert left > 0, f"never received {missing}; received {self.lines}"
            self.sock.settimeout(left)
            try:
                data = self.sock.recv(65536)
            except TimeoutError:
                continue
            self.lines += data.decode().split("\n")


@pytest.fixture(params=["udp", "unix"])
def listener(request, tmp_path):
    if request.param == "udp":
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind(("127.0.0.1", 0))
        address = f"127.0.0.1:{sock.getsockname()[1]}"
    else:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        path = str(tmp_path / "statsd.sock")
        sock.bind(path)
        address = f"unix:{path}"
    with sock:
        yield Listener(sock, address)


def options(listener: Listener, *more: str) -> list[str]:
    base = ["--workers", "2", "--statsd-host", listener.address]
    return [*base, "--statsd-prefix", PREFIX, "--dogstatsd-tags", TAGS, *more]


def line(name: str, value: str, kind: str) -> str:
    """The expected line, as a regular expression (``value`` is one)."""
    return re.escape(f"{PREFIX}.{name}:") + value + re.escape(f"|{kind}|#{TAGS}")


def test_requests_are_counted_and_timed(start_server, listener):
    srv = start_server("apps:app", options=options(listener))
    for path, code in REQUESTS:
        assert requests.get(srv.url + path, timeout=10).status_code == code
    counted = [line(f"gunicorn.request.status.{code}", "1", "c|@1.0") for _, code in REQUESTS]
    received = listener.wait_for(*counted)
    per_request = sorted(x for x in received if re.match(rf"{PREFIX}\.gunicorn\.request", x))
    duration = line("gunicorn.request.duration", r"\d+(\.\d+)?", "ms")
    expected = sorted([duration] * 3 + [line("gunicorn.requests", "1", "c|@1.0")] * 3 + counted)
    assert len(per_request) == len(expected), received
    for got, want in zip(per_request, expected):
        assert re.fullmatch(want, got), (got, want)
    # The supervisor's gauge, and the error log line of /raise's traceback.
    listener.wait_for(line("gunicorn.workers", "2", "g"))
    listener.wait_for(line("gunicorn.log.exception", "1", "c|@1.0"))


def test_counted_with_the_access_log_too(start_server, listener, tmp_path):
    access = tmp_path / "access.log"
    srv = start_server("apps:app", options=options(listener, "--access-log", str(access)))
    assert requests.get(srv.url + "/hello", timeout=10).status_code == 200
    listener.wait_for(
        line("gunicorn.requests", "1", "c|@1.0"),
        line("gunicorn.request.status.200", "1", "c|@1.0"),
    )
    deadline = time.monotonic() + ARRIVAL_TIMEOUT
    while "GET /hello" not in (access.read_text() if access.exists() else ""):
        assert time.monotonic() < deadline, "no access log line"
        time.sleep(0.05)


def test_backlog_metric(start_server, listener):
    start_server("apps:app", options=options(listener, "--enable-backlog-metric"))
    listener.wait_for(line("gunicorn.backlog", r"\d+", "h"))


@pytest.mark.qiao_only  # gunicorn's socket blocks: its requests would hang here
def test_a_full_destination_drops_metrics_and_never_blocks(start_server, tmp_path):
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    path = str(tmp_path / "statsd.sock")
    sock.bind(path)  # and not read until the end: its queue fills up
    listener = Listener(sock, f"unix:{path}")
    srv = start_server("apps:app", options=options(listener, "--workers", "1"))
    with sock, requests.Session() as session:
        for _ in range(FILL_REQUESTS):
            assert session.get(srv.url + "/hello", timeout=10).status_code == 200
        assert "Resource temporarily unavailable" in srv.stderr(), srv.stderr()
        # Once the daemon reads again, metrics arrive again.
        sock.setblocking(False)
        with contextlib.suppress(BlockingIOError):
            while sock.recv(65536):
                pass
        assert session.get(srv.url + "/no-such-page", timeout=10).status_code == 404
        listener.wait_for(line("gunicorn.request.status.404", "1", "c|@1.0"))
