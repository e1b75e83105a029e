"""The gunicorn drop-in, for settings from files and the environment:
gunicorn's Python config files (``-c FILE.py``, ``-c python:module``,
``./gunicorn.conf.py``), ``GUNICORN_CMD_ARGS``, ``PORT``, ``WEB_CONCURRENCY``
and ``FORWARDED_ALLOW_IPS`` are read with gunicorn's precedence, and
``--check-config`` checks what they give.

Tests of behaviour gunicorn has run against it too
(``QIAO_TEST_SERVER=gunicorn``), so the test itself is checked.
"""

from __future__ import annotations

import json
import os
import urllib.request

import pytest
from conftest import IS_GUNICORN, free_port, server_env
from gunicorn_config_support import conf, get_json, run, serve, workers_of

qiao_only = pytest.mark.qiao_only


# -- Python config files ------------------------------------------------------------


@qiao_only
def test_python_config_values_and_sources(tmp_path):
    path = conf(
        tmp_path,
        """
        import multiprocessing
        import ssl

        bind = ["127.0.0.1:9001", "unix:/tmp/qiao-x.sock"]
        workers = multiprocessing.cpu_count() * 2 + 1
        worker_class = "gthread"
        threads = 4
        timeout = 120
        keepalive = 0
        accesslog = "-"
        errorlog = "-"
        loglevel = "WARNING"
        preload_app = True
        pidfile = None
        max_requests = 1000
        max_requests_jitter = 50
        forwarded_allow_ips = ["10.0.0.1", "10.0.0.2"]
        cert_reqs = ssl.CERT_OPTIONAL
        raw_env = "GAPP_A=1"
        umask = 0o007
        wsgi_app = "gunicorn_apps:app"
        port = 9001  # not a setting: ignored

        def post_fork(server, worker):
            pass
        """,
    )
    proc = run("-c", path, "--print-config")
    assert proc.returncode == 0, proc.stderr
    lines = {line.split(" = ")[0]: line for line in proc.stdout.splitlines() if " = " in line}

    def value(name):
        return lines[name].split(" = ", 1)[1].split("  #")[0].strip()

    assert value("bind") == '["127.0.0.1:9001", "unix:/tmp/qiao-x.sock"]'
    assert value("workers") == str(os.cpu_count() * 2 + 1)
    assert value("threads") == "4" and value("timeout") == "120.0"
    assert value("keepalive") == "0.0"
    assert value("access_log") == '"-"' and value("log_level") == '"warning"'
    assert value("preload") == "true" and value("max_requests") == "1000"
    assert value("forwarded_allow_ips") == '"10.0.0.1,10.0.0.2"'
    assert value("cert_reqs") == '"optional"' and value("umask") == "7"
    assert value("raw_env") == '["GAPP_A=1"]'
    assert value("app") == '"gunicorn_apps:app"'
    assert "post_fork" in value("post_fork")
    assert lines["workers"].endswith(f"# file {path}")


@qiao_only
def test_near_misses_are_warned_with_the_right_name(tmp_path):
    path = conf(
        tmp_path,
        """
        keepallive = 5
        access_logfile = "-"
        preload = True
        workres = 2
        bind = "127.0.0.1:1"
        """,
    )
    proc = run("-c", path, "gunicorn_apps:app", "--check-config")
    assert proc.returncode == 0, proc.stderr
    for wrong, right in [
        ("keepallive", "keepalive"),
        ("access_logfile", "accesslog"),
        ("preload", "preload_app"),
        ("workres", "workers"),
    ]:
        assert f"{wrong!r} is not a setting and is ignored; did you mean {right!r}?" in (
            proc.stderr
        )
    assert "'bind'" not in proc.stderr


@qiao_only
def test_helpers_of_settings_set_are_not_near_misses(tmp_path):
    """tiangolo's widely copied gunicorn_conf.py computes each setting from
    a helper of a close name (use_loglevel -> loglevel): no warning."""
    path = conf(
        tmp_path,
        """
        import os
        use_loglevel = os.getenv("LOG_LEVEL", "info")
        accesslog_var = os.getenv("ACCESS_LOG", "-")
        keepalive_str = os.getenv("KEEP_ALIVE", "5")
        loglevel = use_loglevel
        accesslog = accesslog_var or None
        keepalive = int(keepalive_str)
        """,
    )
    proc = run("-c", path, "gunicorn_apps:app", "--check-config")
    assert proc.returncode == 0, proc.stderr
    assert "did you mean" not in proc.stderr, proc.stderr


def test_gunicorn_conf_py_in_the_current_directory(tmp_path):
    """No -c: ./gunicorn.conf.py is read (bind, workers, wsgi_app from it)."""
    port = free_port()
    conf(
        tmp_path,
        f"""
        bind = "127.0.0.1:{port}"
        workers = 2
        wsgi_app = "gunicorn_apps:app"
        raw_env = ["GAPP_FROM=conf"]
        """,
    )
    srv = serve([], port, cwd=tmp_path)
    try:
        assert get_json(port)["env"] == {"GAPP_FROM": "conf"}
        assert len(workers_of(srv, 2)) == 2
        if not IS_GUNICORN:
            assert "Reading settings from ./gunicorn.conf.py" in srv.stderr()
    finally:
        srv.cleanup()


