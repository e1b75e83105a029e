"""Logging as gunicorn operators run it: the error log file, log config
files (ini, JSON, dict) naming gunicorn's loggers, syslog, --capture-output,
SIGUSR1 reopening every log file (logrotate), and gunicorn's words where
alerts are keyed on them. Each test runs under gunicorn too
(QIAO_TEST_SERVER=gunicorn) unless marked qiao_only, with the reason.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import requests
from conftest import E2E_DIR, IS_GUNICORN, free_port, server_command, server_env
from rawhttp import wait_for

APP = "log_apps:app"
PROGRAM = "gunicorn" if IS_GUNICORN else "qiao"
#: syslog: facility local3 (19) at severity info (6) and warning (4).
LOCAL3_INFO, LOCAL3_WARNING = 19 * 8 + 6, 19 * 8 + 4


def read(path: Path) -> str:
    return path.read_text(errors="replace") if path.exists() else ""


def workers_of(pid: int) -> list[int]:
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return [int(c) for c in children]


def get(srv, path: str) -> requests.Response:
    r = requests.get(srv.url + path, timeout=10)
    assert r.status_code == 200
    return r


# -- the error log ------------------------------------------------------------------


def test_error_log_file_gets_the_lifecycle_in_gunicorns_words(start_server, tmp_path):
    err = tmp_path / "error.log"
    srv = start_server(APP, options=["--error-logfile", str(err)])
    pid = srv.proc.pid
    assert wait_for(lambda: "Booting worker with pid: " in read(err)), read(err)
    assert f"Listening at: http://127.0.0.1:{srv.port} ({pid})" in read(err)
    get(srv, "/log?msg=from-the-app-7f3a")  # an app logging to gunicorn.error
    assert wait_for(lambda: "from-the-app-7f3a" in read(err)), read(err)
    srv.proc.send_signal(signal.SIGTERM)
    assert srv.proc.wait(10) == 0
    text = read(err)
    assert re.search(r"\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d [+-]\d{4}\] \[\d+\] \[INFO\] ", text), text
    assert "Handling signal: term" in text and "Shutting down: Master" in text, text
    assert "Listening at" not in srv.stderr()  # the file, not stderr


def test_unwritable_error_log_is_refused_in_one_line():
    cmd = server_command(
        APP, [f"127.0.0.1:{free_port()}"], ["--error-logfile", "/nonexistent/e.log"]
    )
    proc = subprocess.run(cmd, cwd=E2E_DIR, env=server_env(), capture_output=True, text=True)
    assert proc.returncode != 0
    assert "/nonexistent/e.log" in proc.stderr
    if not IS_GUNICORN:
        assert proc.stderr.count("\n") == 1, proc.stderr


# -- log config files -----------------------------------------------------------------

INI = """\
[loggers]
keys=root,error,access

[handlers]
keys=errorfile,accessfile

[formatters]
keys=tagged

[logger_root]
level=WARNING
handlers=

[logger_error]
level=INFO
handlers=errorfile
propagate=0
qualname=gunicorn.error

[logger_access]
level=INFO
handlers=accessfile
propagate=0
qualname=gunicorn.access

[handler_errorfile]
class=FileHandler
formatter=tagged
args=('%(here)s/ini-error.log', 'a')

[handler_accessfile]
class=FileHandler
formatter=tagged
args=('%(here)s/ini-access.log', 'a')

