"""PEP 3333 conformance seen from inside the application.

The environ (CGI keys, native-str values, ``wsgi.*`` keys), ``wsgi.input``
in every reading style, large uploads, ``start_response`` with exc_info, the
``write()`` callable, ``wsgi.file_wrapper`` and ``wsgi.errors``.
"""

from __future__ import annotations

import hashlib
import json
import os

import pytest
import requests
from rawhttp import build_request, chunk_encode, wait_for

CGI_KEYS = [
    "REQUEST_METHOD",
    "SCRIPT_NAME",
    "PATH_INFO",
    "QUERY_STRING",
    "SERVER_NAME",
    "SERVER_PORT",
    "SERVER_PROTOCOL",
    "REMOTE_ADDR",
    "REMOTE_PORT",
]


def get_environ(conn, target="/environ", headers=None, body=b"", method="GET", version="HTTP/1.1"):
    resp = conn.request(method, target, headers, body, version=version)
    assert resp.status == 200, resp.body[:300]
    return json.loads(resp.body)


def test_environ_cgi_keys_and_native_strings(conn):
    info = get_environ(
        conn, "/environ?a=1&b=%2F", [("Content-Type", "text/plain")], b"body!", method="POST"
    )
    env = info["str"]
    for key in CGI_KEYS + ["CONTENT_TYPE", "CONTENT_LENGTH"]:
        assert key in env, f"{key} missing or not a str"
    for key, typ in info["types"].items():
        assert typ == "str", f"{key} is a {typ}, not a native str"
    assert info["environ_type"] == "dict"
    assert env["REQUEST_METHOD"] == "POST"
    assert env["SCRIPT_NAME"] == ""
    assert env["PATH_INFO"] == "/environ"
    assert env["QUERY_STRING"] == "a=1&b=%2F"
    assert env["CONTENT_TYPE"] == "text/plain"
    assert env["CONTENT_LENGTH"] == "5"
    assert env["SERVER_PROTOCOL"] == "HTTP/1.1"
    assert env["SERVER_PORT"].isdigit()
    assert env["REMOTE_ADDR"] == "127.0.0.1"
    assert int(env["REMOTE_PORT"]) == conn.sock.getsockname()[1]
    assert env["SERVER_NAME"]
    assert env["HTTP_HOST"] == "localhost"
    assert "HTTP_CONTENT_TYPE" not in env and "HTTP_CONTENT_LENGTH" not in env
    assert info["body"] == "body!"


def test_environ_wsgi_keys(conn):
    info = get_environ(conn)
    assert info["wsgi.version"] == [1, 0]
    assert info["wsgi.version_type"] == "tuple"
    assert info["wsgi.url_scheme"] == "http"
    assert isinstance(info["wsgi.multithread"], bool)
    assert isinstance(info["wsgi.multiprocess"], bool)
    assert info["wsgi.run_once"] is False
    assert info["wsgi.input_terminated"] is True
    assert info["wsgi.file_wrapper"] is True
    assert info["input_methods"] == ["read", "readline", "readlines", "__iter__"]
    assert info["errors_methods"] == ["write", "writelines", "flush"]


def test_environ_has_only_its_keys_and_fresh_values(conn):
    """The template's spare room and the value cache never show: only
    CGI/HTTP/wsgi keys, and each request sees its own header values."""
    seen = []
    for host, agent in [("a.example", "one"), ("b.example:81", "two"), ("a.example", "one")]:
        env = get_environ(conn, headers=[("Host", host), ("User-Agent", agent)])["str"]
        assert not [k for k in env if k.startswith("qiao.")], env.keys()
        keys = ("HTTP_HOST", "SERVER_NAME", "SERVER_PORT", "HTTP_USER_AGENT")
        seen.append(tuple(env[k] for k in keys))
    assert seen == [
        ("a.example", "a.example", "80", "one"),
        ("b.example:81", "b.example", "81", "two"),
        ("a.example", "a.example", "80", "one"),
    ]


def test_environ_http10_protocol(conn):
    info = get_environ(conn, version="HTTP/1.0")
    assert info["str"]["SERVER_PROTOCOL"] == "HTTP/1.0"


def test_environ_no_body_keys(conn):
    env = get_environ(conn)["str"]
    assert env.get("CONTENT_LENGTH", "") in ("", "0")
    assert env.get("QUERY_STRING") == ""


def test_path_info_percent_decoded_as_latin1(conn):
    resp = conn.request("GET", "/caf%C3%A9/a%20b?x=%C3%A9")
    info = json.loads(resp.body)
    assert info["PATH_INFO"] == "/caf\xc3\xa9/a b"
    assert info["QUERY_STRING"] == "x=%C3%A9"
    # what a framework does to get the real text back
    assert info["PATH_INFO"].encode("latin-1").decode("utf-8") == "/café/a b"


