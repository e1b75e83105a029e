"""The gunicorn drop-in, for settings on the command line: every gunicorn
command-line option is accepted, the ones without a meaning in Qiao are
logged once, and ``--reload-extra-file``, a request limit of 0 and IPv6
wildcard binds mean what they mean in gunicorn.

Tests of behaviour gunicorn has run against it too
(``QIAO_TEST_SERVER=gunicorn``), so the test itself is checked.
"""

from __future__ import annotations

import socket
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from conftest import Server, base_command, free_port
from gunicorn_config_support import children, get_json, serve, workers_of

qiao_only = pytest.mark.qiao_only


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


# -- options one by one -------------------------------------------------------------


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
