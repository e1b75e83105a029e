"""The pre-fork process model: a supervisor binds the sockets and keeps
``--workers N`` processes serving them (gunicorn's arbiter is the model),
for the supervisor: its signals (HUP, TERM, INT, QUIT, TTIN, TTOU),
``--reload``, ``--pid``, and no orphans when it is killed.
Worker pids come from the ``/pid`` endpoint of ``proc_apps`` and
``/proc/<pid>/task/<pid>/children`` (``proc_support``).
"""

from __future__ import annotations

import importlib.util
import os
import signal
import time

import pytest
import requests
from proc_support import (
    APP,
    Load,
    alive,
    get,
    in_background,
    start_workers,
    wait_exit,
    workers,
)
from rawhttp import wait_for

pytestmark = pytest.mark.qiao_only


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
