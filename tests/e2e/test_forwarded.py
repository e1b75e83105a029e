"""``--forwarded-allow-ips``: forwarding headers change REMOTE_ADDR,
wsgi.url_scheme and the host only when the peer is a trusted proxy."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

pytestmark = pytest.mark.qiao_only

HEADERS = [
    ("X-Forwarded-For", "6.6.6.6, 203.0.113.7"),
    ("X-Forwarded-Proto", "https"),
    ("X-Forwarded-Host", "shop.example"),
]


def environ_of(srv, headers):
    c = srv.connect()
    try:
        resp = c.request("GET", "/environ", headers)
        assert resp.status == 200, resp.body[:300]
        info = json.loads(resp.body)
        return info["str"], info["wsgi.url_scheme"]
    finally:
        c.close()


def test_untrusted_peer_headers_change_nothing(pooled):
    env, scheme = environ_of(pooled("apps:app"), HEADERS)
    assert env["REMOTE_ADDR"] == "127.0.0.1"
    assert scheme == "http"
    assert env["SERVER_NAME"] == "localhost"
    assert env["HTTP_X_FORWARDED_FOR"] == "6.6.6.6, 203.0.113.7"


@pytest.mark.parametrize("allow", ["127.0.0.1", "127.0.0.0/8,::1", "*"])
def test_trusted_peer_sets_client_scheme_and_host(pooled, allow):
    srv = pooled("apps:app", options=["--forwarded-allow-ips", allow])
    env, scheme = environ_of(srv, HEADERS)
    assert env["REMOTE_ADDR"] == "203.0.113.7"
    assert scheme == "https"
    assert (env["HTTP_HOST"], env["SERVER_NAME"], env["SERVER_PORT"]) == (
        "shop.example",
        "shop.example",
        "443",
    )


def test_rfc7239_forwarded_when_asked(pooled):
    options = ["--forwarded-allow-ips", "127.0.0.1", "--forwarded-headers", "forwarded"]
    srv = pooled("apps:app", options=options)
    env, scheme = environ_of(
        srv,
        HEADERS + [("Forwarded", 'for="[2001:db8::9]:1234";proto=http;host=a.example:8080')],
    )
    assert env["REMOTE_ADDR"] == "2001:db8::9"
    assert scheme == "http"
    assert (env["SERVER_NAME"], env["SERVER_PORT"]) == ("a.example", "8080")


def test_other_trusted_list_does_not_trust_us(pooled):
    srv = pooled("apps:app", options=["--forwarded-allow-ips", "10.0.0.0/8"])
    env, scheme = environ_of(srv, HEADERS)
    assert (env["REMOTE_ADDR"], scheme) == ("127.0.0.1", "http")


def test_bad_list_is_a_startup_error():
    proc = subprocess.run(
        [sys.executable, "-m", "qiao", "--forwarded-allow-ips", "10.0.0.1,not-an-ip", "apps:app"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "not-an-ip" in lines[0], proc.stderr
