"""Fixtures for the Qiao end-to-end suite.

Each server under test is a real subprocess listening on a free port (or a
unix socket), with ``tests/e2e`` as its working directory and on PYTHONPATH so
``apps``, ``fw.*`` and friends import. The server command is chosen by the
``QIAO_TEST_SERVER`` environment variable:

* ``qiao`` (default): ``python -m qiao --bind HOST:PORT ... MODULE:APP``
* ``gunicorn``: ``python -m gunicorn -b HOST:PORT -k gthread --threads 4 ...``

Tests of behaviour gunicorn does not have (or strict RFC points it gets wrong)
carry ``@pytest.mark.qiao_only`` and are skipped under gunicorn.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from rawhttp import Conn

E2E_DIR = Path(__file__).resolve().parent
SERVER_KIND = os.environ.get("QIAO_TEST_SERVER", "qiao").strip().lower() or "qiao"
if SERVER_KIND not in ("qiao", "gunicorn"):
    raise pytest.UsageError(f"QIAO_TEST_SERVER must be 'qiao' or 'gunicorn', not {SERVER_KIND!r}")
IS_GUNICORN = SERVER_KIND == "gunicorn"
RUN_ALL = os.environ.get("QIAO_TEST_RUN_ALL") == "1"  # debugging: run qiao_only tests anyway
START_TIMEOUT = 10.0

# qiao option name -> gunicorn option name, where they differ
GUNICORN_OPTIONS = {
    "--access-log": "--access-logfile",
    "--keepalive": "--keep-alive",
    "--limit-request-field-size": "--limit-request-field_size",
}


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "qiao_only: behaviour gunicorn lacks (or gets wrong); skipped under gunicorn"
    )
    config.addinivalue_line("markers", "needs_curl: uses the curl binary; skipped without it")


def pytest_collection_modifyitems(config, items):
    skip_gunicorn = pytest.mark.skip(reason="qiao_only: not a gunicorn behaviour")
    for item in items:
        if IS_GUNICORN and not RUN_ALL and item.get_closest_marker("qiao_only"):
            item.add_marker(skip_gunicorn)
        if item.get_closest_marker("timeout") is None:
            item.add_marker(pytest.mark.timeout(60))


def pytest_report_header(config):
    return f"e2e server under test: {SERVER_KIND}"


def free_port(host="127.0.0.1", family=socket.AF_INET) -> int:
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def base_command() -> list[str]:
    module = "gunicorn" if IS_GUNICORN else "qiao"
    return [sys.executable, "-m", module]


def server_command(app: str, binds: list[str], options=()) -> list[str]:
    """The command line that serves ``app`` on ``binds`` with qiao-style ``options``."""
    cmd = base_command()
    if IS_GUNICORN:
        for bind in binds:
            cmd += ["-b", bind]
        cmd += ["-k", "gthread", "--threads", "4", "--graceful-timeout", "3"]
        cmd += [GUNICORN_OPTIONS.get(opt, opt) for opt in options]
    else:
        for bind in binds:
            cmd += ["--bind", bind]
        cmd += list(options)
    cmd.append(app)
    return cmd


def server_env(extra=None) -> dict:
    env = dict(os.environ)
    # Variables gunicorn (and so Qiao) reads settings from: only a test sets them.
    for var in ("GUNICORN_CMD_ARGS", "QIAO_CMD_ARGS", "PORT", "WEB_CONCURRENCY", "NOTIFY_SOCKET"):
        env.pop(var, None)
    env.pop("FORWARDED_ALLOW_IPS", None)
    paths = [str(E2E_DIR)] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    env["PYTHONPATH"] = os.pathsep.join(paths)
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra or {})
    return env


def _parse_bind(bind: str):
    """Return (family, address) for a bind string, for the readiness check."""
    if bind.startswith("unix:"):
        return socket.AF_UNIX, bind[5:]
    if bind.startswith("["):
        host, _, port = bind[1:].partition("]:")
        return socket.AF_INET6, (host, int(port))
    host, _, port = bind.rpartition(":")
    return socket.AF_INET, (host, int(port))


class Server:
    """A server subprocess; ``start()`` returns once its first bind accepts."""

    def __init__(self, app="apps:app", binds=None, options=(), cwd=E2E_DIR, env=None, cmd=None):
        if binds is None:
            binds = [f"127.0.0.1:{free_port()}"]
        self.binds = list(binds)
        self.host, self.port = "127.0.0.1", None
        family, addr = _parse_bind(self.binds[0])
        if family != socket.AF_UNIX:
            self.host, self.port = addr
        self.cmd = cmd or server_command(app, self.binds, options)
        self.cwd = cwd
        self.env = server_env(env)
        self.proc = None
        self._log = tempfile.NamedTemporaryFile(prefix="qiao-e2e-", suffix=".stderr", delete=False)
        self._out = tempfile.NamedTemporaryFile(prefix="qiao-e2e-", suffix=".stdout", delete=False)

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def start(self, timeout=START_TIMEOUT) -> Server:
        self.proc = subprocess.Popen(
            self.cmd,
            cwd=self.cwd,
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=self._out,
            stderr=self._log,
            start_new_session=True,
        )
        family, addr = _parse_bind(self.binds[0])
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"server exited with {self.proc.returncode} before accepting "
                    f"connections\ncommand: {self.cmd}\nstderr:\n{self.stderr()}"
                )
            with socket.socket(family, socket.SOCK_STREAM) as s:
                s.settimeout(1.0)
                try:
                    s.connect(addr)
                    return self
                except OSError:
                    pass
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(
                    f"server did not accept on {self.binds[0]} within {timeout}s\n"
                    f"command: {self.cmd}\nstderr:\n{self.stderr()}"
                )
            time.sleep(0.05)

    def stderr(self) -> str:
        return Path(self._log.name).read_text(errors="replace")

    def stdout(self) -> str:
        return Path(self._out.name).read_text(errors="replace")

    def stderr_mark(self) -> int:
        return len(self.stderr())

    def stderr_since(self, mark: int, settle=0.3) -> str:
        time.sleep(settle)
        return self.stderr()[mark:]

    def connect(self, timeout=10.0) -> Conn:
        return Conn(self.host, self.port, timeout=timeout)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout=8.0):
        if self.proc is None:
            return
        if self.proc.poll() is None:
            try:
                self.proc.send_signal(signal.SIGTERM)
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(self.proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                self.proc.wait(5)
        # reap any worker the server left behind in its own process group
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass

    def cleanup(self):
        self.stop()
        for f in (self._log, self._out):
            f.close()
            try:
                os.unlink(f.name)
            except OSError:
                pass


class ServerPool:
    """Session-wide cache of running servers keyed by (app, options)."""

    def __init__(self):
        self.servers: dict = {}

    def get(self, app="apps:app", options=(), env=None) -> Server:
        key = (app, tuple(options), tuple(sorted((env or {}).items())))
        server = self.servers.get(key)
        if server is None or not server.alive():
            if server is not None:
                server.cleanup()
            server = Server(app, options=options, env=env)
            try:
                server.start()
            except BaseException:
                server.cleanup()
                raise
            self.servers[key] = server
        return server

    def close(self):
        for server in self.servers.values():
            server.cleanup()


@pytest.fixture(scope="session")
def server_pool():
    pool = ServerPool()
    yield pool
    pool.close()


def check_survived(server: Server):
    """Fail (in teardown) if ``server`` died during the test; the pool restarts it."""
    if server.proc is not None and server.proc.poll() is not None:
        tail = "\n".join(server.stderr().splitlines()[-30:])
        pytest.fail(
            f"server exited with {server.proc.returncode} during this test; stderr tail:\n{tail}",
            pytrace=False,
        )


@pytest.fixture
def pooled(server_pool):
    """pooled(app, options=()) -> a shared server, checked for survival after the test."""
    used = []

    def get(app="apps:app", options=(), env=None) -> Server:
        srv = server_pool.get(app, options, env)
        used.append(srv)
        return srv

    yield get
    for srv in used:
        check_survived(srv)


@pytest.fixture
def server(pooled) -> Server:
    """The shared server running ``apps:app`` with default options."""
    return pooled("apps:app")


@pytest.fixture
def conn(server):
    """A fresh raw connection to the shared server."""
    c = server.connect()
    yield c
    c.close()


@pytest.fixture
def start_server():
    """Factory for a dedicated server (stopped at test end): start_server(app, ...)."""
    started = []

    def start(app="apps:app", **kwargs) -> Server:
        srv = Server(app, **kwargs)
        started.append(srv)
        return srv.start()

    yield start
    for srv in started:
        srv.cleanup()
