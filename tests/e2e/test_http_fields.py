"""The portable middleware's request-field rules (``qiao.middleware._http``,
and the order of the preconditions, ``evaluate_preconditions``) against the
one table of cases the engine's ``crates/http/src/fields.rs`` and
``crates/http/src/conditional.rs`` run too (``tests/cases/http_fields.json``; its
Rust twin is ``crates/http/tests/http_fields.rs``): two implementations, one expected
answer per case."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from qiao.middleware import _http

pytestmark = pytest.mark.qiao_only("Qiao's own middleware functions")

TABLE = json.loads((Path(__file__).resolve().parents[1] / "cases" / "http_fields.json").read_text())


def ids(cases: list[dict]) -> list[str]:
    return [json.dumps({k: v for k, v in c.items() if k != "want"}) for c in cases]


@pytest.mark.parametrize("case", TABLE["choose_coding"], ids=ids(TABLE["choose_coding"]))
def test_coding_negotiation(case):
    assert _http.choose_coding(case["accept"], case["available"]) == case["want"]


@pytest.mark.parametrize("case", TABLE["parse_http_date"], ids=ids(TABLE["parse_http_date"]))
def test_parse_http_date(case):
    assert _http.parse_http_date(case["value"]) == case["want"]


@pytest.mark.parametrize("case", TABLE["http_date"], ids=ids(TABLE["http_date"]))
def test_http_date(case):
    assert _http.http_date(case["secs"]) == case["want"]


@pytest.mark.parametrize("case", TABLE["etag_matches"], ids=ids(TABLE["etag_matches"]))
def test_etag_matches(case):
    got = _http.etag_matches(case["header"], case["etag"], weak=case["weak"])
    assert got == case["want"]


@pytest.mark.parametrize("case", TABLE["parse_range"], ids=ids(TABLE["parse_range"]))
def test_parse_range(case):
    want = case["want"]
    if want == "unsatisfiable":
        want = _http.UNSATISFIABLE
    elif want is not None:
        want = tuple(want)
    assert _http.parse_range(case["value"], case["size"]) == want


@pytest.mark.parametrize("case", TABLE["preconditions"], ids=ids(TABLE["preconditions"]))
def test_preconditions(case):
    fields = case["headers"]
    conditions = _http.Conditions(
        if_match=fields.get("If-Match"),
        if_none_match=fields.get("If-None-Match"),
        if_modified_since=fields.get("If-Modified-Since"),
        if_unmodified_since=fields.get("If-Unmodified-Since"),
        range=fields.get("Range"),
        if_range=fields.get("If-Range"),
    )
    want = case["want"]
    want = tuple(want) if isinstance(want, list) else want
    got = _http.evaluate_preconditions(
        case["method"], conditions, case["etag"], case["mtime"], case["size"]
    )
    assert got == want
