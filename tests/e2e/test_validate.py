"""The server under ``wsgiref.validate.validator``.

``apps:validated`` is the well-behaved subset of ``apps.py`` wrapped in the
standard library's PEP 3333 checker. The validator raises AssertionError on
any violation by the server (environ contents, wsgi.input/wsgi.errors API,
start_response use, closing the iterable); such an error shows up as a 500
or, for the "iterator garbage collected without being closed" check, as an
"Exception ignored" message on stderr. Every test here makes one kind of
request and then asserts that neither happened.
"""

from __future__ import annotations

import os

import pytest
import requests
from rawhttp import build_request, chunk_encode

BAD_MARKERS = ("AssertionError", "WSGIWarning", "Traceback", "Exception ignored")


@pytest.fixture
def vserver(pooled):
    return pooled("apps:validated")


@pytest.fixture(autouse=True)
def no_validator_errors(vserver):
    """Fail the test if the validator complained on stderr during it."""
    mark = vserver.stderr_mark()
    yield
    log = vserver.stderr_since(mark, settle=0.2)
    for marker in BAD_MARKERS:
        assert marker not in log, f"validator/server error on stderr:\n{log}"


@pytest.fixture
def vconn(vserver):
    c = vserver.connect()
    yield c
    c.close()


def ok(resp, body=None, status=200):
    assert resp.status == status, (resp.status, resp.body[:500])
    if body is not None:
        assert resp.body == body
    return resp


def test_get(vconn):
    ok(vconn.request("GET", "/hello?x=1&y=%20"), b"hello world")


def test_head(vconn):
    ok(vconn.request("HEAD", "/hello"), b"")
    ok(vconn.request("GET", "/hello"), b"hello world")


def test_not_found(vconn):
    ok(vconn.request("GET", "/nope"), status=404)


def test_post_content_length(vconn):
    ok(
        vconn.request(
            "POST", "/echo", [("Content-Type", "application/x-www-form-urlencoded")], b"a=1&b=2"
        ),
        b"a=1&b=2",
    )


def test_put_and_delete(vconn):
    ok(vconn.request("PUT", "/echo", body=b"put body"), b"put body")
    ok(vconn.request("DELETE", "/echo"), b"")


def test_post_chunked(vconn):
    body = chunk_encode([b"one ", b"two ", b"three"])
    ok(vconn.request("POST", "/echo", [("Transfer-Encoding", "chunked")], body), b"one two three")


def test_input_lines(vconn):
    resp = ok(vconn.request("POST", "/input-lines", body=b"first\nsecond\nthird\n"))
    assert resp.body == b'["first\\n", "seco", "nd\\n", "third\\n"]'


def test_count_upload(vconn):
    data = os.urandom(3 * 1024 * 1024 + 17)
    resp = ok(vconn.request("POST", "/count", body=data))
    assert b'"total": %d' % len(data) in resp.body


def test_expect_continue_read(vconn):
    vconn.send(
        build_request(
            "POST", "/expect?read=1", [("Expect", "100-continue"), ("Content-Length", "4")]
        )
    )
    assert vconn.read_response(allow_informational=True).status == 100
    vconn.send(b"data")
    ok(vconn.read_response(), b"read 4")


def test_expect_continue_no_read(vconn):
    vconn.send(
        build_request(
            "POST", "/expect?read=0", [("Expect", "100-continue"), ("Content-Length", "4")]
        )
    )
    resp = vconn.read_response()
    ok(resp, b"not read")


def test_generator_body(vconn):
    ok(vconn.request("GET", "/chunked?n=3"), b"chunk-0\nchunk-1\nchunk-2\n")


def test_list_body(vconn):
    ok(vconn.request("GET", "/list"), b"alpha-beta-gamma")


def test_write_callable(vconn):
    ok(vconn.request("GET", "/write"), b"first-second-third")


def test_no_body_statuses(vconn):
    ok(vconn.request("GET", "/status?code=204"), status=204)
    ok(vconn.request("GET", "/status?code=304"), status=304)
    ok(vconn.request("GET", "/status?code=201"), b"status 201", status=201)


def test_file_wrapper(vserver, tmp_path):
    path = tmp_path / "f.bin"
    path.write_bytes(b"0123456789" * 5000)
    resp = requests.get(f"{vserver.url}/file", params={"path": str(path)}, timeout=10)
    assert resp.status_code == 200 and resp.content == path.read_bytes()


def test_filelike(vconn):
    ok(vconn.request("GET", "/filelike"), bytes(range(256)) * 400)


def test_pipelined(vconn):
    vconn.send(
        build_request("GET", "/hello")
        + build_request("POST", "/echo", body=b"p")
        + build_request("GET", "/list")
    )
    ok(vconn.read_response(), b"hello world")
    ok(vconn.read_response(), b"p")
    ok(vconn.read_response(), b"alpha-beta-gamma")


def test_http10(vconn):
    ok(vconn.request("GET", "/chunked?n=2", version="HTTP/1.0"), b"chunk-0\nchunk-1\n")


def test_http10_keep_alive(vconn):
    for _ in range(2):
        ok(vconn.request("GET", "/hello", [("Connection", "keep-alive")], version="HTTP/1.0"))


def test_absolute_form_and_headers(vconn):
    headers = [("X-Dup", "a"), ("X-Dup", "b"), ("Cookie", "k=v"), ("User-Agent", "e2e")]
    ok(vconn.request("GET", "http://example.com/hello?q=1", headers), b"hello world")


def test_requests_session(vserver):
    with requests.Session() as s:
        for _ in range(3):
            assert s.get(f"{vserver.url}/hello", timeout=10).text == "hello world"
        assert s.post(f"{vserver.url}/echo", data={"k": "v"}, timeout=10).text == "k=v"
        assert s.post(f"{vserver.url}/echo", json={"k": 1}, timeout=10).json() == {"k": 1}


def test_client_disconnect_mid_response(vserver):
    c = vserver.connect()
    c.send(build_request("GET", "/filelike"))
    c.read_head()
    c.close()
    with vserver.connect() as c2:
        ok(c2.request("GET", "/hello"), b"hello world")
