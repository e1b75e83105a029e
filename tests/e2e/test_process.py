"""The pre-fork process model: a supervisor binds the sockets and keeps
``--workers N`` processes serving them (gunicorn's arbiter is the model):
load spread, ``--preload``, replacement of dead or stuck workers,
``--max-requests``, the supervisor's signals, ``--reload``, ``--pid``, no
orphans, and an unimportable app. Worker pids come from the ``/pid``
endpoint of ``proc_apps`` and ``/proc/<pid>/task/<pid>/children``.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import re
import signal
import socket
import subprocess
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests
from conftest import E2E_DIR, free_port, server_command, server_env
from rawhttp import wait_for

pytestmark = pytest.mark.qiao_only
APP = "proc_apps:app"


def alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie counts as gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[0] not in ("Z", "X")


def workers(srv) -> set[int]:
    """The live child processes of the supervisor (it forks from its main thread)."""
    pid = srv.proc.pid
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return set()
    return {int(p) for p in children if alive(int(p))}


def get(srv, path="/pid", timeout=10.0) -> requests.Response:
    """One request on a new connection."""
    return requests.get(srv.url + path, headers={"Connection": "close"}, timeout=timeout)


def in_background(srv, path) -> dict:
    """Starts one request in a thread; ``result`` gets (status, body) or the error."""
    out: dict = {}

    def run():
        try:
            r = get(srv, path)
            out["result"] = (r.status_code, r.text)
        except requests.RequestException as e:
            out["result"] = repr(e)

    out["thread"] = threading.Thread(target=run, daemon=True)
    out["thread"].start()
    return out


def serving_pids(srv, count: int, timeout=5.0) -> set[int]:
    """Requests /pid on new connections until ``count`` distinct workers answered."""
    seen: set[int] = set()
    deadline = time.monotonic() + timeout
    while len(seen) < count and time.monotonic() < deadline:
        seen.add(int(get(srv).text))
    assert len(seen) >= count, f"only workers {seen} answered in {timeout}s"
    return seen


def start_workers(start_server, n=2, options=(), env=None):
    srv = start_server(APP, options=["--workers", str(n), *options], env=env)
    pids = serving_pids(srv, n)
    assert wait_for(lambda: workers(srv) == pids, 3), (pids, workers(srv), srv.stderr())
    return srv, pids


def log_pid(srv, pattern: str, timeout=3.0) -> int:
    """Waits for a log line matching ``pattern`` (with a ``(\\d+)`` pid group)."""
    match = wait_for(lambda: re.search(pattern, srv.stderr()), timeout)
    assert match, f"no log line matching {pattern!r}:\n{srv.stderr()}"
    return int(match.group(1))


def wait_exit(srv, timeout: float) -> int:
    try:
        return srv.proc.wait(timeout)
    except subprocess.TimeoutExpired:
        pytest.fail(f"server still running {timeout}s later:\n{srv.stderr()}")


class Load:
    """A client loop in a thread: new connections, or one keep-alive Session."""

    def __init__(self, srv, path="/pid", keepalive=False, pause=0.005):
        self.url, self.keepalive, self.pause = srv.url + path, keepalive, pause
        self.ok: list[tuple[float, str]] = []
        self.failures: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        session = requests.Session()
        while not self._stop.is_set():
            try:
                if self.keepalive:
                    r = session.get(self.url, timeout=10)
                else:
                    r = requests.get(self.url, headers={"Connection": "close"}, timeout=10)
                if r.status_code == 200:
                    self.ok.append((time.monotonic(), r.text))
                else:
                    self.failures.append(f"status {r.status_code}")
            except requests.RequestException as e:
                self.failures.append(repr(e))
            time.sleep(self.pause)
        session.close()

    def stop(self):
        self._stop.set()
        self._thread.join(15)


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


def test_sighup_reloads_code_with_zero_failures(start_server, tmp_path):
    version = tmp_path / "version"
    version.write_text("v1")
    srv, old = start_workers(start_server, env={"PROC_VERSION_FILE": str(version)})
    assert get(srv, "/version").text.startswith("v1 ")
    loads = [Load(srv, "/version", keepalive=True), Load(srv, "/version")]
    time.sleep(0.5)
    version.write_text("v2")
    hup_at = time.monotonic()
    os.kill(srv.proc.pid, signal.SIGHUP)

    def reloaded(load):
        return any(t > hup_at and body.startswith("v2 ") for t, body in load.ok)

    done = wait_for(lambda: all(reloaded(load) for load in loads), 8)
    time.sleep(1.0)
    for load in loads:
        load.stop()
    assert [f for load in loads for f in load.failures] == [], srv.stderr()
    assert done, f"v2 never served after SIGHUP:\n{srv.stderr()}"
    assert all(len(load.ok) > 20 for load in loads)
    assert "Handling signal: hup" in srv.stderr()
    assert wait_for(lambda: not any(alive(p) for p in old), 5), srv.stderr()
    for _ in range(10):
        v, _, pid = get(srv, "/version").text.partition(" ")
        assert v == "v2" and int(pid) not in old
    assert len(workers(srv)) == 2


def test_sigterm_finishes_request_in_flight(start_server):
    srv, _ = start_workers(start_server, options=["--graceful-timeout", "20"])
    idle = srv.connect()  # an idle keep-alive connection must not hold up the stop
    assert idle.request("GET", "/pid").status == 200
    slow = in_background(srv, "/sleep?s=1.5")
    time.sleep(0.5)
    term_at = time.monotonic()
    srv.proc.send_signal(signal.SIGTERM)
    slow["thread"].join(10)
    assert slow.get("result") == (200, "slept"), (slow, srv.stderr())
    assert wait_exit(srv, 10) == 0, srv.stderr()
    assert time.monotonic() - term_at < 5, "graceful stop waited for something idle"
    assert idle.is_closed(1)
    idle.close()
    log = srv.stderr()
    assert "Handling signal: term" in log and "Shutting down" in log, log


def test_sigterm_stops_accepting(start_server):
    """A client arriving during the drain is refused (or served), never left hanging."""
    srv, _ = start_workers(start_server)
    slow = in_background(srv, "/sleep?s=2")
    time.sleep(0.3)
    srv.proc.send_signal(signal.SIGTERM)
    time.sleep(0.3)
    try:
        with srv.connect(timeout=1.0) as conn:
            assert conn.request("GET", "/pid").status == 200
    except ConnectionRefusedError:
        pass
    except (OSError, EOFError) as e:
        pytest.fail(f"connection made 0.3s into the graceful stop accepted, not served: {e!r}")
    slow["thread"].join(10)
    assert slow.get("result") == (200, "slept"), (slow, srv.stderr())
    assert wait_exit(srv, 5) == 0, srv.stderr()


@pytest.mark.parametrize(
    "sig, options",
    [(signal.SIGTERM, ["--graceful-timeout", "1"]), (signal.SIGINT, []), (signal.SIGQUIT, [])],
    ids=["term", "int", "quit"],
)
def test_stop_with_stuck_request(start_server, sig, options):
    """TERM kills what is still busy after --graceful-timeout; INT and QUIT stop fast."""
    srv, _ = start_workers(start_server, options=options)
    stuck = in_background(srv, "/sleep?s=10")
    time.sleep(0.3)
    sent_at = time.monotonic()
    srv.proc.send_signal(sig)
    assert wait_exit(srv, 6) == 0, srv.stderr()
    assert time.monotonic() - sent_at < 3.5, srv.stderr()
    stuck["thread"].join(10)
    assert f"Handling signal: {sig.name[3:].lower()}" in srv.stderr()


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


def test_ttin_adds_and_ttou_removes_a_worker(start_server):
    srv, old = start_workers(start_server)
    os.kill(srv.proc.pid, signal.SIGTTIN)
    assert wait_for(lambda: len(workers(srv)) == 3, 3), (workers(srv), srv.stderr())
    assert old < workers(srv)
    os.kill(srv.proc.pid, signal.SIGTTOU)
    assert wait_for(lambda: len(workers(srv)) == 2, 5), (workers(srv), srv.stderr())
    log = srv.stderr()
    assert "Handling signal: ttin" in log and "Handling signal: ttou" in log, log
    assert get(srv).status_code == 200


@pytest.mark.skipif(importlib.util.find_spec("watchfiles") is None, reason="needs watchfiles")
def test_reload_on_file_change(start_server, tmp_path):
    source = tmp_path / "proc_reload_app.py"
    template = (
        "def app(environ, start_response):\n"
        "    start_response('200 OK', [('Content-Length', '8')])\n"
        "    return [b'reload-{}']\n"
    )
    source.write_text(template.format(1))
    srv = start_server(
        "proc_reload_app:app", options=["--workers", "1", "--reload", "--chdir", str(tmp_path)]
    )
    assert get(srv, "/").text == "reload-1"
    time.sleep(0.5)  # let the watcher start
    source.write_text(template.format(2))
    changed = wait_for(lambda: get(srv, "/").text == "reload-2", 3, 0.1)
    assert changed, f"the edited code was not served within 3s:\n{srv.stderr()}"


def test_pid_file(start_server, tmp_path):
    pidfile = tmp_path / "qiao.pid"
    srv = start_server(APP, options=["--workers", "1", "--pid", str(pidfile)])
    assert wait_for(lambda: pidfile.exists() and pidfile.read_text().strip(), 3)
    assert int(pidfile.read_text()) == srv.proc.pid
    srv.proc.send_signal(signal.SIGTERM)
    assert wait_exit(srv, 10) == 0
    assert not pidfile.exists()


def test_no_orphans_when_supervisor_is_killed(start_server):
    srv, pids = start_workers(start_server)
    os.kill(srv.proc.pid, signal.SIGKILL)
    srv.proc.wait(5)
    assert wait_for(lambda: not any(alive(p) for p in pids), 2), (
        f"workers {[p for p in pids if alive(p)]} outlived the supervisor"
    )
    with pytest.raises(requests.ConnectionError):
        get(srv, timeout=2)


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
