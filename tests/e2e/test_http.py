"""HTTP/1.1 protocol behaviour over raw sockets (RFC 9112).

Keep-alive, pipelining, HTTP/1.0, chunked request and response bodies,
``Expect: 100-continue``, HEAD, Date/Server, connection close from either
side, absolute-form targets and many idle keep-alive connections.
"""

from __future__ import annotations

import json
import socket
import time

import pytest
from rawhttp import build_request, chunk_encode


def test_keep_alive_several_requests_one_socket(conn):
    for i in range(5):
        body = b"ping-%d" % i
        resp = conn.request("POST", "/echo", body=body)
        assert resp.status == 200
        assert resp.body == body
        assert "close" not in resp.connection_tokens()
    assert not conn.is_closed(timeout=0.3)


def test_pipelining_three_requests_in_one_write(conn):
    data = (
        build_request("GET", "/hello")
        + build_request("POST", "/echo", body=b"second")
        + build_request("GET", "/status?code=201")
    )
    conn.send(data)
    first, second, third = (conn.read_response() for _ in range(3))
    assert (first.status, first.body) == (200, b"hello world")
    assert (second.status, second.body) == (200, b"second")
    assert (third.status, third.body) == (201, b"status 201")


def test_pipelined_requests_after_chunked_body(conn):
    data = build_request(
        "POST", "/echo", [("Transfer-Encoding", "chunked")], chunk_encode([b"abc", b"defg"])
    ) + build_request("GET", "/hello")
    conn.send(data)
    assert conn.read_response().body == b"abcdefg"
    assert conn.read_response().body == b"hello world"


def test_http10_closes_by_default(conn):
    resp = conn.request("GET", "/hello", version="HTTP/1.0")
    assert resp.status == 200
    assert resp.version in ("HTTP/1.0", "HTTP/1.1")
    assert resp.body == b"hello world"
    assert conn.is_closed()


def test_http10_keep_alive_is_echoed(conn):
    for _ in range(3):
        resp = conn.request("GET", "/hello", [("Connection", "keep-alive")], version="HTTP/1.0")
        assert resp.status == 200
        assert resp.body == b"hello world"
        assert "keep-alive" in resp.connection_tokens()
    assert not conn.is_closed(timeout=0.3)


def test_chunked_request_body_is_decoded(conn):
    pieces = [b"hello ", b"chunked ", b"x" * 5000, b" world"]
    body = chunk_encode(pieces, trailers=[("X-Trailer", "t")])
    resp = conn.request("POST", "/echo", [("Transfer-Encoding", "chunked")], body)
    assert resp.status == 200
    assert resp.body == b"".join(pieces)
    # the connection is still usable afterwards
    assert conn.request("GET", "/hello").body == b"hello world"


def test_chunked_request_with_extensions(conn):
    body = b"5;name=value\r\nhello\r\n0\r\n\r\n"
    resp = conn.request("POST", "/echo", [("Transfer-Encoding", "chunked")], body)
    assert resp.body == b"hello"


def test_chunked_response_on_http11_without_content_length(conn):
    resp = conn.request("GET", "/chunked?n=4")
    assert resp.status == 200
    assert resp.chunked, resp.raw_head
    assert resp.header("content-length") is None
    assert resp.body == b"chunk-0\nchunk-1\nchunk-2\nchunk-3\n"
    assert conn.request("GET", "/hello").body == b"hello world"


def test_close_delimited_response_on_http10(conn):
    resp = conn.request("GET", "/chunked?n=3", version="HTTP/1.0")
    assert resp.status == 200
    assert not resp.chunked
    assert resp.body == b"chunk-0\nchunk-1\nchunk-2\n"
    assert conn.is_closed()


def test_list_body_gets_length_or_chunking(conn):
    resp = conn.request("GET", "/list")
    assert resp.body == b"alpha-beta-gamma"
    assert resp.chunked or resp.header("content-length") == "16"
    assert conn.request("GET", "/hello").status == 200


def test_write_callable_body_framed(conn):
    resp = conn.request("GET", "/write")
    assert resp.body == b"first-second-third"
    assert not resp.close_delimited
    assert conn.request("GET", "/hello").status == 200


def test_expect_100_continue_sent_when_app_reads(conn):
    head = build_request(
        "POST", "/expect?read=1", [("Expect", "100-continue"), ("Content-Length", "11")]
    )
    conn.send(head)
    interim = conn.read_response(allow_informational=True)
    assert interim.status == 100
    conn.send(b"hello world")
    resp = conn.read_response()
    assert resp.status == 200
    assert resp.body == b"read 11"


