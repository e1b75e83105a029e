"""The access log: gunicorn's format atoms, JSON lines, bad formats refused
at start-up, and a writer that never holds up a request (a destination that
blocks, a handler that is slow) yet writes every queued line on a graceful
stop.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import json
import os
import re
import signal
import time

import pytest
from conftest import free_port
from rawhttp import build_request, wait_for
from test_cli import assert_one_line_error, run_cli

pytestmark = pytest.mark.qiao_only

EVERY_ATOM = "|".join(
    ["%(h)s", "%(l)s", "%(u)s", "%(t)s", "%(r)s", "%(m)s", "%(U)s", "%(q)s", "%(H)s"]
    + ["%(s)s", "%(B)s", "%(b)s", "%(f)s", "%(a)s", "%(T)s", "%(M)s", "%(D)s", "%(L)s"]
    + ["%(p)s", "%({x-custom}i)s", "%({X-Test}o)s", "%({remote_port}e)s", "%({nothing}i)s"]
)


def lines_of(path, count, timeout=5.0) -> list[str]:
    """The file's lines, once it has at least ``count`` of them."""

    def read():
        if not os.path.exists(path):
            return None
        with open(path) as f:
            lines = f.read().splitlines()
        return lines if len(lines) >= count else None

    lines = wait_for(read, timeout)
    assert lines, f"{path} did not get {count} lines"
    return lines


def test_default_format_is_combined_plus_duration(start_server, tmp_path):
    log = tmp_path / "access.log"
    srv = start_server("apps:app", options=("--access-log", str(log)))
    with srv.connect() as c:
        headers = [("User-Agent", "agent/1.0"), ("Referer", "http://ref.example/")]
        assert c.request("GET", "/hello?x=1", headers=headers).status == 200
        assert c.request("HEAD", "/hello").status == 200
    get, head = lines_of(log, 2)
    stamp = r"\[\d\d/\w{3}/\d{4}:\d\d:\d\d:\d\d [+-]\d{4}\]"
    assert re.fullmatch(
        rf'127\.0\.0\.1 - - {stamp} "GET /hello\?x=1 HTTP/1\.1" 200 11 '
        r'"http://ref\.example/" "agent/1\.0" \d+\.\d{6}',
        get,
    ), get
    # %(b)s: '-' when no body byte was sent (common log format)
    head_line = rf'127\.0\.0\.1 - - {stamp} "HEAD /hello HTTP/1\.1" 200 - "-" "-" \S+'
    assert re.fullmatch(head_line, head), head


def test_every_atom(start_server, tmp_path):
    log = tmp_path / "access.log"
    srv = start_server(
        "apps:app", options=("--access-log", str(log), "--access-logformat", EVERY_ATOM)
    )
    auth = base64.b64encode(b"alice:secret").decode()
    with srv.connect() as c:
        port = c.sock.getsockname()[1]
        headers = [
            ("Authorization", f"Basic {auth}"),
            ("User-Agent", "ua"),
            ("Referer", "http://r/"),
            ("X-Custom", "custom value"),
        ]
        assert c.request("GET", "/hello?a=1&b=2", headers=headers).status == 200
    fields = lines_of(log, 1)[0].split("|")
    assert fields[:3] == ["127.0.0.1", "-", "alice"]  # h l u
    assert re.fullmatch(r"\[\d\d/\w{3}/\d{4}:\d\d:\d\d:\d\d [+-]\d{4}\]", fields[3])
    assert fields[4:9] == ["GET /hello?a=1&b=2 HTTP/1.1", "GET", "/hello", "a=1&b=2", "HTTP/1.1"]
    status, big_b, small_b, referer, agent, secs, millis, micros, decimal = fields[9:18]
    assert (status, big_b, small_b, referer, agent) == ("200", "11", "11", "http://r/", "ua")
    assert secs == "0" and int(millis) < 1000 and int(micros) < 1_000_000
    assert re.fullmatch(r"0\.\d{6}", decimal)
    assert abs(float(decimal) * 1e6 - int(micros)) <= 1
    pid, custom, x_test, remote_port, missing = fields[18:]
    assert re.fullmatch(r"<\d+>", pid) and pid != f"<{srv.proc.pid}>"  # a worker's
    assert custom == "custom value"
    assert x_test == "hello"  # a response header the application set
    assert remote_port == str(port)
    assert missing == "-"


