"""Static files: :class:`Static` serves directories under URL prefixes and
passes every other request to the wrapped application.

What it owns: mapping a request path to a file without ever leaving the
directory, the response headers of a file (``Content-Type``, validators,
caching), conditional requests (``If-Match``, ``If-Unmodified-Since``,
``If-None-Match``, ``If-Modified-Since`` → 412/304), one byte range
(``Range``/``If-Range`` → 206/416), precompressed ``.br``/``.gz`` siblings
chosen by ``Accept-Encoding``, and sending the file through
``wsgi.file_wrapper`` (zero-copy ``sendfile`` under Qiao), or in blocks of
:data:`BLOCK_SIZE` when the server has none.

Choices:

* Several ranges in one ``Range`` header get the whole file (200), which
  RFC 9110 allows; no ``multipart/byteranges``.
* A path is refused with 400 if it holds a NUL or a backslash, or if the raw
  request target (``RAW_URI`` or ``REQUEST_URI``, which Qiao, gunicorn and
  uWSGI provide) holds an encoded ``/``, ``\\`` or NUL: the decoded
  ``PATH_INFO`` can no longer tell those from real separators. A ``..``
  segment, a name starting with ``.`` (unless ``hidden=True``), a symlink
  that resolves outside the directory (checked on the real path of the
  very file opened, see ``_locate.py``), a missing file and anything not a
  regular file are all 404, so a probe learns nothing about what lies
  outside.
* A directory answers with its index file (``index``; None turns that off)
  after a 301 to the path with a trailing slash; never with a listing.
* Only GET and HEAD (others: 405 with ``Allow``); Range applies to GET only.
"""

from __future__ import annotations

import mimetypes
import os
import stat
from collections.abc import Iterable, Mapping, Sequence
from typing import BinaryIO, Callable, Optional, Union
from urllib.parse import quote

from . import _http
from ._locate import Found as _Found
from ._wsgi import Headers, StartResponse, WSGIApp, plain
from .routing import match_prefix, normalize_prefix

#: Bytes per block when the file is read in Python (no ``sendfile``).
BLOCK_SIZE = 64 * 1024
#: ``Cache-Control`` of a file unless configured: an hour, then revalidate.
DEFAULT_CACHE_CONTROL = "public, max-age=3600"
#: Precompressed siblings looked for, by content coding, in order of preference.
PRECOMPRESSED = {"br": ".br", "gzip": ".gz"}
#: Types whose names the platform's tables disagree on, or lack.
EXTRA_TYPES = {
    ".js": "text/javascript",
    ".mjs": "text/javascript",
    ".css": "text/css",
    ".html": "text/html",
    ".htm": "text/html",
    ".txt": "text/plain",
    ".md": "text/markdown",
    ".json": "application/json",
    ".xml": "application/xml",
    ".svg": "image/svg+xml",
    ".wasm": "application/wasm",
    ".webp": "image/webp",
    ".avif": "image/avif",
    ".woff": "font/woff",
    ".woff2": "font/woff2",
}
#: Non-``text/*`` types that are text, so get ``charset=utf-8`` too.
TEXT_TYPES = {"application/json", "application/xml", "application/javascript", "image/svg+xml"}
#: What a file that is itself compressed (``x.tar.gz``) is sent as.
ENCODED_FILE_TYPES = {
    "gzip": "application/gzip",
    "br": "application/x-brotli",
    "bzip2": "application/x-bzip2",
    "xz": "application/x-xz",
}
DEFAULT_TYPE = "application/octet-stream"
#: File names whose Content-Type a :class:`Static` remembers at most.
TYPE_CACHE_MAX = 4096

CacheControl = Union[str, Callable[[str], Optional[str]], None]


class _Refuse(Exception):
    """The request cannot be served; carries the status to answer."""

    def __init__(self, status: str, headers: Sequence[tuple[str, str]] = ()):
        super().__init__(status)
        self.status, self.headers = status, list(headers)


