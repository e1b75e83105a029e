"""The gunicorn drop-in, for worker classes: they mean what they mean in
gunicorn (``sync`` serves one request at a time, ``gthread`` up to
``--threads``, ``gevent`` under an app that monkey-patches), without one
Qiao's own pool serves, and an ASGI worker class ends the start with one
line.

Tests of behaviour gunicorn has run against it too
(``QIAO_TEST_SERVER=gunicorn``), so the test itself is checked.
"""

from __future__ import annotations

import threading
import urllib.request

import pytest
from conftest import IS_GUNICORN, free_port
from gunicorn_config_support import get_json, run, serve

qiao_only = pytest.mark.qiao_only


# -- worker classes ------------------------------------------------------------------


def _meet(port: int) -> list[bool]:
    """Two requests at once to /meet: whether each met the other."""
    results = [None, None]

    def one(i):
        results[i] = get_json(port, "/meet")["met"]

    threads = [threading.Thread(target=one, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    return results


@pytest.mark.parametrize(
    "options, together",
    [(["-k", "sync"], False), (["-k", "gthread", "--threads", "2"], True)],
)
def test_worker_class_concurrency(options, together):
    """sync: one request at a time per worker (apps deployed on it may not
    be thread-safe); gthread: up to --threads at once."""
    port = free_port()
    srv = serve(["-b", f"127.0.0.1:{port}", "-w", "1", *options, "gunicorn_apps:app"], port)
    try:
        assert _meet(port) == [together, together]
    finally:
        srv.cleanup()


@qiao_only
def test_no_worker_class_is_qiaos_pool():
    port = free_port()
    srv = serve(["-b", f"127.0.0.1:{port}", "gunicorn_apps:app"], port)
    try:
        assert _meet(port) == [True, True]
    finally:
        srv.cleanup()


@qiao_only
@pytest.mark.parametrize(
    "name",
    ["uvicorn.workers.UvicornWorker", "uvicorn_worker.UvicornWorker", "asgi"],
)
def test_asgi_worker_class_ends_with_one_line(name):
    proc = run("-k", name, "gunicorn_apps:app")
    assert proc.returncode != 0
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Qiao serves WSGI applications only" in lines[0], proc.stderr


@pytest.mark.parametrize("preload", [False, True])
def test_gevent_worker_class_with_a_monkey_patching_app(preload):
    """The app patches threading at import: Qiao's own threads (access log
    writer, log reopener) must still be threads, not greenlets."""
    pytest.importorskip("gevent")
    port = free_port()
    args = ["-b", f"127.0.0.1:{port}", "-k", "gevent", "-w", "2", "--access-logfile", "-"]
    srv = serve([*args, *(["--preload"] if preload else []), "gevent_app:app"], port)
    try:
        bodies = []

        def one():
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=10) as r:
                bodies.append(r.read())

        threads = [threading.Thread(target=one) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        assert len(bodies) == 8 and all(b.startswith(b"ping ") for b in bodies), bodies
        if not IS_GUNICORN:
            assert "Worker class gevent: served by Qiao's thread pool" in srv.stderr()
    finally:
        srv.cleanup()
