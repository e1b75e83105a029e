"""Trust comes only from peers the operator named, each list for one thing
(docs/security.md, "Trust"):

* forwarding headers: one family, X-Forwarded-* by default, so a client's
  own ``Forwarded`` (which nginx passes through) never beats the proxy's
  ``X-Forwarded-For``; Qiao's own proxies replace ``Forwarded``;
* PROXY headers: ``--proxy-allow-from``, and the client a PROXY header
  names is the peer for the forwarding headers after it;
* the uwsgi protocol: ``--uwsgi-allow-from``; control characters in uwsgi
  variables are refused.
"""

from __future__ import annotations

import json
import os
import socket
import struct
import tempfile
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests
from conftest import IS_GUNICORN, free_port
from mw_servers import KINDS, build, qiao_upstream
from nginx_support import NGINX, start_nginx
from rawhttp import Conn, exchange, wait_for

SPOOF = ("Forwarded", "for=6.6.6.6;proto=https;host=evil.com")
REQUEST = b"GET /environ HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: 6.6.6.6\r\n\r\n"
QIAO_ONLY_XFF = "gunicorn never sets REMOTE_ADDR from forwarding headers"


def environ_of(srv, headers) -> tuple[dict, str]:
    with srv.connect() as c:
        resp = c.request("GET", "/environ", headers)
    assert resp.status == 200, resp.body[:300]
    info = json.loads(resp.body)
    return info["str"], info["wsgi.url_scheme"]


# -- 4. one family of forwarding headers ---------------------------------------


def test_client_forwarded_does_not_beat_the_proxy_x_forwarded_for(pooled):
    """gunicorn reads no ``Forwarded`` at all: neither does Qiao by default."""
    srv = pooled("apps:app", options=["--forwarded-allow-ips", "127.0.0.1"])
    env, scheme = environ_of(srv, [SPOOF, ("X-Forwarded-For", "203.0.113.7")])
    assert env["REMOTE_ADDR"] != "6.6.6.6"
    assert env["REMOTE_ADDR"] == ("127.0.0.1" if IS_GUNICORN else "203.0.113.7")
    assert scheme == "http"
    assert "evil.com" not in (env["SERVER_NAME"], env.get("HTTP_HOST"))


@pytest.mark.skipif(NGINX is None, reason="nginx is not installed")
def test_behind_nginx_the_client_forwarded_is_ignored(pooled):
    srv = pooled("apps:app", options=["--forwarded-allow-ips", "127.0.0.1"])
    port = free_port()
    with tempfile.TemporaryDirectory() as work:
        nginx = start_nginx(
            Path(work),
            f"""
            server {{
                listen 127.0.0.1:{port};
                location / {{
                    proxy_pass http://127.0.0.1:{srv.port};
                    proxy_set_header Host $host;
                    proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
                    proxy_set_header X-Forwarded-Proto $scheme;
                }}
            }}
            """,
        )
        try:
            url = f"http://127.0.0.1:{port}/environ"
            assert wait_for(lambda: _answers(url), 10), "nginx did not start"
            resp = requests.get(url, headers=dict([SPOOF]), timeout=10)
        finally:
            nginx.terminate()
            nginx.wait(10)
    info = resp.json()
    env = info["str"]
    assert env["HTTP_FORWARDED"] == SPOOF[1]  # passed through by nginx
    assert env["REMOTE_ADDR"] == "127.0.0.1"
    assert info["wsgi.url_scheme"] == "http"
    assert env["SERVER_NAME"] == "127.0.0.1"


def _answers(url: str) -> bool:
    try:
        return requests.get(url, timeout=2).status_code == 200
    except requests.RequestException:
        return False


@pytest.mark.qiao_only(reason="--forwarded-headers is Qiao's own")
def test_forwarded_family_when_asked_ignores_x_forwarded(pooled):
    options = ["--forwarded-allow-ips", "127.0.0.1", "--forwarded-headers", "forwarded"]
    srv = pooled("apps:app", options=options)
    fwd = ("Forwarded", 'for="[2001:db8::9]:1234";proto=https;host=a.example:8080')
    env, scheme = environ_of(srv, [fwd, ("X-Forwarded-For", "203.0.113.7")])
    assert (env["REMOTE_ADDR"], scheme) == ("2001:db8::9", "https")
    assert (env["SERVER_NAME"], env["SERVER_PORT"]) == ("a.example", "8080")
    env, scheme = environ_of(srv, [("X-Forwarded-For", "203.0.113.7")])
    assert (env["REMOTE_ADDR"], scheme) == ("127.0.0.1", "http")


