"""``pre_request(worker, req)`` and ``post_request(worker, req, environ,
resp)``: gunicorn's per-request hooks, in the worker.

They cost nothing unless defined: only then is the application wrapped.
The wrapper builds a ``req`` (its attributes are read from the environ
when asked for), calls ``pre_request`` before the application and, when
``post_request`` is defined, records the status and headers the
application gives ``start_response``. The application's result is passed
on untouched, so a ``wsgi.file_wrapper`` still goes out with ``sendfile``
and a list still gets a Content-Length.

``post_request`` is called by the engine's after-request callback (the one
the access log uses), on the request's thread, once the response is sent
and the result's ``close()`` has been called, with the body bytes actually
sent. As in gunicorn it is called for a request that failed too (the
application raised, or ``pre_request`` did: ``resp`` then describes the
500 sent), and it may take 2, 3 or 4 arguments.
"""

from __future__ import annotations

import http
import inspect
import logging
from typing import Any, Callable

log = logging.getLogger("qiao.error")

#: The environ key that carries a request's hook state to the callback.
STATE_KEY = "qiao.hook_request"
#: Environ keys that are request headers without the ``HTTP_`` prefix.
_UNPREFIXED = {"CONTENT_TYPE": "CONTENT-TYPE", "CONTENT_LENGTH": "CONTENT-LENGTH"}


class Request:
    """``req``: gunicorn's parsed request, read from the environ."""

    __slots__ = ("environ",)

    def __init__(self, environ: dict) -> None:
        self.environ = environ

    @property
    def method(self) -> str:
        return self.environ.get("REQUEST_METHOD", "")

    @property
    def uri(self) -> str:
        e = self.environ
        uri = e.get("RAW_URI")
        if uri is None:
            uri = e.get("SCRIPT_NAME", "") + e.get("PATH_INFO", "")
            if e.get("QUERY_STRING"):
                uri += "?" + e["QUERY_STRING"]
        return uri

    @property
    def path(self) -> str:
        return self.uri.split("?", 1)[0]

    @property
    def query(self) -> str:
        return self.environ.get("QUERY_STRING", "")

    fragment = ""

    @property
    def version(self) -> tuple[int, int]:
        protocol = self.environ.get("SERVER_PROTOCOL", "HTTP/1.1")
        major, _, minor = protocol.partition("/")[2].partition(".")
        try:
            return int(major), int(minor or 0)
        except ValueError:
            return 1, 1

    @property
    def headers(self) -> list[tuple[str, str]]:
        """(NAME, value) in upper case, as gunicorn's parser gives them."""
        found = []
        for key, value in self.environ.items():
            if key.startswith("HTTP_"):
                found.append((key[5:].replace("_", "-"), value))
            elif key in _UNPREFIXED:
                found.append((_UNPREFIXED[key], value))
        return found

    @property
    def scheme(self) -> str:
        return self.environ.get("wsgi.url_scheme", "http")

    @property
    def remote_addr(self) -> Any:
        """(host, port) for TCP, as gunicorn; the address alone otherwise."""
        e = self.environ
        port = e.get("REMOTE_PORT")
        if port:
            return (e.get("REMOTE_ADDR", ""), int(port))
        return e.get("REMOTE_ADDR", "")

    peer_addr = remote_addr

    @property
    def body(self) -> Any:
        return self.environ.get("wsgi.input")

    def __repr__(self) -> str:
        return f"<Request {self.method} {self.uri}>"


class Response:
    """``resp``: what was sent. ``status`` and ``headers`` are the
    application's (``start_response``'s arguments); when what went out
    differs (the application failed: a 500), the status sent."""

    __slots__ = ("status", "headers", "status_code", "sent")

    def __init__(self) -> None:
        self.status: str | None = None
        self.headers: list[tuple[str, str]] = []
        self.status_code: int | None = None
        self.sent = 0

    def finish(self, code: int, sent: int) -> None:
        if self.status is None or not self.status.startswith(str(code)):
            try:
                phrase = http.HTTPStatus(code).phrase
            except ValueError:
                phrase = ""
            self.status, self.headers = f"{code} {phrase}".rstrip(), []
        self.status_code = code
        self.sent = sent

    @property
    def headers_sent(self) -> bool:
        return self.status is not None

    @property
    def response_length(self) -> int | None:
        for name, value in self.headers:
            if name.lower() == "content-length" and value.isdigit():
                return int(value)
        return None

    def __repr__(self) -> str:
        return f"<Response {self.status}>"


def _four_arguments(hook: Callable) -> Callable:
    """``post_request`` as a 4-argument call (gunicorn takes 2, 3 or 4)."""
    try:
        count = len(inspect.signature(hook).parameters)
    except (TypeError, ValueError):
        return hook
    if count == 2:
        return lambda worker, req, environ, resp: hook(worker, req)
    if count == 3:
        return lambda worker, req, environ, resp: hook(worker, req, environ)
    return hook


def wrap(app: Any, opts: dict, worker: Any) -> Any:
    """``app``, or when ``pre_request``/``post_request`` is defined, the
    wrapper that calls the first and prepares the second."""
    pre = opts.get("pre_request")
    want_resp = opts.get("post_request") is not None
    if pre is None and not want_resp:
        return app

    def with_request_hooks(environ: dict, start_response: Any) -> Any:
        req = Request(environ)
        if not want_resp:
            pre(worker, req)
            return app(environ, start_response)
        resp = Response()
        environ[STATE_KEY] = (req, resp)
        if pre is not None:
            pre(worker, req)  # raising fails this request with a 500, as in gunicorn

        def capture(status: str, headers: list, exc_info: Any = None) -> Any:
            resp.status, resp.headers = status, headers
            return start_response(status, headers, exc_info)

        return app(environ, capture)

    return with_request_hooks


def engine_options(opts: dict, worker: Any, engine: dict) -> dict:
    """The engine's options ``engine``, with ``post_request`` called from
    its after-request callback when it is defined. The callback is
    ``engine["access_log"]``, or ``engine["logging"]["access_log"]`` where
    the options are grouped."""
    post = opts.get("post_request")
    if post is None:
        return engine
    post = _four_arguments(post)
    grouped = "logging" in engine
    access = engine["logging"].get("access_log") if grouped else engine.get("access_log")

    def after_request(environ: dict, status: int, sent: int, seconds: float) -> None:
        if access is not None:
            access(environ, status, sent, seconds)
        state = environ.pop(STATE_KEY, None)
        if state is None:  # answered natively (--static, --proxy): not the app's
            return
        req, resp = state
        resp.finish(status, sent)
        try:
            post(worker, req, environ, resp)
        except Exception:
            log.exception("Exception in post_request hook")

    if grouped:
        return {**engine, "logging": {**engine["logging"], "access_log": after_request}}
    return {**engine, "access_log": after_request}
