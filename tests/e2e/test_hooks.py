"""gunicorn's server hooks, from a gunicorn config file (``-c hooks_conf.py``):
their order, their arguments' attributes, a hook that raises, and the
``worker_abort`` of a ``--timeout`` with the stuck thread's stack logged.

Every hook of hooks_conf.py appends a JSON line to $HOOKS_LOG; the tests
wait for the lines they expect (polling the file, with a deadline) and
check them. Where the behaviour is gunicorn's, the same test passes under
``QIAO_TEST_SERVER=gunicorn``.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import urllib.error
import urllib.request

import pytest
from conftest import IS_GUNICORN, Server

CONF = "hooks_conf.py"
APP = "hooks_apps:app"
RAISED = "hook-raised-marker-5e1f"
#: How long a test waits for the hook lines it expects.
WAIT_SECONDS = 15.0
EXIT_SECONDS = 15.0


class Hooks:
    """The lines hooks_conf.py wrote."""

    def __init__(self, path):
        self.path = path

    def all(self) -> list[dict]:
        try:
            with open(self.path) as f:
                return [json.loads(line) for line in f if line.endswith("\n")]
        except FileNotFoundError:
            return []

    def named(self, hook: str) -> list[dict]:
        return [e for e in self.all() if e["hook"] == hook]

    def wait(self, hook: str, count: int = 1, **match) -> list[dict]:
        """The lines of ``hook`` (with these fields), once there are ``count``."""
        deadline = time.monotonic() + WAIT_SECONDS
        while True:
            found = [e for e in self.named(hook) if all(e.get(k) == v for k, v in match.items())]
            if len(found) >= count:
                return found
            if time.monotonic() > deadline:
                names = [e["hook"] for e in self.all()]
                raise AssertionError(f"no {count} x {hook} {match} in {names}")
            time.sleep(0.05)


@pytest.fixture
def hooked(tmp_path):
    """start(options, env) -> (Server, Hooks), a server with hooks_conf.py."""
    started = []

    def start(options=(), env=None, expect_start=True):
        log = tmp_path / f"hooks{len(started)}.log"
        server = Server(
            APP, options=["-c", CONF, *options], env={"HOOKS_LOG": str(log), **(env or {})}
        )
        started.append(server)
        if expect_start:
            server.start()
        return server, Hooks(log)

    yield start
    for server in started:
        server.cleanup()


def get(server: Server, path: str, headers=None) -> tuple[int, bytes]:
    request = urllib.request.Request(server.url + path, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def wait_log(server: Server, *texts: str) -> str:
    """The server's stderr, once it holds every one of ``texts``."""
    deadline = time.monotonic() + WAIT_SECONDS
    while True:
        log = server.stderr()
        if all(t in log for t in texts):
            return log
        if time.monotonic() > deadline:
            raise AssertionError(f"not all of {texts} in the log:\n{log}")
        time.sleep(0.05)


def stop(server: Server, sig=signal.SIGTERM) -> int:
    server.proc.send_signal(sig)
    return server.proc.wait(EXIT_SECONDS)


