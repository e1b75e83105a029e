"""Regression tests of defects found by attacking Qiao: each test is named
after the item of the attack report it pins down (``docs/security.md``,
"Hostile input: fixed cases"), and failed before its fix."""

from __future__ import annotations

import gzip
import json
import os
import socket

import pytest
from hostile_support import RecordingUpstream, proxy_server
from mw_servers import KINDS, build
from rawhttp import Conn, build_request

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


# -- 9: what nginx answers 502 to is a 502 here; `_` names are not forwarded --------------

#: Upstream answers nginx's proxy refuses (502), sent in one piece.
BAD_ANSWERS = {
    "status-below-100": b"HTTP/1.1 099 Weird\r\nContent-Length: 2\r\n\r\nok",
    "unasked-101": b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
    b"Connection: upgrade\r\n\r\n",
    "bad-chunk": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nbad\r\n0\r\n\r\n",
    "chunk-too-long": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabc\r\n0\r\n\r\n",
}


@pytest.mark.parametrize("kind", PROXY_KINDS)
@pytest.mark.parametrize("answer", sorted(BAD_ANSWERS))
def test_9_proxy_bad_upstream_answer_is_502(kind, answer, upstream, start_server):
    if (kind, answer) == ("middleware", "chunk-too-long"):
        # http.client hands out the chunk's first 2 bytes without checking
        # the CRLF after it: the error shows at the second read, once a
        # piece has been handed to the server (then the response is cut).
        pytest.skip("found after the first piece by http.client")
    upstream.reply = BAD_ANSWERS[answer]
    srv = proxy_server(kind, start_server, "/", upstream.url)
    with Conn(srv.host, srv.port) as c:
        resp = c.request("GET", "/x")
    assert resp.status == 502, resp
    assert upstream.last().target == "/x"


@pytest.mark.parametrize("kind", PROXY_KINDS)
def test_9_proxy_drops_underscored_field_names(kind, upstream, start_server):
    srv = proxy_server(kind, start_server, "/", upstream.url)
    headers = [("X_Forwarded_For", "6.6.6.6"), ("X-Plain", "1"), ("Auth_User", "admin")]
    with Conn(srv.host, srv.port) as c:
        resp = c.request("GET", "/x", headers=headers)
    assert resp.status == 200, resp
    got = upstream.last()
    assert not [n for n in got.names() if "_" in n], got.head
    assert got.values("x-plain") == ["1"]
    assert got.values("x-forwarded-for") == ["127.0.0.1"]


# -- 11: a status line that is not latin-1 is the application's error ---------------------


def test_11_wsgi_status_not_latin1_is_500(start_server):
    srv = start_server("hostile_apps:app")
    with Conn(srv.host, srv.port) as c:
        resp = c.request("GET", "/status-not-latin1")
        assert resp.status == 500, resp
        assert b"\xc4\x80" not in resp.raw_head
    # The worker serves on: the error is the application's alone.
    with Conn(srv.host, srv.port) as c:
        assert c.request("GET", "/").body == b"ok"


# -- 13: a file wrapper over an endless device ends with its Content-Length ----------------


def test_13_file_wrapper_over_dev_zero_ends(start_server):
    srv = start_server("hostile_apps:app", options=["--workers", "1", "--threads", "1"])
    with Conn(srv.host, srv.port) as c:
        resp = c.request("GET", "/zero", headers=[])
        assert resp.status == 200 and resp.body == b"\0" * 1000
        # HEAD: no body at all, and the iterable is not read forever either.
        head = c.request("HEAD", "/zero")
        assert head.status == 200 and head.header("content-length") == "1000"
    # The one serving thread is free again: it answers the next request.
    with Conn(srv.host, srv.port) as c:
        assert c.request("GET", "/").body == b"ok"


# -- 12: static files: a file is no directory; dates before 1970 -------------------------

#: A file's date before 1970: 1969-01-01T00:00:00Z.
BEFORE_1970 = -86400 * 365


@pytest.fixture
def static_dir(tmp_path):
    (tmp_path / "a.txt").write_bytes(b"a\n")
    old = tmp_path / "old.txt"
    old.write_bytes(b"old\n")
    os.utime(old, (BEFORE_1970, BEFORE_1970))
    return tmp_path


@pytest.mark.parametrize("kind", KINDS)
def test_12_static_file_with_trailing_slash_is_404(kind, static_dir, start_server):
    srv = build(kind, start_server, "static", {"dirs": {"/s": str(static_dir)}})
    with Conn(srv.host, srv.port) as c:
        assert c.request("GET", "/s/a.txt").body == b"a\n"
        for path in ("/s/a.txt/", "/s/a.txt/."):
            assert c.request("GET", path).status == 404, path


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(
    "field, value, status",
    [
        (None, None, 200),
        ("If-Modified-Since", "Wed, 01 Jan 1969 00:00:00 GMT", 304),
        ("If-Modified-Since", "Wednesday, 01-Jan-69 00:00:00 GMT", 304),
        ("If-Modified-Since", "Wed Jan  1 00:00:00 1969", 304),
        ("If-Modified-Since", "Thu, 01 Jan 1970 00:00:00 GMT", 304),
        ("If-Modified-Since", "Tue, 31 Dec 1968 23:59:59 GMT", 200),
        ("If-Unmodified-Since", "Tue, 31 Dec 1968 23:59:59 GMT", 412),
        ("If-Unmodified-Since", "Wed, 01 Jan 1969 00:00:00 GMT", 200),
    ],
)
def test_12_static_file_dated_before_1970(kind, field, value, status, static_dir, start_server):
    srv = build(kind, start_server, "static", {"dirs": {"/s": str(static_dir)}})
    headers = [(field, value)] if field else []
    with Conn(srv.host, srv.port) as c:
        resp = c.request("GET", "/s/old.txt", headers=headers)
    assert resp.status == status, resp
    # The true date: an HTTP-date can write years before 1970.
    if status != 412:
        assert resp.header("last-modified") == "Wed, 01 Jan 1969 00:00:00 GMT"