[formatter_tagged]
format=INI %(levelname)s %(message)s
"""


def test_log_config_ini_naming_gunicorns_loggers(start_server, tmp_path):
    ini = tmp_path / "logging.ini"
    ini.write_text(INI)
    srv = start_server(APP, options=["--log-config", str(ini)])
    err, access = tmp_path / "ini-error.log", tmp_path / "ini-access.log"
    assert wait_for(lambda: "INI INFO Listening at: " in read(err)), read(err) + srv.stderr()
    get(srv, "/log?msg=ini-app-line")
    assert wait_for(lambda: "INI WARNING ini-app-line" in read(err)), read(err)
    assert wait_for(lambda: '"GET /log?msg=ini-app-line HTTP/1.1" 200' in read(access)), read(
        access
    )


def test_log_config_json_by_either_name(start_server, tmp_path):
    config = {
        "version": 1,
        "disable_existing_loggers": True,  # must not silence the server's own loggers
        "formatters": {"j": {"format": "JSON %(levelname)s %(message)s"}},
        "handlers": {
            "e": {
                "class": "logging.FileHandler",
                "filename": str(tmp_path / "e.log"),
                "formatter": "j",
            },
            "a": {
                "class": "logging.FileHandler",
                "filename": str(tmp_path / "a.log"),
                "formatter": "j",
            },
        },
        "root": {"level": "WARNING", "handlers": []},
        "loggers": {
            "gunicorn.error": {"level": "DEBUG", "handlers": ["e"], "propagate": False},
            "gunicorn.access": {"level": "INFO", "handlers": ["a"], "propagate": False},
        },
    }
    path = tmp_path / "logging.json"
    path.write_text(json.dumps(config))
    srv = start_server(APP, options=["--log-config-json", str(path)])
    assert wait_for(lambda: "JSON INFO Listening at: " in read(tmp_path / "e.log")), srv.stderr()
    get(srv, "/log?msg=json-app-line")
    assert wait_for(lambda: "JSON WARNING json-app-line" in read(tmp_path / "e.log"))
    assert wait_for(lambda: "GET /log?msg=json-app-line" in read(tmp_path / "a.log"))


@pytest.mark.qiao_only  # reason: a library call; gunicorn has no serve(); see the -c test below
def test_logconfig_dict_through_qiao_serve_and_library_setups_kept(tmp_path):
    """``logconfig_dict`` merged over the defaults (here only ``loggers``
    and ``handlers`` are given; the default formatter is used), naming
    Qiao's logger; and a library user's own handler on qiao.error is kept
    when no log config is given."""
    port, port2 = free_port(), free_port()
    script = tmp_path / "serve_dict.py"
    script.write_text(
        textwrap.dedent(f"""
        import logging, sys, threading, qiao
        from log_apps import app
        if sys.argv[1] == "dict":
            qiao.serve(app, "127.0.0.1:{port}", logconfig_dict={{
                "handlers": {{"f": {{"class": "logging.FileHandler", "formatter": "generic",
                                   "filename": {str(tmp_path / "dict.log")!r}}}}},
                "root": {{"handlers": []}},
                "loggers": {{"qiao.error": {{"level": "INFO", "handlers": ["f"],
                                            "propagate": False}}}},
            }})
        else:
            mine = logging.FileHandler({str(tmp_path / "mine.log")!r})
            mine.setFormatter(logging.Formatter("MINE %(message)s"))
            logging.getLogger("qiao.error").addHandler(mine)
            qiao.serve(app, "127.0.0.1:{port2}")
        """)
    )
    procs = [
        subprocess.Popen(
            [sys.executable, str(script), kind],
            cwd=E2E_DIR,
            env=server_env(),
            stderr=subprocess.PIPE,
        )
        for kind in ("dict", "mine")
    ]
    try:
        dict_log, mine = tmp_path / "dict.log", tmp_path / "mine.log"
        assert wait_for(lambda: f"Listening at: http://127.0.0.1:{port}" in read(dict_log))
        assert re.match(r"\[\d{4}-\d\d-\d\d [\d:]+ [+-]\d{4}\] \[\d+\] \[INFO\] ", read(dict_log))
        assert wait_for(lambda: f"MINE Listening at: http://127.0.0.1:{port2}" in read(mine))
    finally:
        for p in procs:
            p.send_signal(signal.SIGTERM)
            p.wait(10)


@pytest.mark.qiao_only  # reason: gunicorn prints a traceback; Qiao's expected failures are one line
@pytest.mark.parametrize("kind", ["ini", "json"])
def test_bad_log_config_is_one_line(tmp_path, kind):
    path = tmp_path / f"bad.{kind}"
    path.write_text("[loggers]\nkeys=nope\n" if kind == "ini" else '{"version": 1, "handlers": 3}')
    flag = "--log-config" if kind == "ini" else "--log-config-json"
    cmd = server_command(APP, [f"127.0.0.1:{free_port()}"], [flag, str(path)])
    proc = subprocess.run(cmd, cwd=E2E_DIR, env=server_env(), capture_output=True, text=True)
    assert proc.returncode == 1 and str(path) in proc.stderr, proc.stderr
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr, proc.stderr


# -- syslog ------------------------------------------------------------------------------


@pytest.fixture
def syslog_udp():
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(10)
    yield sock
    sock.close()


def receive_until(sock, needle: str) -> list[str]:
    """The datagrams received up to the first one containing ``needle``."""
    got = []
    while True:
        try:
            got.append(sock.recv(65536).decode(errors="replace"))
        except TimeoutError:
            pytest.fail(f"no syslog datagram with {needle!r}; got:\n" + "\n".join(got))
        if needle in got[-1]:
            return got


@pytest.mark.parametrize("access", [True, False], ids=["with-access", "without-access"])
def test_syslog_over_udp(start_server, syslog_udp, access):
    port = syslog_udp.getsockname()[1]
    options = ["--log-syslog", "--log-syslog-to", f"udp://127.0.0.1:{port}"]
    options += ["--log-syslog-prefix", "shop", "--log-syslog-facility", "local3"]
    if not access:
        options.append("--disable-redirect-access-to-syslog")
    srv = start_server(APP, options=options)
    pid = srv.proc.pid
    got = receive_until(syslog_udp, "Listening at: ")
    assert got[-1].startswith(f"<{LOCAL3_INFO}>{PROGRAM}.shop.error: [{pid}] Listening at: "), got
    get(srv, "/log?msg=syslog-app-line")
    got = receive_until(syslog_udp, "syslog-app-line")
    assert re.match(rf"<{LOCAL3_WARNING}>{PROGRAM}\.shop\.error: \[\d+\] ", got[-1]), got
    srv.proc.send_signal(signal.SIGTERM)
    got = receive_until(syslog_udp, "Shutting down: Master")  # after the workers flushed
    lines = [g for g in got if ".shop.access: " in g]
    if access:
        assert any('"GET /log?msg=syslog-app-line HTTP/1.1" 200' in g for g in lines), got
        assert lines[0].startswith(f"<{LOCAL3_INFO}>{PROGRAM}.shop.access: ["), lines
    else:
        assert not lines, lines
    assert srv.proc.wait(10) == 0


# -- --capture-output --------------------------------------------------------------------


@pytest.mark.parametrize("capture", [True, False], ids=["capture", "no-capture"])
def test_capture_output_sends_workers_fds_to_the_error_log(start_server, tmp_path, capture):
    err = tmp_path / "error.log"
    options = ["--error-logfile", str(err)] + (["--capture-output"] if capture else [])
    srv = start_server(APP, options=options)
    get(srv, "/print?msg=captured-9d1")
    get(srv, "/log?msg=logged-after-print-9d1")  # the same worker thread: printed before
    assert wait_for(lambda: "logged-after-print-9d1" in read(err)), read(err)
    text = read(err)
    for line in ("print captured-9d1", "fd1 captured-9d1", "fd2 captured-9d1"):
        assert (line in text) == capture, text
    if not capture:
        assert "fd1 captured-9d1" in srv.stdout() and "fd2 captured-9d1" in srv.stderr()


# -- SIGUSR1: logrotate --------------------------------------------------------------------


def test_usr1_reopens_every_log_file_in_supervisor_and_workers(start_server, tmp_path):
    err, access = tmp_path / "error.log", tmp_path / "access.log"
    options = ["--workers", "2", "--error-logfile", str(err), "--access-log", str(access)]
    srv = start_server(APP, options=options + ["--capture-output"], env={"LOG_TICK": "1"})
    pid = srv.proc.pid
    assert wait_for(lambda: len(workers_of(pid)) == 2 and "tick" in read(err)), read(err)
    workers = workers_of(pid)
    get(srv, "/pid")
    assert wait_for(lambda: "GET /pid" in read(access)), read(access)
    err.rename(tmp_path / "error.log.1")  # what logrotate does before signalling
    access.rename(tmp_path / "access.log.1")
    os.kill(pid, signal.SIGUSR1)
    # The supervisor logs the signal, then reopens (as gunicorn): that line
    # is the last one in the old file.
    assert wait_for(lambda: "Handling signal: usr1" in read(tmp_path / "error.log.1"))

    def every_worker_writes_the_new_file() -> bool:
        text = read(err)
        return all(
            f"{kind} tick pid={w} " in text for w in workers for kind in ("log", "print", "fd2")
        )

    assert wait_for(every_worker_writes_the_new_file, 10), read(err)
    get(srv, "/pid?after-rotation")
    assert wait_for(lambda: "GET /pid?after-rotation" in read(access)), read(access)
    assert "after-rotation" not in read(tmp_path / "access.log.1")
    assert srv.alive() and sorted(workers_of(pid)) == sorted(workers)  # USR1 killed nobody
    srv.proc.send_signal(signal.SIGTERM)
    assert srv.proc.wait(10) == 0
    assert "Shutting down: Master" in read(err)  # the supervisor writes the new file too


# -- gunicorn's words for failures -----------------------------------------------------------


def test_worker_timeout_is_gunicorns_critical_line(start_server):
    options = ["-k", "sync", "--threads", "1", "--timeout", "1"]
    srv = start_server(APP, options=options)
    # Qiao kills the worker (the connection drops); gunicorn's sync worker
    # may still answer as it exits.
    with contextlib.suppress(requests.RequestException):
        requests.get(srv.url + "/sleep?s=30", timeout=20)
    match = wait_for(lambda: re.search(r"\[CRITICAL\] WORKER TIMEOUT \(pid:(\d+)\)", srv.stderr()))
    assert match, srv.stderr()
    if not IS_GUNICORN:  # Qiao names the request too
        detail = rf"Worker \(pid:{match.group(1)}\) timed out after [\d.]+s in request: GET /sleep"
        assert re.search(detail, srv.stderr()), srv.stderr()


@pytest.mark.parametrize(
    "app,status,reason",
    [
        ("no_such_module_5e1b:app", 3, "Worker failed to boot."),
        ("log_apps:no_such_callable", 4, "App failed to load."),
    ],
    ids=["import-fails", "no-such-app"],
)
def test_boot_failure_exit_status_and_reason(app, status, reason):
    cmd = server_command(app, [f"127.0.0.1:{free_port()}"])
    proc = subprocess.run(cmd, cwd=E2E_DIR, env=server_env(), capture_output=True, text=True)
    assert proc.returncode == status, proc.stderr
    assert re.search(
        r"\[ERROR\] Shutting down: Master\n.*\[ERROR\] Reason: " + re.escape(reason), proc.stderr
    ), proc.stderr
    assert app.partition(":")[0 if status == 3 else 2] in proc.stderr


# -- the daemon's stdio (-R) ----------------------------------------------------------------


@pytest.mark.qiao_only  # reason: unit of Qiao's API for --daemon (gunicorn's daemonize)
@pytest.mark.parametrize("mode", ["null", "inherit", "capture"])
def test_redirect_stdio_for_the_daemon(tmp_path, mode):
    err = tmp_path / "error.log"
    opts = {
        "error_log": str(err) if mode == "capture" else "-",
        "capture_output": mode == "capture",
    }
    opts["enable_stdio_inheritance"] = mode == "inherit"
    code = (
        "import os, sys; from qiao import _log; "
        f"_log.redirect_stdio({opts!r}); print('out-line', flush=True); os.write(2, b'err-line\\n')"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], env=server_env(), capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr
    seen = proc.stdout + proc.stderr
    assert ("out-line" in seen and "err-line" in seen) == (mode == "inherit"), seen
    assert ("out-line\nerr-line" in read(err)) == (mode == "capture")
