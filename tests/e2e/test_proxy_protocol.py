"""``--proxy-protocol``: HAProxy's PROXY v1/v2 header names the client;
without a valid header (or from a peer not in --proxy-allow-from) the
connection gets a 400 and is closed."""

from __future__ import annotations

import ipaddress
import json
import struct

import pytest
import rawhttp

pytestmark = pytest.mark.qiao_only

REQUEST = b"GET /environ HTTP/1.1\r\nHost: x\r\n\r\n"
SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"


def exchange(srv, data: bytes, piece: int = 0) -> bytes:
    return rawhttp.exchange((srv.host, srv.port), data, piece=piece)


def remote(response: bytes) -> tuple[str, str]:
    head, body = response.split(b"\r\n\r\n", 1)
    assert head.startswith(b"HTTP/1.1 200"), head
    env = json.loads(body)["str"]
    return env["REMOTE_ADDR"], env["REMOTE_PORT"]


def v2_tcp4(src: str, sport: int) -> bytes:
    payload = ipaddress.IPv4Address(src).packed + bytes(4) + struct.pack("!HH", sport, 80)
    return SIGNATURE + bytes([0x21, 0x11]) + struct.pack("!H", len(payload)) + payload


def v2_tcp6(src: str, sport: int) -> bytes:
    payload = ipaddress.IPv6Address(src).packed + bytes(16) + struct.pack("!HH", sport, 80)
    return SIGNATURE + bytes([0x21, 0x21]) + struct.pack("!H", len(payload)) + payload


@pytest.fixture
def proxied(pooled):
    return pooled("apps:app", options=["--proxy-protocol"])


def test_v1_names_the_client(proxied):
    out = exchange(proxied, b"PROXY TCP4 203.0.113.7 10.0.0.1 51000 80\r\n" + REQUEST)
    assert remote(out) == ("203.0.113.7", "51000")


def test_v1_ipv6_and_unknown(proxied):
    out = exchange(proxied, b"PROXY TCP6 2001:db8::5 2001:db8::1 4711 80\r\n" + REQUEST)
    assert remote(out) == ("2001:db8::5", "4711")
    # UNKNOWN: the real peer stays.
    assert remote(exchange(proxied, b"PROXY UNKNOWN\r\n" + REQUEST))[0] == "127.0.0.1"


def test_v2_binary_header(proxied):
    assert remote(exchange(proxied, v2_tcp4("198.51.100.9", 60000) + REQUEST)) == (
        "198.51.100.9",
        "60000",
    )
    assert remote(exchange(proxied, v2_tcp6("2001:db8::9", 1234) + REQUEST)) == (
        "2001:db8::9",
        "1234",
    )


def test_header_split_over_writes(proxied):
    data = b"PROXY TCP4 203.0.113.8 10.0.0.1 5 80\r\n" + REQUEST
    out = exchange(proxied, data, piece=7)
    assert remote(out) == ("203.0.113.8", "5")


@pytest.mark.parametrize(
    "data",
    [REQUEST, b"PROXY TCP4 1.2.3 10.0.0.1 1 2\r\n" + REQUEST, SIGNATURE + b"\x21\x11\xff\xff"],
    ids=["missing", "bad-v1", "bad-v2"],
)
def test_missing_or_bad_header_is_400(proxied, data):
    out = exchange(proxied, data)
    assert out.startswith(b"HTTP/1.1 400 "), out[:200]
    assert b"PROXY" in out


def test_untrusted_peer_is_refused(pooled):
    srv = pooled("apps:app", options=["--proxy-protocol", "--proxy-allow-from", "10.0.0.0/8"])
    out = exchange(srv, b"PROXY TCP4 203.0.113.7 10.0.0.1 51000 80\r\n" + REQUEST)
    assert out.startswith(b"HTTP/1.1 400 "), out[:200]


def test_trusted_peer_is_accepted(pooled):
    srv = pooled("apps:app", options=["--proxy-protocol", "--proxy-allow-from", "127.0.0.1"])
    out = exchange(srv, b"PROXY TCP4 203.0.113.7 10.0.0.1 51000 80\r\n" + REQUEST)
    assert remote(out) == ("203.0.113.7", "51000")