def content_type(name: str, extra: Mapping[str, str] = EXTRA_TYPES) -> str:
    """The ``Content-Type`` of a file name (text types with ``charset=utf-8``)."""
    guessed, encoding = mimetypes.guess_type(name, strict=False)
    if encoding:
        return ENCODED_FILE_TYPES.get(encoding, DEFAULT_TYPE)
    ctype = extra.get(os.path.splitext(name)[1].lower()) or guessed or DEFAULT_TYPE
    if ctype.startswith("text/") or ctype in TEXT_TYPES:
        ctype += "; charset=utf-8"
    return ctype


def raw_path(environ: dict) -> str | None:
    """The request target's path as sent, undecoded, when the server says."""
    raw = environ.get("RAW_URI") or environ.get("REQUEST_URI")
    if not raw:
        return None
    if "://" in raw.split("?", 1)[0]:  # absolute-form: drop scheme and authority
        raw = "/" + raw.split("://", 1)[1].partition("/")[2]
    return raw.split("?", 1)[0]


def _below(root: str, real: str) -> str | None:
    """The path of ``real`` relative to ``root`` ("" for the root itself),
    or None if it is outside. By slicing: ``os.path.relpath`` normalises
    both paths again (a cost on every request), and a root of "/" works."""
    if real == root:
        return ""
    prefix = root if root.endswith(os.sep) else root + os.sep
    return real[len(prefix) :] if real.startswith(prefix) else None


class _RangeFile:
    """A window of ``length`` bytes of an open file, from its current position.
    ``read`` stops at the window's end; ``fileno``/``tell`` are the file's, so a
    server's ``sendfile`` starts at the right offset (and, per PEP 3333,
    sends no more than ``Content-Length``)."""

    def __init__(self, file: BinaryIO, length: int):
        self._file, self._left = file, length

    def read(self, size: int = -1) -> bytes:
        size = self._left if size is None or size < 0 else min(size, self._left)
        data = self._file.read(size) if size else b""
        self._left -= len(data)
        return data

    def fileno(self) -> int:
        return self._file.fileno()

    def tell(self) -> int:
        return self._file.tell()

    def close(self) -> None:
        self._file.close()


class _FileBlocks:
    """The body as blocks read from a file-like, when there is no file_wrapper."""

    def __init__(self, filelike: BinaryIO | _RangeFile, block_size: int):
        self._file, self._block = filelike, block_size

    def __iter__(self) -> _FileBlocks:
        return self

    def __next__(self) -> bytes:
        data = self._file.read(self._block)
        if not data:
            raise StopIteration
        return data

    def close(self) -> None:
        self._file.close()


