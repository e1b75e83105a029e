"""The uwsgi protocol (``--bind uwsgi://...``): raw uwsgi packets, then a
real nginx in front with ``uwsgi_pass`` (TCP and Unix socket), request
bodies, large responses and keep-alive between nginx and Qiao."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
import struct
import subprocess
import tempfile
from pathlib import Path

import pytest
import requests
from conftest import free_port
from nginx_support import NGINX, start_nginx
from rawhttp import wait_for

pytestmark = pytest.mark.qiao_only


def packet(variables: dict[str, str], body: bytes = b"") -> bytes:
    data = b""
    for k, v in variables.items():
        kb, vb = k.encode("latin-1"), v.encode("latin-1")
        data += struct.pack("<H", len(kb)) + kb + struct.pack("<H", len(vb)) + vb
    return struct.pack("<BHB", 0, len(data), 0) + data + body


def cgi(method="GET", uri="/environ", body=b"", **extra) -> dict[str, str]:
    path, _, query = uri.partition("?")
    env = {
        "REQUEST_METHOD": method,
        "REQUEST_URI": uri,
        "PATH_INFO": path,
        "QUERY_STRING": query,
        "SERVER_PROTOCOL": "HTTP/1.1",
        "CONTENT_LENGTH": str(len(body)) if body else "",
        "REMOTE_ADDR": "203.0.113.5",
        "REMOTE_PORT": "40000",
        "SERVER_NAME": "example.com",
        "SERVER_PORT": "8080",
        "HTTP_HOST": "example.com:8080",
    }
    env.update(extra)
    return env


def read_response(sock: socket.socket, buf: bytearray) -> tuple[bytes, bytes]:
    while b"\r\n\r\n" not in buf:
        chunk = sock.recv(65536)
        assert chunk, bytes(buf[:200])
        buf += chunk
    head, _, rest = bytes(buf).partition(b"\r\n\r\n")
    length = int(
        next(
            line.split(b":", 1)[1]
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length:")
        )
    )
    while len(rest) < length:
        chunk = sock.recv(65536)
        assert chunk
        rest += chunk
    buf[:] = rest[length:]
    return head, rest[:length]


@pytest.fixture(scope="module")
def uwsgi_server():
    from conftest import Server

    port = free_port()
    # The plain HTTP bind first: the harness waits on the first one.
    srv = Server("apps:app", binds=[f"127.0.0.1:{free_port()}", f"uwsgi://127.0.0.1:{port}"])
    srv.start()
    assert wait_for(lambda: f"Listening at: uwsgi://127.0.0.1:{port}" in srv.stderr(), 5)
    srv.uwsgi_port = port
    yield srv
    srv.cleanup()


def test_raw_packets_become_the_environ(uwsgi_server):
    with socket.create_connection(("127.0.0.1", uwsgi_server.uwsgi_port), timeout=10) as s:
        buf = bytearray()
        # PATH_INFO arrives decoded and is not decoded again; wsgi.* from
        # the peer is ignored; HTTPS=on makes the scheme https.
        env_vars = cgi(uri="/environ?q=%41", HTTPS="on", **{"wsgi.url_scheme": "gopher"})
        s.sendall(packet(env_vars))
        head, body = read_response(s, buf)
        assert head.startswith(b"HTTP/1.1 200"), head
        info = json.loads(body)
        env = info["str"]
        assert env["PATH_INFO"] == "/environ"
        assert env["QUERY_STRING"] == "q=%41"
        assert env["REQUEST_URI"] == env["RAW_URI"] == "/environ?q=%41"
        assert (env["REMOTE_ADDR"], env["REMOTE_PORT"]) == ("203.0.113.5", "40000")
        assert (env["SERVER_NAME"], env["SERVER_PORT"]) == ("example.com", "8080")
        assert env["HTTP_HOST"] == "example.com:8080"
        assert info["wsgi.url_scheme"] == "https"
        # The same connection serves the next request (keep-alive), with a body.
        s.sendall(packet(cgi("POST", "/echo", b"hello"), b"hello"))
        head, body = read_response(s, buf)
        assert body == b"hello"


def test_pipelined_packets_with_bodies(uwsgi_server):
    with socket.create_connection(("127.0.0.1", uwsgi_server.uwsgi_port), timeout=10) as s:
        bodies = [os.urandom(n) for n in (1, 1000, 200_000, 0)]
        s.sendall(b"".join(packet(cgi("POST", "/echo", b), b) for b in bodies))
        buf = bytearray()
        for b in bodies:
            assert read_response(s, buf)[1] == b


@pytest.mark.parametrize(
    "data",
    # modifier1 5 is not a WSGI request; a key longer than the block.
    [b"\x05\x00\x00\x00", struct.pack("<BHB", 0, 5, 0) + b"\x05\x00abc"],
    ids=["modifier", "truncated-var"],
)
def test_malformed_packets_get_400(uwsgi_server, data):
    with socket.create_connection(("127.0.0.1", uwsgi_server.uwsgi_port), timeout=10) as s:
        s.sendall(data)
        out = s.recv(4096)
        assert out.startswith(b"HTTP/1.1 400"), out


def test_http_listener_still_speaks_http(uwsgi_server):
    assert requests.get(f"{uwsgi_server.url}/hello", timeout=5).status_code == 200


# -- a real nginx in front ---------------------------------------------------------


@pytest.fixture(scope="module")
def nginx_front():
    if NGINX is None:
        pytest.skip("nginx is not installed")
    from conftest import Server

    work = Path(tempfile.mkdtemp(prefix="qiao-nginx-"))
    sock_path = work / "qiao.sock"
    tcp_port, http_port, unix_port, proxy_port = (free_port() for _ in range(4))
    qiao_http = free_port()
    binds = [f"127.0.0.1:{qiao_http}", f"uwsgi://127.0.0.1:{tcp_port}", f"uwsgi://unix:{sock_path}"]
    srv = Server("apps:app", binds=binds)
    srv.start()
    proc = start_nginx(
        work,
        f"""
        client_max_body_size 50m;
        upstream qiao_http {{ server 127.0.0.1:{qiao_http}; keepalive 8; }}
        server {{
            listen 127.0.0.1:{http_port};
            location / {{
                include /etc/nginx/uwsgi_params;
                uwsgi_pass 127.0.0.1:{tcp_port};
            }}
        }}
        server {{
            listen 127.0.0.1:{unix_port};
            location / {{
                include /etc/nginx/uwsgi_params;
                uwsgi_pass unix:{sock_path};
            }}
        }}
        server {{
            listen 127.0.0.1:{proxy_port};
            location / {{
                proxy_pass http://qiao_http;
                proxy_http_version 1.1;
                proxy_set_header Connection "";
            }}
        }}
        """,
    )
    url = f"http://127.0.0.1:{http_port}"
    urls = {
        "uwsgi-tcp": url,
        "uwsgi-unix": f"http://127.0.0.1:{unix_port}",
        "http-proxy": f"http://127.0.0.1:{proxy_port}",
    }

    def up():
        try:
            return requests.get(f"{url}/hello", timeout=1).status_code == 200
        except requests.RequestException:
            return False

    assert wait_for(up, 10), (proc.poll(), (work / "error.log").read_text())
    yield urls, qiao_http
    proc.terminate()
    proc.wait(10)
    srv.cleanup()
    shutil.rmtree(work, ignore_errors=True)


@pytest.mark.parametrize("front", ["uwsgi-tcp", "uwsgi-unix", "http-proxy"])
def test_nginx_in_front_environ(nginx_front, front):
    url = nginx_front[0][front]
    r = requests.get(f"{url}/environ?x=%C3%A9", headers={"X-Custom": "yes"}, timeout=10)
    assert r.status_code == 200
    env = r.json()["str"]
    assert env["PATH_INFO"] == "/environ"
    assert env["QUERY_STRING"] == "x=%C3%A9"
    assert env["REMOTE_ADDR"] == "127.0.0.1"
    assert env["HTTP_X_CUSTOM"] == "yes"
    assert env["REQUEST_METHOD"] == "GET"


@pytest.mark.parametrize("front", ["uwsgi-tcp", "uwsgi-unix", "http-proxy"])
def test_nginx_request_bodies_and_large_responses(nginx_front, front):
    url = nginx_front[0][front]
    body = os.urandom(3 * 1024 * 1024)
    r = requests.post(f"{url}/echo", data=body, timeout=30)
    assert r.status_code == 200
    assert hashlib.sha256(r.content).digest() == hashlib.sha256(body).digest()
    # A chunked upload: nginx buffers it and sends CONTENT_LENGTH.
    r = requests.post(f"{url}/echo", data=iter([b"a" * 1000, b"b" * 5000]), timeout=30)
    assert r.content == b"a" * 1000 + b"b" * 5000
    # A response without a length (streamed): closes the upstream connection.
    r = requests.get(f"{url}/chunked", timeout=10)
    assert r.status_code == 200 and r.content


def test_nginx_keeps_upstream_connections_alive(nginx_front):
    """nginx reuses its connections to Qiao (HTTP upstream with keepalive;
    nginx's uwsgi module opens one per request, which Qiao also serves)."""
    urls, qiao_http = nginx_front
    with requests.Session() as s:
        for _ in range(30):
            assert s.get(f"{urls['http-proxy']}/hello", timeout=10).status_code == 200
            assert s.get(f"{urls['uwsgi-tcp']}/hello", timeout=10).status_code == 200
    out = subprocess.run(["ss", "-tn", "state", "established"], capture_output=True, text=True)
    if out.returncode != 0:
        pytest.skip("ss is not available")
    conns = [line for line in out.stdout.splitlines() if f"127.0.0.1:{qiao_http} " in line]
    # 30 requests over a few kept connections (each shows twice on loopback).
    assert 0 < len(conns) <= 16, out.stdout