def test_lifecycle_order_and_arguments(hooked):
    server, hooks = hooked(["-w", "2"])
    booted = hooks.wait("post_worker_init", 2)
    status, body = get(server, "/hello?a=1", {"X-Hook-Test": "yes"})
    assert (status, body) == (200, b"hello world")
    hooks.wait("post_request")
    stop(server)
    events = hooks.all()
    order = [e["hook"] for e in events]
    master = server.proc.pid

    # Supervisor: gunicorn's order, from start to exit.
    assert order[:3] == ["nworkers_changed", "on_starting", "when_ready"]
    assert order[-1] == "on_exit"
    first = events[0]
    assert (first["new"], first["old"]) == (2, None)
    for e in events[1:3] + events[-1:]:
        assert e["in_pid"] == e["server_pid"] == master
        assert (e["num_workers"], e["cfg_workers"], e["settings_workers"]) == (2, 2, 2)
        assert e["app_cfg_workers"] == 2
        assert e["cfg_bind"] == server.binds
        assert e["cfg_accesslog"] is None
        assert e["worker_class"] == "gthread"
    assert events[1]["workers"] == [] and events[2]["workers"] == []

    # Each worker: pre_fork (supervisor) < post_fork (child) < post_worker_init.
    forks = hooks.named("pre_fork")
    assert [e["age"] for e in forks] == [1, 2]
    pids = sorted(e["in_pid"] for e in booted)
    for pre in forks:
        assert pre["in_pid"] == master and pre["ppid"] == master and not pre["booted"]
    for pid in pids:
        post = hooks.wait("post_fork", in_pid=pid)[0]
        init = hooks.wait("post_worker_init", in_pid=pid)[0]
        assert post["worker_pid"] == pid and post["ppid"] == master
        assert order.index("pre_fork") < events.index(post) < events.index(init)
        assert post["server"]["server_pid"] == master
        assert init["has_log"] and init["alive"] and init["cfg_workers"] == 2

    # The request, in one of the workers.
    (pre,) = hooks.named("pre_request")
    (post,) = hooks.named("post_request")
    assert pre["in_pid"] == post["in_pid"] == pre["worker_pid"] and pre["in_pid"] in pids
    assert pre["booted"] and pre["alive"]
    assert (pre["method"], pre["path"], pre["uri"], pre["query"]) == (
        "GET",
        "/hello",
        "/hello?a=1",
        "a=1",
    )
    assert pre["version"] == [1, 1] and pre["scheme"] == "http"
    assert ["X-HOOK-TEST", "yes"] in pre["headers"]
    assert pre["remote_addr"][0] == "127.0.0.1"
    assert (post["status"], post["status_code"], post["sent"]) == ("200 OK", 200, 11)
    assert ["X-Test", "hello"] in post["headers"]
    assert post["environ_path"] == "/hello" and post["nr"] >= 1
    assert order.index("pre_request") < order.index("post_request")

    # Exit: worker_exit in each worker, then child_exit in the supervisor.
    exits = {e["in_pid"]: e for e in hooks.named("worker_exit")}
    assert sorted(exits) == pids
    children = hooks.named("child_exit")
    assert sorted(e["worker_pid"] for e in children) == pids
    for e in children:
        assert e["in_pid"] == master
        assert events.index(exits[e["worker_pid"]]) < events.index(e) < order.index("on_exit")


def test_signals_hup_ttin_int(hooked):
    server, hooks = hooked(["-w", "1"])
    master = server.proc.pid
    first = hooks.wait("post_worker_init")[0]["in_pid"]
    server.proc.send_signal(signal.SIGHUP)
    assert hooks.wait("on_reload")[0]["in_pid"] == master
    hooks.wait("post_worker_init", 2)
    hooks.wait("child_exit", worker_pid=first)  # the old worker, retired
    server.proc.send_signal(signal.SIGTTIN)
    change = hooks.wait("nworkers_changed", new=2)[0]
    assert change["old"] == 1 and change["in_pid"] == master
    workers = hooks.wait("post_worker_init", 3)
    assert [e["age"] for e in workers] == [1, 2, 3]
    live = {e["in_pid"] for e in workers} - {first}
    assert stop(server, signal.SIGINT) == 0
    ints = hooks.named("worker_int")
    assert {e["in_pid"] for e in ints} == live
    assert all(not e["alive"] for e in ints)
    assert {e["in_pid"] for e in hooks.named("worker_exit")} == live | {first}


def test_post_request_after_a_file_wrapper(hooked, tmp_path):
    data = os.urandom(200_000)
    path = tmp_path / "blob"
    path.write_bytes(data)
    server, hooks = hooked(["-w", "1"])
    status, body = get(server, "/file?path=" + str(path))
    assert (status, body) == (200, data)
    (post,) = hooks.wait("post_request")
    assert (post["status_code"], post["path"]) == (200, "/file")
    if not IS_GUNICORN:  # gunicorn's sendfile path leaves resp.sent at 0
        assert post["sent"] == len(data)