def test_encoded_slash_in_path(conn):
    resp = conn.request("GET", "/a%2Fb")
    assert json.loads(resp.body)["PATH_INFO"] == "/a/b"


def test_request_headers_become_http_keys(conn):
    env = get_environ(conn, headers=[("X-Custom-Header", "Value 1"), ("Accept", "text/html")])
    env = env["str"]
    assert env["HTTP_X_CUSTOM_HEADER"] == "Value 1"
    assert env["HTTP_ACCEPT"] == "text/html"


def test_duplicate_headers_are_joined(conn):
    env = get_environ(conn, headers=[("X-Dup", "a"), ("X-Dup", "b")])["str"]
    assert env["HTTP_X_DUP"].replace(" ", "") == "a,b"


@pytest.mark.qiao_only  # gunicorn joins with "," (no space)
def test_duplicate_headers_are_joined_with_comma_space(conn):
    env = get_environ(conn, headers=[("X-Dup", "a"), ("X-Dup", "b")])["str"]
    assert env["HTTP_X_DUP"] == "a, b"


def test_header_names_with_underscore_are_dropped(conn):
    env = get_environ(conn, headers=[("X_Forwarded_For", "evil"), ("X-Forwarded-For", "good")])[
        "str"
    ]
    assert env.get("HTTP_X_FORWARDED_FOR") == "good"
    assert "evil" not in json.dumps(env)


def test_latin1_header_value_is_native_str(conn):
    raw = build_request("GET", "/environ")[:-2] + b"X-Latin: caf\xe9\r\n\r\n"
    conn.send(raw)
    env = json.loads(conn.read_response().body)["str"]
    assert env["HTTP_X_LATIN"] == "caf\xe9"


# -- wsgi.input -----------------------------------------------------------------------

BODY = b"line one\nline two\nthird line\nlast no newline"


@pytest.mark.parametrize(
    "mode, expected",
    [
        ("read", [BODY.decode(), "", ""]),
        ("read-n", ["line ", "one\nl", BODY[10:].decode(), "", ""]),
        ("readline", ["line one\n", "line two\n", "third line\n", "last no newline", ""]),
        ("readline-n", ["lin", "e one\n", "line two\n", "third line\nlast no newline", ""]),
        ("readlines", ["line one\n", "line two\n", "third line\n", "last no newline", "", ""]),
        ("iter", ["line one\n", "line two\n", "third line\n", "last no newline", "", ""]),
    ],
)
@pytest.mark.parametrize("framing", ["length", "chunked"])
def test_wsgi_input_modes(conn, mode, expected, framing):
    if framing == "chunked":
        headers = [("Transfer-Encoding", "chunked")]
        body = chunk_encode([BODY[:7], BODY[7:20], BODY[20:]])
    else:
        headers, body = [], BODY
    resp = conn.request("POST", f"/input?mode={mode}", headers, body)
    assert resp.status == 200, resp.body
    assert json.loads(resp.body) == expected


def test_wsgi_input_reads_only_the_body_when_pipelined(conn):
    second = build_request("GET", "/hello")
    conn.send(build_request("POST", "/input?mode=read", body=b"just this") + second)
    assert json.loads(conn.read_response().body) == ["just this", "", ""]
    assert conn.read_response().body == b"hello world"


def test_wsgi_input_reads_only_chunked_body_when_pipelined(conn):
    body = chunk_encode([b"chunk", b"ed"])
    conn.send(
        build_request("POST", "/input?mode=readlines", [("Transfer-Encoding", "chunked")], body)
        + build_request("GET", "/hello")
    )
    assert json.loads(conn.read_response().body) == ["chunked", "", ""]
    assert conn.read_response().body == b"hello world"


def test_wsgi_input_empty_body(conn):
    assert json.loads(conn.request("POST", "/input?mode=read").body) == ["", "", ""]


