"""What the endpoints of ``apps`` share: the route table (``route``
registers an endpoint by path, ``good=True`` for those that follow PEP 3333
to the letter), the query and body helpers, the responses, and
``CLOSE_LOG``, where response iterables record their close calls."""

from __future__ import annotations

import json
import threading
from urllib.parse import parse_qs

CLOSE_LOG: dict[str, int] = {}
_LOCK = threading.Lock()
ROUTES = {}
GOOD_ROUTES = set()  # endpoints that follow PEP 3333 to the letter


def route(path, good=False):
    def register(func):
        ROUTES[path] = func
        if good:
            GOOD_ROUTES.add(path)
        return func

    return register


def query(environ) -> dict:
    parsed = parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True)
    return {k: v[0] for k, v in parsed.items()}


def respond(start_response, body: bytes, status="200 OK", ctype="text/plain", extra=()):
    headers = [("Content-Type", ctype), ("Content-Length", str(len(body))), *extra]
    start_response(status, headers)
    return [body]


def respond_json(start_response, obj, status="200 OK"):
    return respond(start_response, json.dumps(obj).encode(), status, "application/json")


def read_all(environ) -> bytes:
    """Read the whole body in pieces (validator-safe: read() always gets a size)."""
    inp, parts = environ["wsgi.input"], []
    while True:
        piece = inp.read(65536)
        if not piece:
            return b"".join(parts)
        parts.append(piece)


def record_close(key: str):
    with _LOCK:
        CLOSE_LOG[key] = CLOSE_LOG.get(key, 0) + 1