def test_json_lines(start_server, tmp_path):
    log = tmp_path / "access.jsonl"
    options = ("--access-log", str(log), "--access-log-format", "json")
    srv = start_server("apps:app", options=options)
    with srv.connect() as c:
        headers = [("User-Agent", 'quote " and \\ backslash')]
        assert c.request("GET", "/hello?q=%22x%22", headers=headers).status == 200
        assert c.request("POST", "/echo", body=b"12345").status == 200
        assert c.request("GET", "/status?code=404").status == 404
    records = [json.loads(line) for line in lines_of(log, 3)]
    first, echo, missing = records
    assert first["method"] == "GET" and first["uri"] == "/hello?q=%22x%22"
    assert first["status"] == 200 and first["bytes"] == 11
    assert first["user_agent"] == 'quote " and \\ backslash'
    assert first["remote_addr"] == "127.0.0.1" and first["protocol"] == "HTTP/1.1"
    assert first["referer"] is None and isinstance(first["pid"], int)
    assert 0 <= first["duration"] < 5 and "T" in first["time"]
    assert (echo["method"], echo["bytes"]) == ("POST", 5)
    assert missing["status"] == 404


@pytest.mark.parametrize(
    "fmt, needle",
    [("%(h)d", "bad access log format"), ("100%", "100%")],
)
def test_bad_format_is_refused_at_start(fmt, needle):
    proc = run_cli("--bind", f"127.0.0.1:{free_port()}", "--access-logformat", fmt, "apps:app")
    assert proc.returncode == 2
    assert_one_line_error(proc, "--access-logformat", needle)


def test_unknown_atom_is_a_dash_with_a_warning(start_server, tmp_path):
    """gunicorn writes an atom it does not know as '-': a deployment whose
    format has one serves, and says so."""
    log = tmp_path / "access.log"
    fmt = "%(s)s %(nope)s %(m)s"
    srv = start_server("apps:app", options=("--access-log", str(log), "--access-logformat", fmt))
    with srv.connect() as c:
        assert c.request("GET", "/hello").status == 200
    assert wait_for(lambda: log.exists() and log.read_text().strip() == "200 - GET", 5)
    assert "%(nope)s is no atom; written as '-'" in srv.stderr()


def test_blocked_destination_does_not_block_requests(start_server, tmp_path):
    """The log is a FIFO that nobody reads: once its pipe is full, writing
    blocks for ever. Requests must go on being answered."""
    fifo = str(tmp_path / "access.fifo")
    os.mkfifo(fifo)
    # Opened for reading (so the server can open it for writing), never read.
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
    try:
        with contextlib.suppress(AttributeError, OSError):
            fcntl.fcntl(reader, fcntl.F_SETPIPE_SZ, 4096)
        srv = start_server("apps:app", options=("--access-log", fifo, "--graceful-timeout", "2"))
        started = time.monotonic()
        with srv.connect() as c:
            for i in range(400):
                assert c.request("GET", f"/hello?i={i}&pad={'x' * 200}").status == 200
        assert time.monotonic() - started < 15
        time.sleep(0.3)
        waiting = os.read(reader, 1 << 20)  # all the pipe holds: far from 400 lines
        assert 0 < waiting.count(b"\n") < 300
        assert srv.alive()
        srv.proc.send_signal(signal.SIGTERM)  # the writer is stuck: exit anyway
        assert srv.proc.wait(15) == 0
    finally:
        os.close(reader)


def test_slow_handler_is_off_the_request_path_and_flushed_on_stop(start_server, tmp_path):
    """A handler that takes 0.3 s a line (attached by the app, as a user
    would): requests do not wait for it, and SIGTERM still writes every
    queued line before the worker exits."""
    out = tmp_path / "slow.log"
    srv = start_server(
        "cfg_slowlog:app",
        options=("--access-log", os.devnull, "--access-logformat", "%(U)s %(q)s"),
        env={"CFG_SLOWLOG_FILE": str(out), "CFG_SLOWLOG_DELAY": "0.3"},
    )
    with srv.connect() as c:
        assert c.request("GET", "/warm-up").status == 200  # the worker has booted
        started = time.monotonic()
        for i in range(5):
            assert c.request("GET", f"/r?n={i}").status == 200
        assert time.monotonic() - started < 1.0, "requests waited for the log handler"
    written = out.read_text().splitlines() if out.exists() else []
    assert len(written) < 6, "expected lines still queued"
    srv.proc.send_signal(signal.SIGTERM)
    assert srv.proc.wait(15) == 0
    assert out.read_text().splitlines() == ["/warm-up "] + [f"/r n={i}" for i in range(5)]


NATIVE_FORMAT = "%(r)s|%(s)s|%(B)s|%(h)s|%(a)s|%({x-custom}i)s|%({qiao.native}e)s"


def native_server(start_server, tmp_path, fmt=NATIVE_FORMAT):
    """A server with ``--static /static`` and ``--proxy /up`` (to a second
    Qiao serving ``apps:app``) in front of ``apps:app``, logging to a file."""
    upstream = start_server("apps:app", binds=[f"127.0.0.1:{free_port()}"])
    public = tmp_path / "public"
    public.mkdir()
    (public / "hello.txt").write_bytes(b"hello static\n")
    log = tmp_path / "access.log"
    options = (
        *("--access-log", str(log), "--access-logformat", fmt),
        *("--static", f"/static={public}", "--proxy", f"/up={upstream.url}"),
    )
    return start_server("apps:app", options=options), log


