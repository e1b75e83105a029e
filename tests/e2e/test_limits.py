"""Every limit at its boundary, and slow or numerous clients.

Size limits run on one server with small values (``LIMITS``): exactly at a
limit is served, one byte or field over is refused with its status (414,
431, 413) and a close. Timeouts and connection counts run on dedicated
servers with one-second timeouts: a slowloris client is cut off while
others are served, an idle keep-alive connection is closed, a connection
over ``--max-connections`` waits (not refused) until a slot frees, and
thousands of idle connections neither slow a new request nor cost much
memory (RSS of the server's process tree, from ``/proc``).
"""

from __future__ import annotations

import json
import os
import resource
import select
import threading
import time
import uuid

import pytest
from rawhttp import build_request, chunk_encode

LINE, FIELDS, FIELD_SIZE, MAX_BODY = 100, 10, 100, 1000
LIMITS = (
    "--limit-request-line", str(LINE),
    "--limit-request-fields", str(FIELDS),
    "--limit-request-field-size", str(FIELD_SIZE),
    "--max-body-size", str(MAX_BODY),
    "--header-timeout", "1",
    "--io-timeout", "1",
)  # fmt: skip

pytestmark = pytest.mark.qiao_only  # --max-body-size, --header-timeout, exact boundaries


@pytest.fixture
def limited(pooled):
    return pooled("apps:probe", options=LIMITS)


def exchange(server, data: bytes):
    """Send ``data``; return the response and whether the server then closed."""
    with server.connect(timeout=5) as c:
        c.send(data)
        resp = c.read_response()
        return resp, c.is_closed(timeout=0.3 if resp.status < 400 else 3)


def hits(server, path: str) -> int:
    with server.connect(timeout=5) as c:
        return int(c.request("GET", f"/__hits?path={path}").body)