@pytest.mark.qiao_only(reason="the native --proxy and qiao.middleware.Proxy are Qiao's")
@pytest.mark.parametrize("kind", KINDS)
def test_qiao_proxies_replace_the_client_forwarded(kind, start_server):
    upstream = qiao_upstream(start_server, "A")
    config = {"upstreams": [upstream.url], "balance": "round_robin", "opts": {}}
    srv = build(kind, start_server, "proxy", config)
    parts = urlsplit(srv.url)
    with Conn(parts.hostname, parts.port) as conn:
        headers = [("Host", "front.example:8443"), SPOOF, ("Forwarded", "for=7.7.7.7")]
        resp = conn.request("GET", "/headers", headers=headers, host=None)
    seen = json.loads(resp.body)["headers"]
    assert seen["FORWARDED"] == 'for=127.0.0.1;proto=http;host="front.example:8443"'


# -- 5. PROXY protocol trust ---------------------------------------------------


def remote_addr(response: bytes) -> str:
    head, body = response.split(b"\r\n\r\n", 1)
    assert head.startswith(b"HTTP/1.1 200"), head
    return json.loads(body)["str"]["REMOTE_ADDR"]


@pytest.mark.qiao_only(reason=QIAO_ONLY_XFF)
def test_client_behind_a_trusted_balancer_cannot_override_the_proxy_address(pooled):
    # The balancer (127.0.0.1) is a trusted proxy; the client it names is
    # not, so the client's X-Forwarded-For counts for nothing.
    srv = pooled("apps:app", options=["--proxy-protocol", "--forwarded-allow-ips", "127.0.0.1"])
    out = exchange(
        ("127.0.0.1", srv.port), b"PROXY TCP4 203.0.113.7 10.0.0.1 51000 80\r\n" + REQUEST
    )
    assert remote_addr(out) == "203.0.113.7"


@pytest.mark.qiao_only(reason=QIAO_ONLY_XFF)
def test_a_client_that_is_itself_a_trusted_proxy_is_believed(pooled):
    options = ["--proxy-protocol", "--forwarded-allow-ips", "10.0.0.0/8"]
    srv = pooled("apps:app", options=options)
    out = exchange(("127.0.0.1", srv.port), b"PROXY TCP4 10.1.2.3 10.0.0.1 51000 80\r\n" + REQUEST)
    assert remote_addr(out) == "6.6.6.6"


@pytest.mark.qiao_only(reason="Qiao requires the PROXY header on every connection")
def test_proxy_allow_from_is_independent_of_forwarded_allow_ips(pooled):
    header = b"PROXY TCP4 203.0.113.7 10.0.0.1 51000 80\r\n"
    # The default --proxy-allow-from (127.0.0.1,::1) lets us send PROXY
    # headers, whatever --forwarded-allow-ips says.
    srv = pooled("apps:app", options=["--proxy-protocol", "--forwarded-allow-ips", "10.0.0.0/8"])
    assert remote_addr(exchange(("127.0.0.1", srv.port), header + REQUEST)) == "203.0.113.7"
    srv = pooled("apps:app", options=["--proxy-protocol", "--proxy-allow-from", "10.0.0.0/8"])
    assert exchange(("127.0.0.1", srv.port), header + REQUEST).startswith(b"HTTP/1.1 400 ")
    srv = pooled("apps:app", options=["--proxy-protocol", "--proxy-allow-from", "*"])
    assert remote_addr(exchange(("127.0.0.1", srv.port), header + REQUEST)) == "203.0.113.7"


# -- 6. the uwsgi bind ---------------------------------------------------------


def packet(variables: dict[str, str]) -> bytes:
    data = b""
    for k, v in variables.items():
        kb, vb = k.encode("latin-1"), v.encode("latin-1")
        data += struct.pack("<H", len(kb)) + kb + struct.pack("<H", len(vb)) + vb
    return struct.pack("<BHB", 0, len(data), 0) + data


CGI = {
    "REQUEST_METHOD": "GET",
    "REQUEST_URI": "/environ",
    "PATH_INFO": "/environ",
    "SERVER_PROTOCOL": "HTTP/1.1",
    "REMOTE_ADDR": "203.0.113.5",
}


