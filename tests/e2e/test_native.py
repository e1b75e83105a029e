"""The native routes' own settings, beyond what the shared middleware suites
check (``test_middleware_static_*.py``/``test_middleware_proxy_*.py`` with the
``native`` kind): bad values refused at start with one line, every setting
from a config file, the app and both kinds of routes in one server, and the
native requests counted in the metrics."""

from __future__ import annotations

import pytest
import requests
from conftest import free_port
from mw_servers import qiao_upstream
from rawhttp import wait_for
from test_cli import assert_one_line_error, run_cli
from test_metrics import _ok, scrape

pytestmark = pytest.mark.qiao_only


@pytest.mark.parametrize(
    "option, needle",
    [
        ("--static=/s=/no/such/dir/qiao", "is not a directory"),
        ("--static=s=/tmp", "PREFIX=DIR"),
        ("--proxy=/p=https://example.com", "http://HOST"),
        ("--proxy=/p=http://h:1,ftp://h", "ftp://h"),
        ("--proxy-balance=random", "round_robin"),
        ("--static-etag=maybe", "strong"),
        ("--static-type=md", "EXT=TYPE"),
        ("--static-type=.md=plain", "EXT=TYPE"),
        ("--proxy-health-path=health", "starting with /"),
    ],
)
def test_bad_native_settings_are_one_line_errors(option, needle):
    proc = run_cli("apps:app", option, "--print-config")
    assert proc.returncode == 2
    assert_one_line_error(proc, needle)


def test_app_static_and_proxy_from_a_config_file(start_server, tmp_path):
    (tmp_path / "pub").mkdir()
    (tmp_path / "pub" / "a.txt").write_bytes(b"from the file\n")
    (tmp_path / "pub" / ".b.txt").write_bytes(b"hidden\n")
    up = qiao_upstream(start_server, "U")
    config = tmp_path / "qiao.toml"
    config.write_text(
        f'static = ["/files={tmp_path / "pub"}"]\n'
        f'proxy = ["/up={up.url},{up.url}"]\n'
        'proxy-balance = "least_conn"\n'
        'proxy-status = "/_up"\n'
        'static-cache-control = "no-store"\n'
        "static-hidden = true\n"
        'static-type = [".txt=text/x-file"]\n'
        'proxy-health-path = "/health"\n'
    )
    srv = start_server("apps:app", options=["-c", str(config)])
    r = requests.get(srv.url + "/files/a.txt", timeout=10)
    assert (r.status_code, r.content) == (200, b"from the file\n")
    assert r.headers["Cache-Control"] == "no-store"
    assert r.headers["Content-Type"] == "text/x-file; charset=utf-8"
    r = requests.get(srv.url + "/files/.b.txt", timeout=10)
    assert (r.status_code, r.content) == (200, b"hidden\n")
    r = requests.get(srv.url + "/up/name", timeout=10)
    assert (r.status_code, r.text, r.headers["X-Upstream"]) == (200, "U", "U")
    assert requests.get(srv.url + "/hello", timeout=10).text == "hello world"
    states = requests.get(srv.url + "/_up", timeout=10).json()
    assert [s["url"] for s in states] == [up.url, up.url]
    assert all(s["up"] for s in states)


def test_native_requests_are_counted_in_the_metrics(start_server, tmp_path):
    (tmp_path / "f.txt").write_bytes(b"x" * 1000)
    port = free_port()
    srv = start_server(
        "apps:app",
        options=["--static", f"/s={tmp_path}", "--metrics-bind", f"127.0.0.1:{port}"],
    )
    url = f"http://127.0.0.1:{port}/metrics"
    assert wait_for(lambda: _ok(url), 5), srv.stderr()
    for _ in range(5):
        assert requests.get(srv.url + "/s/f.txt", timeout=10).status_code == 200
    assert requests.get(srv.url + "/s/missing", timeout=10).status_code == 404
    totals = scrape(url)["qiao_requests"]
    assert totals[("qiao_requests_total", (("method", "GET"), ("status", "2xx")))] >= 5
    assert totals[("qiao_requests_total", (("method", "GET"), ("status", "4xx")))] >= 1