@pytest.mark.timeout(60)
def test_big_upload_streamed_with_content_length(server):
    size, block = 50 * 1024 * 1024, os.urandom(1024 * 1024)
    digest = hashlib.md5()
    with server.connect(timeout=30) as c:
        c.send(build_request("POST", "/count", [("Content-Length", str(size))]))
        for _ in range(size // len(block)):
            c.send(block)
            digest.update(block)
        result = json.loads(c.read_response().body)
    assert result == {"total": size, "md5": digest.hexdigest()}


@pytest.mark.timeout(60)
def test_big_chunked_upload(server):
    block = os.urandom(256 * 1024)
    with server.connect(timeout=30) as c:
        c.send(build_request("POST", "/count", [("Transfer-Encoding", "chunked")]))
        for _ in range(40):
            c.send(b"%x\r\n%s\r\n" % (len(block), block))
        c.send(b"0\r\n\r\n")
        result = json.loads(c.read_response().body)
    assert result["total"] == 40 * len(block)
    assert result["md5"] == hashlib.md5(block * 40).hexdigest()


# -- start_response, write(), file_wrapper, wsgi.errors ---------------------------------


def test_exc_info_replaces_status_before_body(conn):
    resp = conn.request("GET", "/exc-info")
    assert resp.status == 503
    assert resp.header("x-replaced") == "yes"
    assert resp.body == b"replaced"


@pytest.mark.qiao_only  # gunicorn keeps the headers of the first start_response call
def test_exc_info_replaces_headers_too(conn):
    resp = conn.request("GET", "/exc-info")
    assert resp.header("x-first") is None


def test_exc_info_after_headers_reraises_and_cuts_the_response(server, conn):
    conn.send(b"GET /exc-info-late HTTP/1.1\r\nHost: localhost\r\n\r\n")
    head = conn.read_head()
    assert head.status == 200
    # The body began (chunked, no length known) and is cut: no last chunk,
    # so the client can tell the response is incomplete.
    rest = conn.read_to_eof()
    assert b"partial-" in rest
    assert b"never sent" not in rest
    assert not rest.endswith(b"0\r\n\r\n")
    wait_for(lambda: "exc-info-late-marker" in server.stderr())


def test_multithread_reflects_threads_option(pooled):
    # The default pool may grow past one thread; --threads 1 never does.
    one = pooled("apps:app", options=["--threads", "1"])
    default = pooled("apps:app")
    four = pooled("apps:app", options=["--threads", "4"])
    for srv, expected in ((one, False), (default, True), (four, True)):
        c = srv.connect()
        try:
            assert get_environ(c)["wsgi.multithread"] is expected
        finally:
            c.close()
    # One worker process: not multiprocess.
    c = one.connect()
    try:
        assert get_environ(c)["wsgi.multiprocess"] is False
    finally:
        c.close()


def test_write_callable_then_iterable(conn):
    resp = conn.request("GET", "/write")
    assert resp.status == 200
    assert resp.body == b"first-second-third"


def test_multiple_response_headers_kept(conn):
    resp = conn.request("GET", "/headers")
    assert resp.header_all("set-cookie") == ["a=1; Path=/", "b=2; Path=/"]
    assert [v.strip() for v in ",".join(resp.header_all("x-multi")).split(",")] == ["one", "two"]


def test_custom_status_line(conn):
    resp = conn.request("GET", "/status?code=418")
    assert resp.status == 418 and resp.reason == "I'm a teapot"


def test_file_wrapper_real_file(server, tmp_path):
    data = os.urandom(300_000)
    path = tmp_path / "served.bin"
    path.write_bytes(data)
    resp = requests.get(f"{server.url}/file", params={"path": str(path)}, timeout=10)
    assert resp.status_code == 200
    assert resp.headers["Content-Length"] == str(len(data))
    assert resp.content == data


def test_file_wrapper_raw_socket_keepalive(conn, tmp_path):
    path = tmp_path / "small.txt"
    path.write_bytes(b"file contents\n" * 100)
    resp = conn.request("GET", f"/file?path={path}")
    assert resp.body == path.read_bytes()
    assert conn.request("GET", "/hello").body == b"hello world"


def test_file_wrapper_filelike(conn):
    resp = conn.request("GET", "/filelike")
    assert resp.status == 200
    assert resp.body == bytes(range(256)) * 400
    assert resp.header("content-length") == str(256 * 400)


def test_wsgi_errors_goes_to_server_log(server):
    mark = server.stderr_mark()
    with server.connect() as c:
        assert c.request("GET", "/errors-write").status == 200
    assert "wsgi-errors-marker-7f3a" in server.stderr_since(mark, settle=0.5)


def test_remote_port_differs_per_connection(server):
    ports = set()
    for _ in range(3):
        with server.connect() as c:
            ports.add(json.loads(c.request("GET", "/environ").body)["str"]["REMOTE_PORT"])
    assert len(ports) == 3


def test_server_port_matches_bound_port(server):
    with server.connect() as c:
        resp = c.request("GET", "/environ", host=f"127.0.0.1:{server.port}")
    env = json.loads(resp.body)["str"]
    assert env["SERVER_PORT"] == str(server.port)
