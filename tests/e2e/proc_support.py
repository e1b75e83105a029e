"""Helpers of the process-model tests (``test_process_workers.py``,
``test_process_supervisor.py``): the app they serve, the workers of a
supervisor (its live children in ``/proc/<pid>/task/<pid>/children``) and
those that answer (the ``/pid`` endpoint of ``proc_apps``), requests, waits
for a log line or the exit, and a client load in a thread."""

from __future__ import annotations

import re
import subprocess
import threading
import time
from pathlib import Path

import pytest
import requests
from rawhttp import wait_for

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