# -- 14: HTTP/2, a Host that differs from :authority is malformed ------------------------


def h2_exchange(srv, streams: dict[int, list[tuple[str, str]]]) -> dict[int, tuple]:
    """Sends each stream's head (no body) on one h2c connection; returns per
    stream ``(":status" or "reset", body)``."""
    import h2.config
    import h2.connection
    import h2.events

    # Unvalidated: the h2 library itself refuses to send a mismatched Host.
    config = h2.config.H2Configuration(client_side=True, validate_outbound_headers=False)
    conn = h2.connection.H2Connection(config)
    conn.initiate_connection()
    for stream_id, head in streams.items():
        conn.send_headers(stream_id, head, end_stream=True)
    got: dict[int, list] = {sid: [None, b""] for sid in streams}
    done: set[int] = set()
    with socket.create_connection((srv.host, srv.port), timeout=10) as s:
        s.sendall(conn.data_to_send())
        while len(done) < len(streams):
            data = s.recv(65536)
            assert data, f"closed with streams {set(streams) - done} open"
            for event in conn.receive_data(data):
                sid = getattr(event, "stream_id", None)
                if isinstance(event, h2.events.ResponseReceived):
                    got[sid][0] = dict(event.headers)[b":status"].decode()
                elif isinstance(event, h2.events.DataReceived):
                    got[sid][1] += event.data
                    conn.acknowledge_received_data(event.flow_controlled_length, sid)
                elif isinstance(event, h2.events.StreamEnded):
                    done.add(sid)
                elif isinstance(event, h2.events.StreamReset):
                    got[sid][0] = "reset"
                    done.add(sid)
            s.sendall(conn.data_to_send())
    return {sid: tuple(v) for sid, v in got.items()}


def test_14_http2_host_differing_from_authority_is_refused(start_server):
    srv = start_server("tls_apps:app")
    pseudo = [(":method", "GET"), (":scheme", "http"), (":path", "/env")]
    authority = f"127.0.0.1:{srv.port}"
    got = h2_exchange(
        srv,
        {
            1: [*pseudo, (":authority", authority), ("host", "evil.example")],
            3: [*pseudo, (":authority", authority), ("host", authority)],
            5: [*pseudo, (":authority", authority)],
        },
    )
    # Malformed (RFC 9113 §8.3.1): a 400 on the stream (or a reset), never served.
    assert got[1][0] in ("400", "reset"), got[1]
    assert b"evil.example" not in got[1][1]
    # The connection goes on; a matching Host, or none, is served.
    for sid in (3, 5):
        assert got[sid][0] == "200", got[sid]
        assert json.loads(got[sid][1])["HTTP_HOST"] == authority


# -- 10: --compress keeps a body shorter than its Content-Length visibly cut ----------------


@pytest.mark.parametrize("path", ["/short", "/short-gen"])
@pytest.mark.parametrize("compress", [False, True], ids=["plain", "compress"])
def test_10_compressed_short_body_stays_cut(compress, path, start_server):
    options = ["--compress"] if compress else []
    srv = start_server("hostile_apps:app", options=options)
    with Conn(srv.host, srv.port) as c:
        c.send(build_request("GET", path, headers=[("Accept-Encoding", "gzip")]))
        resp = c.read_head()
        rest = c.read_to_eof()  # the server closes: the response is incomplete
    assert resp.status == 200
    if compress:
        assert resp.header("content-encoding") == "gzip"
        assert resp.header("transfer-encoding") == "chunked"
        assert not rest.endswith(b"0\r\n\r\n"), rest
    else:
        assert resp.header("content-length") == "4096"
        assert len(rest) == 100


def test_10_compressed_endless_body_ends_at_its_length(start_server):
    """With --compress too, an iterable that goes on past its
    Content-Length (item 13) is not read forever."""
    srv = start_server(
        "hostile_apps:app", options=["--compress", "--workers", "1", "--threads", "1"]
    )
    with Conn(srv.host, srv.port) as c:
        resp = c.request("GET", "/zero-text?5000", headers=[("Accept-Encoding", "gzip")])
        assert resp.status == 200 and gzip.decompress(resp.body) == b"\0" * 5000
    with Conn(srv.host, srv.port) as c:
        assert c.request("GET", "/").body == b"ok"
