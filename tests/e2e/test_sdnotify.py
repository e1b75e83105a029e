"""systemd's readiness protocol: with ``NOTIFY_SOCKET`` set, the supervisor
sends its state to that Unix datagram socket (bound here by the test, as
systemd binds its own): READY, RELOADING and READY again around SIGHUP,
STOPPING at SIGTERM, in that order and nothing else.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import time

import pytest
import requests

#: How long a notification may take to arrive (a worker must boot first).
NOTIFY_TIMEOUT = 10.0


@pytest.fixture(params=["path", "abstract"])
def notify(request, tmp_path):
    """(socket, NOTIFY_SOCKET value): a path, or an abstract ``@name``."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    if request.param == "path":
        value = str(tmp_path / "notify.sock")
        sock.bind(value)
    else:
        value = f"@qiao-e2e-notify-{os.getpid()}-{time.monotonic_ns()}"
        sock.bind("\0" + value[1:])
    sock.settimeout(NOTIFY_TIMEOUT)
    with sock:
        yield sock, value


def receive(sock: socket.socket) -> list[str]:
    """The next notification, as its lines."""
    try:
        return sock.recv(4096).decode().split("\n")
    except TimeoutError:
        pytest.fail(f"no notification within {NOTIFY_TIMEOUT}s")


def test_ready_is_sent(start_server, notify):
    sock, value = notify
    start_server("sd_apps:app", options=["--workers", "2"], env={"NOTIFY_SOCKET": value})
    assert receive(sock)[0] == "READY=1"


@pytest.mark.qiao_only  # gunicorn sends READY=1 only, before its workers start
def test_start_reload_stop(start_server, notify):
    sock, value = notify
    srv = start_server("sd_apps:app", options=["--workers", "2"], env={"NOTIFY_SOCKET": value})
    pid = srv.proc.pid
    assert receive(sock) == ["READY=1", f"MAINPID={pid}", "STATUS=Serving 2 workers"]
    # The workers and the application do not inherit the variable.
    assert requests.get(srv.url, timeout=10).text == "unset"

    before = time.monotonic_ns() // 1000
    srv.proc.send_signal(signal.SIGHUP)
    reloading = receive(sock)
    assert reloading[0] == "RELOADING=1"
    stamp = re.fullmatch(r"MONOTONIC_USEC=(\d+)", reloading[1])
    assert stamp and before <= int(stamp.group(1)) <= time.monotonic_ns() // 1000, reloading
    assert reloading[2:] == ["STATUS=Reloading"]
    assert receive(sock) == ["READY=1", "STATUS=Serving 2 workers"]

    srv.proc.send_signal(signal.SIGTTOU)
    assert receive(sock) == ["STATUS=Serving 1 worker"]
    srv.proc.send_signal(signal.SIGTTIN)  # said once the new worker serves
    assert receive(sock) == ["STATUS=Serving 2 workers"]

    srv.proc.send_signal(signal.SIGTERM)
    assert receive(sock) == ["STOPPING=1", "STATUS=Stopping"]
    assert srv.proc.wait(NOTIFY_TIMEOUT) == 0
    sock.setblocking(False)
    with pytest.raises(BlockingIOError):
        sock.recv(4096)  # nothing after STOPPING


@pytest.mark.qiao_only
def test_a_failed_reload_is_ready_again(start_server, notify, tmp_path):
    """New workers that cannot load the changed code: the old ones go on,
    and systemd hears READY=1, not silence until its reload timeout."""
    sock, value = notify
    source = tmp_path / "sd_reload_app.py"
    source.write_text(
        "def app(environ, start_response):\n    start_response('200 OK', [])\n    return [b'v1']\n"
    )
    srv = start_server(
        "sd_reload_app:app",
        options=["--workers", "2", "--chdir", str(tmp_path)],
        env={"NOTIFY_SOCKET": value},
    )
    assert receive(sock)[0] == "READY=1"
    source.write_text("raise RuntimeError('broken by the test')\n")
    srv.proc.send_signal(signal.SIGHUP)
    assert receive(sock)[0] == "RELOADING=1"
    assert receive(sock) == ["READY=1", "STATUS=Serving 2 workers"]
    assert "failed to boot: keeping the 2 workers that serve" in srv.stderr(), srv.stderr()
    assert requests.get(srv.url, timeout=10).text == "v1"
