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


# -- 8: a proxied path never resolves outside the prefix ----------------------------------

#: (path as sent, the answer, what the upstream is asked for if anything).
PATHS = [
    ("/ng/x", 200, "/base/x"),
    ("/ng", 200, "/base"),
    ("/ng/a%2Fb", 200, "/base/a%2Fb"),
    ("/ng/a/../b", 200, "/base/b"),
    ("/ng/a/%2e%2E/b/./c", 200, "/base/b/c"),
    ("/ng/../secret/", 404, None),
    ("/%6eg/%2e%2e/secret/", 404, None),
    ("/ng/..", 404, None),
    ("/ng/a%2Fb/../../secret", 404, None),
    ("/ng/../../etc/passwd", 400, None),
    ("/ng/..%2f..%2fsecret", 400, None),
]


@pytest.mark.parametrize("kind", PROXY_KINDS)
def test_8_proxy_path_stays_below_the_base(kind, upstream, start_server):
    srv = proxy_server(kind, start_server, "/ng", upstream.url + "/base")
    forwarded = []
    for path, status, target in PATHS:
        with Conn(srv.host, srv.port) as c:
            resp = c.request("GET", path + "?q=1")
        assert resp.status == status, (path, resp)
        if target is not None:
            forwarded.append(target + "?q=1")
            assert upstream.last().target == forwarded[-1], path
    # The refused ones never reached the upstream.
    assert [r.target for r in upstream.requests] == forwarded
