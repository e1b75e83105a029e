"""Table-driven RFC 9112 strictness, end to end against a running server.

Two corpora go through a real server and the ``apps:probe`` endpoint (which
answers any path with what the server parsed):

* our own table (``corpus_cases.py``): request line, versions, Host rules,
  header syntax, Content-Length, Transfer-Encoding and chunked bodies. A valid
  request must get a 200 and the environ facts listed with it; an invalid one
  its refusal status, then a closed connection. Every case is sent whole; a
  subset also byte by byte and in seeded random splits.
* gunicorn's parser corpus (``../shared/conformance/gunicorn-requests.json``,
  see its README): valid cases must get one 2xx per request, invalid ones a
  4xx/5xx and a close. Where an RFC 9112/9110 rule makes us differ from
  gunicorn, the case is listed in ``DIFFERENT`` with the reason (mirroring
  ``DIFFERENT`` in ``crates/http/tests/http_conformance.rs``); cases written for gunicorn
  settings we lack are in ``SKIPPED``.

The servers run with ``--header-timeout 1 --io-timeout 1``, so a case that
ends inside a request (``STALLS``: fed whole only) costs a second, not thirty.
"""

from __future__ import annotations

import base64
import json
import random
import socket
import time
import zlib
from pathlib import Path
from urllib.parse import unquote_to_bytes

import pytest
from conftest import IS_GUNICORN
from corpus_cases import CASES, GUNICORN_DIFFERS, MAX_BODY, SPLIT_CASES

QUICK = ("--header-timeout", "1", "--io-timeout", "1")
# --no-http2: the table expects 505 for the HTTP/2 preface (h2c is tested
# in test_http2_clients.py and test_http2_connection.py).
TABLE_OPTIONS = () if IS_GUNICORN else ("--max-body-size", str(MAX_BODY), "--no-http2", *QUICK)
CORPUS = Path(__file__).resolve().parents[2] / ".." / "shared/conformance/gunicorn-requests.json"


# -- feeding a connection ---------------------------------------------------------