def test_native_requests_are_logged(start_server, tmp_path):
    """Requests answered by --static and --proxy (bodies too: a large one
    arriving after its head, so the head's buffer is reused while it is
    read) appear in the access log with their status, body bytes and
    request fields, like the application's; the last ones are written on a
    graceful stop."""
    srv, log = native_server(start_server, tmp_path)
    ua = [("User-Agent", "agent/2"), ("X-Custom", "c1")]
    with srv.connect() as c:
        assert c.request("GET", "/static/hello.txt", headers=ua).status == 200
        assert c.request("HEAD", "/static/hello.txt").status == 200
        assert c.request("GET", "/static/hello.txt", headers=[("Range", "bytes=0-3")]).status == 206
        assert c.request("GET", "/static/missing.txt").status == 404
        assert c.request("GET", "/up/hello?x=1", headers=ua).status == 200
        assert c.request("POST", "/up/echo", body=b"12345").status == 200
        big = [*ua, ("Content-Length", "300000")]
        c.send(build_request("POST", "/up/echo?big", big))
        time.sleep(0.3)
        c.send(b"b" * 300_000)
        assert c.read_response().status == 200
        assert c.request("GET", "/hello").status == 200
        # Relayed chunked (no length upstream): the body's 24 bytes, not
        # the chunk framing, as for the application's own chunked answer.
        assert c.request("GET", "/up/chunked?n=3").body == b"chunk-0\nchunk-1\nchunk-2\n"
        assert c.request("GET", "/chunked?n=3").status == 200
    srv.proc.send_signal(signal.SIGTERM)
    assert srv.proc.wait(15) == 0
    lines = sorted(lines_of(log, 10))
    assert lines == sorted(
        [
            "GET /static/hello.txt HTTP/1.1|200|13|127.0.0.1|agent/2|c1|True",
            "HEAD /static/hello.txt HTTP/1.1|200|0|127.0.0.1|-|-|True",
            "GET /static/hello.txt HTTP/1.1|206|4|127.0.0.1|-|-|True",
            "GET /static/missing.txt HTTP/1.1|404|10|127.0.0.1|-|-|True",
            "GET /up/hello?x=1 HTTP/1.1|200|11|127.0.0.1|agent/2|c1|True",
            "POST /up/echo HTTP/1.1|200|5|127.0.0.1|-|-|True",
            "POST /up/echo?big HTTP/1.1|200|300000|127.0.0.1|agent/2|c1|True",
            "GET /hello HTTP/1.1|200|11|127.0.0.1|-|-|-",
            "GET /up/chunked?n=3 HTTP/1.1|200|24|127.0.0.1|-|-|True",
            "GET /chunked?n=3 HTTP/1.1|200|24|127.0.0.1|-|-|-",
        ]
    ), lines


def test_native_requests_in_json_lines(start_server, tmp_path):
    srv, log = native_server(start_server, tmp_path, fmt="json")
    with srv.connect() as c:
        headers = [("Referer", "http://r/"), ("User-Agent", "ua")]
        assert c.request("GET", "/static/hello.txt?v=2", headers=headers).status == 200
    # Batched: the line comes a little after the request, without a stop.
    (record,) = [json.loads(line) for line in lines_of(log, 1)]
    assert (record["method"], record["status"]) == ("GET", 200)
    assert record["uri"] == "/static/hello.txt?v=2"
    assert (record["bytes"], record["referer"], record["user_agent"]) == (13, "http://r/", "ua")
    assert record["protocol"] == "HTTP/1.1" and record["remote_addr"] == "127.0.0.1"
    assert 0 <= record["duration"] < 5


def test_native_requests_name_the_forwarded_client(start_server, tmp_path):
    """Behind a trusted proxy (``--forwarded-allow-ips``), ``%(h)s`` of a
    native request is the client its X-Forwarded-For names, as for the app."""
    upstream = start_server("apps:app", binds=[f"127.0.0.1:{free_port()}"])
    log = tmp_path / "access.log"
    options = (
        *("--access-log", str(log), "--access-logformat", "%(h)s %(U)s"),
        *("--forwarded-allow-ips", "127.0.0.1", "--proxy", f"/up={upstream.url}"),
    )
    srv = start_server("apps:app", options=options)
    with srv.connect() as c:
        forwarded = [("X-Forwarded-For", "203.0.113.9")]
        assert c.request("GET", "/up/hello", headers=forwarded).status == 200
        assert c.request("GET", "/hello", headers=forwarded).status == 200
    assert sorted(lines_of(log, 2)) == ["203.0.113.9 /hello", "203.0.113.9 /up/hello"]
