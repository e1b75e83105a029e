"""Request smuggling and framing attacks, end to end.

Each attack hides a second request (``GET /smuggled-<uuid>``) where a lenient
or confused parser would execute it: behind conflicting Content-Length and
Transfer-Encoding (CL.TE, TE.CL), behind obfuscated Transfer-Encoding fields
(TE.TE), inside a body, after a bad chunk, or after a body the application
did not read. ``apps:probe`` counts the requests that reach each path; a
smuggled path must never be counted, and no response may come for it.

Also: a refusal (400, 413) reaches a client that is still sending a large
body intact (lingering close), and an oversize chunk size is refused.
Header injection through the application is tested in ``test_errors.py``.
"""

from __future__ import annotations

import socket
import threading
import uuid

import pytest
from conftest import IS_GUNICORN
from rawhttp import build_request

QUICK = () if IS_GUNICORN else ("--header-timeout", "1", "--io-timeout", "1")
HOST = b"Host: example.com\r\n"


@pytest.fixture
def probe(pooled):
    return pooled("apps:probe", options=QUICK)


@pytest.fixture
def small_body(pooled):
    """Refuses bodies over 1 KiB (413)."""
    return pooled("apps:probe", options=("--max-body-size", "1024", *QUICK))


def smuggled() -> tuple[str, bytes]:
    """A unique path and a complete request for it."""
    path = f"/smuggled-{uuid.uuid4().hex}"
    return path, f"GET {path} HTTP/1.1\r\nHost: example.com\r\n\r\n".encode()


def hits(server, path: str) -> int:
    with server.connect(timeout=5) as c:
        resp = c.request("GET", f"/__hits?path={path}")
        assert resp.status == 200
        return int(resp.body)


def assert_refused(server, data: bytes, statuses=(400,)):
    """``data`` gets one refusal, then a close with no further bytes."""
    with server.connect(timeout=5) as c:
        try:
            c.send(data)
        except (BrokenPipeError, ConnectionResetError):
            pass
        resp = c.read_response()
        assert resp.status in statuses, (resp.status, resp.body[:200])
        assert c.is_closed(timeout=3), "connection left open after a refusal"


def post_head(*fields: bytes, target=b"/carrier") -> bytes:
    return b"POST " + target + b" HTTP/1.1\r\n" + HOST + b"".join(f + b"\r\n" for f in fields)


def sender(c, data: bytes, piece=65536):
    """Send ``data`` from a thread, ignoring the server closing on us."""

    def run():
        try:
            for i in range(0, len(data), piece):
                c.sock.sendall(data[i : i + piece])
        except OSError:
            pass

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t


# -- CL.TE, TE.CL, TE.TE -------------------------------------------------------------


def test_cl_te_desync_is_refused(probe):
    path, inner = smuggled()
    body = b"0\r\n\r\n" + inner
    data = post_head(b"Content-Length: %d" % len(body), b"Transfer-Encoding: chunked") + b"\r\n"
    assert_refused(probe, data + body)
    assert hits(probe, path) == 0


def test_te_cl_desync_is_refused(probe):
    path, inner = smuggled()
    chunk = b"%x\r\n%s\r\n0\r\n\r\n" % (len(inner), inner)
    data = post_head(b"Transfer-Encoding: chunked", b"Content-Length: 4") + b"\r\n" + chunk
    assert_refused(probe, data)
    assert hits(probe, path) == 0


TE_OBFUSCATIONS = {
    "space-before-colon": b"Transfer-Encoding : chunked",
    "xchunked": b"Transfer-Encoding: xchunked",
    "chunked-then-junk-field": b"Transfer-Encoding: chunked\r\nTransfer-Encoding: x",
    "junk-then-chunked": b"Transfer-Encoding: x\r\nTransfer-Encoding: chunked",
    "tab-value-with-cl": b"Transfer-Encoding:\tchunked",
    "leading-space-line": b"X: y\r\n Transfer-Encoding: chunked",
    "obs-fold-value": b"Transfer-Encoding:\r\n chunked",
    "bare-lf-before": b"X: y\nTransfer-Encoding: chunked",
    "quoted": b'Transfer-Encoding: "chunked"',
    "vertical-tab": b"Transfer-Encoding: \x0bchunked",
    "nul-in-value": b"Transfer-Encoding: chunked\x00",
    "name-with-lf": b"Transfer-Encoding\n: chunked",
    "chunked-comma-identity": b"Transfer-Encoding: chunked, identity",
}
# Valid spellings of "chunked" (HTAB is OWS; a bare LF may end a line, RFC 9112
# §2.2): alone, they frame the body as chunked, smuggled request included.
VALID_ALONE = {"tab-value-with-cl", "bare-lf-before"}


@pytest.mark.qiao_only  # gunicorn passes several of these to the app instead of refusing
@pytest.mark.parametrize("field", TE_OBFUSCATIONS.values(), ids=TE_OBFUSCATIONS.keys())
def test_te_te_obfuscation_with_content_length_is_refused(probe, field):
    """CL says the smuggled request is body; a TE-reading parser would run it."""
    path, inner = smuggled()
    body = b"0\r\n\r\n" + inner
    data = post_head(field, b"Content-Length: %d" % len(body)) + b"\r\n" + body
    assert_refused(probe, data, statuses=(400, 501))
    assert hits(probe, path) == 0


