"""Settings from a TOML file (``-c``, ``[tool.qiao]`` of a pyproject.toml)
and ``QIAO_*`` environment variables, their precedence (command line >
environment > file > default), ``--print-config``, and the one-line errors
that name the file and key or the variable.
"""

from __future__ import annotations

import subprocess
import textwrap

import pytest
import requests
from conftest import E2E_DIR, base_command, free_port, server_env
from rawhttp import Conn
from test_cli import assert_one_line_error

pytestmark = pytest.mark.qiao_only


def qiao(*args, env=None, cwd=E2E_DIR):
    return subprocess.run(
        base_command() + list(args),
        cwd=cwd,
        env=server_env(env),
        capture_output=True,
        text=True,
        timeout=30,
        stdin=subprocess.DEVNULL,
    )


def write(path, text: str) -> str:
    path.write_text(textwrap.dedent(text))
    return str(path)


def printed(*args, env=None, cwd=E2E_DIR) -> dict[str, tuple[str, str]]:
    """``--print-config`` as {name: (value, source)}; unset ones as ("", source)."""
    proc = qiao("--print-config", *args, env=env, cwd=cwd)
    assert proc.returncode == 0, proc.stderr
    settings = {}
    for line in proc.stdout.splitlines():
        text, _, source = line.partition("  # ")
        name, _, value = text.lstrip("# ").strip().partition(" = ")
        settings[name] = ("" if value == "(not set)" else value, source.strip())
    return settings


def printed_here(*args, env=None) -> dict[str, tuple[str, str]]:
    """``printed``, computed in this process (the same parser and sources):
    for tests that check every setting, where a process each is too slow."""
    from qiao.cli import gather
    from qiao.config_sources import format_config

    _, resolved = gather(["--print-config", *args], dict(env or {}))
    settings = {}
    for line in format_config(resolved.values, resolved.sources).splitlines():
        text, _, source = line.partition("  # ")
        name, _, value = text.lstrip("# ").strip().partition(" = ")
        settings[name] = ("" if value == "(not set)" else value, source.strip())
    return settings


def test_print_config_defaults_without_serving():
    settings = printed()
    assert settings["workers"] == ("1", "default")
    assert settings["bind"] == ('["127.0.0.1:8000"]', "default")
    assert settings["preload"] == ("false", "default")
    assert settings["app"] == ("", "default")
    assert settings["access_log_format"][0].startswith('"%(h)s %(l)s %(u)s %(t)s')
    from qiao.config import SETTINGS

    assert set(settings) == {"app"} | {s.name for s in SETTINGS}


def test_precedence_cli_over_env_over_file_over_default(tmp_path):
    config = write(
        tmp_path / "qiao.toml",
        """
        app = "apps:app"
        workers = 2
        threads = 3
        keepalive = 7
        graceful-timeout = 9.5
        """,
    )
    env = {"QIAO_THREADS": "4", "QIAO_KEEPALIVE": "8"}
    settings = printed("-c", config, "--keepalive", "9", env=env)
    assert settings["app"] == ('"apps:app"', f"file {config}")
    assert settings["workers"] == ("2", f"file {config}")
    assert settings["graceful_timeout"] == ("9.5", f"file {config}")
    assert settings["threads"] == ("4", "env QIAO_THREADS")
    assert settings["keepalive"] == ("9.0", "command line")
    assert settings["backlog"] == ("2048", "default")


