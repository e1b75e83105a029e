"""Client side of the TLS tests (``test_tls_*.py``): the app they serve,
the server's TLS options, client contexts, HTTPS requests and curl."""

from __future__ import annotations

import http.client
import json
import shutil
import ssl
import subprocess

import pytest

APP = "tls_apps:app"
needs_curl = pytest.mark.skipif(shutil.which("curl") is None, reason="curl not installed")


def tls_options(pki, *extra):
    return ["--certfile", str(pki.cert), "--keyfile", str(pki.key), *extra]


def context(pki, cert=None, key=None, **versions) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(pki.ca))
    for name, value in versions.items():
        setattr(ctx, name, value)
    if cert:
        ctx.load_cert_chain(str(cert), str(key))
    return ctx


def https(srv, pki, ctx=None) -> http.client.HTTPSConnection:
    return http.client.HTTPSConnection(
        "localhost", srv.port, context=ctx or context(pki), timeout=10
    )


def get_env(conn: http.client.HTTPSConnection) -> dict:
    conn.request("GET", "/env")
    r = conn.getresponse()
    assert r.status == 200
    return json.loads(r.read())


def curl(*args) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["curl", "-sS", "--max-time", "20", *args], capture_output=True, timeout=30
    )
