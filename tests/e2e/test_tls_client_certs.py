"""TLS (``--ca-certs``/``--cert-reqs``) end to end, with real clients (curl,
Python's ``ssl`` and ``http.client``) and certificates made at test time
(``tls_support``), for client certificates: required or optional, trusted,
missing or signed by no trusted CA, and what the environ says of them."""

from __future__ import annotations

import http.client
import json
import ssl

import pytest
from tls_client_support import APP, context, curl, get_env, https, needs_curl, tls_options
from tls_support import CLIENT_CN

# Fixtures, imported as themselves (an explicit re-export, which the linter
# does not take for an unused import): one instance per test module.
from tls_support import pki as pki

pytestmark = pytest.mark.qiao_only


@pytest.fixture(scope="module")
def mtls_required(pki):
    from conftest import Server

    options = tls_options(pki, "--ca-certs", str(pki.ca), "--cert-reqs", "required")
    srv = Server(APP, options=options).start()
    yield srv
    srv.cleanup()


@pytest.fixture(scope="module")
def mtls_optional(pki):
    from conftest import Server

    options = tls_options(pki, "--ca-certs", str(pki.ca), "--cert-reqs", "optional")
    srv = Server(APP, options=options).start()
    yield srv
    srv.cleanup()


def refused(srv, ctx) -> bool:
    """Whether a request with ``ctx`` fails in the handshake (TLS 1.3
    reports a refused client certificate at the first read)."""
    conn = http.client.HTTPSConnection("localhost", srv.port, context=ctx, timeout=10)
    try:
        conn.request("GET", "/env")
        conn.getresponse().read()
    except (ssl.SSLError, ConnectionError, http.client.RemoteDisconnected):
        return True
    finally:
        conn.close()
    return False


@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3])
def test_client_certificate_required(mtls_required, pki, version):
    pins = dict(minimum_version=version, maximum_version=version)
    assert refused(mtls_required, context(pki, **pins))
    assert refused(mtls_required, context(pki, pki.rogue_cert, pki.rogue_key, **pins))
    conn = https(mtls_required, pki, context(pki, pki.client_cert, pki.client_key, **pins))
    env = get_env(conn)
    conn.close()
    assert env["SSL_CLIENT_VERIFY"] == "SUCCESS"
    assert f"CN={CLIENT_CN}" in env["SSL_CLIENT_S_DN"]
    assert env["SSL_CLIENT_CERT"].startswith("-----BEGIN CERTIFICATE-----\n")
    assert env["SSL_CLIENT_CERT"].strip() == pki.client_cert.read_text().strip()


@needs_curl
def test_client_certificate_with_curl(mtls_required, pki):
    url = f"https://localhost:{mtls_required.port}/env"
    assert curl("--cacert", str(pki.ca), url).returncode != 0
    r = curl(
        "--cacert", str(pki.ca), "--cert", str(pki.client_cert), "--key", str(pki.client_key), url
    )
    assert r.returncode == 0, r.stderr
    assert f"CN={CLIENT_CN}" in json.loads(r.stdout)["SSL_CLIENT_S_DN"]


def test_client_certificate_optional(mtls_optional, pki):
    conn = https(mtls_optional, pki)
    assert get_env(conn)["SSL_CLIENT_VERIFY"] == "NONE"
    conn.close()
    conn = https(mtls_optional, pki, context(pki, pki.client_cert, pki.client_key))
    env = get_env(conn)
    conn.close()
    assert env["SSL_CLIENT_VERIFY"] == "SUCCESS"
    assert f"CN={CLIENT_CN}" in env["SSL_CLIENT_S_DN"]
    # A certificate no trusted CA signed is refused, even when optional.
    assert refused(mtls_optional, context(pki, pki.rogue_cert, pki.rogue_key))
