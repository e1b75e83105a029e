"""Apps that keep what a request handed them past its end (test_reuse.py):
the server reuses ``wsgi.input`` and ``start_response`` from one request to
the next only when nothing else refers to them."""

from __future__ import annotations

import json

#: What the apps kept from earlier requests.
KEPT: dict = {}


def _reply(start_response, payload: dict):
    body = json.dumps(payload).encode()
    start_response("200 OK", [("Content-Type", "application/json")])
    return [body]


def app(environ, start_response):
    path = environ["PATH_INFO"]
    body = environ["wsgi.input"].read()
    ids = {
        "input": id(environ["wsgi.input"]),
        "start_response": id(start_response),
        "body": body.decode(),
    }
    if path == "/ids":
        return _reply(start_response, ids)
    if path == "/keep-environ":
        KEPT["environ"] = environ
        return _reply(start_response, ids)
    if path == "/keep-start-response":
        KEPT["start_response"] = start_response
        return _reply(start_response, ids)
    if path == "/keep-write":
        KEPT["write"] = start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"kept"]
    if path == "/old":
        # What the kept objects do now, during another request.
        old = KEPT.get("environ")
        out = dict(ids)
        if old is not None:
            out["old_input_is_new"] = old["wsgi.input"] is environ["wsgi.input"]
            try:
                out["old_input_reads"] = old["wsgi.input"].read().decode()
            except Exception as e:  # noqa: BLE001 - reported to the test
                out["old_input_reads"] = type(e).__name__
        if "start_response" in KEPT:
            out["old_start_response_is_new"] = KEPT["start_response"] is start_response
        if "write" in KEPT:
            try:
                KEPT["write"](b"leaked into another response")
                out["old_write"] = "wrote"
            except Exception as e:  # noqa: BLE001 - reported to the test
                out["old_write"] = type(e).__name__
        return _reply(start_response, out)
    start_response("404 Not Found", [("Content-Type", "text/plain")])
    return [b"no such path"]
