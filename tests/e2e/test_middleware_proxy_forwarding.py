"""Proxy over real sockets, with real upstreams: second Qiao processes
(``mw_upstream``), an ``http.server`` upstream (``mw_httpd.py``),
``python -m http.server`` and a raw one, for what goes through: streaming
both ways, header hygiene, keep-alive reuse."""

from __future__ import annotations

import hashlib
import json
import socket
import threading
import time
import uuid
from urllib.parse import urlsplit

import requests

# Fixtures, imported as themselves (an explicit re-export, which the linter
# does not take for an unused import): the upstreams start once per test module.
from mw_proxy_support import proxy as proxy
from mw_proxy_support import ups as ups
from mw_servers import ChunkedReader, qiao_upstream, stdlib_http_server
from mw_upstream import pattern
from rawhttp import Conn, build_request, chunk_encode, wait_for

# -- streaming ----------------------------------------------------------------------------


def test_download_streams_before_upstream_finishes(proxy, ups):
    url = proxy([ups["A"].url])
    key = uuid.uuid4().hex
    parts = urlsplit(url)
    first = 256 * 1024
    with Conn(parts.hostname, parts.port, timeout=20) as conn:
        conn.send(f"GET /gate?id={key}&n={first} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        head = conn.read_head()
        assert head.status == 200 and head.header("x-upstream") == "A"
        reader, got = ChunkedReader(conn), b""
        while len(got) < 64 * 1024:  # arrives while the upstream waits for the gate
            got += reader.some()
        assert got == pattern(first)[: len(got)]
        requests.get(ups["A"].url + f"/release?id={key}", timeout=10)
        got += reader.rest()
    assert got == pattern(first) + b"released\n"


def test_upload_streams_before_client_finishes(proxy, ups):
    url = proxy([ups["A"].url])
    key = uuid.uuid4().hex
    first, rest = b"a" * (256 * 1024), b"b" * (1 << 20)
    seen = {}

    def body():
        yield first
        progress = lambda: requests.get(  # noqa: E731
            ups["A"].url + f"/progress?id={key}", timeout=10
        ).json()["bytes"]
        seen["before_end"] = wait_for(lambda: progress() >= 64 * 1024, 10)
        yield rest

    resp = requests.post(url + f"/upload?id={key}", data=body(), timeout=30)
    assert seen["before_end"], "the upstream saw nothing before the client finished"
    assert resp.json() == {
        "length": len(first) + len(rest),
        "sha256": hashlib.sha256(first + rest).hexdigest(),
    }


def test_large_upload_and_download(proxy, ups):
    url = proxy([ups["A"].url])
    n = 16 << 20
    data = pattern(n)
    resp = requests.post(url + "/upload", data=data, timeout=60)
    assert resp.json() == {"length": n, "sha256": hashlib.sha256(data).hexdigest()}
    resp = requests.get(url + f"/download?n={n}", timeout=60)
    assert resp.status_code == 200 and resp.content == data


def test_expect_100_continue_upload(proxy, ups):
    url = urlsplit(proxy([ups["A"].url]))
    body = pattern(200_000)
    with Conn(url.hostname, url.port) as c:
        head = [("Expect", "100-continue"), ("Content-Length", str(len(body)))]
        c.send(build_request("POST", "/upload", head))
        interim = c.read_response(allow_informational=True)
        assert interim.status == 100
        c.send(body)
        resp = c.read_response()
        assert resp.status == 200
        assert json.loads(resp.body)["sha256"] == hashlib.sha256(body).hexdigest()


def test_chunked_upload_then_keep_alive(proxy, ups):
    url = urlsplit(proxy([ups["A"].url]))
    pieces = [b"x" * 10, pattern(100_000), b"end"]
    with Conn(url.hostname, url.port) as c:
        head = [("Transfer-Encoding", "chunked")]
        c.send(build_request("POST", "/echo", head) + chunk_encode(pieces))
        c.send(build_request("HEAD", "/name") + build_request("GET", "/name"))
        resp = c.read_response()
        assert resp.status == 200 and resp.body == b"".join(pieces)
        head_resp = c.read_response(head=True)
        assert head_resp.status == 200 and head_resp.header("content-length") == "1"
        assert c.read_response().body == b"A"


def test_truncated_upload_is_never_complete_upstream(proxy, ups):
    url = urlsplit(proxy([ups["A"].url]))
    key = uuid.uuid4().hex
    with Conn(url.hostname, url.port) as c:
        c.send(build_request("POST", f"/upload?id={key}", [("Content-Length", "300000")]))
        c.send(b"z" * 100_000)
        c.shutdown_write()
        raw = c.read_to_eof()
    # Whatever the proxy answers, it is not the upstream's 200 for a
    # complete body, and the upstream never got all the bytes.
    assert b"200 OK" not in raw.split(b"\r\n", 1)[0]
    progress = requests.get(ups["A"].url + f"/progress?id={key}", timeout=10).json()
    assert progress["bytes"] < 300_000


# -- headers --------------------------------------------------------------------------------


def test_request_headers_forwarded_hop_by_hop_dropped(proxy, ups):
    url = proxy([ups["A"].url])
    parts = urlsplit(url)
    with Conn(parts.hostname, parts.port) as conn:
        resp = conn.request(
            "POST",
            "/headers/a%2Fb?x=1",
            headers=[
                ("Host", "front.example:8443"),
                ("Connection", "keep-alive, X-Drop-Me"),
                ("X-Drop-Me", "1"),
                ("Keep-Alive", "timeout=5"),
                ("TE", "trailers"),
                ("Proxy-Authorization", "Basic eDp5"),
                ("X-Forwarded-For", "203.0.113.7"),
                ("X-Forwarded-Proto", "spoofed"),
                ("X-Custom", "kept"),
                ("Content-Type", "text/x-thing"),
            ],
            body=b"the body",
            host=None,
        )
    info = json.loads(resp.body)
    headers = info["headers"]
    for gone in ("X_DROP_ME", "KEEP_ALIVE", "TE", "PROXY_AUTHORIZATION", "UPGRADE"):
        assert gone not in headers, gone
    assert "X-Drop-Me" not in headers.get("CONNECTION", "")
    assert headers["X_CUSTOM"] == "kept"
    assert headers["HOST"] == urlsplit(ups["A"].url).netloc
    assert headers["X_FORWARDED_FOR"] == "203.0.113.7, 127.0.0.1"
    assert headers["X_FORWARDED_PROTO"] == "http"
    assert headers["X_FORWARDED_HOST"] == "front.example:8443"
    assert info["method"] == "POST" and info["body"] == "the body"
    assert info["raw"] == "/headers/a%2Fb?x=1"  # the target as the client sent it
    assert info["content_length"] == "8"


def test_response_hop_by_hop_dropped(proxy, ups):
    resp = requests.get(proxy([ups["H"].url]) + "/hop", timeout=10)
    assert resp.text == "hop"
    assert resp.headers["X-End-To-End"] == "kept"
    for gone in ("X-Secret-Hop", "Keep-Alive", "Proxy-Authenticate"):
        assert gone not in resp.headers


def test_status_and_repeated_headers_pass_through(proxy, ups):
    url = proxy([ups["A"].url])
    resp = requests.get(url + "/status?code=404", timeout=10)
    assert (resp.status_code, resp.reason, resp.text) == (404, "Whatever", "status 404")
    parts = urlsplit(url)
    with Conn(parts.hostname, parts.port) as conn:
        cookies = conn.request("GET", "/cookies").header_all("set-cookie")
    assert cookies == ["a=1", "b=2"]


# -- connections ------------------------------------------------------------------------------


def test_keep_alive_connections_are_reused(proxy, ups, start_server):
    url = proxy([ups["A"].url])
    ports = {requests.get(url + "/peer", timeout=10).text for _ in range(3)}
    assert len(ports) == 1
    # an upstream that closes idle connections fast: a stale pooled one is
    # detected and the request goes again on a new connection
    quick = qiao_upstream(start_server, "Q", options=["--keepalive", "0.3"])
    url = proxy([quick.url])
    first = requests.get(url + "/peer", timeout=10).text
    time.sleep(1.0)
    second = requests.get(url + "/peer", timeout=10)
    assert second.status_code == 200 and second.text != first


class StrayAnswerUpstream:
    """A raw HTTP/1.1 upstream that answers each connection's first request
    with its connection number, then, idle, sends an unsolicited 408 (as
    servers do before closing an idle connection) and keeps it open."""

    def __init__(self):
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        self.count = 0
        threading.Thread(target=self.serve, daemon=True).start()

    def serve(self):
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            self.count += 1
            threading.Thread(target=self.one, args=(conn, self.count), daemon=True).start()

    def one(self, conn, number):
        with conn:
            data = b""
            while b"\r\n\r\n" not in data:
                piece = conn.recv(65536)
                if not piece:
                    return
                data += piece
            body = str(number).encode()
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
            time.sleep(0.2)
            conn.sendall(b"HTTP/1.1 408 Request Timeout\r\nContent-Length: 0\r\n\r\n")
            time.sleep(5)

    def close(self):
        self.listener.close()


def test_unsolicited_answer_on_an_idle_connection_is_not_taken(proxy):
    upstream = StrayAnswerUpstream()
    try:
        url = proxy([upstream.url])
        first = requests.get(url + "/x", timeout=10)
        time.sleep(0.6)
        second = requests.get(url + "/x", timeout=10)
        assert (first.status_code, second.status_code) == (200, 200)
        assert first.text != second.text  # a new connection
    finally:
        upstream.close()


def test_stdlib_http_server_upstream(proxy, start_server, tmp_path):
    (tmp_path / "file.txt").write_bytes(b"served by http.server\n" * 1000)
    upstream = stdlib_http_server(start_server, str(tmp_path))
    url = proxy([upstream.url])
    resp = requests.get(url + "/file.txt", timeout=10)
    assert resp.status_code == 200 and resp.content == b"served by http.server\n" * 1000
    head = requests.head(url + "/file.txt", timeout=10)
    assert head.headers["Content-Length"] == str(22 * 1000)
    assert requests.get(url + "/missing", timeout=10).status_code == 404