def uwsgi_server(start_server, options=(), unix=None):
    port = free_port()
    binds = [f"127.0.0.1:{free_port()}", f"uwsgi://127.0.0.1:{port}"]
    if unix:
        binds.append(f"uwsgi://unix:{unix}")
    srv = start_server("apps:app", binds=binds, options=list(options))
    assert wait_for(lambda: f"uwsgi://127.0.0.1:{port}" in srv.stderr(), 5)
    if unix:
        assert wait_for(lambda: os.path.exists(unix), 5)
    srv.uwsgi_port = port
    return srv


@pytest.mark.qiao_only(reason="gunicorn speaks uwsgi with --protocol uwsgi, not uwsgi:// binds")
def test_uwsgi_peer_not_allowed_is_closed_and_logged(start_server, tmp_path):
    unix = str(tmp_path / "u.sock")
    srv = uwsgi_server(start_server, ["--uwsgi-allow-from", "10.0.0.0/8"], unix=unix)
    mark = srv.stderr_mark()
    out = exchange(("127.0.0.1", srv.uwsgi_port), packet(CGI))
    assert out == b""
    assert wait_for(lambda: "127.0.0.1" in srv.stderr()[mark:], 5)
    lines = [ln for ln in srv.stderr()[mark:].splitlines() if "uwsgi: refused" in ln]
    assert len(lines) == 1 and "WARNING" in lines[0] and "127.0.0.1" in lines[0], lines
    # A Unix-socket peer is allowed while the list is not empty.
    out = exchange(unix, packet(CGI), family=socket.AF_UNIX)
    assert out.startswith(b"HTTP/1.1 200"), out[:200]


@pytest.mark.qiao_only(reason="gunicorn speaks uwsgi with --protocol uwsgi, not uwsgi:// binds")
def test_uwsgi_default_allows_loopback_and_empty_list_refuses_unix(start_server, tmp_path):
    srv = uwsgi_server(start_server)
    out = exchange(("127.0.0.1", srv.uwsgi_port), packet(CGI))
    assert json.loads(out.split(b"\r\n\r\n", 1)[1])["str"]["REMOTE_ADDR"] == "203.0.113.5"
    unix = str(tmp_path / "u.sock")
    srv = uwsgi_server(start_server, ["--uwsgi-allow-from", ""], unix=unix)
    assert exchange(unix, packet(CGI), family=socket.AF_UNIX) == b""


@pytest.mark.qiao_only(reason="gunicorn speaks uwsgi with --protocol uwsgi, not uwsgi:// binds")
@pytest.mark.parametrize("key", ["REMOTE_USER", "REMOTE_ADDR", "HTTPS", "SSL_CLIENT_VERIFY"])
def test_uwsgi_control_characters_are_refused(start_server, tmp_path, key):
    log = tmp_path / "access.log"
    options = ["--access-log", str(log), "--access-logformat", "%(h)s %({remote_user}e)s"]
    srv = uwsgi_server(start_server, options)
    out = exchange(("127.0.0.1", srv.uwsgi_port), packet({**CGI, key: "x\r\nforged"}))
    assert out.startswith(b"HTTP/1.1 400 "), out[:200]
    assert "forged" not in (log.read_text() if log.exists() else "")


@pytest.mark.qiao_only(reason="gunicorn writes decoded control characters to the log raw")
def test_decoded_path_control_characters_are_escaped_in_the_access_log(start_server, tmp_path):
    # PATH_INFO is the decoded path, over uwsgi (nginx's $document_uri) as
    # over HTTP: LF is legitimate there, so it is served and logged escaped.
    log = tmp_path / "access.log"
    srv = uwsgi_server(start_server, ["--access-log", str(log), "--access-logformat", "%(U)s"])
    cgi = {**CGI, "REQUEST_URI": "/a%0Ab", "PATH_INFO": "/a\nb"}
    out = exchange(("127.0.0.1", srv.uwsgi_port), packet(cgi))
    assert out.startswith(b"HTTP/1.1 "), out[:200]
    with srv.connect() as c:
        c.request("GET", "/c%0D%0Ad")
    assert wait_for(lambda: log.exists() and len(log.read_text().splitlines()) == 2, 5)
    assert sorted(log.read_text().splitlines()) == ["/a\\x0ab", "/c\\x0d\\x0ad"]
