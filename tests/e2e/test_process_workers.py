"""The pre-fork process model: a supervisor binds the sockets and keeps
``--workers N`` processes serving them (gunicorn's arbiter is the model),
for the workers: load spread, ``--preload``, how many, replacement of dead
or stuck workers, ``--max-requests``, and an unimportable app.
Worker pids come from the ``/pid`` endpoint of ``proc_apps`` and
``/proc/<pid>/task/<pid>/children`` (``proc_support``).
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from conftest import E2E_DIR, free_port, server_command, server_env
from proc_support import (
    APP,
    Load,
    alive,
    get,
    log_pid,
    serving_pids,
    start_workers,
    workers,
)
from rawhttp import wait_for

pytestmark = pytest.mark.qiao_only


def test_new_connections_reach_every_worker(start_server):
    srv = start_server(APP, options=["--workers", "2"])
    assert wait_for(lambda: len(workers(srv)) == 2, 3), srv.stderr()
    time.sleep(0.2)  # let both import the app
    seen = set()
    for _ in range(200):
        seen.add(int(get(srv).text))
        if len(seen) == 2:
            break
    assert len(seen) == 2, f"200 new connections all reached worker {seen}"
    assert wait_for(lambda: workers(srv) == seen, 3), (seen, workers(srv))
    log = srv.stderr()
    assert f"Listening at: {srv.url} ({srv.proc.pid})" in log, log
    for pid in seen:
        assert f"Booting worker with pid: {pid}" in log, log


def test_concurrent_connections_spread_over_workers(start_server):
    """A burst of keep-alive connections lands on every worker, none starved."""
    srv = start_server(APP, options=["--workers", "2"])
    assert wait_for(lambda: len(workers(srv)) == 2, 3), srv.stderr()
    assert len(serving_pids(srv, 2)) == 2

    def open_and_ask(_):
        c = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
        c.sendall(b"GET /pid HTTP/1.1\r\nHost: x\r\n\r\n")
        return c

    with ThreadPoolExecutor(6) as ex:
        conns = list(ex.map(open_and_ask, range(60)))
    counts = Counter()
    for c in conns:
        data = b""
        while b"\r\n\r\n" not in data or not data.split(b"\r\n\r\n", 1)[1]:
            data += c.recv(4096)
        counts[int(data.split(b"\r\n\r\n", 1)[1])] += 1
        c.close()
    assert set(counts) == workers(srv), counts
    assert min(counts.values()) >= 6, f"uneven spread over workers: {counts}"


@pytest.mark.parametrize("n, expected", [(1, "False"), (2, "True")])
def test_wsgi_multiprocess(start_server, n, expected):
    srv = start_server(APP, options=["--workers", str(n)])
    assert get(srv, "/multiprocess").text == expected


@pytest.mark.parametrize("preload", [False, True])
def test_preload_imports_in_supervisor(start_server, preload):
    srv, pids = start_workers(start_server, options=["--preload"] if preload else [])
    for _ in range(6):
        importer, _, pid = get(srv, "/imported-by").text.partition(" ")
        assert int(pid) in pids
        assert int(importer) == (srv.proc.pid if preload else int(pid))


@pytest.mark.parametrize("value", ["0", "auto"])
def test_workers_auto_is_cpu_count(start_server, value):
    cpus = os.cpu_count()
    srv = start_server(APP, options=["--workers", value])
    assert wait_for(lambda: len(workers(srv)) == cpus, 5), (cpus, workers(srv), srv.stderr())
    assert get(srv, "/multiprocess").text == str(cpus > 1)


def test_sigkilled_worker_replaced_under_load(start_server):
    srv, old = start_workers(start_server)
    load = Load(srv)
    time.sleep(0.5)
    victim = min(old)
    killed_at = time.monotonic()
    os.kill(victim, signal.SIGKILL)
    replaced = wait_for(lambda: len(workers(srv)) == 2 and victim not in workers(srv), 3, 0.02)
    replace_time = time.monotonic() - killed_at
    time.sleep(max(0.0, 2.0 - replace_time))
    load.stop()
    assert replaced and replace_time < 1.5, (replace_time, workers(srv), srv.stderr())
    assert len(load.failures) <= 2, load.failures
    assert len(load.ok) > 20
    new_pids = {int(body) for t, body in load.ok if t > killed_at} - old
    assert new_pids, "the replacement worker served nothing"
    log_pid(srv, rf"Worker \(pid:({victim})\) was killed by signal")


@pytest.mark.parametrize(
    "path, pattern",
    [
        ("/exit", r"Worker \(pid:(\d+)\) exited with code 1\b"),
        ("/segv", r"Worker \(pid:(\d+)\) was killed by signal (?:SIGSEGV|11|segv)"),
    ],
    ids=["exit", "segv"],
)
def test_dying_worker_replaced(start_server, path, pattern):
    srv, old = start_workers(start_server)
    with pytest.raises(requests.ConnectionError):
        get(srv, path)
    dead = log_pid(srv, pattern)
    assert dead in old
    assert wait_for(lambda: not alive(dead) and len(workers(srv)) == 2, 2), (
        workers(srv),
        srv.stderr(),
    )
    assert len(workers(srv) - old) == 1
    assert serving_pids(srv, 2) == workers(srv)


def test_timeout_kills_stuck_worker(start_server):
    srv, old = start_workers(start_server, options=["--timeout", "1"])
    started = time.monotonic()
    try:
        r = get(srv, "/sleep?s=5")
        assert r.status_code >= 500, f"stuck request answered {r.status_code} {r.text!r}"
    except requests.RequestException:
        pass
    assert time.monotonic() - started < 4, "the stuck worker was not killed"
    dead = log_pid(srv, r"Worker \(pid:(\d+)\) timed out after .*in request: GET /sleep")
    assert dead in old
    assert wait_for(lambda: not alive(dead) and len(workers(srv)) == 2, 2), srv.stderr()
    assert len(workers(srv) - old) == 1
    assert serving_pids(srv, 2) == workers(srv)


@pytest.mark.parametrize("jitter", [[], ["--max-requests-jitter", "3"]])
def test_max_requests_restarts_workers(start_server, jitter):
    srv = start_server(APP, options=["--workers", "2", "--max-requests", "5", *jitter])
    seen = set()
    for _ in range(20):  # a failed request fails the test
        r = get(srv)
        assert r.status_code == 200, srv.stderr()
        seen.add(int(r.text))
    assert len(seen) >= 3, f"only workers {seen} after 20 requests"


def test_max_requests_last_response_closes(start_server):
    srv = start_server(APP, options=["--workers", "1", "--max-requests", "5"])
    with srv.connect() as conn:
        responses = [conn.request("GET", "/pid") for _ in range(5)]
        assert all(r.status == 200 for r in responses)
        assert len({r.body for r in responses}) == 1
        assert ["close" in r.connection_tokens() for r in responses] == [False] * 4 + [True]
        assert conn.is_closed(2)
    first = int(responses[0].body)
    assert wait_for(lambda: not alive(first), 3)
    assert int(get(srv).text) != first


@pytest.mark.parametrize("module", ["proc_broken", "proc_no_such_module"])
def test_unimportable_app_stops_the_server(module):
    cmd = server_command(f"{module}:app", [f"127.0.0.1:{free_port()}"], ["--workers", "2"])
    proc = subprocess.Popen(
        cmd,
        cwd=E2E_DIR,
        env=server_env(),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    started = time.monotonic()
    try:
        err = proc.communicate(timeout=8)[1]
    except subprocess.TimeoutExpired:
        err = "still running after 8s (respawning?)"
    finally:
        with contextlib.suppress(OSError):
            os.killpg(proc.pid, signal.SIGKILL)  # with any worker left behind
    assert proc.wait(5) != 0, err
    assert time.monotonic() - started < 5, err
    errors = [line for line in err.splitlines() if "qiao: error:" in line]
    assert errors and any(module in line for line in errors), err
    assert "Traceback" not in err, err
    assert err.count("Booting worker") <= 4, err