def test_config_from_a_python_module(tmp_path):
    port = free_port()
    (tmp_path / "myconf.py").write_text(f'bind = "127.0.0.1:{port}"\nworkers = 1\n')
    env = {"PYTHONPATH": f"{tmp_path}{os.pathsep}{server_env()['PYTHONPATH']}"}
    srv = serve(["-c", "python:myconf", "gunicorn_apps:app"], port, env=env)
    try:
        assert get_json(port)["scheme"] == "http"
    finally:
        srv.cleanup()


@pytest.mark.parametrize(
    "body, needles",
    [
        ("workers = 2\nthreads = = 2\n", ["gunicorn.conf.py", "SyntaxError", "line 2"]),
        ("import no_such_module_qz\n", ["gunicorn.conf.py", "no_such_module_qz", "line 1"]),
        ('workers = "many"\n', ["gunicorn.conf.py", "workers", "many"]),
        ('worker_class = "uvicorn.workers.UvicornWorker"\n', ["ASGI", "WSGI"]),
        ("def post_fork(server):\n    pass\n", ["post_fork", "2 arguments"]),
    ],
)
def test_python_config_errors_exit_1(tmp_path, body, needles):
    path = conf(tmp_path, body)
    proc = run("-c", path, "gunicorn_apps:app", "--check-config")
    assert proc.returncode == 1 or (IS_GUNICORN and "uvicorn" in body), proc.stderr
    if not IS_GUNICORN:
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("qiao: error: "), proc.stderr
        for needle in needles:
            assert needle in lines[0]


# -- environment and precedence ------------------------------------------------------


def test_precedence_file_then_cmd_args_then_command_line(tmp_path):
    """gunicorn's order: the file < GUNICORN_CMD_ARGS < the command line."""
    p_file, p_env, p_cli = free_port(), free_port(), free_port()
    path = conf(tmp_path, f'bind = "127.0.0.1:{p_file}"\nworkers = 1\n', name="c.py")
    env = {"GUNICORN_CMD_ARGS": f"--bind 127.0.0.1:{p_env} --env GAPP_X=env"}
    srv = serve(["-c", path, "gunicorn_apps:app"], p_env, env=env)
    try:
        assert get_json(p_env)["env"] == {"GAPP_X": "env"}
    finally:
        srv.cleanup()
    cli = ["-c", path, "-b", f"127.0.0.1:{p_cli}", "-e", "GAPP_X=cli", "gunicorn_apps:app"]
    srv = serve(cli, p_cli, env=env)
    try:
        assert get_json(p_cli)["env"] == {"GAPP_X": "cli"}
        with pytest.raises(OSError):
            get_json(p_env)
    finally:
        srv.cleanup()


def test_port_and_web_concurrency(tmp_path):
    port = free_port("0.0.0.0")
    env = {"PORT": str(port), "WEB_CONCURRENCY": "3"}
    srv = serve(["gunicorn_apps:app"], port, env=env)
    try:
        assert get_json(port)["scheme"] == "http"
        assert len(workers_of(srv, 3)) == 3
    finally:
        srv.cleanup()


def test_forwarded_allow_ips_from_the_environment():
    port = free_port()
    req = urllib.request.Request(
        f"http://127.0.0.1:{port}/", headers={"X-Forwarded-Proto": "https"}
    )
    for trusted, scheme in [("10.9.9.9", "http"), ("127.0.0.1", "https")]:
        env = {"FORWARDED_ALLOW_IPS": trusted}
        srv = serve(["-b", f"127.0.0.1:{port}", "gunicorn_apps:app"], port, env=env)
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                assert json.loads(r.read())["scheme"] == scheme, trusted
        finally:
            srv.cleanup()


def test_pythonpath_env_and_factory(tmp_path):
    (tmp_path / "elsewhere_app.py").write_text("from gunicorn_apps import app\n")
    port = free_port()
    args = ["-b", f"127.0.0.1:{port}", "--pythonpath", str(tmp_path), "-e", "GAPP_Y=2"]
    srv = serve([*args, "elsewhere_app:app"], port)
    try:
        assert get_json(port)["env"] == {"GAPP_Y": "2"}
    finally:
        srv.cleanup()
    srv = serve(["-b", f"127.0.0.1:{port}", "gunicorn_apps:create_app('named')"], port)
    try:
        assert get_json(port) == {"factory": "named"}
    finally:
        srv.cleanup()


def test_check_config():
    assert run("--check-config", "gunicorn_apps:app").returncode == 0
    proc = run("--check-config", "no_such_module_qz:app")
    assert proc.returncode == 1
