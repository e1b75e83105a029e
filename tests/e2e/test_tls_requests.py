"""TLS (``--certfile``/``--keyfile``) end to end, with real clients (curl,
Python's ``ssl`` and ``http.client``) and certificates made at test time
(``tls_support``), for what is served over it: the environ of a TLS request
(beside plaintext requests, and over connections that differ), bodies both
ways, keep-alive, TLS 1.2 and 1.3, plain HTTP on a TLS port, a broken
handshake, and ``wsgi.file_wrapper``."""

from __future__ import annotations

import hashlib
import json
import os
import socket
import ssl
import tempfile

import pytest
from conftest import free_port
from tls_client_support import APP, context, curl, get_env, https, needs_curl, tls_options

# Fixtures, imported as themselves (an explicit re-export, which the linter
# does not take for an unused import): one instance per test module.
from tls_support import pki as pki

pytestmark = pytest.mark.qiao_only


@pytest.fixture(scope="module")
def tls_server(pki):
    from conftest import Server

    srv = Server(APP, options=tls_options(pki)).start()
    yield srv
    srv.cleanup()


def test_environ_of_a_tls_request(tls_server, pki):
    conn = https(tls_server, pki)
    env = get_env(conn)
    local_port = conn.sock.getsockname()[1]
    conn.close()
    assert env["wsgi.url_scheme"] == "https"
    assert env["HTTPS"] == "on"
    assert env["REMOTE_ADDR"] == "127.0.0.1"
    assert env["REMOTE_PORT"] == str(local_port)
    assert env["SERVER_PROTOCOL"] == "HTTP/1.1"
    assert env["SERVER_PORT"] == str(tls_server.port)
    assert env["SSL_PROTOCOL"] in ("TLSv1.2", "TLSv1.3")
    assert env["SSL_CIPHER"]
    assert env["SSL_CLIENT_VERIFY"] == "NONE"
    assert env["SSL_CLIENT_S_DN"] is None


def test_tls_and_plaintext_requests_of_one_worker_keep_their_own_environ(start_server, pki):
    """A TLS request starts from the TLS environ template, a plaintext one
    (a Unix socket stays plaintext under --certfile) from the plain one:
    the TLS entries never leak into the other, in either order."""
    path = os.path.join(tempfile.mkdtemp(prefix="qiao-tls-", dir="/tmp"), "plain.sock")
    srv = start_server(
        APP,
        binds=[f"127.0.0.1:{free_port()}", f"unix:{path}"],
        options=tls_options(pki, "--workers", "1"),
    )

    def plain_env() -> dict:
        with socket.socket(socket.AF_UNIX) as s:
            s.settimeout(10)
            s.connect(path)
            s.sendall(b"GET /env HTTP/1.0\r\nHost: x\r\n\r\n")
            data = b""
            while chunk := s.recv(65536):
                data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200"), head
        return json.loads(body)

    conn = https(srv, pki)
    for _ in range(2):
        plain = plain_env()
        assert plain["wsgi.url_scheme"] == "http"
        assert plain["HTTPS"] is None and plain["SSL_PROTOCOL"] is None
        assert plain["SSL_CLIENT_VERIFY"] is None
        secure = get_env(conn)
        assert secure["wsgi.url_scheme"] == "https" and secure["HTTPS"] == "on"
        assert secure["SSL_PROTOCOL"] in ("TLSv1.2", "TLSv1.3")
        assert secure["SSL_CIPHER"] and secure["SSL_CLIENT_VERIFY"] == "NONE"
    conn.close()


def test_connections_that_differ_in_protocol_cipher_or_certificate_each_see_their_own(
    start_server, pki
):
    """The TLS environ template holds the protocol and cipher of the last
    connection that differed (src/wsgi/tls_environ.rs): in one worker,
    connections that differ in TLS version, cipher suite or client
    certificate take turns, twice, and each request sees its own."""
    options = ["--ca-certs", str(pki.ca), "--cert-reqs", "optional", "--workers", "1"]
    srv = start_server(APP, options=tls_options(pki, *options))

    def tls12(cipher: str) -> ssl.SSLContext:
        ctx = context(pki, maximum_version=ssl.TLSVersion.TLSv1_2)
        ctx.set_ciphers(cipher)
        return ctx

    # (version, part of the cipher's name, client context, sends a certificate)
    kinds = [
        ("TLSv1.3", "", context(pki, minimum_version=ssl.TLSVersion.TLSv1_3), False),
        ("TLSv1.2", "_AES_128_GCM_", tls12("ECDHE-ECDSA-AES128-GCM-SHA256"), False),
        ("TLSv1.2", "_AES_256_GCM_", tls12("ECDHE-ECDSA-AES256-GCM-SHA384"), False),
        ("TLSv1.3", "", context(pki, pki.client_cert, pki.client_key), True),
        ("TLSv1.3", "", context(pki), False),
    ]
    for _ in range(2):
        for version, cipher_part, ctx, sends in kinds:
            conn = https(srv, pki, ctx)
            envs = [get_env(conn), get_env(conn)]
            assert conn.sock.version() == version
            # TLS 1.3 suites have one name; OpenSSL names TLS 1.2's its own way.
            cipher = cipher_part or conn.sock.cipher()[0]
            conn.close()
            for env in envs:
                assert env["SSL_PROTOCOL"] == version, env
                assert cipher in env["SSL_CIPHER"], env
                assert env["wsgi.url_scheme"] == "https" and env["HTTPS"] == "on"
                assert env["SSL_CLIENT_VERIFY"] == ("SUCCESS" if sends else "NONE"), env
                assert (env["SSL_CLIENT_S_DN"] is not None) == sends, env


