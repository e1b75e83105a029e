"""The gunicorn drop-in, for settings: every gunicorn command-line option
is accepted; gunicorn's Python config files (``-c FILE.py``, ``-c
python:module``, ``./gunicorn.conf.py``), ``GUNICORN_CMD_ARGS``, ``PORT``,
``WEB_CONCURRENCY`` and ``FORWARDED_ALLOW_IPS`` are read with gunicorn's
precedence; worker classes mean what they mean in gunicorn.

Tests of behaviour gunicorn has run against it too
(``QIAO_TEST_SERVER=gunicorn``), so the test itself is checked.
"""

from __future__ import annotations

import json
import os
import socket
import textwrap
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from conftest import E2E_DIR, IS_GUNICORN, Server, base_command, free_port, server_env
from test_config import qiao

qiao_only = pytest.mark.qiao_only


#: The command run to its end, output captured (test_config's helper).
run = qiao


def conf(tmp_path: Path, text: str, name="gunicorn.conf.py") -> str:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return str(path)


def get_json(port: int, path="/", host="127.0.0.1"):
    with urllib.request.urlopen(f"http://{host}:{port}{path}", timeout=10) as r:
        return json.loads(r.read())


def serve(cmd_args, port, env=None, cwd=E2E_DIR) -> Server:
    """A server started with exactly ``cmd_args`` (no bind added), ready on ``port``."""
    srv = Server(cmd=base_command() + list(cmd_args), binds=[f"127.0.0.1:{port}"], env=env, cwd=cwd)
    return srv.start()


def workers_of(srv: Server, count: int, seconds=20.0) -> list[int]:
    """The worker processes of ``srv`` once there are ``count`` (workers
    boot one after the other); what there is after ``seconds`` otherwise."""
    deadline = time.monotonic() + seconds
    while True:
        found = children(srv.proc.pid)
        if len(found) >= count or time.monotonic() > deadline:
            return found
        time.sleep(0.05)


def children(pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry))
    return found


# -- every option of gunicorn's table ---------------------------------------------

#: Sample values for gunicorn settings whose default is not a valid value.
SAMPLES = {
    "statsd_host": "127.0.0.1:8125",
    "worker_class": "gthread",
    "config": None,  # -c: read by its own tests
    "paste": None,  # loads an .ini: its own tests
    "check_config": None,
    "print_config": None,
    "daemon": None,
    "chdir": "/tmp",
    "user": "0",
    "group": "0",
    "pidfile": "/tmp/qiao-test-unused.pid",
    "umask": "0o22",
    "http_protocols": "h1,h2",
    "cert_reqs": "2",
}


def _sample(setting):
    if setting.name in SAMPLES:
        return SAMPLES[setting.name]
    value = setting.default
    if isinstance(value, list):
        value = value[0] if value else "x"
    if value is None or value == "":
        return "x"
    return str(getattr(value, "value", value))


@qiao_only
def test_every_gunicorn_option_is_accepted():
    """Each command-line option of gunicorn's own settings table, with a
    valid value, is taken by Qiao's parser (none is "unrecognized")."""
    gconfig = pytest.importorskip("gunicorn.config")
    from qiao.cli import gather

    checked = 0
    for setting in gconfig.KNOWN_SETTINGS:
        if not setting.cli or SAMPLES.get(setting.name, "") is None:
            continue
        flag = setting.cli[-1]
        takes_value = setting.action not in ("store_true", "store_const") and not setting.nargs
        argv = [flag, _sample(setting)] if takes_value else [flag]
        print_config, resolved = gather(["--print-config", *argv, "apps:app"], {})
        assert print_config, argv
        checked += 1
    assert checked >= 90


@qiao_only
@pytest.mark.parametrize(
    "argv, on",
    [
        (["--proxy-protocol", "apps:app"], True),  # gunicorn 23: a bare flag
        (["--proxy-protocol", "v2", "apps:app"], True),  # gunicorn 24+: a word
        (["--proxy-protocol=off", "apps:app"], False),
        (["apps:app", "--proxy-protocol", "auto"], True),
    ],
)
def test_proxy_protocol_flag_or_word(argv, on):
    from qiao.cli import gather

    _, resolved = gather(argv, {})
    assert resolved.values["proxy_protocol"] is on
    assert resolved.values["app"] == "apps:app"


@qiao_only
def test_every_gunicorn_setting_name_is_a_config_file_name():
    gconfig = pytest.importorskip("gunicorn.config")
    from qiao.config_python import NAMES

    missing = [s.name for s in gconfig.KNOWN_SETTINGS if s.name not in NAMES]
    assert missing == ["config", "print_config"]  # -c itself; a command-line action


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


