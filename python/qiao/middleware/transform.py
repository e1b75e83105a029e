"""Whole-body post-processing: :class:`Transform` hands the complete body of
responses of the given content types to a function and sends what it
returns (an XSLT stylesheet applied to XML, HTML rewritten, a banner
injected...).

What it owns: choosing the responses (type listed, not encoded, not empty
by status, not partial), collecting their bodies, which a whole-body
function needs by definition, fixing the headers (``Content-Length`` of the
new body, the new ``Content-Type`` if one is given, a strong ``ETag`` made
weak) and sending the result. It is the only middleware here that buffers
a body; :data:`MAX_BODY` bounds it: a body that turns out longer is sent
untouched (headers included), the part collected first and then the rest
as it streams. HEAD responses go through untouched, as do responses whose
declared ``Content-Length`` is already over the cap.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Callable

from ._wsgi import Rewriter, StartResponse, WSGIApp, header, status_code, weaken_etag

#: Longest body collected for transformation (8 MiB); longer bodies pass through.
MAX_BODY = 8 * 1024 * 1024
#: Types transformed unless told otherwise.
TYPES = ("text/html",)

TransformFunc = Callable[[bytes, dict], bytes]


class Transform:
    """Applies ``func(body, environ) -> bytes`` to the whole body of ``app``'s
    responses whose media type is in ``types``. ``content_type``: the
    ``Content-Type`` of the result, if it differs (XML in, HTML out).
    ``max_size``: see :data:`MAX_BODY`. An exception in ``func`` reaches the
    server before anything is sent (a 500)."""

    def __init__(
        self,
        app: WSGIApp,
        func: TransformFunc,
        types: Sequence[str] = TYPES,
        *,
        content_type: str | None = None,
        max_size: int = MAX_BODY,
    ):
        if not callable(func):
            raise TypeError("func must be callable")
        self.app, self.func = app, func
        self.types = {t.split(";", 1)[0].strip().lower() for t in types}
        self.content_type = content_type
        self.max_size = max_size

    def __call__(self, environ: dict, start_response: StartResponse) -> Iterable[bytes]:
        return _Transformation(self, environ, start_response).run(self.app)


class _Transformation(Rewriter):
    def __init__(self, config: Transform, environ: dict, start_response: StartResponse):
        super().__init__(environ, start_response)
        self.config = config
        self.parts: list[bytes] = []
        self.size = 0

    def plan(self, length: int | None) -> None:
        config, headers = self.config, self.headers
        ctype = (header(headers, "Content-Type") or "").split(";", 1)[0].strip().lower()
        encoded = (header(headers, "Content-Encoding") or "identity").strip().lower()
        declared = header(headers, "Content-Length")
        if declared is not None and declared.strip().isdigit():
            length = int(declared)
        code = status_code(self.status or "")
        if (
            ctype not in config.types
            or encoded != "identity"
            or code < 200
            or code in (204, 206, 304)
            or self.environ.get("REQUEST_METHOD") == "HEAD"
            or (length is not None and length > config.max_size)
        ):
            self.passthrough = True
            return
        self.parts, self.size = [], 0
        self.ready = False  # hold the headers until the body is complete

    def feed(self, data: bytes) -> bytes:
        if self.ready:  # gave up: over the cap
            return data
        self.parts.append(data)
        self.size += len(data)
        if self.size <= self.config.max_size:
            return b""
        self.ready = True
        out, self.parts = b"".join(self.parts), []
        return out

    def finish(self) -> bytes:
        if self.ready:
            return b""
        body = self.config.func(b"".join(self.parts), self.environ)
        self.parts = []
        if not isinstance(body, bytes):
            raise TypeError(f"the transform returned {type(body).__name__}, not bytes")
        drop = {"content-length", "content-md5"}
        if self.config.content_type is not None:
            drop.add("content-type")
        headers = [(k, v) for k, v in weaken_etag(self.headers) if k.lower() not in drop]
        if self.config.content_type is not None:
            headers.append(("Content-Type", self.config.content_type))
        self.headers = headers + [("Content-Length", str(len(body)))]
        return body
