"""Error handling: malformed requests and misbehaving applications.

Malformed requests (RFC 9112) must get the right status and a closed
connection. Application errors (PEP 3333) must give a 500 when nothing has
been sent yet, be logged with a traceback, never leak bad headers, always
call ``close()`` on the result, and leave the server able to serve the next
request.
"""

from __future__ import annotations

import uuid

import pytest
from rawhttp import build_request, wait_for

LIMIT_OPTIONS = (
    "--limit-request-line",
    "1024",
    "--limit-request-fields",
    "30",
    "--limit-request-field-size",
    "2048",
)


@pytest.fixture
def limited(pooled):
    """A server with small, known request limits."""
    return pooled("apps:app", options=LIMIT_OPTIONS)


def raw_exchange(server, data: bytes):
    """Send raw bytes, return (response, closed_afterwards)."""
    with server.connect(timeout=5) as c:
        c.send(data)
        resp = c.read_response()
        return resp, c.is_closed(timeout=3)


def assert_rejected(server, data: bytes, status: int):
    resp, closed = raw_exchange(server, data)
    assert resp.status == status, (resp.status, resp.body[:200])
    assert closed, "connection left open after a malformed request"
    # the server survives and still serves
    with server.connect(timeout=5) as c:
        assert c.request("GET", "/hello").status == 200


# -- malformed requests -----------------------------------------------------------


@pytest.mark.qiao_only  # gunicorn accepts HTTP/1.1 requests without Host
def test_missing_host_on_http11_is_400(limited):
    assert_rejected(limited, b"GET /hello HTTP/1.1\r\n\r\n", 400)


def test_missing_host_on_http10_is_fine(limited):
    with limited.connect() as c:
        resp = c.request("GET", "/hello", version="HTTP/1.0", host=None)
        assert resp.status == 200


@pytest.mark.qiao_only  # gunicorn answers 400 for an unsupported version
def test_http2_version_is_505(limited):
    assert_rejected(limited, b"GET /hello HTTP/2.0\r\nHost: x\r\n\r\n", 505)


def test_request_line_too_long_is_414(limited):
    target = "/hello?" + "a" * 2000
    assert_rejected(limited, build_request("GET", target), 414)


def test_too_many_headers_is_431(limited):
    headers = [(f"X-H{i}", "v") for i in range(60)]
    assert_rejected(limited, build_request("GET", "/hello", headers), 431)


def test_header_field_too_large(limited):
    resp, closed = raw_exchange(limited, build_request("GET", "/hello", [("X-Big", "b" * 5000)]))
    assert resp.status in (400, 431)
    assert closed


def test_transfer_encoding_and_content_length_is_400(limited):
    data = (
        b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"
    )
    assert_rejected(limited, data, 400)


@pytest.mark.qiao_only  # gunicorn passes "gzip, chunked" through to the app
def test_unsupported_transfer_coding_is_501(limited):
    data = (
        b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"
        b"5\r\nhello\r\n0\r\n\r\n"
    )
    assert_rejected(limited, data, 501)


def test_bad_chunk_size_is_400(limited):
    data = (
        b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"zz\r\nhello\r\n0\r\n\r\n"
    )
    assert_rejected(limited, data, 400)