def test_keep_alive_several_requests_on_one_connection(tls_server, pki):
    conn = https(tls_server, pki)
    ports = {get_env(conn)["REMOTE_PORT"] for _ in range(5)}
    local_port = conn.sock.getsockname()[1]
    conn.close()
    assert ports == {str(local_port)}


def test_large_body_with_content_length(tls_server, pki):
    data = os.urandom(3_000_000)
    conn = https(tls_server, pki)
    conn.request("POST", "/echo", body=data)
    r = conn.getresponse()
    facts = json.loads(r.read())
    conn.close()
    assert facts["len"] == len(data)
    assert facts["sha256"] == hashlib.sha256(data).hexdigest()
    assert facts["content_length"] == str(len(data))


def test_chunked_upload(tls_server, pki):
    pieces = [os.urandom(100_000) for _ in range(20)]
    conn = https(tls_server, pki)
    conn.request("POST", "/echo", body=iter(pieces), encode_chunked=True)
    facts = json.loads(conn.getresponse().read())
    conn.close()
    data = b"".join(pieces)
    assert facts["len"] == len(data)
    assert facts["sha256"] == hashlib.sha256(data).hexdigest()


def test_large_streamed_response(tls_server, pki):
    conn = https(tls_server, pki)
    conn.request("GET", "/big?5000000")
    r = conn.getresponse()
    body = r.read()
    conn.close()
    assert len(body) == 5_000_000


@pytest.mark.parametrize(
    "version,name",
    [(ssl.TLSVersion.TLSv1_2, "TLSv1.2"), (ssl.TLSVersion.TLSv1_3, "TLSv1.3")],
)
def test_tls_versions_with_python_ssl(tls_server, pki, version, name):
    ctx = context(pki, minimum_version=version, maximum_version=version)
    conn = https(tls_server, pki, ctx)
    env = get_env(conn)
    assert conn.sock.version() == name
    conn.close()
    assert env["SSL_PROTOCOL"] == name


@needs_curl
@pytest.mark.parametrize(
    "flags,name", [(["--tls-max", "1.2"], "TLSv1.2"), (["--tlsv1.3"], "TLSv1.3")]
)
def test_curl_tls_versions_get_and_post(tls_server, pki, tmp_path, flags, name):
    url = f"https://localhost:{tls_server.port}"
    r = curl("--cacert", str(pki.ca), *flags, "--http1.1", url + "/env")
    assert r.returncode == 0, r.stderr
    env = json.loads(r.stdout)
    assert env["SSL_PROTOCOL"] == name and env["wsgi.url_scheme"] == "https"
    body = tmp_path / "body.bin"
    body.write_bytes(os.urandom(2_000_000))
    for extra in ([], ["-H", "Transfer-Encoding: chunked"]):
        r = curl(
            "--cacert",
            str(pki.ca),
            *flags,
            "--http1.1",
            "--data-binary",
            f"@{body}",
            *extra,
            url + "/echo",
        )
        assert r.returncode == 0, r.stderr
        facts = json.loads(r.stdout)
        assert facts["sha256"] == hashlib.sha256(body.read_bytes()).hexdigest()


@needs_curl
def test_curl_keep_alive_reuses_the_connection(tls_server, pki):
    url = f"https://localhost:{tls_server.port}/env"
    r = curl(
        "--cacert",
        str(pki.ca),
        "--http1.1",
        "-w",
        "%{num_connects}\n",
        *[arg for _ in range(3) for arg in (url, "-o", "/dev/null")],
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == [b"1", b"0", b"0"]


def test_plain_http_to_the_tls_port_is_refused_cleanly(tls_server):
    with socket.create_connection((tls_server.host, tls_server.port), timeout=10) as s:
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        out = b""
        while chunk := s.recv(4096):
            out += chunk
    assert out.startswith(b"HTTP/1.1 400 ")
    assert b"TLS port" in out


def test_handshake_garbage_closes_the_connection(tls_server, pki):
    with socket.create_connection((tls_server.host, tls_server.port), timeout=10) as s:
        s.sendall(b"\x16\x03\x01\x00\x05hello-not-tls" * 3)
        answer = b""
        try:  # a TLS alert maybe, then the end (a hang times out: the test fails)
            while chunk := s.recv(4096):
                answer += chunk
        except ConnectionResetError:
            pass  # closed with unread input: a reset is a close too
    assert not answer.startswith(b"HTTP/"), answer  # no HTTP answer to a broken handshake
    assert len(answer) < 64, answer  # at most an alert record
    # The server is unharmed: the next client's handshake and request work.
    conn = https(tls_server, pki)
    try:
        assert get_env(conn)["wsgi.url_scheme"] == "https"
    finally:
        conn.close()


def test_file_wrapper_over_tls_http11(tls_server, pki, tmp_path):
    data = os.urandom(2_500_000)
    path = tmp_path / "blob.bin"
    path.write_bytes(data)
    conn = https(tls_server, pki)
    conn.request("GET", f"/file?{path}")
    body = conn.getresponse().read()
    conn.close()
    assert body == data
