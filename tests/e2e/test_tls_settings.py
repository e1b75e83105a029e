"""TLS (``--certfile``/``--keyfile``/``--cert-reqs``) end to end, with real
clients (Python's ``ssl`` and ``http.client``) and certificates made at test
time (``tls_support``), for its settings and the server's life: refused
settings, the key read from the certfile, ``--proxy-protocol`` before the
handshake, a graceful stop with a TLS request in flight, and renewed
certificates put in service by SIGHUP."""

from __future__ import annotations

import json
import socket
import ssl
import subprocess
import sys

import pytest
from conftest import E2E_DIR, free_port, server_env
from tls_client_support import APP, context, get_env, https, tls_options
from tls_support import make_pki

# Fixtures, imported as themselves (an explicit re-export, which the linter
# does not take for an unused import): one instance per test module.
from tls_support import pki as pki

pytestmark = pytest.mark.qiao_only


def run_qiao(*args) -> subprocess.CompletedProcess:
    bind = f"127.0.0.1:{free_port()}"
    return subprocess.run(
        [sys.executable, "-m", "qiao", "--bind", bind, *args, APP],
        cwd=E2E_DIR,
        env=server_env(),
        capture_output=True,
        text=True,
        timeout=30,
    )


def test_unreadable_certfile_is_a_clear_error(pki, tmp_path):
    missing = tmp_path / "missing.pem"
    r = run_qiao("--certfile", str(missing), "--keyfile", str(pki.key))
    assert r.returncode != 0
    assert "certfile" in r.stderr and str(missing) in r.stderr


def test_certfile_that_is_not_pem_is_a_clear_error(pki, tmp_path):
    junk = tmp_path / "junk.pem"
    junk.write_text("not a certificate\n")
    r = run_qiao("--certfile", str(junk), "--keyfile", str(pki.key))
    assert r.returncode != 0
    assert "certfile" in r.stderr and str(junk) in r.stderr


def test_cert_reqs_without_ca_is_a_clear_error(pki):
    r = run_qiao(*tls_options(pki), "--cert-reqs", "required")
    assert r.returncode != 0
    assert "ca_certs" in r.stderr


def test_key_read_from_the_certfile_when_no_keyfile(start_server, pki, tmp_path):
    both = tmp_path / "both.pem"
    both.write_text(pki.cert.read_text() + pki.key.read_text())
    srv = start_server(APP, options=["--certfile", str(both)])
    conn = https(srv, pki)
    assert get_env(conn)["wsgi.url_scheme"] == "https"
    conn.close()


def test_sigterm_finishes_an_in_flight_tls_request(start_server, pki, tmp_path):
    import signal
    import threading
    import time

    srv = start_server(APP, options=tls_options(pki))
    arrived, release = tmp_path / "arrived", tmp_path / "release"
    result = {}

    def request():
        conn = https(srv, pki)
        conn.request("GET", f"/slow?{arrived},{release}")
        r = conn.getresponse()
        result["status"], result["body"] = r.status, r.read()
        conn.close()

    t = threading.Thread(target=request)
    t.start()
    deadline = time.monotonic() + 20
    while not arrived.exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert arrived.exists(), srv.stderr()
    srv.proc.send_signal(signal.SIGTERM)
    time.sleep(0.3)  # the drain has begun; the request is still served
    release.write_text("go")
    t.join(30)
    assert result == {"status": 200, "body": b"finished"}
    assert srv.proc.wait(20) == 0


def test_proxy_protocol_header_before_the_handshake(start_server, pki):
    """--proxy-protocol on a TLS bind (a TCP load balancer passing TLS
    through): the PROXY header comes first, then the handshake."""
    srv = start_server(APP, options=tls_options(pki, "--proxy-protocol"))
    raw = socket.create_connection((srv.host, srv.port), timeout=10)
    raw.sendall(b"PROXY TCP4 203.0.113.7 127.0.0.1 5555 443\r\n")
    with context(pki).wrap_socket(raw, server_hostname="localhost") as s:
        s.sendall(b"GET /env HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        out = b""
        while chunk := s.recv(65536):
            out += chunk
    head, body = out.split(b"\r\n\r\n", 1)
    assert head.startswith(b"HTTP/1.1 200")
    env = json.loads(body)
    assert (env["REMOTE_ADDR"], env["REMOTE_PORT"]) == ("203.0.113.7", "5555")
    assert env["wsgi.url_scheme"] == "https"
    # Without the header, the connection is closed.
    with socket.create_connection((srv.host, srv.port), timeout=10) as s:
        s.sendall(b"\x16\x03\x01\x00\x05hello")
        assert s.recv(100) == b""


def test_sighup_puts_renewed_certificates_in_service(start_server, pki, tmp_path):
    """Workers load the certificate when they start: after the files are
    replaced, SIGHUP (new workers) serves the new certificate."""
    import shutil as sh
    import signal
    import time

    (tmp_path / "renewed").mkdir()
    renewed = make_pki(tmp_path / "renewed")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    sh.copy(pki.cert, cert)
    sh.copy(pki.key, key)
    srv = start_server(APP, options=["--certfile", str(cert), "--keyfile", str(key)])
    conn = https(srv, pki)
    assert get_env(conn)["wsgi.url_scheme"] == "https"
    conn.close()
    sh.copy(renewed.cert, cert)
    sh.copy(renewed.key, key)
    srv.proc.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + 20
    while True:
        try:
            conn = https(srv, renewed)
            get_env(conn)
            conn.close()
            break
        except ssl.SSLError:
            assert time.monotonic() < deadline, "the renewed certificate was never served"
            time.sleep(0.1)