@pytest.mark.qiao_only
@pytest.mark.parametrize("name", TE_OBFUSCATIONS)
def test_te_te_obfuscation_alone(probe, name):
    """Without CL: a parser that ignores the odd TE would see a bodyless POST
    and run the chunk's content as the next request."""
    path, inner = smuggled()
    data = post_head(TE_OBFUSCATIONS[name]) + b"\r\n"
    data += b"%x\r\n%s\r\n0\r\n\r\n" % (len(inner), inner)
    if name in VALID_ALONE:
        with probe.connect(timeout=5) as c:
            c.send(data)
            resp = c.read_response()
            assert resp.status == 200 and path.encode() in resp.body
            assert not c.is_closed(timeout=0.2)
    else:
        assert_refused(probe, data, statuses=(400, 501))
    assert hits(probe, path) == 0


# -- a request hidden in a body -------------------------------------------------------


@pytest.mark.parametrize("framing", ["content-length", "chunked"])
def test_request_in_body_is_body(probe, framing):
    path, inner = smuggled()
    if framing == "chunked":
        data = post_head(b"Transfer-Encoding: chunked") + b"\r\n"
        data += b"%x\r\n%s\r\n0\r\n\r\n" % (len(inner), inner)
    else:
        data = post_head(b"Content-Length: %d" % len(inner)) + b"\r\n" + inner
    with probe.connect(timeout=5) as c:
        c.send(data + build_request("GET", "/after-carrier"))
        first = c.read_response()
        assert first.status == 200
        assert first.body.count(path.encode()) == 1  # the echo of the body
        second = c.read_response()
        assert b'"path": "/after-carrier"' in second.body
        assert not c.is_closed(timeout=0.2)
    assert hits(probe, path) == 0


@pytest.mark.qiao_only  # gunicorn answers "5\r\nhelloXX" with 400 too, but differs on others
@pytest.mark.parametrize(
    "bad_chunks",
    [
        b"5\r\nhelloXX0\r\n\r\n",
        b"zz\r\nhello\r\n0\r\n\r\n",
        b"5\r\nhello\r\n0\r\nbad trailer\r\n\r\n",
        b"ffffffffffffffff\r\n",
    ],
    ids=["data-without-crlf", "bad-size", "bad-trailer", "16-digit-size"],
)
def test_pipelined_request_after_bad_chunk_is_never_served(probe, bad_chunks):
    path, inner = smuggled()
    data = post_head(b"Transfer-Encoding: chunked") + b"\r\n" + bad_chunks + inner
    assert_refused(probe, data)
    assert hits(probe, path) == 0


# -- unread bodies ---------------------------------------------------------------------


def test_small_unread_body_is_drained_not_parsed(probe):
    path, inner = smuggled()
    body = b"x" * 1000 + inner
    data = post_head(b"Content-Length: %d" % len(body), target=b"/unread?noread") + b"\r\n" + body
    with probe.connect(timeout=5) as c:
        c.send(data + build_request("GET", "/after-unread"))
        assert c.read_response().status == 200
        second = c.read_response()
        assert b'"path": "/after-unread"' in second.body
    assert hits(probe, path) == 0


@pytest.mark.qiao_only  # the 1 MiB drain bound is qiao's
def test_large_unread_body_closes_the_connection(probe):
    path, inner = smuggled()
    body = b"x" * (2 << 20) + inner
    head = post_head(b"Content-Length: %d" % len(body), target=b"/unread?noread") + b"\r\n"
    with probe.connect(timeout=8) as c:
        c.send(head)
        t = sender(c, body + inner)
        resp = c.read_response()
        assert resp.status == 200
        assert c.is_closed(timeout=5), "a 2 MiB unread body must not be drained"
        t.join(5)
    assert hits(probe, path) == 0


# -- lingering close, oversize chunks ---------------------------------------------------


@pytest.mark.qiao_only  # --max-body-size is qiao's
def test_413_arrives_intact_while_client_still_sends(small_body):
    path, inner = smuggled()
    body = b"y" * (8 << 20)
    with small_body.connect(timeout=8) as c:
        c.send(post_head(b"Content-Length: %d" % (len(body) + len(inner))) + b"\r\n")
        t = sender(c, body + inner)
        resp = c.read_response()
        assert resp.status == 413
        assert resp.body.startswith(b"request body too large")
        assert "close" in resp.connection_tokens()
        c.is_closed(timeout=5)
        t.join(10)
    assert hits(small_body, path) == 0


@pytest.mark.qiao_only  # gunicorn closes at once: the client may see a reset
def test_400_arrives_intact_while_client_still_sends(probe):
    body = b"5\r\nhello\r\nzz\r\n" + b"z" * (8 << 20)
    with probe.connect(timeout=8) as c:
        c.send(post_head(b"Transfer-Encoding: chunked") + b"\r\n")
        t = sender(c, body)
        resp = c.read_response()
        assert resp.status == 400
        assert len(resp.body) == int(resp.header("content-length"))
        t.join(10)


@pytest.mark.qiao_only
def test_oversize_chunk_streamed_past_max_body_is_413(small_body):
    with small_body.connect(timeout=8) as c:
        c.send(post_head(b"Transfer-Encoding: chunked") + b"\r\nfffffffffffffff\r\n")
        t = sender(c, b"c" * (1 << 20))
        resp = c.read_response()
        assert resp.status == 413
        t.join(10)


@pytest.mark.qiao_only
def test_chunk_size_over_max_body_is_413_at_once(small_body):
    with small_body.connect(timeout=5) as c:
        c.send(post_head(b"Transfer-Encoding: chunked") + b"\r\n100000\r\n")
        c.sock.settimeout(0.8)  # under the 1 s io-timeout: a 408 would come later
        try:
            resp = c.read_response()
        except socket.timeout:
            pytest.fail("no answer to a 1 MiB chunk under a 1 KiB limit")
        assert resp.status == 413


def test_server_survives_the_attacks(probe):
    with probe.connect() as c:
        assert c.request("GET", "/still-alive").status == 200