def test_every_setting_from_env_and_file(tmp_path):
    """Each setting of the table, given once by a variable and once by a file key."""
    from qiao.config import SETTINGS

    samples = {
        "workers": "3",
        "log_level": "debug",
        "access_log_format": "json",
        "health_path": "/healthz",
        "forwarded_allow_ips": "10.0.0.0/8",
        "proxy_status": "/_proxy",
        "proxy_health_path": "/health",
        "worker_class": "gthread",
        "statsd_host": "127.0.0.1:8125",
        "http_protocols": "h1,h2",
        "syslog_facility": "local0",
    }
    list_samples = {  # (text, shown) of lists whose items are checked
        "compress_types": ("text/ application/json", '["text/", "application/json"]'),
        "compress_codings": ("gzip,br", '["gzip", "br"]'),
        "compress_levels": ("br=5 gzip=1", '["br=5", "gzip=1"]'),
        "static_types": (".md=text/markdown X=a/b", '[".md=text/markdown", ".x=a/b"]'),
    }
    for s in SETTINGS:
        shown = None
        if s.python_only:
            continue  # hooks and dictionaries: see test_gunicorn_config_files.py
        if s.is_flag or s.action == "store_const":
            text, shown = "yes", "true"
        elif s.name in list_samples:
            text, shown = list_samples[s.name]
        elif s.name == "mount":
            text, shown = "/a=apps:app /b=apps:app", '["/a=apps:app", "/b=apps:app"]'
        elif s.name == "static":
            text, shown = f"/a={E2E_DIR} /b={E2E_DIR}", f'["/a={E2E_DIR}", "/b={E2E_DIR}"]'
        elif s.name == "proxy":
            # Items hold commas (several upstreams): only blanks separate them.
            text = "/a=http://127.0.0.1:1,http://127.0.0.1:2 /b=http://[::1]:3/x"
            shown = '["/a=http://127.0.0.1:1,http://127.0.0.1:2", "/b=http://[::1]:3/x"]'
        elif s.is_list:
            text, shown = "127.0.0.1:1 unix:/tmp/x.sock", '["127.0.0.1:1", "unix:/tmp/x.sock"]'
        elif s.name in samples:
            text = samples[s.name]
        elif s.default not in (None, ""):
            text = str(s.default)  # valid by construction, whatever the type
        else:
            text = "/x" if s.type is str else "7"
        by_env = printed_here(env={s.env_var: text})[s.name]
        assert by_env[1] == f"env {s.env_var}", s.name
        config = tmp_path / f"{s.name}.toml"
        key = s.name.replace("_", "-")
        config.write_text(f"{key} = {'true' if s.is_flag else repr(text)}\n")
        by_file = printed_here("-c", str(config))[s.name]
        assert by_file == by_env[:1] + (f"file {config}",), s.name
        if shown:
            assert by_env[0] == shown


def test_serve_from_file_alone(tmp_path):
    port = free_port()
    config = write(
        tmp_path / "qiao.toml",
        f"""
        app = "apps:app"
        bind = ["127.0.0.1:{port}"]
        threads = 2
        """,
    )
    srv = _serve(["-c", config], port)
    try:
        assert requests.get(f"http://127.0.0.1:{port}/hello", timeout=10).text == "hello world"
    finally:
        srv.terminate()
        srv.wait(10)


def test_serve_from_env_alone_with_two_binds(tmp_path):
    p1, p2 = free_port(), free_port()
    env = {"QIAO_APP": "apps:app", "QIAO_BIND": f"127.0.0.1:{p1}, 127.0.0.1:{p2}"}
    srv = _serve([], p1, env=env)
    try:
        for port in (p1, p2):
            with Conn(port=port) as c:
                assert c.request("GET", "/hello").body == b"hello world"
    finally:
        srv.terminate()
        srv.wait(10)