@pytest.mark.parametrize(
    "hook",
    [
        "post_request",
        pytest.param(
            "child_exit",
            marks=pytest.mark.qiao_only(reason="a raising child_exit stops gunicorn's arbiter"),
        ),
    ],
)
def test_a_hook_that_raises_is_logged_and_serving_goes_on(hooked, hook):
    server, hooks = hooked(["-w", "1"], env={"HOOKS_RAISE": hook})
    pid = hooks.wait("post_worker_init")[0]["in_pid"]
    if hook == "child_exit":
        os.kill(pid, signal.SIGKILL)
        hooks.wait("child_exit")
        hooks.wait("post_worker_init", 2)
    for _ in range(2):
        assert get(server, "/hello") == (200, b"hello world")
    assert server.alive()
    wait_log(server, f"Exception in {hook} hook", RAISED)


def test_a_raising_pre_request_fails_that_request_only(hooked):
    server, hooks = hooked(["-w", "1"], env={"HOOKS_RAISE": "pre_request"})
    assert get(server, "/hello")[0] == 500
    assert get(server, "/hello")[0] == 500
    assert server.alive()
    wait_log(server, RAISED)


@pytest.mark.parametrize("hook", ["on_starting", "when_ready", "post_fork", "post_worker_init"])
def test_a_raising_boot_hook_stops_the_server(hooked, hook):
    server, hooks = hooked(["-w", "1"], env={"HOOKS_RAISE": hook}, expect_start=False)
    server.proc = subprocess.Popen(
        server.cmd,
        cwd=server.cwd,
        env=server.env,
        stdin=subprocess.DEVNULL,
        stdout=server._out,
        stderr=server._log,
        start_new_session=True,
    )
    assert server.proc.wait(EXIT_SECONDS) != 0
    assert hooks.named(hook) and RAISED in server.stderr()
    assert not hooks.named("pre_request")


@pytest.mark.qiao_only(
    reason="gunicorn's gthread worker beats from its main thread: "
    "a request stuck in the app never times out"
)
def test_timeout_aborts_the_worker_with_the_stuck_stack(hooked):
    server, hooks = hooked(["-w", "1", "--timeout", "1"])
    pid = hooks.wait("post_worker_init")[0]["in_pid"]
    with pytest.raises(OSError):  # the connection is cut when the worker exits
        get(server, "/stuck")
    abort = hooks.wait("worker_abort")[0]
    assert abort["in_pid"] == pid and not abort["alive"]
    hooks.wait("worker_exit", in_pid=pid)
    hooks.wait("child_exit", worker_pid=pid)
    hooks.wait("post_worker_init", 2)
    assert get(server, "/hello") == (200, b"hello world")
    wait_log(
        server,
        f"Worker (pid:{pid}) aborted",
        "in stuck_in_request_marker",
        "time.sleep(STUCK_SECONDS)",
        f"Worker (pid:{pid}) exited with code 1",
    )


@pytest.mark.qiao_only(reason="gunicorn's gthread worker never times out a stuck request")
def test_a_retiring_worker_still_there_after_its_graceful_timeout_is_killed(hooked):
    # worker_abort never returns: the worker cannot retire by itself.
    options = ["-w", "1", "--timeout", "1", "--graceful-timeout", "2"]
    server, hooks = hooked(options, env={"HOOKS_ABORT_HANG": "1"})
    pid = hooks.wait("post_worker_init")[0]["in_pid"]
    with pytest.raises(OSError):
        get(server, "/stuck")
    hooks.wait("worker_abort")
    hooks.wait("child_exit", worker_pid=pid)
    wait_log(server, f"Worker (pid:{pid}) was killed by signal SIGKILL")
    assert not hooks.named("worker_exit")
