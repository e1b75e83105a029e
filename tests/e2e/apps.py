"""WSGI test applications for the e2e suite.

``app`` (also ``application`` and the factory ``create_app()``) dispatches on
PATH_INFO to small endpoints, each exercising one part of PEP 3333. Query
parameters tune them. Endpoints that deliberately misbehave (bad headers,
str bodies, exceptions; ``apps_misbehaving``) live beside the well-behaved
ones (``apps_endpoints``), all registered in ``apps_support``'s route table;
``validated`` is the well-behaved subset wrapped in
``wsgiref.validate.validator``.

Close calls on response iterables are recorded in ``CLOSE_LOG`` and exposed
through ``/closed?id=...`` (the servers under test run one worker process).
"""

from __future__ import annotations

from wsgiref.validate import validator

# The endpoints: importing their modules registers their routes.
import apps_endpoints  # noqa: F401
import apps_misbehaving  # noqa: F401
from apps_support import _LOCK, GOOD_ROUTES, ROUTES, query, read_all, respond, respond_json
from apps_support import CLOSE_LOG as CLOSE_LOG


def not_found(environ, start_response):
    info = {
        "error": "no such endpoint",
        "PATH_INFO": environ.get("PATH_INFO"),
        "QUERY_STRING": environ.get("QUERY_STRING"),
    }
    return respond_json(start_response, info, status="404 Not Found")


def app(environ, start_response):
    handler = ROUTES.get(environ.get("PATH_INFO", ""), not_found)
    return handler(environ, start_response)


application = app


def create_app():
    """Factory form, for ``apps:create_app()``."""
    return app


def _good_app(environ, start_response):
    path = environ.get("PATH_INFO", "")
    handler = ROUTES[path] if path in GOOD_ROUTES else not_found
    return handler(environ, start_response)


validated = validator(_good_app)


# -- hardening suites (test_corpus.py, test_security.py, test_limits.py) -----------

PROBE_HITS: dict[str, int] = {}


def probe(environ, start_response):
    """Any path: 200 with what the server parsed, as JSON; counts requests per path.

    ``/__hits?path=P`` answers how many requests reached PATH_INFO ``P`` (a
    smuggled request must never count); ``path=read-error:P`` how many of them
    had their ``wsgi.input`` read raise. A query holding ``noread`` leaves the
    body unread, for the drain tests.
    """
    path = environ.get("PATH_INFO", "")
    if path == "/__hits":
        with _LOCK:
            n = PROBE_HITS.get(query(environ).get("path", ""), 0)
        return respond(start_response, str(n).encode())
    with _LOCK:
        PROBE_HITS[path] = PROBE_HITS.get(path, 0) + 1
    unread = "noread" in environ.get("QUERY_STRING", "")
    try:
        body = b"" if unread else read_all(environ)
    except Exception as exc:  # the server refused the body mid-read
        with _LOCK:
            PROBE_HITS[f"read-error:{path}"] = PROBE_HITS.get(f"read-error:{path}", 0) + 1
        raise RuntimeError(f"probe: body read failed: {exc!r}") from exc
    info = {
        "method": environ["REQUEST_METHOD"],
        "path": path,
        "query": environ.get("QUERY_STRING", ""),
        "protocol": environ.get("SERVER_PROTOCOL", ""),
        "content_length": environ.get("CONTENT_LENGTH", ""),
        "content_type": environ.get("CONTENT_TYPE", ""),
        "headers": {k: v for k, v in environ.items() if k.startswith("HTTP_")},
        "body": body.decode("latin-1"),
    }
    return respond_json(start_response, info)
