"""Per-thread reuse of ``wsgi.input`` and ``start_response`` (src/wsgi/
reuse.rs): reused only when the app kept no reference, so what an app keeps
past a request never turns into a later request's object."""

from __future__ import annotations

import json

import pytest

pytestmark = pytest.mark.qiao_only


@pytest.fixture
def srv(start_server):
    # One serving thread: every request goes through the same spare pair.
    return start_server("reuse_apps:app", options=["--threads", "1"])


def ask(conn, path: str, body: bytes = b"") -> dict:
    r = conn.request("POST", path, body=body)
    assert r.status == 200, r.body
    return json.loads(r.body)


def test_unshared_objects_are_reused(srv):
    """The reuse path runs (so the tests below exercise it)."""
    with srv.connect() as c:
        first, second = ask(c, "/ids", b"one"), ask(c, "/ids", b"two")
    assert (first["body"], second["body"]) == ("one", "two")
    assert first["input"] == second["input"]
    assert first["start_response"] == second["start_response"]


def test_a_kept_environ_keeps_its_own_input(srv):
    with srv.connect() as c:
        kept = ask(c, "/keep-environ", b"first body")
        now = ask(c, "/old", b"second body")
    assert now["body"] == "second body"
    assert now["old_input_is_new"] is False
    assert now["input"] != kept["input"]
    # The old stream is over: it never reads the new request's body.
    assert now["old_input_reads"] == "RequestBodyError"


def test_a_kept_start_response_is_not_reused(srv):
    with srv.connect() as c:
        kept = ask(c, "/keep-start-response")
        now = ask(c, "/old")
    assert now["old_start_response_is_new"] is False
    assert now["start_response"] != kept["start_response"]


def test_a_kept_write_cannot_reach_another_response(srv):
    with srv.connect() as c:
        r = c.request("GET", "/keep-write")
        assert (r.status, r.body) == (200, b"kept")
        r = c.request("POST", "/old")
        assert r.status == 200
        now = json.loads(r.body)
    assert now["old_write"] == "RuntimeError"
    assert b"leaked" not in r.body
