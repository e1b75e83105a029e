"""The command line and the ``qiao.serve`` Python API.

``qiao [options] MODULE[:CALLABLE]`` (run here as ``python -m qiao``): help and
version, clean one-line errors for bad options and bad apps, app lookup rules,
factories, every kind of ``--bind``, ``--chdir``, ``--access-log``, workers and
threads, keep-alive timeout, and shutdown on SIGTERM/SIGINT.
"""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import threading
import time

import pytest
import requests
from conftest import E2E_DIR, IS_GUNICORN, Server, base_command, free_port, server_env
from rawhttp import Conn, wait_for


def run_cli(*args, timeout=30, cwd=E2E_DIR):
    return subprocess.run(
        base_command() + list(args),
        cwd=cwd,
        env=server_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


#: The supervisor's last words when no worker could load the application
#: (gunicorn's, which alerts are keyed on): not the error itself.
BOOT_FAILURE_LINES = ("] Shutting down: Master", "] Reason: ")


def error_lines(proc) -> list[str]:
    return [
        line
        for line in proc.stderr.splitlines()
        if line.strip() and not any(mark in line for mark in BOOT_FAILURE_LINES)
    ]


def assert_one_line_error(proc, *needles):
    """Non-zero exit; with qiao exactly one line on stderr, no traceback."""
    assert proc.returncode != 0
    text = proc.stderr
    for needle in needles:
        assert needle in text, f"{needle!r} not in stderr:\n{text}"
    if not IS_GUNICORN:
        assert "Traceback" not in text
        assert len(error_lines(proc)) == 1, f"expected one line on stderr:\n{text}"


def get(url, path="/hello"):
    return requests.get(url + path, timeout=10)


def test_version():
    proc = run_cli("--version")
    assert proc.returncode == 0
    out = proc.stdout + proc.stderr
    assert any(ch.isdigit() for ch in out)
    if not IS_GUNICORN:
        assert "qiao" in out.lower()


def test_help():
    proc = run_cli("--help")
    assert proc.returncode == 0
    for option in ("--bind", "--workers", "--threads", "--chdir", "--backlog"):
        assert option in proc.stdout


def test_bad_option():
    proc = run_cli("--no-such-option", "apps:app")
    assert_one_line_error(proc, "--no-such-option")


def test_bad_option_value():
    proc = run_cli("--workers", "many", "apps:app")
    assert proc.returncode != 0
    assert "many" in proc.stderr or "workers" in proc.stderr


def test_unimportable_module():
    proc = run_cli("--bind", f"127.0.0.1:{free_port()}", "no_such_module_4d2e:app")
    assert_one_line_error(proc, "no_such_module_4d2e")


def test_missing_callable():
    proc = run_cli("--bind", f"127.0.0.1:{free_port()}", "apps:no_such_callable")
    assert_one_line_error(proc, "no_such_callable")


@pytest.mark.qiao_only
def test_module_import_error_inside_app_is_reported():
    with tempfile.TemporaryDirectory() as d:
        write_module(d, "broken_e2e_mod", "import no_such_dependency_77\n")
        proc = run_cli("--bind", f"127.0.0.1:{free_port()}", "--chdir", d, "broken_e2e_mod")
    assert proc.returncode != 0
    assert "no_such_dependency_77" in proc.stderr


def test_listening_line(start_server):
    srv = start_server("apps:app")
    # The supervisor logs once its first worker serves (the kernel accepts
    # connections into the listen queue before that).
    line = f"Listening at: http://127.0.0.1:{srv.port}"
    assert wait_for(lambda: line in srv.stderr(), timeout=5), srv.stderr()


@pytest.fixture
def mod_dir():
    d = tempfile.mkdtemp(prefix="qiao-cli-")
    yield d
    shutil.rmtree(d, ignore_errors=True)


def write_module(directory, name, body):
    with open(f"{directory}/{name}.py", "w") as f:
        f.write(textwrap.dedent(body))


HELLO = """
def {name}(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"{text}"]
"""


def test_module_alone_finds_application(start_server, mod_dir):
    write_module(mod_dir, "e2e_only_application", HELLO.format(name="application", text="appl"))
    srv = start_server("e2e_only_application", options=("--chdir", mod_dir))
    assert get(srv.url, "/").text == "appl"


@pytest.mark.qiao_only  # gunicorn only looks for "application"
def test_module_alone_finds_app(start_server, mod_dir):
    write_module(mod_dir, "e2e_only_app", HELLO.format(name="app", text="app!"))
    srv = start_server("e2e_only_app", options=("--chdir", mod_dir))
    assert get(srv.url, "/").text == "app!"


@pytest.mark.qiao_only
def test_module_alone_prefers_application(start_server, mod_dir):
    write_module(
        mod_dir,
        "e2e_both",
        HELLO.format(name="application", text="first") + HELLO.format(name="app", text="second"),
    )
    srv = start_server("e2e_both", options=("--chdir", mod_dir))
    assert get(srv.url, "/").text == "first"


def test_explicit_callable(start_server):
    srv = start_server("apps:validated")
    assert get(srv.url).text == "hello world"


def test_factory_call(start_server):
    srv = start_server("apps:create_app()")
    assert get(srv.url).text == "hello world"


def test_chdir(start_server, mod_dir):
    write_module(mod_dir, "e2e_chdir_mod", HELLO.format(name="app", text="from chdir"))
    srv = start_server("e2e_chdir_mod:app", options=("--chdir", mod_dir), cwd="/")
    assert get(srv.url, "/").text == "from chdir"


def test_bind_unix_socket(start_server, mod_dir):
    path = f"{mod_dir}/qiao.sock"
    start_server("apps:app", binds=[f"unix:{path}"])
    with Conn(unix_path=path) as c:
        resp = c.request("GET", "/hello")
        assert resp.status == 200 and resp.body == b"hello world"
        assert c.request("POST", "/echo", body=b"over unix").body == b"over unix"


def _has_ipv6() -> bool:
    if not socket.has_ipv6:
        return False
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


@pytest.mark.skipif(not _has_ipv6(), reason="no IPv6 loopback")
def test_bind_ipv6(start_server):
    port = free_port("::1", socket.AF_INET6)
    start_server("apps:app", binds=[f"[::1]:{port}"])
    with Conn("::1", port) as c:
        resp = c.request("GET", "/environ")
        assert resp.status == 200
        assert b'"REMOTE_ADDR": "::1"' in resp.body


def test_two_binds(start_server, mod_dir):
    p1, p2 = free_port(), free_port()
    path = f"{mod_dir}/two.sock"
    start_server("apps:app", binds=[f"127.0.0.1:{p1}", f"127.0.0.1:{p2}", f"unix:{path}"])
    for port in (p1, p2):
        assert get(f"http://127.0.0.1:{port}").text == "hello world"
    with Conn(unix_path=path) as c:
        assert c.request("GET", "/hello").status == 200


def test_access_log_stdout(start_server):
    srv = start_server("apps:app", options=("--access-log", "-"))
    for i in range(3):
        assert get(srv.url, f"/hello?access={i}").status_code == 200

    def logged():
        log = srv.stdout() + srv.stderr()
        return all(f"/hello?access={i}" in log for i in range(3)) and log

    log = wait_for(logged) or srv.stdout() + srv.stderr()
    for i in range(3):
        lines = [line for line in log.splitlines() if f"/hello?access={i}" in line]
        assert len(lines) == 1, log
        assert "200" in lines[0]


def test_workers_and_threads(start_server):
    """Four requests meet inside the app at once (a barrier): one worker's
    four threads serve them together."""
    srv = start_server("threads_app:app", options=("--workers", "2", "--threads", "4"))
    with Conn(srv.host, srv.port) as c:
        pid = c.request("GET", "/pid").body
    results = []

    def hit(c):
        results.append(c.request("GET", "/gather?n=4&key=workers-and-threads&t=10").body)

    # Keep-alive connections all accepted by the worker that answered `pid`.
    conns = []
    while len(conns) < 4:
        c = Conn(srv.host, srv.port)
        if c.request("GET", "/pid").body == pid:
            conns.append(c)
        else:
            c.close()
    threads = [threading.Thread(target=hit, args=(c,)) for c in conns]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    for c in conns:
        c.close()
    assert results == [b"all"] * 4, "requests were not served concurrently"


def test_options_accepted(start_server):
    srv = start_server(
        "apps:app",
        options=(
            "--backlog",
            "64",
            "--log-level",
            "debug",
            "--limit-request-line",
            "8190",
            "--limit-request-fields",
            "50",
        ),
    )
    assert get(srv.url).text == "hello world"


def test_keepalive_timeout_closes_idle_connection(start_server):
    srv = start_server("apps:app", options=("--keepalive", "1"))
    with srv.connect() as c:
        assert c.request("GET", "/hello").status == 200
        assert c.is_closed(timeout=6), "idle connection not closed after the keep-alive timeout"


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["TERM", "INT"])
def test_shutdown_on_signal(start_server, sig):
    srv = start_server("apps:app")
    assert get(srv.url).status_code == 200
    srv.proc.send_signal(sig)
    try:
        srv.proc.wait(10)
    except subprocess.TimeoutExpired:
        pytest.fail(f"server still running 10 s after {sig.name}")