def pieces(raw: bytes, mode: str, seed: str) -> list[bytes]:
    """``raw`` cut for ``mode``: whole, byte by byte, or random splits."""
    if mode == "whole":
        return [raw]
    if mode == "bytes":
        return [raw[i : i + 1] for i in range(len(raw))]
    rng = random.Random(zlib.crc32(seed.encode()))
    out, i = [], 0
    while i < len(raw):
        n = rng.randint(1, max(2, len(raw) // 4))
        out.append(raw[i : i + n])
        i += n
    return out


def feed(server, raw: bytes, mode="whole", seed=""):
    """A connection that has been sent ``raw`` (cut for ``mode``)."""
    c = server.connect(timeout=6)
    c.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    parts = pieces(raw, mode, seed)
    try:
        for part in parts:
            c.send(part)
            if len(parts) > 1:
                time.sleep(0.0003)
    except (BrokenPipeError, ConnectionResetError):
        pass  # refused early: the answer is already on its way
    return c


def check_facts(info: dict, facts: dict, name: str):
    for key, want in facts.items():
        if key != "headers":
            assert info[key] == want, f"{name}: {key} is {info[key]!r}, expected {want!r}"
            continue
        for hname, hwant in want.items():
            got = info["headers"].get(hname)
            assert got == hwant, f"{name}: {hname} is {got!r}, expected {hwant!r}"


def run_case(server, name, raw, status, facts, mode="whole"):
    with feed(server, raw, mode, seed=name) as c:
        resp = c.read_response()
        assert resp.status == status, f"{name} ({mode}): {resp.status} {resp.body[:120]!r}"
        if status == 200:
            check_facts(json.loads(resp.body), facts, name)
            if b"HTTP/1.1\r\n" in raw.lstrip(b"\r\n").split(b"\n", 1)[0] + b"\n":
                assert not c.is_closed(timeout=0.05), f"{name}: keep-alive connection closed"
        else:
            assert "close" in resp.connection_tokens(), f"{name}: no Connection: close"
            assert c.is_closed(timeout=3), f"{name}: connection left open after a {status}"


# -- our table ------------------------------------------------------------------------


def table_params(cases, modes):
    params = []
    for name, raw, status, facts in cases:
        for mode in modes:
            if mode != "whole" and name not in SPLIT_CASES:
                continue
            qiao_only = status != 200 or name in GUNICORN_DIFFERS
            marks = [pytest.mark.qiao_only] if qiao_only else []
            params.append(
                pytest.param(name, raw, status, facts, mode, id=f"{name}-{mode}", marks=marks)
            )
    return params


@pytest.fixture
def table_server(pooled):
    return pooled("apps:probe", options=TABLE_OPTIONS)


def test_table_is_large_and_named_uniquely():
    names = [c[0] for c in CASES]
    assert len(names) >= 100 and len(set(names)) == len(names)
    assert SPLIT_CASES <= set(names) and GUNICORN_DIFFERS <= set(names)
    assert {c[2] for c in CASES} >= {200, 400, 413, 414, 431, 501, 505}


@pytest.mark.parametrize(
    "name, raw, status, facts, mode", table_params(CASES, ("whole", "bytes", "split"))
)
def test_table(table_server, name, raw, status, facts, mode):
    run_case(table_server, name, raw, status, facts, mode)


@pytest.mark.qiao_only
def test_server_still_serves_after_the_table(table_server):
    with table_server.connect() as c:
        assert c.request("GET", "/after-table").status == 200


# -- gunicorn's corpus ----------------------------------------------------------------

NO_HOST = "HTTP/1.1 request without Host: 400 (RFC 9112 §3.2)"
CRLF_COUNTED = "field line within our limit, which excludes the CRLF; gunicorn counts it"
TRAILER = "trailers are discarded, never merged into the head (RFC 9110 §6.5.2)"

# name -> (2xx responses, then: "error" = a 4xx/5xx and a close, "closed" = a
# close, "open" = the connection stays usable, "stall" = input ends inside a
# request: no more 2xx and the server gives up by itself), reason.
DIFFERENT = {
    **{
        f"valid/{n}.http": (0, "error", NO_HOST)
        for n in (
            "004",
            "005",
            "006",
            "007",
            "009",
            "010",
            "011",
            "012",
            "013",
            "014",
            "018",
            "021",
            "023",
            "031",
            "100",
        )
    },
    "valid/022.http": (1, "error", "the second request is HTTP/1.1 without Host: 400"),
    "valid/025.http": (0, "error", "HTTP/1.1 without Host (gzip would be 501 anyway)"),
    "valid/025_line.http": (0, "error", "HTTP/1.1 without Host (gzip would be 501 anyway)"),
    "valid/029.http": (0, "error", "HTTP/1.1 without Host (identity would be 501 anyway)"),
    "valid/030.http": (0, "error", "HTTP/1.1 without Host (identity would be 501 anyway)"),
    "valid/099.http": (0, "stall", "Content-Length 17914 but 8599 body bytes: we wait for more"),
    "valid/rfc9112_smuggle_gzip_chunked_01.http": (
        0,
        "error",
        "we implement no coding but chunked: 501 (RFC 9112 §6.1)",
    ),
    "valid/rfc9112_smuggle_te_identity_chunked_01.http": (
        0,
        "error",
        "identity is not a registered transfer coding: 501 (RFC 9112 §6.1)",
    ),
    "valid/rfc9112_target_absolute_userinfo_01.http": (
        0,
        "error",
        "userinfo in an http(s) URI is an error (RFC 9110 §4.2.4)",
    ),
    "valid/rfc9112_target_authority_connect_01.http": (0, "error", "not a proxy: CONNECT is 501"),
    "valid/rfc9112_target_authority_ipv6_01.http": (0, "error", "not a proxy: CONNECT is 501"),
    "invalid/006.http": (1, "closed", "4112-byte request line: our limit is 8190, gunicorn's 4094"),
    "invalid/008.http": (1, "closed", CRLF_COUNTED),
    "invalid/012.http": (1, "open", CRLF_COUNTED),
    "invalid/limit_header_default_01.http": (1, "closed", CRLF_COUNTED),
    "invalid/041.http": (1, "open", "two Content-Type fields are not an error (RFC 9110 §5.3)"),
    "invalid/rfc9112_smuggle_cl_list_form_01.http": (
        1,
        "open",
        "a list of identical Content-Length values may be accepted (RFC 9110 §8.6)",
    ),
    "invalid/rfc9110_trailer_forbidden_cl_01.http": (1, "open", TRAILER),
    "invalid/rfc9110_trailer_forbidden_host_01.http": (1, "open", TRAILER),
    "invalid/rfc9110_trailer_forbidden_te_01.http": (1, "open", TRAILER),
}

SKIPPED = {
    "valid/028.http": "strip_header_spaces: we always refuse space before the colon",
    "valid/031compat.http": "permit_unconventional_http_method + casefold_http_method",
    "valid/031compat2.http": "permit_unconventional_http_method",
    "valid/040_compat.http": "header_map 'dangerous'",
    "valid/compat_obs_fold.http": "permit_obsolete_folding: we always refuse obs-fold",
    "valid/compat_obs_fold_huge.http": "permit_obsolete_folding: we always refuse obs-fold",
    "invalid/013.http": "permit_obsolete_folding",
    "invalid/019.http": "forwarded_allow_ips: X-Forwarded-* is not the server's business",
    "invalid/040.http": "header_map 'refuse': underscore names are dropped from the environ",
    "invalid/chunked_07.http": "header_map 'refuse': underscore names are dropped from the environ",
    **{f"valid/pp_0{i}.http": "proxy_protocol" for i in range(1, 6)},
    **{f"invalid/pp_0{i}.http": "proxy_protocol" for i in range(1, 4)},
}

# Cases whose bytes end inside a request: the server answers when its timeout
# fires, so feeding them in pieces would only cost time.
STALLS = {
    "valid/099.http",
    "invalid/001.http",
    "invalid/rfc9112_chunked_missing_final_crlf_01.http",
}

LIMIT_OPTIONS = {
    "limit_request_line": "--limit-request-line",
    "limit_request_fields": "--limit-request-fields",
    "limit_request_field_size": "--limit-request-field-size",
}


def load_corpus() -> list[dict]:
    if not CORPUS.exists():
        return []
    return json.loads(CORPUS.read_text())


def corpus_options(settings: dict) -> tuple:
    options = list(QUICK)
    for key, value in sorted(settings.items()):
        if key == "limit_request_field_size" and value == "0":
            continue  # gunicorn: 0 means the default
        options += [LIMIT_OPTIONS[key], value]
    return tuple(options)


def corpus_params():
    cases = load_corpus()
    if not cases:
        return [
            pytest.param(
                None,
                "whole",
                marks=pytest.mark.skip(reason=f"{CORPUS} is absent: gunicorn corpus not run"),
            )
        ]
    params = []
    for case in cases:
        name = case["name"]
        marks = [pytest.mark.qiao_only]
        if name in SKIPPED:
            marks.append(pytest.mark.skip(reason=f"gunicorn setting: {SKIPPED[name]}"))
        raw = base64.b64decode(case["raw_b64"])
        for mode in ("whole", "bytes", "split"):
            one_way = name in STALLS or name in SKIPPED
            if mode != "whole" and one_way or mode == "bytes" and len(raw) > 2000:
                continue
            params.append(pytest.param(case, mode, id=f"{name}-{mode}", marks=marks))
    return params


def expected_facts(req: dict) -> dict:
    latin1 = lambda s: s.encode("latin-1")  # noqa: E731
    headers = {}
    for name, value in req["headers"]:
        if "_" in name or name in ("CONTENT-LENGTH", "CONTENT-TYPE"):
            continue  # dropped from the environ / not HTTP_ keys
        key = "HTTP_" + name.replace("-", "_")
        headers[key] = f"{headers[key]}, {value}" if key in headers else value
    return {
        "method": req["method"],
        "path": unquote_to_bytes(latin1(req["uri"]["path"])).decode("latin-1"),
        "query": req["uri"]["query"],
        "body": req["body"],
        "headers": headers,
    }


def test_corpus_lists_name_real_cases():
    cases = load_corpus()
    if not cases:
        pytest.skip(f"{CORPUS} is absent")
    names = {c["name"] for c in cases}
    assert set(DIFFERENT) <= names and set(SKIPPED) <= names
    assert not set(DIFFERENT) & set(SKIPPED)


@pytest.mark.parametrize("case, mode", corpus_params())
def test_gunicorn_corpus(pooled, case, mode):
    name = case["name"]
    server = pooled("apps:probe", options=corpus_options(case["gunicorn_settings"]))
    if name in DIFFERENT:
        n_ok, end, _ = DIFFERENT[name]
    elif case["kind"] == "valid":
        n_ok, end = len(case["expect"]), "any"
    else:
        n_ok, end = 0, "error"
    raw = base64.b64decode(case["raw_b64"])
    with feed(server, raw, mode, seed=name) as c:
        for i in range(n_ok):
            resp = c.read_response()
            assert 200 <= resp.status < 300, f"{name} request {i}: {resp.status} {resp.body!r}"
            if case["kind"] == "valid":
                check_facts(json.loads(resp.body), expected_facts(case["expect"][i]), name)
        if end == "open":
            assert not c.is_closed(timeout=0.05), f"{name}: connection closed"
        elif end in ("closed", "any"):
            if end == "closed":
                assert c.is_closed(timeout=3), f"{name}: connection left open"
            else:
                c.is_closed(timeout=0.02)  # no stray bytes; open or closed are both fine
        else:
            # error, stall: a refusal (a head or body left incomplete times out
            # as 408, or the app's read fails: 500) and a close
            try:
                resp = c.read_response()
            except EOFError:
                assert end == "stall", f"{name}: closed without an answer"
            else:
                assert resp.status >= 400, f"{name}: {resp.status} {resp.body[:200]!r}"
                if end == "error" and case["kind"] == "valid":
                    assert resp.status in (400, 501), f"{name}: {resp.status}"
            assert c.is_closed(timeout=4), f"{name}: connection left open after the refusal"