def _serve(args, port, env=None, cwd=E2E_DIR):
    proc = subprocess.Popen(
        base_command() + list(args),
        cwd=cwd,
        env=server_env(env),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    for _ in range(200):
        try:
            with Conn(port=port, timeout=2) as c:
                c.request("GET", "/hello")
                return proc
        except OSError:
            if proc.poll() is not None:
                break
            subprocess.run(["sleep", "0.05"])
    proc.kill()
    raise AssertionError(f"qiao {args} did not serve on {port}")


def test_pyproject_tool_table(tmp_path):
    project = write(
        tmp_path / "pyproject.toml",
        """
        [project]
        name = "demo"

        [tool.qiao]
        app = "apps:app"
        max-body-size = 1024
        preload = true
        """,
    )
    by_flag = printed("-c", project)
    assert by_flag["max_body"] == ("1024", f"file {project}")
    # Read by itself from the current directory when no -c is given.
    found = printed(cwd=tmp_path)
    assert found["preload"] == ("true", "file pyproject.toml")
    assert found["app"] == ('"apps:app"', "file pyproject.toml")
    # Given by QIAO_CONFIG.
    assert printed(env={"QIAO_CONFIG": project})["max_body"][0] == "1024"


def test_pyproject_without_tool_table(tmp_path):
    project = write(tmp_path / "pyproject.toml", '[project]\nname = "demo"\n')
    assert printed(cwd=tmp_path)["app"] == ("", "default")  # nothing for us: ignored
    proc = qiao("-c", project)  # asked for: an error
    assert proc.returncode == 2
    assert_one_line_error(proc, project, "[tool.qiao]")


def test_booleans_and_cli_negation():
    assert printed(env={"QIAO_PRELOAD": "Yes"})["preload"] == ("true", "env QIAO_PRELOAD")
    assert printed(env={"QIAO_RELOAD": "0"})["reload"] == ("false", "env QIAO_RELOAD")
    negated = printed("--no-preload", env={"QIAO_PRELOAD": "on"})
    assert negated["preload"] == ("false", "command line")
    assert printed(env={"QIAO_WORKERS": ""})["workers"] == ("1", "default")  # empty: unset
    assert printed(env={"QIAO_DEBUG_POOL": "1"})["workers"][0] == "1"  # not a setting: ignored


@pytest.mark.parametrize(
    "body, needles",
    [
        ("wrokers = 2\n", ["unknown setting 'wrokers'", "did you mean 'workers'"]),
        ('workers = "many"\n', ["workers:", "'many'"]),
        ("workers = 2.5\n", ["workers:", "2.5"]),
        ("preload = 3\n", ["preload:", "true or false"]),
        ("bind = [1, 2]\n", ["bind:", "list of strings"]),
        ('log-level = "loud"\n', ["log-level:", "loud"]),
        ('access-log-format = "%(h)d"\n', ["access-log-format:", "%(h)d"]),
        ("workers = 2\nworkers = 3\n", ["invalid TOML"]),
        ("workers = 2\nthreads = \n", ["invalid TOML", "line 2"]),
        ("[server]\nworkers = 2\n", ["unknown setting 'server'"]),
        ("max_body = 5\nmax-body-size = 6\n", ["a second time"]),
    ],
)
def test_file_errors_name_the_file_and_key(tmp_path, body, needles):
    config = str(tmp_path / "bad.toml")
    (tmp_path / "bad.toml").write_text(body)
    proc = qiao("-c", config, "apps:app")
    assert proc.returncode == 2
    assert_one_line_error(proc, f"qiao: error: {config}", *needles)


@pytest.mark.parametrize(
    "var, value, needle",
    [
        ("QIAO_WORKERS", "many", "expected an integer >= 0 or 'auto'"),
        ("QIAO_PRELOAD", "maybe", "expected a boolean"),
        ("QIAO_TIMEOUT", "soon", "expected a number of seconds"),
        ("QIAO_KEEPALIVE", "-1", ">= 0"),
        ("QIAO_ACCESS_LOG_FORMAT", "%(h)s 100%", "bad access log format"),
    ],
)
def test_env_errors_name_the_variable(var, value, needle):
    proc = qiao("apps:app", env={var: value})
    assert proc.returncode == 2
    assert_one_line_error(proc, f"qiao: error: {var}=", needle)


def test_missing_config_file_and_missing_app(tmp_path):
    proc = qiao("-c", str(tmp_path / "nope.toml"), "apps:app")
    assert proc.returncode == 2
    assert_one_line_error(proc, "nope.toml", "no such file")
    proc = qiao(cwd=tmp_path)
    assert proc.returncode == 2
    assert_one_line_error(proc, "no application given", "QIAO_APP")


def test_command_line_app_wins_over_file_app(tmp_path):
    config = write(tmp_path / "qiao.toml", 'app = "no_such_module_x:app"\n')
    settings = printed("-c", config, "apps:validated")
    assert settings["app"] == ('"apps:validated"', "command line")
