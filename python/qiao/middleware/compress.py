"""On-the-fly response compression: :class:`Compress` encodes response
bodies with zstd, brotli or gzip, whichever the client rates highest in
``Accept-Encoding`` (ties go to :data:`CODINGS` order), as they stream.

What it owns: deciding per response (compressible type, big enough, not
already encoded, not a partial response, no ``Cache-Control: no-transform``),
the header changes (``Content-Encoding``; ``Vary: Accept-Encoding`` on every
response that could have been compressed, so caches keep the variants
apart; ``Content-Length`` and ``Accept-Ranges`` dropped; a strong ``ETag``
made weak), and feeding the body to the codec piece by piece. The codec
itself is Rust (``qiao._qiao.Compressor``, see ``crates/http/src/codec.rs``), which
releases the GIL while it works on a large piece.

Streaming: nothing waits for the whole body. Each piece the app yields (or
``write()``s) goes to the codec at once and what it emits goes out; once
:data:`STREAM_FLUSH_BYTES` have gone in since the last flush, the codec is
flushed, so everything fed so far can be decoded by the client: a slow
stream's first bytes arrive early and the codec never holds much back.
Bodies whose size is unknown are compressed (only a known
``Content-Length``, or a list body, can be found to be small).

Qiao's ``--compress`` applies the same rules in the engine
(``crates/http/src/compress.rs``); a change here must be made there too (the
suite in ``tests/e2e/test_middleware_compress.py`` runs against both).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from .._qiao import Compressor
from ._http import choose_coding
from ._wsgi import Rewriter, StartResponse, WSGIApp, add_vary, header, status_code, weaken_etag

#: Codings offered, in order of preference when the client rates them alike.
CODINGS = ("zstd", "br", "gzip")
#: Bodies known to be shorter than this are sent as they are: the codec's
#: framing would eat the gain.
MIN_SIZE = 1024
#: Types compressed by default; an entry ending in ``/`` covers the whole
#: top-level type (``text/event-stream`` excepted: each event must go out
#: at once, which compression would delay).
TYPES = (
    "text/",
    "application/json",
    "application/ld+json",
    "application/manifest+json",
    "application/javascript",
    "application/xml",
    "application/xhtml+xml",
    "application/rss+xml",
    "application/atom+xml",
    "application/wasm",
    "image/svg+xml",
)
#: Never compressed, even when ``types`` covers them.
NEVER = ("text/event-stream",)
#: Input fed to the codec between two flushes, at most: bounds what it holds
#: back (a flush costs a few bytes of ratio; this many bytes make it negligible).
STREAM_FLUSH_BYTES = 64 * 1024


class Compress:
    """Compresses ``app``'s responses. ``min_size``: see :data:`MIN_SIZE`;
    ``types``: see :data:`TYPES`; ``codings``: the codings offered, in order
    of preference; ``levels``: per coding (``{"br": 5}``), else the codec's
    default (``crates/http/src/codec.rs``)."""

    def __init__(
        self,
        app: WSGIApp,
        min_size: int = MIN_SIZE,
        types: Sequence[str] = TYPES,
        *,
        codings: Sequence[str] = CODINGS,
        levels: Mapping[str, int] | None = None,
    ):
        unknown = set(codings) - set(CODINGS)
        if unknown:
            raise ValueError(f"unknown codings {sorted(unknown)}: choose among {CODINGS}")
        self.app = app
        self.min_size = min_size
        self.types = tuple(t.lower() for t in types)
        self.codings = tuple(codings)
        self.levels = dict(levels or {})
        for coding, level in self.levels.items():
            Compressor(coding, level)  # fails now, not per request, if invalid

    def compressible(self, content_type: str | None) -> bool:
        if not content_type:
            return False
        media = content_type.split(";", 1)[0].strip().lower()
        if media in NEVER:
            return False
        return any(media.startswith(t) if t.endswith("/") else media == t for t in self.types)

    def __call__(self, environ: dict, start_response: StartResponse) -> Iterable[bytes]:
        return _Compression(self, environ, start_response).run(self.app)


class _Compression(Rewriter):
    def __init__(self, config: Compress, environ: dict, start_response: StartResponse):
        super().__init__(environ, start_response)
        self.config = config
        self.encoder: Compressor | None = None
        self.swallowed = 0

    def plan(self, length: int | None) -> None:
        config, headers = self.config, self.headers
        code = status_code(self.status or "")
        encoded = header(headers, "Content-Encoding")
        if (
            code < 200
            or code in (204, 206, 304)
            or (encoded is not None and encoded.strip().lower() != "identity")
            or header(headers, "Content-Range") is not None
            or "no-transform" in (header(headers, "Cache-Control") or "").lower()
            or not config.compressible(header(headers, "Content-Type"))
        ):
            self.passthrough = True
            return
        declared = header(headers, "Content-Length")
        if declared is not None and declared.strip().isdigit():
            length = int(declared)
        if length is not None and length < config.min_size:
            self.passthrough = True
            return
        headers = add_vary(headers, "Accept-Encoding")
        coding = choose_coding(self.environ.get("HTTP_ACCEPT_ENCODING"), config.codings)
        if coding is None:
            self.headers, self.passthrough = headers, True
            return
        drop = {"content-length", "accept-ranges", "content-encoding"}
        headers = [(k, v) for k, v in weaken_etag(headers) if k.lower() not in drop]
        self.headers = headers + [("Content-Encoding", coding)]
        if self.environ.get("REQUEST_METHOD") != "HEAD":
            self.encoder = Compressor(coding, config.levels.get(coding))
        self.swallowed = 0

    def feed(self, data: bytes) -> bytes:
        if self.encoder is None or not data:
            return b""
        out = self.encoder.compress(data)
        self.swallowed += len(data)
        if self.swallowed >= STREAM_FLUSH_BYTES:
            out += self.encoder.flush()
            self.swallowed = 0
        return out

    def finish(self) -> bytes:
        if self.encoder is None:
            return b""
        encoder, self.encoder = self.encoder, None
        return encoder.finish()