def rss_kib(pid: int) -> int:
    """VmRSS of ``pid`` and all its descendants, in KiB."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry))
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        todo += children.get(p, [])
        try:
            with open(f"/proc/{p}/status") as f:
                total += next(int(x.split()[1]) for x in f if x.startswith("VmRSS:"))
        except (OSError, StopIteration):
            pass
    return total


# -- size limits ----------------------------------------------------------------


@pytest.mark.parametrize("extra, status", [(0, 200), (1, 414), (500, 414)])
def test_request_line_limit(limited, extra, status):
    pad = LINE - len("GET / HTTP/1.1") + extra
    data = b"GET /" + b"a" * pad + b" HTTP/1.1\r\nHost: h\r\n\r\n"
    resp, closed = exchange(limited, data)
    assert resp.status == status
    assert closed == (status != 200)
    if status == 200:
        assert json.loads(resp.body)["path"] == "/" + "a" * pad


@pytest.mark.parametrize("count, status", [(FIELDS, 200), (FIELDS + 1, 431), (FIELDS * 5, 431)])
def test_request_fields_limit(limited, count, status):
    fields = [(f"X-F{i}", "v") for i in range(count - 1)]  # plus Host
    resp, closed = exchange(limited, build_request("GET", "/fields", fields))
    assert resp.status == status
    assert closed == (status != 200)


@pytest.mark.parametrize("extra, status", [(0, 200), (1, 431), (5000, 431)])
def test_request_field_size_limit(limited, extra, status):
    value = "v" * (FIELD_SIZE - len("X-Big: ") + extra)
    resp, closed = exchange(limited, build_request("GET", "/field", [("X-Big", value)]))
    assert resp.status == status
    assert closed == (status != 200)
    if status == 200:
        assert json.loads(resp.body)["headers"]["HTTP_X_BIG"] == value


def test_trailing_whitespace_counts_toward_field_size(limited):
    # The whole line counts (as gunicorn counts it): a limit that ignored
    # trailing whitespace could not be applied to a line still arriving
    # without depending on how the client's bytes were split.
    at_limit = b"GET / HTTP/1.1\r\nHost: h\r\nX-Big: " + b"v" * (FIELD_SIZE - 7) + b"\r\n\r\n"
    assert exchange(limited, at_limit)[0].status == 200
    over = b"GET / HTTP/1.1\r\nHost: h\r\nX-Big: " + b"v" * (FIELD_SIZE - 7) + b" \t \r\n\r\n"
    assert exchange(limited, over)[0].status == 431


@pytest.mark.parametrize("size, status", [(MAX_BODY, 200), (MAX_BODY + 1, 413)])
def test_max_body_content_length(limited, size, status):
    path = f"/body-{uuid.uuid4().hex}"
    with limited.connect(timeout=5) as c:
        # the head alone: a 413 must come without the body being sent
        c.send(b"POST %s HTTP/1.1\r\nHost: h\r\nContent-Length: %d\r\n\r\n" % (path.encode(), size))
        if status == 200:
            c.send(b"b" * size)
        resp = c.read_response()
        assert resp.status == status
        if status == 200:
            assert json.loads(resp.body)["body"] == "b" * size
        else:
            assert c.is_closed(timeout=3)
    assert hits(limited, path) == (1 if status == 200 else 0), "the app ran for a 413"


def test_max_body_chunked_at_limit(limited):
    body = chunk_encode([b"c" * 600, b"c" * (MAX_BODY - 600)])
    resp, closed = exchange(
        limited, build_request("POST", "/chunked", [("Transfer-Encoding", "chunked")], body)
    )
    assert resp.status == 200 and len(json.loads(resp.body)["body"]) == MAX_BODY
    assert not closed


@pytest.mark.parametrize("slow", [False, True], ids=["whole", "second-chunk-late"])
def test_max_body_chunked_over_limit(limited, slow):
    path = f"/chunked-{uuid.uuid4().hex}"
    head = build_request("POST", path, [("Transfer-Encoding", "chunked")])
    first, rest = b"258\r\n" + b"c" * 600 + b"\r\n", chunk_encode([b"c" * 600])
    with limited.connect(timeout=5) as c:
        c.send(head + first)
        if slow:
            time.sleep(0.3)  # let the app start reading
        c.send(rest)
        resp = c.read_response()
        assert 400 <= resp.status < 600
        assert c.is_closed(timeout=3)
    ran, failed = hits(limited, path), hits(limited, f"read-error:{path}")
    if resp.status == 413:
        assert ran == failed, "the app ran, yet its read did not raise"
    else:
        assert ran == failed == 1, f"{resp.status} without the app's read raising"


# -- timeouts ----------------------------------------------------------------------


def test_slowloris_is_cut_off_while_others_are_served(start_server):
    srv = start_server("apps:probe", options=("--header-timeout", "1"))
    outcome = {}

    def slowloris():
        """Trickle a head; note when the server answers or closes."""
        with srv.connect(timeout=6) as c:
            start = time.monotonic()
            try:
                for b in b"GET / HTTP/1.1\r\nHost: h\r\nX-Slow: " + b"z" * 100:
                    c.send(bytes([b]))
                    if select.select([c.sock], [], [], 0.3)[0]:
                        break
                else:
                    outcome["status"] = "never cut off"
            except OSError:
                pass  # reset while sending: cut off
            outcome["elapsed"] = time.monotonic() - start
            try:
                data = c.read_to_eof()
            except OSError:
                data = b""
            outcome.setdefault("status", data[:12].decode("latin-1") or "closed")

    t = threading.Thread(target=slowloris, daemon=True)
    t.start()
    served = 0
    deadline = time.monotonic() + 1.5
    while time.monotonic() < deadline:
        with srv.connect(timeout=2) as c:
            assert c.request("GET", "/meanwhile").status == 200
            served += 1
        time.sleep(0.05)
    t.join(10)
    assert served >= 10
    assert outcome["status"] in ("HTTP/1.1 408", "closed"), outcome
    # Not before the header timeout; and at all (the trickle of 100+ bytes
    # at one every 0.3 s would take 30 s uncut: "never cut off").
    assert outcome["elapsed"] >= 0.9, outcome


def test_idle_keepalive_connection_closed_after_keepalive(start_server):
    srv = start_server("apps:probe", options=("--keepalive", "1"))
    with srv.connect(timeout=5) as c:
        assert c.request("GET", "/ka").status == 200
        start = time.monotonic()
        assert not c.is_closed(timeout=0.5), "closed before the keep-alive timeout"
        # Closed by the server, not by the client's read timeout (10 s, far
        # past --keepalive 1 and the loop's sweep), and not before 1 s.
        assert c.is_closed(timeout=10)
        assert time.monotonic() - start >= 0.9


# -- connection counts -----------------------------------------------------------------


def test_max_connections_queues_instead_of_refusing(start_server):
    srv = start_server("apps:probe", options=("--max-connections", "20", "--keepalive", "30"))
    idle = []
    try:
        for _ in range(20):
            c = srv.connect(timeout=5)
            assert c.request("GET", "/idle").status == 200
            idle.append(c)
        extra = srv.connect(timeout=5)
        extra.send(build_request("GET", "/twenty-first"))
        extra.sock.settimeout(0.5)
        with pytest.raises(TimeoutError):
            extra.read_response()  # not accepted while 20 are open
        extra.sock.settimeout(5)
        idle.pop().close()
        start = time.monotonic()
        resp = extra.read_response()
        assert resp.status == 200 and time.monotonic() - start < 2
        extra.close()
    finally:
        for c in idle:
            c.close()


@pytest.fixture
def nofile():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    except (ValueError, OSError):
        pass
    if resource.getrlimit(resource.RLIMIT_NOFILE)[0] < 2200:
        pytest.skip(f"RLIMIT_NOFILE cannot reach 2200 (hard limit {hard})")
    yield
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


@pytest.mark.timeout(60)
def test_2000_idle_connections_cost_little(start_server, nofile):
    srv = start_server("apps:probe", options=("--keepalive", "30", "--header-timeout", "30"))
    with srv.connect() as c:
        assert c.request("GET", "/warm").status == 200
    time.sleep(0.2)
    base = rss_kib(srv.proc.pid)
    idle = []
    try:
        for i in range(2000):
            c = srv.connect(timeout=5)
            if i % 2:  # half silent, half keep-alive after one request
                c.send(build_request("GET", "/idle"))
            idle.append(c)
        for c in idle[1::2]:
            assert c.read_response().status == 200
        start = time.monotonic()
        with srv.connect(timeout=5) as c:
            assert c.request("GET", "/fresh").status == 200
        assert time.monotonic() - start < 1.0
        grown = (rss_kib(srv.proc.pid) - base) / 1024
        assert grown < 40, f"RSS grew {grown:.1f} MiB for 2000 idle connections"
    finally:
        for c in idle:
            c.close()
    with srv.connect(timeout=5) as c:
        assert c.request("GET", "/after").status == 200


def test_200_partial_heads_are_cut_and_memory_returns(start_server):
    """Two bursts of 200 partial heads: each is cut by the header timeout; the
    first may leave its read buffers in the loop's pool (at most 256 of 64 KiB,
    event_loop.rs), the second must not add to it (no leak)."""
    srv = start_server("apps:probe", options=("--header-timeout", "1"))
    with srv.connect() as c:
        assert c.request("GET", "/warm").status == 200
    time.sleep(0.2)
    rss = [rss_kib(srv.proc.pid)]
    partial = b"GET /p HTTP/1.1\r\nHost: h\r\nX-Pad: " + b"p" * 4000
    for _ in range(2):
        conns = []
        try:
            for _ in range(200):
                c = srv.connect(timeout=5)
                c.send(partial)
                conns.append(c)
            start = time.monotonic()
            for c in conns:
                c.sock.settimeout(4)
                data = c.read_to_eof()  # times out if the server never cuts it
                assert not data or data.startswith(b"HTTP/1.1 408"), data[:60]
            assert time.monotonic() - start <= 3.0
        finally:
            for c in conns:
                c.close()
        time.sleep(0.3)
        rss.append(rss_kib(srv.proc.pid))
    base, first, second = (kib / 1024 for kib in rss)
    assert first - base < 17, f"RSS {base:.1f} -> {first:.1f} MiB after 200 partial heads"
    assert second - first < 2, f"RSS {first:.1f} -> {second:.1f} MiB: memory not reused"
    with srv.connect(timeout=5) as c:
        assert c.request("GET", "/after").status == 200