@pytest.mark.qiao_only
def test_expect_100_continue_not_sent_when_app_does_not_read(conn):
    head = build_request(
        "POST", "/expect?read=0", [("Expect", "100-continue"), ("Content-Length", "11")]
    )
    conn.send(head)
    resp = conn.read_response(allow_informational=True)
    assert resp.status == 200, "a 100 Continue was sent although the app never read the body"
    assert resp.body == b"not read"


def test_expect_100_continue_http10_gets_no_interim(conn):
    head = build_request(
        "POST",
        "/expect?read=1",
        [("Expect", "100-continue"), ("Content-Length", "3")],
        version="HTTP/1.0",
    )
    conn.send(head + b"abc")
    resp = conn.read_response(allow_informational=True)
    assert resp.status == 200
    assert resp.body == b"read 3"


@pytest.mark.parametrize("path", ["/hello", "/chunked", "/list"])
def test_head_same_headers_as_get_without_body(conn, path):
    get = conn.request("GET", path)
    head = conn.request("HEAD", path)
    assert head.status == get.status
    assert head.header("content-type") == get.header("content-type")
    if get.header("content-length") is not None and head.header("content-length") is not None:
        assert head.header("content-length") == get.header("content-length")
    # no body bytes may follow the HEAD response: the next response parses cleanly
    nxt = conn.request("GET", "/hello")
    assert nxt.status == 200 and nxt.body == b"hello world"


def test_head_on_fixed_length_keeps_content_length(conn):
    head = conn.request("HEAD", "/hello")
    assert head.header("content-length") == "11"
    assert head.body == b""


def test_date_and_server_headers(conn):
    resp = conn.request("GET", "/hello")
    date = resp.header("date")
    assert date and date.endswith(" GMT")
    time.strptime(date, "%a, %d %b %Y %H:%M:%S GMT")
    assert resp.header("server")


def test_status_204_and_304_have_no_body(conn):
    for code in (204, 304):
        resp = conn.request("GET", f"/status?code={code}")
        assert resp.status == code
        assert resp.header("transfer-encoding") is None
    assert conn.request("GET", "/hello").body == b"hello world"


def test_client_connection_close(conn):
    resp = conn.request("GET", "/hello", [("Connection", "close")])
    assert resp.status == 200 and resp.body == b"hello world"
    assert conn.is_closed()


@pytest.mark.qiao_only  # gunicorn drops the app's hop-by-hop header
def test_app_connection_close(conn):
    resp = conn.request("GET", "/close")
    assert resp.status == 200 and resp.body == b"bye"
    assert "close" in resp.connection_tokens()
    assert conn.is_closed()


def test_absolute_form_target(conn):
    resp = conn.request("GET", "http://example.com/p?q=1")
    assert resp.status == 404  # apps.py has no /p: its 404 reports what it saw
    info = json.loads(resp.body)
    assert info["PATH_INFO"] == "/p"
    assert info["QUERY_STRING"] == "q=1"
    resp = conn.request("GET", "http://example.com/environ?q=1&r=%20")
    info = json.loads(resp.body)
    assert info["str"]["PATH_INFO"] == "/environ"
    assert info["str"]["QUERY_STRING"] == "q=1&r=%20"


@pytest.mark.timeout(40)
def test_many_idle_keepalive_connections_do_not_block(server):
    idle = []
    try:
        for _ in range(300):
            c = server.connect(timeout=5)
            assert c.request("GET", "/hello").status == 200  # now idle keep-alive
            idle.append(c)
        start = time.monotonic()
        with server.connect(timeout=5) as fresh:
            resp = fresh.request("GET", "/hello")
        assert resp.status == 200
        assert time.monotonic() - start < 3.0
    finally:
        for c in idle:
            c.close()


@pytest.mark.qiao_only  # gunicorn's gthread pool blocks on connections that send nothing
@pytest.mark.timeout(40)
def test_many_silent_connections_do_not_block(server):
    silent = []
    try:
        for _ in range(300):
            silent.append(server.connect(timeout=5))
        start = time.monotonic()
        with server.connect(timeout=5) as fresh:
            resp = fresh.request("GET", "/hello")
        assert resp.status == 200
        assert time.monotonic() - start < 3.0
    finally:
        for c in silent:
            c.close()


def test_large_response_streams(conn):
    resp = conn.request("GET", "/filelike")
    assert resp.body == bytes(range(256)) * 400


def test_request_split_across_writes(server):
    with server.connect() as c:
        raw = build_request("POST", "/echo", body=b"split-body")
        for i in range(0, len(raw), 7):
            c.send(raw[i : i + 7])
            time.sleep(0.002)
        resp = c.read_response()
        assert resp.body == b"split-body"


def test_half_closed_client_still_gets_response(server):
    with server.connect() as c:
        c.send(build_request("GET", "/hello", [("Connection", "close")]))
        c.sock.shutdown(socket.SHUT_WR)
        resp = c.read_response()
        assert resp.status == 200 and resp.body == b"hello world"
