"""``--compress`` beyond the shared suite (``test_middleware_compress.py``
runs against it too): off by default; the same responses as the portable
``Compress`` for 304, files, empty bodies, HTTP/1.0, HEAD and an existing
``Vary`` (compared response by response); plain ``curl --compressed``; an
app failing mid-stream; the settings from the command line, a config file
and the environment, and their validation."""

from __future__ import annotations

import gzip
import subprocess
import sys

import pytest
from compress_apps import FILE_SIZE
from conftest import base_command, server_env
from mw_apps import text
from mw_servers import ChunkedReader, decode
from rawhttp import Conn

pytestmark = pytest.mark.qiao_only


@pytest.fixture
def native(pooled):
    return pooled("compress_apps:app", options=["--compress"])


@pytest.fixture
def portable(pooled):
    return pooled("compress_apps:portable")


def fetch(server, target, accept=None, method="GET", version="HTTP/1.1"):
    headers = [("Accept-Encoding", accept)] if accept is not None else []
    with Conn(server.host, server.port) as conn:
        return conn.request(method, target, headers=headers, version=version)


def test_off_by_default(pooled):
    server = pooled("compress_apps:app")
    resp = fetch(server, "/text?n=100000", "gzip, br, zstd")
    assert resp.header("content-encoding") is None
    assert resp.header("vary") is None
    assert resp.header("content-length") == "100000"
    assert resp.body == text(100000)


CASES = [
    ("/not-modified", "gzip", "GET", "HTTP/1.1"),
    ("/file", "gzip", "GET", "HTTP/1.1"),
    ("/file", None, "GET", "HTTP/1.1"),
    ("/file?cl=0", "br", "GET", "HTTP/1.1"),
    ("/file?cl=0", "identity", "GET", "HTTP/1.1"),
    ("/file", "zstd", "HEAD", "HTTP/1.1"),
    ("/empty-stream", "gzip", "GET", "HTTP/1.1"),
    ("/empty-list", "gzip", "GET", "HTTP/1.1"),
    ("/vary", "gzip", "GET", "HTTP/1.1"),
    ("/vary", None, "GET", "HTTP/1.1"),
    ("/text?n=50000", "gzip", "GET", "HTTP/1.0"),
    ("/text?n=50000", "br", "HEAD", "HTTP/1.0"),
    ("/list?n=5000", "zstd", "HEAD", "HTTP/1.1"),
    ("/stream?n=300000&chunk=1000", "gzip;q=0.5, br;q=0.4", "GET", "HTTP/1.0"),
    ("/html-write", "gzip", "GET", "HTTP/1.1"),
    ("/etag", "gzip;q=0", "GET", "HTTP/1.1"),
]


@pytest.mark.parametrize("target, accept, method, version", CASES)
def test_same_response_as_the_portable_class(native, portable, target, accept, method, version):
    ours = fetch(native, target, accept, method, version)
    theirs = fetch(portable, target, accept, method, version)

    def head(resp):
        fields = [(k.lower(), v) for k, v in resp.headers if k.lower() != "date"]
        if method == "HEAD" and resp.header("content-encoding"):
            # Behind the portable class the server saw only empty pieces
            # and framed them as an empty body (Content-Length: 0); the
            # engine knows the GET body's length is unknown and sends none.
            fields = [(k, v) for k, v in fields if (k, v) != ("content-length", "0")]
        return sorted(fields)

    assert (ours.status, head(ours)) == (theirs.status, head(theirs))
    if method == "HEAD":
        assert ours.body == theirs.body == b""
    else:
        coding = ours.header("content-encoding")
        assert decode(coding, ours.body) == decode(coding, theirs.body)


def test_file_is_compressed_whole(native):
    resp = fetch(native, "/file", "gzip")
    assert resp.header("content-encoding") == "gzip"
    assert resp.header("content-length") is None
    assert gzip.decompress(resp.body) == text(FILE_SIZE)
    plain = fetch(native, "/file")
    assert plain.header("content-length") == str(FILE_SIZE)
    assert plain.header("vary") == "Accept-Encoding"
    assert plain.body == text(FILE_SIZE)


def test_http10_is_close_delimited(native):
    resp = fetch(native, "/text?n=50000", "gzip", version="HTTP/1.0")
    assert resp.header("content-encoding") == "gzip"
    assert resp.header("transfer-encoding") is None
    assert resp.close_delimited
    assert gzip.decompress(resp.body) == text(50000)


@pytest.mark.needs_curl
def test_plain_curl_compressed(native):
    """curl's own Accept-Encoding (whatever codings its build supports)."""
    out = subprocess.run(
        ["curl", "-sS", "-D", "-", "--compressed", native.url + "/text?n=50000"],
        capture_output=True,
        timeout=30,
        check=True,
    ).stdout
    head, _, body = out.partition(b"\r\n\r\n")
    assert b"content-encoding: " in head.lower()
    assert body == text(50000)