class Static:
    """Serves ``directories`` (``{"/static": "public/"}``: URL prefix → folder)
    and hands every request outside them to ``app`` (None: 404).

    ``index``: file served for a directory (None: directories are 404).
    ``cache_control``: the header's value, or a function of the path relative
    to the folder that returns it (None: no header). ``etag``: ``"strong"``,
    ``"weak"`` or None. ``precompressed``: codings whose sibling files
    (``name.br``, ``name.gz``) may be sent instead. ``hidden``: serve names
    starting with ``.``. ``types``: extension → Content-Type overrides.
    """

    def __init__(
        self,
        app: WSGIApp | None,
        directories: Mapping[str, str | os.PathLike],
        *,
        index: str | None = "index.html",
        cache_control: CacheControl = DEFAULT_CACHE_CONTROL,
        etag: str | None = "strong",
        precompressed: Sequence[str] = tuple(PRECOMPRESSED),
        hidden: bool = False,
        types: Mapping[str, str] | None = None,
        block_size: int = BLOCK_SIZE,
    ):
        if etag not in ("strong", "weak", None):
            raise ValueError("etag must be 'strong', 'weak' or None")
        unknown = set(precompressed) - set(PRECOMPRESSED)
        if unknown:
            raise ValueError(f"unknown precompressed codings {sorted(unknown)}")
        self.roots: dict[str, str] = {}
        for prefix, folder in directories.items():
            root = os.path.realpath(os.fspath(folder))
            if not os.path.isdir(root):
                raise ValueError(f"static directory {folder!r} is not a directory")
            self.roots[normalize_prefix(prefix)] = root
        self.app = app
        self.index, self.cache_control, self.etag = index, cache_control, etag
        self.precompressed = [c for c in PRECOMPRESSED if c in precompressed]
        self.hidden, self.block_size = hidden, block_size
        self.types = {**EXTRA_TYPES, **{k.lower(): v for k, v in (types or {}).items()}}
        self._type_of: dict[str, str] = {}  # file name -> Content-Type, see _content_type

    def __call__(self, environ: dict, start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        prefix = match_prefix(list(self.roots), path)
        if prefix is None:
            if self.app is None:
                return plain(start_response, "404 Not Found", "Not Found\n")
            return self.app(environ, start_response)
        root = self.roots[prefix]
        try:
            if environ.get("REQUEST_METHOD") not in ("GET", "HEAD"):
                raise _Refuse("405 Method Not Allowed", [("Allow", "GET, HEAD")])
            found = self._resolve(environ, root, path[len(prefix) :])
            return self._send(environ, start_response, root, found)
        except _Refuse as refusal:
            return plain(start_response, refusal.status, refusal.status[4:] + "\n", refusal.headers)

    # -- path → file ---------------------------------------------------------------
    def _resolve(self, environ: dict, root: str, rel: str) -> _Found:
        """The file ``rel`` names under ``root``; raises :class:`_Refuse`."""
        raw = raw_path(environ)
        if "\x00" in rel or "\\" in rel:
            raise _Refuse("400 Bad Request")
        if raw is not None and any(e in raw.lower() for e in ("%2f", "%5c", "%00")):
            raise _Refuse("400 Bad Request")
        try:
            rel = rel.encode("latin-1").decode("utf-8")
        except UnicodeError:
            raise _Refuse("404 Not Found") from None
        parts = [p for p in rel.split("/") if p not in ("", ".")]
        if any(p == ".." for p in parts):
            raise _Refuse("404 Not Found")
        found = self._find(root, os.path.join(root, *parts))
        if not stat.S_ISDIR(found.st.st_mode) and rel.endswith(("/", "/.")):
            # ``a.txt/`` names a directory: a file is not one (nginx: 404).
            found.close()
            raise _Refuse("404 Not Found")
        if stat.S_ISDIR(found.st.st_mode):
            found.close()
            if self.index is None:
                raise _Refuse("404 Not Found")
            if not rel.endswith("/"):
                here = environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", "")
                location = quote(here.encode("latin-1"))
                query = environ.get("QUERY_STRING")
                location += "/" + ("?" + query if query else "")
                raise _Refuse("301 Moved Permanently", [("Location", location)])
            found = self._find(root, os.path.join(found.real, self.index))
        return found

    def _find(self, root: str, candidate: str) -> _Found:
        """``candidate`` located and checked to lie below ``root`` (and not to
        be hidden); raises 404 otherwise. The caller closes what it gets."""
        found = _Found.locate(candidate)
        if found is None:
            raise _Refuse("404 Not Found")
        below = _below(root, found.real)
        if below is None or (
            not self.hidden and below and any(p.startswith(".") for p in below.split(os.sep))
        ):
            found.close()
            raise _Refuse("404 Not Found")
        return found

    # -- file → response -----------------------------------------------------------
    def _choose_file(
        self, environ: dict, root: str, found: _Found
    ) -> tuple[BinaryIO, os.stat_result, str | None, bool]:
        """(file, stat, coding, vary): the precompressed sibling the client
        accepts, if one exists, else the file itself. Closes ``found``."""
        real = found.real
        siblings = [c for c in self.precompressed if os.path.isfile(real + PRECOMPRESSED[c])]
        chosen = _http.choose_coding(environ.get("HTTP_ACCEPT_ENCODING"), siblings)
        if chosen is not None:
            try:
                sibling = self._find(root, real + PRECOMPRESSED[chosen])
            except _Refuse:
                pass
            else:
                opened = sibling.open()
                if opened is not None:
                    found.close()
                    return (*opened, chosen, True)
        opened = found.open()
        if opened is None:
            raise _Refuse("404 Not Found")
        return (*opened, None, bool(siblings))

    def _send(
        self, environ: dict, start_response: StartResponse, root: str, found: _Found
    ) -> Iterable[bytes]:
        real = found.real
        try:
            file, st, coding, vary = self._choose_file(environ, root, found)
        finally:
            found.close()
        try:
            status, headers, window = self._plan(environ, st, coding, vary, root, real)
        except BaseException:
            file.close()
            raise
        start_response(status, headers)
        if window is None or environ.get("REQUEST_METHOD") == "HEAD":
            file.close()
            return []
        first, length = window
        if first:
            file.seek(first)
        body = _RangeFile(file, length) if first + length < st.st_size else file
        wrapper = environ.get("wsgi.file_wrapper")
        if wrapper is not None:
            return wrapper(body, self.block_size)
        return _FileBlocks(body, self.block_size)

    def _plan(
        self,
        environ: dict,
        st: os.stat_result,
        coding: str | None,
        vary: bool,
        root: str,
        real: str,
    ) -> tuple[str, Headers, tuple[int, int] | None]:
        """(status, headers, (first, length) or None for no body)."""
        size = st.st_size
        headers: Headers = [("Accept-Ranges", "bytes")]
        etag = None
        if self.etag is not None:
            etag = f'"{size:x}-{st.st_mtime_ns:x}-{st.st_ino:x}{"-" + coding if coding else ""}"'
            etag = "W/" + etag if self.etag == "weak" else etag
            headers.append(("ETag", etag))
        # Whole seconds, rounded down as the native side's (and the kernel's
        # st_mtime) are: int() would round a date before 1970 up.
        mtime = st.st_mtime_ns // 1_000_000_000
        headers.append(("Last-Modified", _http.http_date(mtime)))
        cache = self.cache_control
        if callable(cache):
            # Only then: the relative name costs a little on every file.
            cache = cache(_below(root, real) or ".")
        if cache:
            headers.append(("Cache-Control", cache))
        if vary:
            headers.append(("Vary", "Accept-Encoding"))
        get = environ.get

        # RFC 9110 §13.2.2, in the one order both Static sides share.
        conditions = _http.Conditions(
            get("HTTP_IF_MATCH"),
            get("HTTP_IF_NONE_MATCH"),
            get("HTTP_IF_MODIFIED_SINCE"),
            get("HTTP_IF_UNMODIFIED_SINCE"),
            get("HTTP_RANGE"),
            get("HTTP_IF_RANGE"),
        )
        verdict = _http.evaluate_preconditions(
            get("REQUEST_METHOD", ""), conditions, etag, mtime, size
        )
        if verdict == _http.PRECONDITION_FAILED:
            raise _Refuse("412 Precondition Failed")
        if verdict == _http.NOT_MODIFIED:
            return "304 Not Modified", headers, None
        if verdict == _http.UNSATISFIABLE:
            raise _Refuse(
                "416 Range Not Satisfiable",
                [("Content-Range", f"bytes */{size}"), ("Accept-Ranges", "bytes")],
            )

        headers.append(("Content-Type", self._content_type(os.path.basename(real))))
        if coding:
            headers.append(("Content-Encoding", coding))
        if isinstance(verdict, tuple):
            first, last = verdict
            headers += [("Content-Range", f"bytes {first}-{last}/{size}")]
            headers += [("Content-Length", str(last - first + 1))]
            return "206 Partial Content", headers, (first, last - first + 1)
        headers.append(("Content-Length", str(size)))
        return "200 OK", headers, (0, size)

    def _content_type(self, name: str) -> str:
        """:func:`content_type`, remembered per name (``mimetypes`` costs a
        fifth of a file's Python time); forgotten whole past
        :data:`TYPE_CACHE_MAX` names."""
        ctype = self._type_of.get(name)
        if ctype is None:
            if len(self._type_of) >= TYPE_CACHE_MAX:
                self._type_of.clear()
            ctype = self._type_of[name] = content_type(name, self.types)
        return ctype