@pytest.mark.qiao_only
def test_console_script(start_server):
    exe = shutil.which("qiao")
    if exe is None:
        pytest.skip("qiao console script not on PATH")
    port = free_port()
    srv = start_server(
        cmd=[exe, "--bind", f"127.0.0.1:{port}", "apps:app"], binds=[f"127.0.0.1:{port}"]
    )
    assert get(srv.url).text == "hello world"
    assert srv.alive()


@pytest.mark.qiao_only
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["TERM", "INT"])
def test_serve_api_from_script(mod_dir, sig):
    port = free_port()
    write_module(
        mod_dir,
        "serve_script",
        f"""
        import qiao
        import apps
        qiao.serve(apps.app, bind="127.0.0.1:{port}", threads=2)
        print("serve returned", flush=True)
    """,
    )
    srv = Server(cmd=[sys.executable, f"{mod_dir}/serve_script.py"], binds=[f"127.0.0.1:{port}"])
    try:
        srv.start()
        assert get(srv.url).text == "hello world"
        assert requests.post(srv.url + "/echo", data=b"api", timeout=10).content == b"api"
        srv.proc.send_signal(sig)
        srv.proc.wait(10)
        assert "serve returned" in srv.stdout()
    finally:
        srv.cleanup()


@pytest.mark.qiao_only
def test_logs_go_through_python_logging(mod_dir):
    """Lifecycle messages use logger ``qiao.error``, access lines ``qiao.access``."""
    port, logfile = free_port(), f"{mod_dir}/records.log"
    write_module(
        mod_dir,
        "log_script",
        f"""
        import logging
        import qiao
        import apps
        handler = logging.FileHandler({logfile!r})
        handler.setFormatter(logging.Formatter("%(name)s|%(message)s"))
        for name in ("qiao.error", "qiao.access"):
            logging.getLogger(name).addHandler(handler)
        qiao.serve(apps.app, bind="127.0.0.1:{port}", access_log="-")
    """,
    )
    srv = Server(cmd=[sys.executable, f"{mod_dir}/log_script.py"], binds=[f"127.0.0.1:{port}"])
    try:
        srv.start()
        assert get(srv.url, "/hello?logged=1").status_code == 200
        time.sleep(0.5)
    finally:
        srv.cleanup()
    with open(logfile) as f:
        records = f.read().splitlines()
    listening = f"qiao.error|Listening at: http://127.0.0.1:{port}"
    assert any(r.startswith(listening) for r in records), records
    assert any(r.startswith("qiao.access|") and "/hello?logged=1" in r for r in records)