@qiao_only
def test_settings_without_meaning_are_logged_once():
    port = free_port()
    args = ["-b", f"127.0.0.1:{port}", "--worker-tmp-dir", "/dev/shm", "--worker-connections"]
    srv = serve([*args, "50", "--no-sendfile", "gunicorn_apps:app"], port)
    try:
        get_json(port)
        log = srv.stderr()
        assert log.count("--worker-tmp-dir has no effect in Qiao: heartbeats live in") == 1
        assert log.count("--worker-connections has no effect in Qiao") == 1
        assert log.count("--no-sendfile has no effect in Qiao") == 1
    finally:
        srv.cleanup()


def test_reload_extra_file(tmp_path):
    """--reload-extra-file: a change to a file that is not Python (read by
    the application at import) restarts the workers."""
    pytest.importorskip("watchfiles")
    data = tmp_path / "data.txt"
    data.write_text("one")
    (tmp_path / "extra_app.py").write_text(
        "import pathlib\n"
        f"TEXT = pathlib.Path({str(data)!r}).read_text().encode()\n"
        "def app(environ, start_response):\n"
        "    start_response('200 OK', [('Content-Length', str(len(TEXT)))])\n"
        "    return [TEXT]\n"
    )
    port = free_port()
    args = ["-b", f"127.0.0.1:{port}", "--reload", "--reload-extra-file", str(data)]
    srv = serve([*args, "--chdir", str(tmp_path), "extra_app:app"], port)

    def text():
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=10) as r:
            return r.read()

    try:
        assert text() == b"one"
        first = workers_of(srv, 1)
        deadline = time.monotonic() + 15
        # Until the first worker is gone and a new one serves.
        while time.monotonic() < deadline:
            now = children(srv.proc.pid)
            if now and not set(now) & set(first):
                break
            data.write_text("two")  # again each round: the watcher may start late
            time.sleep(0.2)
        assert text() == b"two", srv.stderr()
    finally:
        srv.cleanup()


@pytest.mark.parametrize(
    "flag",
    [
        "--limit-request-line",
        # gunicorn documents 0 as unlimited here, but its code (27.0) reads 0 as 8190.
        pytest.param("--limit-request-field_size", marks=qiao_only),
    ],
)
def test_zero_limit_is_unlimited(flag):
    """gunicorn's 0 for a request limit: none of its own (a 20 kB request
    line or header field passes; it is 414/431 under the default)."""
    port = free_port()
    long = "a" * 20000
    url = f"http://127.0.0.1:{port}/" + (long if "line" in flag else "")
    headers = {} if "line" in flag else {"X-Long": long}
    for limit, ok in [("0", True), (None, False)]:
        extra = [flag, limit] if limit else []
        srv = serve(["-b", f"127.0.0.1:{port}", *extra, "gunicorn_apps:app"], port)
        try:
            req = urllib.request.Request(url, headers=headers)
            try:
                with urllib.request.urlopen(req, timeout=10) as r:
                    status = r.status
            except urllib.error.HTTPError as e:
                status = e.code
            assert (status == 200) is ok, (limit, status)
        finally:
            srv.cleanup()


def test_ipv6_wildcard_serves_ipv4_clients_too():
    """``-b [::]:PORT`` takes IPv4 clients as well, as under gunicorn (the
    system's dual-stack default; containers often bind it)."""
    if not socket.has_ipv6 or Path("/proc/sys/net/ipv6/bindv6only").read_text().strip() != "0":
        pytest.skip("no dual-stack IPv6 here")
    port = free_port("::", socket.AF_INET6)
    srv = Server(
        cmd=base_command() + ["-b", f"[::]:{port}", "gunicorn_apps:app"],
        binds=[f"127.0.0.1:{port}"],
    ).start()
    try:
        assert get_json(port)["scheme"] == "http"
    finally:
        srv.cleanup()


@qiao_only
def test_ipv4_and_ipv6_wildcards_on_one_port():
    port = free_port()
    binds = ["-b", f"0.0.0.0:{port}", "-b", f"[::]:{port}"]
    srv = serve([*binds, "gunicorn_apps:app"], port)
    try:
        assert get_json(port)["remote_addr"] == "127.0.0.1"
        if socket.has_ipv6:
            assert get_json(port, host="[::1]")["remote_addr"] == "::1"
    finally:
        srv.cleanup()
