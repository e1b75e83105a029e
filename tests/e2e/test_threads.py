"""The thread pool of a worker, end to end with real Python: requests that
block (the GIL released) are served concurrently with the default settings,
without stopping other connections; ``--threads N`` caps the pool and
``--threads 1`` is strictly one request at a time; bodies and keep-alive
stay correct while connections move between threads; ``--timeout`` and
SIGTERM see requests on every thread.

No timing assertions: concurrency is shown with ``threading.Barrier``
(``/gather?n=N`` answers ``all`` only when N requests are inside at once).
"""

from __future__ import annotations

import os
import random
import signal
import socket
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from rawhttp import wait_for

pytestmark = pytest.mark.qiao_only

APP = "threads_app:app"


def gather(srv, n: int, key: str | None = None, t: float = 3.0) -> list[str]:
    """n concurrent /gather requests on n connections; their answers."""
    key = key or uuid.uuid4().hex
    url = f"{srv.url}/gather?n={n}&key={key}&t={t}"
    with ThreadPoolExecutor(n) as ex:
        return list(ex.map(lambda _: requests.get(url, timeout=30).text, range(n)))


def test_blocked_requests_run_concurrently_by_default(pooled):
    srv = pooled(APP)
    assert gather(srv, 30) == ["all"] * 30


def test_threads_one_serves_one_request_at_a_time(pooled):
    srv = pooled(APP, options=["--threads", "1"])
    assert gather(srv, 2, t=0.5) == ["timeout"] * 2


def test_threads_option_caps_the_pool(pooled):
    srv = pooled(APP, options=["--threads", "3"])
    assert gather(srv, 3) == ["all"] * 3
    assert gather(srv, 4, t=0.5) == ["timeout"] * 4


def test_blocked_request_does_not_stop_other_connections(pooled):
    srv = pooled(APP)
    key = uuid.uuid4().hex
    idle = requests.Session()
    assert idle.get(f"{srv.url}/before", timeout=5).text == "/before"
    first = {}
    waiter = threading.Thread(
        target=lambda: first.update(
            r=requests.get(f"{srv.url}/gather?n=2&key={key}&t=10", timeout=30).text
        )
    )
    waiter.start()
    # Served while /gather blocks: on a keep-alive connection made before,
    # and on new ones.
    for i in range(20):
        assert idle.get(f"{srv.url}/k{i}", timeout=5).text == f"/k{i}"
        assert requests.get(f"{srv.url}/n{i}", timeout=5).text == f"/n{i}"
    assert requests.get(f"{srv.url}/gather?n=2&key={key}&t=10", timeout=30).text == "all"
    waiter.join(30)
    assert first["r"] == "all"


def test_bodies_stay_intact_while_connections_change_threads(pooled):
    srv = pooled(APP)
    rng = random.Random(7)
    payloads = [os.urandom(rng.choice([0, 1, 100, 70_000, 300_000])) for _ in range(40)]

    def client(i: int) -> bool:
        with requests.Session() as s:  # keep-alive: the same connection
            for j in range(5):
                if (i + j) % 3 == 0:
                    assert s.get(f"{srv.url}/sleep?s=0.02", timeout=10).text == "slept"
                body = payloads[(i * 5 + j) % len(payloads)]
                assert s.post(f"{srv.url}/echo", data=body, timeout=10).content == body
        return True

    with ThreadPoolExecutor(16) as ex:
        assert all(ex.map(client, range(16)))


def test_timeout_names_a_stuck_request_on_any_thread(start_server):
    srv = start_server(APP, options=["--timeout", "1"])
    with ThreadPoolExecutor(3) as ex:
        futures = [ex.submit(requests.get, f"{srv.url}/sleep?s=30", timeout=15) for _ in range(3)]
        assert wait_for(lambda: "timed out after" in srv.stderr(), 10), srv.stderr()
        for f in futures:
            try:
                assert f.result().status_code >= 500
            except requests.RequestException:
                pass
    assert "in request: GET /sleep?s=30" in srv.stderr()
    # A new worker serves.
    assert wait_for(lambda: requests.get(f"{srv.url}/ok", timeout=5).text == "/ok", 5)


def test_sigterm_lets_every_blocked_request_finish(start_server):
    srv = start_server(APP)
    with ThreadPoolExecutor(10) as ex:
        futures = [ex.submit(requests.get, f"{srv.url}/sleep?s=1", timeout=15) for _ in range(10)]
        assert wait_for(lambda: requests.get(f"{srv.url}/inflight").text == "10", 5)
        srv.proc.send_signal(signal.SIGTERM)
        assert [f.result().text for f in futures] == ["slept"] * 10
    assert srv.proc.wait(15) == 0


def test_each_yielded_block_is_sent_before_the_next_is_asked_for(pooled):
    """PEP 3333: a server must not delay a block; the client sees ``first``
    while the generator still waits to produce ``second``."""
    srv = pooled(APP)
    key = uuid.uuid4().hex
    with socket.create_connection((srv.host, srv.port), timeout=5) as s:
        s.sendall(f"GET /gated?key={key} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        data = b""
        while b"first" not in data:
            chunk = s.recv(4096)  # times out (fails) if "first" is held back
            assert chunk, data
            data += chunk
        assert b"second" not in data
        requests.get(f"{srv.url}/release?key={key}", timeout=5)
        while not data.endswith(b"0\r\n\r\n"):
            chunk = s.recv(4096)
            assert chunk, data
            data += chunk
        assert b"second" in data


def test_a_complete_body_is_sent_while_the_generator_has_not_ended(pooled):
    """The announced length is reached with the first block; the generator
    then blocks before it ends. The response must not wait for that: the
    client reads it all before it lets the generator end."""
    srv = pooled(APP)
    key = uuid.uuid4().hex
    with socket.create_connection((srv.host, srv.port), timeout=5) as s:
        s.sendall(f"GET /gated-end?key={key} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        data = b""
        while not data.endswith(b"\r\n\r\nwhole"):
            chunk = s.recv(4096)  # times out (fails) if the body is held back
            assert chunk, data
            data += chunk
        assert data.startswith(b"HTTP/1.1 200 OK\r\n")
        requests.get(f"{srv.url}/release?key={key}", timeout=5)
        # The connection serves its next request once the generator ended.
        s.sendall(b"GET /after HTTP/1.1\r\nHost: x\r\n\r\n")
        rest = b""
        while not rest.endswith(b"/after"):
            chunk = s.recv(4096)
            assert chunk, rest
            rest += chunk