def test_failure_mid_stream_cuts_the_response(native):
    """The part sent before the failure decodes; the chunked body never
    ends, the connection closes, and the server goes on serving."""
    mark = native.stderr_mark()
    with Conn(native.host, native.port, timeout=20) as conn:
        conn.send(b"GET /fail-midway HTTP/1.1\r\nHost: x\r\nAccept-Encoding: gzip\r\n\r\n")
        head = conn.read_head()
        assert head.status == 200
        assert head.header("content-encoding") == "gzip"
        reader, received = ChunkedReader(conn), b""
        with pytest.raises(EOFError):
            while True:
                piece = reader.some()
                assert piece, "the body ended normally despite the failure"
                received += piece
    import zlib

    prefix = zlib.decompressobj(31).decompress(received)
    assert len(prefix) >= 64 * 1024  # one codec flush's worth
    assert text(100_000).startswith(prefix)
    assert "failed mid-stream" in native.stderr_since(mark)
    assert fetch(native, "/text?n=100", "gzip").status == 200


def run_qiao(args, env=None, timeout=30):
    return subprocess.run(
        [*base_command(), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=server_env(env),
    )


@pytest.mark.parametrize(
    "args, message",
    [
        (["--compress-level", "br=12"], "br level must be in 0..11"),
        (["--compress-level", "deflate=1"], "unknown coding 'deflate'"),
        (["--compress-level", "gzip"], "expected CODING=LEVEL"),
        (["--compress-coding", "lz4"], "unknown coding 'lz4'"),
        (["--compress-type", "text"], "expected a media type"),
        (["--compress-min-size", "-1"], "expected an integer >= 0"),
    ],
)
def test_bad_settings_are_refused(args, message):
    result = run_qiao([*args, "compress_apps:app"])
    assert result.returncode == 2
    assert message in result.stderr


def test_settings_from_file_and_environment(tmp_path):
    config = tmp_path / "qiao.toml"
    config.write_text(
        'compress = true\ncompress_types = ["text/plain"]\ncompress_levels = ["gzip=9"]\n'
    )
    env = {"QIAO_COMPRESS_MIN_SIZE": "0", "QIAO_COMPRESS_CODINGS": "gzip,br"}
    result = run_qiao(["-c", str(config), "--print-config", "compress_apps:app"], env)
    assert result.returncode == 0, result.stderr
    lines = {line.split("#")[0].strip() for line in result.stdout.splitlines()}
    assert "compress = true" in lines
    assert 'compress_types = ["text/plain"]' in lines
    assert 'compress_levels = ["gzip=9"]' in lines
    assert "compress_min_size = 0" in lines
    assert 'compress_codings = ["gzip", "br"]' in lines


def test_configured_server(pooled):
    server = pooled(
        "compress_apps:app",
        options=[
            "--compress",
            "--compress-min-size=0",
            "--compress-type=application/json",
            "--compress-coding=gzip",
            "--compress-coding=br",
            "--compress-level=gzip=1",
        ],
    )
    resp = fetch(server, "/json", "zstd, br, gzip")
    assert resp.header("content-encoding") == "gzip"  # zstd not offered; tie -> gzip first
    assert gzip.decompress(resp.body).startswith(b'{"items": [')
    assert fetch(server, "/json", "zstd").header("content-encoding") is None
    assert fetch(server, "/text?n=5000", "gzip").header("content-encoding") is None


def test_qiao_serve_accepts_the_settings():
    """``qiao.serve(app, compress=True, ...)`` reaches the engine: a bad
    level given that way is refused before serving."""
    code = (
        "import qiao, compress_apps\n"
        "qiao.serve(compress_apps.app, '127.0.0.1:0', compress=True,"
        " compress_levels={'zstd': 99})\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=30,
        env=server_env(),
    )
    assert result.returncode != 0
    assert "zstd level must be in 1..=19" in result.stderr


def test_uwsgi_requests_negotiate_too(start_server):
    """Behind nginx's ``uwsgi_pass`` the header arrives as the CGI variable
    ``HTTP_ACCEPT_ENCODING``."""
    import socket

    from conftest import free_port
    from rawhttp import wait_for
    from test_uwsgi import cgi, packet

    port = free_port()
    server = start_server(
        "compress_apps:app",
        binds=[f"127.0.0.1:{free_port()}", f"uwsgi://127.0.0.1:{port}"],
        options=["--compress"],
    )
    assert wait_for(lambda: f"Listening at: uwsgi://127.0.0.1:{port}" in server.stderr(), 5)
    variables = cgi(
        uri="/text?n=20000",
        PATH_INFO="/text",
        SERVER_PROTOCOL="HTTP/1.0",
        HTTP_ACCEPT_ENCODING="br;q=0.5, gzip",
    )
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(packet(variables))
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    assert b"\r\nContent-Encoding: gzip\r\n" in head
    assert gzip.decompress(body) == text(20000)


def test_defaults_are_the_portable_class_defaults():
    from qiao import config
    from qiao._qiao import Compressor
    from qiao.middleware import compress

    assert config.DEFAULTS["compress_min_size"] == compress.MIN_SIZE
    assert config.COMPRESS_CODINGS == compress.CODINGS
    for coding, (lo, hi) in config.COMPRESS_LEVELS.items():
        Compressor(coding, lo)
        Compressor(coding, hi)
        for bad in (lo - 1, hi + 1):
            with pytest.raises(ValueError):
                Compressor(coding, bad)