def test_invalid_content_length_is_400(limited):
    assert_rejected(limited, b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 1x\r\n\r\n", 400)


def test_conflicting_content_lengths_is_400(limited):
    data = b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd"
    assert_rejected(limited, data, 400)


def test_space_before_colon_is_400(limited):
    assert_rejected(limited, b"GET /hello HTTP/1.1\r\nHost : x\r\n\r\n", 400)


def test_obs_fold_is_400(limited):
    assert_rejected(limited, b"GET /hello HTTP/1.1\r\nHost: x\r\nX-A: a\r\n  folded\r\n\r\n", 400)


def test_garbage_request_line_is_400(limited):
    assert_rejected(limited, b"THIS IS NOT HTTP\r\n\r\n", 400)


def test_malformed_request_after_good_one_on_same_connection(limited):
    with limited.connect() as c:
        assert c.request("GET", "/hello").status == 200
        c.send(b"GET /hello HTTP/1.1\r\nHost: x\r\nContent-Length: zz\r\n\r\n")
        assert c.read_response().status == 400
        assert c.is_closed()


# -- application errors -------------------------------------------------------------


def test_app_exception_is_500_logged_and_server_survives(server):
    mark = server.stderr_mark()
    with server.connect() as c:
        resp = c.request("GET", "/raise")
    assert resp.status == 500
    assert len(resp.body) < 1000
    assert b"app-exploded-marker" not in resp.body  # no traceback leaked to the client
    log = server.stderr_since(mark)
    assert "Traceback" in log and "app-exploded-marker-91c2" in log
    with server.connect() as c:
        assert c.request("GET", "/hello").body == b"hello world"


def test_header_with_crlf_is_500_and_never_sent(server):
    with server.connect() as c:
        resp = c.request("GET", "/bad-header")
        assert resp.status == 500
        assert b"X-Injected" not in resp.raw_head
        assert b"X-Evil" not in resp.raw_head
        assert b"should not be sent" not in resp.body
    with server.connect() as c:
        assert c.request("GET", "/hello").status == 200


@pytest.mark.qiao_only  # gunicorn sends the headers with the first (empty) chunk
def test_empty_first_chunk_then_raise_is_500(server):
    with server.connect() as c:
        resp = c.request("GET", "/empty-then-raise")
        assert resp.status == 500


@pytest.mark.qiao_only  # gunicorn has sent the 200 head before it checks the item's type
def test_str_body_item_is_500(server):
    with server.connect() as c:
        resp = c.request("GET", "/str-body")
        assert resp.status == 500
        assert b"a str, not bytes" not in resp.body


def test_str_body_item_never_sent_and_server_keeps_serving(server):
    with server.connect() as c:
        c.send(build_request("GET", "/str-body"))
        try:
            resp = c.read_response()
            assert b"a str, not bytes" not in resp.body
        except EOFError:
            pass  # aborted after the head: acceptable, the body is never sent
    with server.connect() as c:
        assert c.request("GET", "/hello").status == 200


def closed_count(server, key) -> int:
    with server.connect() as c:
        return int(c.request("GET", f"/closed?id={key}").body)


def test_close_called_after_normal_response(server):
    key = uuid.uuid4().hex
    with server.connect() as c:
        resp = c.request("GET", f"/closing?id={key}")
        assert resp.body == b"complete body"
    assert wait_for(lambda: closed_count(server, key) == 1, timeout=5)


def test_close_called_when_app_raises_mid_iteration(server):
    key = uuid.uuid4().hex
    mark = server.stderr_mark()
    with server.connect() as c:
        c.send(build_request("GET", f"/closing?id={key}&mode=raise"))
        try:
            resp = c.read_response()
        except EOFError:
            resp = None  # headers were out; the server aborted the connection
        if resp is not None:
            # a chunked response must not end cleanly: it is aborted instead
            assert resp.status == 500 or b"partial body" in resp.body
    assert wait_for(lambda: closed_count(server, key) == 1, timeout=5)
    assert "raised mid-iteration" in server.stderr_since(mark)


@pytest.mark.timeout(40)
def test_close_called_when_client_disconnects_mid_body(server):
    key = uuid.uuid4().hex
    c = server.connect()
    c.send(build_request("GET", f"/closing?id={key}&mode=stream"))
    head = c.read_head()
    assert head.status == 200
    c.read_exact(200_000)  # the response is streaming
    c.close()
    assert wait_for(lambda: closed_count(server, key) == 1, timeout=15), (
        "close() not called after the client went away"
    )


@pytest.mark.qiao_only  # gunicorn hands the app a silent short read
def test_truncated_body_is_not_a_silent_short_read(server, tmp_path):
    record = tmp_path / "outcome.txt"
    with server.connect() as c:
        c.send(
            build_request("POST", f"/short-read?record={record}", [("Content-Length", "1000")])
            + b"0123456789"
        )
        c.shutdown_write()
        try:
            resp = c.read_response()
        except (EOFError, ConnectionError):
            resp = None
    outcome = wait_for(lambda: record.exists() and record.read_text(), timeout=5)
    if outcome:
        assert outcome.startswith("error"), f"app saw a silent short read: {outcome!r}"
    else:  # the server rejected the request before the app finished
        assert resp is None or resp.status >= 400
    assert resp is None or resp.body != b"read 10"
