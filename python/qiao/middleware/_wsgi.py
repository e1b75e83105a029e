"""WSGI plumbing shared by the middleware (no policy of its own).

Owns what every middleware must get right and nothing else:

* :class:`ClosingIterator`: a response iterable that, when the server closes
  it, closes the wrapped iterable *and* the inner application's result, even
  if iteration never started (a bare generator would skip its ``finally``).
* :class:`Rewriter`: one response passing through a middleware that rewrites
  bodies (``Compress``, ``Transform``). It stands between the inner app and
  the server's ``start_response``: holds the status and headers until the
  middleware has decided what to do (:meth:`Rewriter.plan`), feeds every body
  piece, whether it comes from the iterable or from ``write()``, through
  :meth:`Rewriter.feed`, handles ``exc_info`` and forwards the headers before
  the first piece goes out. When the middleware declines a response whose
  headers are known when the app returns, the app's own iterable goes to the
  server untouched (``wsgi.file_wrapper`` and its ``sendfile`` survive).
* Small helpers for header lists and plain-text answers.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any, Callable

Headers = list[tuple[str, str]]
StartResponse = Callable[..., Callable[[bytes], Any]]
WSGIApp = Callable[[dict, StartResponse], Iterable[bytes]]


def close_all(*objects: object) -> None:
    """Calls ``close()`` on each object that has one; every one is called even
    if an earlier one raises (the first error is re-raised at the end)."""
    error: BaseException | None = None
    for obj in objects:
        close = getattr(obj, "close", None)
        if close is None:
            continue
        try:
            close()
        except BaseException as e:  # noqa: BLE001 - re-raised below
            error = error or e
    if error is not None:
        raise error


class ClosingIterator:
    """Iterates ``iterable``; ``close()`` closes it, then each of ``also``."""

    def __init__(self, iterable: Iterable[bytes], *also: object):
        self._iterable = iterable
        self._iterator: Iterator[bytes] = iter(iterable)
        self._also = also

    def __iter__(self) -> ClosingIterator:
        return self

    def __next__(self) -> bytes:
        return next(self._iterator)

    def close(self) -> None:
        close_all(self._iterable, *self._also)


def header(headers: Headers, name: str) -> str | None:
    """The first value of header ``name`` (case-insensitive), or None."""
    name = name.lower()
    for key, value in headers:
        if key.lower() == name:
            return value
    return None


def without(headers: Headers, *names: str) -> Headers:
    """``headers`` less every field named in ``names`` (case-insensitive)."""
    drop = {n.lower() for n in names}
    return [(k, v) for k, v in headers if k.lower() not in drop]


def add_vary(headers: Headers, token: str) -> Headers:
    """Adds ``token`` to ``Vary`` unless it (or ``*``) is already listed."""
    listed = {t.strip().lower() for k, v in headers if k.lower() == "vary" for t in v.split(",")}
    if token.lower() in listed or "*" in listed:
        return headers
    return headers + [("Vary", token)]


def weaken_etag(headers: Headers) -> Headers:
    """A strong ``ETag`` made weak: the body is no longer byte-identical to the
    representation it named, but it is semantically equivalent."""
    return [(k, "W/" + v if k.lower() == "etag" and v.startswith('"') else v) for k, v in headers]


def status_code(status: str) -> int:
    try:
        return int(status.split(" ", 1)[0])
    except ValueError:
        return 0


def plain(
    start_response: StartResponse, status: str, text: str, headers: Sequence[tuple[str, str]] = ()
) -> list[bytes]:
    """A short ``text/plain`` answer of the middleware's own."""
    body = text.encode("utf-8")
    start_response(
        status,
        [
            ("Content-Type", "text/plain; charset=utf-8"),
            ("Content-Length", str(len(body))),
            *headers,
        ],
    )
    return [body]


def known_length(result: object) -> int | None:
    """The body length of a list or tuple result, without consuming anything."""
    if isinstance(result, (list, tuple)) and type(result) in (list, tuple):
        if all(type(p) is bytes for p in result):
            return sum(len(p) for p in result)
    return None


class Rewriter:
    """One response through a body-rewriting middleware; subclasses override
    :meth:`plan`, :meth:`feed` and :meth:`finish`, and may hold the headers
    back by leaving :attr:`ready` false (``Transform`` collecting a body)."""

    def __init__(self, environ: dict, start_response: StartResponse):
        self.environ = environ
        self.status: str | None = None
        self.headers: Headers = []
        #: set by plan(): leave this response alone
        self.passthrough = False
        #: false while the headers must wait (the body is being collected)
        self.ready = True
        self._server_start = start_response
        self._server_write: Callable[[bytes], Any] | None = None
        self._planned = False
        self._forwarded = False

    # -- what subclasses decide --------------------------------------------------
    def plan(self, length: int | None) -> None:
        """``status``/``headers`` are final: decide, and edit them if need be.
        ``length`` is the body's length when known before it is read."""

    def feed(self, data: bytes) -> bytes:
        return data

    def finish(self) -> bytes:
        return b""

    # -- the WSGI side -------------------------------------------------------------
    def run(self, app: WSGIApp) -> Iterable[bytes]:
        result = app(self.environ, self.start_response)
        if self.status is not None and not self._forwarded:
            self._ensure_planned(known_length(result))
            if self.passthrough:
                self._forward()
                return result
        return ClosingIterator(self._body(result), result)

    def start_response(
        self, status: str, headers: Headers, exc_info: Any = None
    ) -> Callable[[bytes], Any]:
        if exc_info is not None:
            try:
                if self._forwarded:
                    # The server decides: it re-raises if anything was sent,
                    # else it takes this response, which goes out unchanged.
                    self.status, self.headers = status, list(headers)
                    self.passthrough, self.ready = True, True
                    self._server_write = self._server_start(status, self.headers, exc_info)
                    return self.write
            finally:
                exc_info = None
        elif self.status is not None:
            raise AssertionError("start_response called a second time without exc_info")
        self.status, self.headers = status, list(headers)
        self._planned = False
        return self.write

    def write(self, data: bytes) -> None:
        self._ensure_planned(None)
        out = data if self.passthrough else self.feed(data)
        if self._forward_if_ready() and out:
            self._server_write(out)  # type: ignore[misc]

    def _body(self, result: Iterable[bytes]) -> Iterator[bytes]:
        length = known_length(result)
        for piece in result:
            self._ensure_planned(length)
            out = piece if self.passthrough else self.feed(piece)
            if self._forward_if_ready():
                yield out
        self._ensure_planned(length)
        out = b"" if self.passthrough else self.finish()
        self.ready = True
        self._forward()
        if out:
            yield out

    def _ensure_planned(self, length: int | None) -> None:
        if self.status is None:
            raise RuntimeError("the application did not call start_response")
        if not self._planned:
            self._planned = True
            self.passthrough, self.ready = False, True
            self.plan(length)

    def _forward_if_ready(self) -> bool:
        if not self._forwarded and self.ready:
            self._forward()
        return self._forwarded

    def _forward(self) -> None:
        if not self._forwarded:
            self._server_write = self._server_start(self.status, self.headers)
            self._forwarded = True
