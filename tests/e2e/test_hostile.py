"""Regression tests of defects found by attacking Qiao: each test is named
after the item of the attack report it pins down (``docs/security.md``,
"Hostile input: fixed cases"), and failed before its fix."""

from __future__ import annotations

import pytest
from hostile_support import RecordingUpstream, proxy_server
from rawhttp import Conn

pytestmark = pytest.mark.qiao_only("attacks on Qiao's own engine and middleware")

PROXY_KINDS = ["native", "middleware"]


@pytest.fixture
def upstream():
    up = RecordingUpstream()
    yield up
    up.close()


# -- 7: exactly one valid Content-Length to the upstream ----------------------------------


@pytest.mark.parametrize("kind", PROXY_KINDS)
@pytest.mark.parametrize(
    "lengths",
    [["3"], ["3, 3"], ["3", "3"]],
    ids=["one", "list", "repeated"],
)
def test_7_proxy_sends_one_content_length(kind, lengths, upstream, start_server):
    srv = proxy_server(kind, start_server, "/", upstream.url)
    headers = [("Content-Length", v) for v in lengths]
    with Conn(srv.host, srv.port) as c:
        resp = c.request("POST", "/post", headers=headers, body=b"abc")
    assert resp.status == 200, resp
    got = upstream.last()
    assert got.values("content-length") == ["3"], got.head
    assert got.body == b"abc"


@pytest.mark.parametrize("kind", PROXY_KINDS)
def test_7_proxy_keeps_an_explicit_zero_length(kind, upstream, start_server):
    srv = proxy_server(kind, start_server, "/", upstream.url)
    with Conn(srv.host, srv.port) as c:
        resp = c.request("POST", "/post", headers=[("Content-Length", "0, 0")])
    assert resp.status == 200, resp
    assert upstream.last().values("content-length") == ["0"]

