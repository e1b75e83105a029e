"""Dispatch to one of several applications by path: :class:`Router` (regular
expressions) and :class:`Mount` (path prefixes).

Both are plain WSGI applications that call another one; neither buffers or
wraps the response, so the chosen app's iterable (and its ``close()``,
``write()`` and ``wsgi.file_wrapper``) reaches the server as it is. They
change the environ in place, as WSGI middleware may, and only for the app
they pick:

* ``Router`` adds the match's groups to ``wsgiorg.routing_args``
  (``(positional, named)``, as the wsgiorg routing_args spec describes;
  a nested router extends the outer one's);
* ``Mount`` moves the matched prefix from ``PATH_INFO`` to ``SCRIPT_NAME``,
  so the mounted app sees paths relative to where it is mounted and can
  build absolute URLs from ``SCRIPT_NAME``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Union

from ._wsgi import StartResponse, WSGIApp, plain

#: Environ key of the routing arguments (wsgiorg routing_args specification).
ROUTING_ARGS = "wsgiorg.routing_args"

Pattern = Union[str, "re.Pattern[str]"]


def not_found_app(environ: dict, start_response: StartResponse) -> Iterable[bytes]:
    """The default answer when nothing matches: ``404 Not Found``."""
    return plain(start_response, "404 Not Found", "Not Found\n")


class Router:
    """Routes by regular expression: ``routes`` are ``(pattern, app)`` pairs,
    tried in order with ``pattern.search(PATH_INFO)`` (anchor patterns with
    ``^``/``$`` as needed); the first match gets the request. Unnamed groups
    become positional routing args, named groups keyword ones. When nothing
    matches, ``not_found`` (by default a plain 404) answers.

    ::

        Router([(r"^/$", index), (r"^/hello/(?P<name>[^/]+)$", hello)])
    """

    def __init__(
        self,
        routes: Sequence[tuple[Pattern, WSGIApp]],
        not_found: WSGIApp | None = None,
    ):
        self.routes: list[tuple[re.Pattern[str], WSGIApp]] = []
        for pattern, app in routes:
            if not callable(app):
                raise TypeError(f"the app for route {pattern!r} is not callable")
            compiled = pattern if isinstance(pattern, re.Pattern) else re.compile(pattern)
            self.routes.append((compiled, app))
        self.not_found: WSGIApp = not_found or not_found_app

    def __call__(self, environ: dict, start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        for pattern, app in self.routes:
            match = pattern.search(path)
            if match is None:
                continue
            named = match.groupdict()
            named_indices = set(pattern.groupindex.values())
            positional = [
                match.group(i) for i in range(1, pattern.groups + 1) if i not in named_indices
            ]
            outer_args, outer_named = environ.get(ROUTING_ARGS, ((), {}))
            environ[ROUTING_ARGS] = (
                list(outer_args) + positional,
                {**dict(outer_named), **named},
            )
            return app(environ, start_response)
        return self.not_found(environ, start_response)


def normalize_prefix(prefix: str) -> str:
    """``"/api/"`` → ``"/api"``; ``"/"`` → ``""`` (the root: every path)."""
    if not prefix.startswith("/") and prefix != "":
        raise ValueError(f"mount prefix {prefix!r} must start with '/'")
    return prefix.rstrip("/")


def match_prefix(prefixes: Sequence[str], path: str) -> str | None:
    """The longest of ``prefixes`` (normalized) that ``path`` lies under,
    matching whole segments: ``/api`` matches ``/api`` and ``/api/x``, not
    ``/apix``."""
    best = None
    for prefix in prefixes:
        if path == prefix or path.startswith(prefix + "/") or not prefix:
            if best is None or len(prefix) > len(best):
                best = prefix
    return best


class Mount:
    """Mounts applications under path prefixes: ``{"/api": api, "/admin":
    admin}``. The longest prefix that matches whole segments wins (``/api``
    takes ``/api`` and ``/api/x``, never ``/apix``); the prefix moves from
    ``PATH_INFO`` to ``SCRIPT_NAME`` (``PATH_INFO`` is then ``""`` or starts
    with ``/``). Requests under no prefix go to ``default``, or get a 404.
    """

    def __init__(self, apps: Mapping[str, WSGIApp], default: WSGIApp | None = None):
        self.mounts: dict[str, WSGIApp] = {}
        for prefix, app in apps.items():
            if not callable(app):
                raise TypeError(f"the app mounted at {prefix!r} is not callable")
            self.mounts[normalize_prefix(prefix)] = app
        self.default: WSGIApp = default or not_found_app

    def __call__(self, environ: dict, start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        prefix = match_prefix(list(self.mounts), path)
        if prefix is None:
            return self.default(environ, start_response)
        app = self.mounts[prefix]
        environ["SCRIPT_NAME"] = environ.get("SCRIPT_NAME", "") + prefix
        environ["PATH_INFO"] = path[len(prefix) :]
        return app(environ, start_response)
