"""The access log: one line per request, in gunicorn's format language or
as JSON, written by a thread so that a slow destination never slows a
request.

The engine calls the callable that :func:`callback` returns after each
request, with ``(environ, status, bytes_sent, seconds)``. It formats the
line and puts it on a queue: that is all the request path does. A writer
thread (:func:`start`, in each worker after the fork) hands the lines to the
``qiao.access`` logger, so its handlers (the ``--access-log`` file, or
whatever the user attached) run off the request path. :func:`stop` writes
what is still queued. If the destination falls more than ``MAX_QUEUED``
lines behind, new lines are dropped and counted rather than held in memory
without bound; the count is logged once the writer catches up.

Format atoms are gunicorn's (``%(h)s``, ``%(r)s``, ``%({x-real-ip}i)s``...).
``%({name}o)s`` (a response header) needs the headers the application gives
``start_response``: the engine does not pass them to the access log, so when
a format uses one, :func:`wrap_app` puts a thin wrapper around the
application that records them in ``environ["qiao.response_headers"]``. Only
formats that use them pay for it.

Requests answered natively (``--static``, ``--proxy``) are logged through
the same callable, from a thread of the engine that hands them over in
batches (they may appear a little later than the application's). Their
environ is minimal: the keys the atoms read, the request fields
:func:`request_fields` names, and ``qiao.native`` set to True; no
response headers (``%({name}o)s`` is ``-``).

Control characters in a text line are written escaped (``\\x0a``, as
nginx does): the parsers refuse them in request fields and uwsgi
variables, but a decoded path (``%(U)s`` of ``/a%0Ab``) or a Basic
user name (``%(u)s``) may still hold them, and a raw LF would forge a line.
JSON lines are escaped by the encoder.
"""

from __future__ import annotations

import base64
import binascii
import datetime
import json
import logging
import os
import re
import time
from dataclasses import dataclass
from queue import SimpleQueue
from typing import Any, Callable

from . import _threads

access_logger = logging.getLogger("qiao.access")
error_log = logging.getLogger("qiao.error")

#: Lines queued at most; beyond, new lines are dropped (and counted).
MAX_QUEUED = 10_000
#: The environ key where :func:`wrap_app` records the response headers.
RESPONSE_HEADERS = "qiao.response_headers"
#: Bytes a text line may not hold as they are (C0 controls and DEL).
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")

Getter = Callable[[dict, int, int, float], Any]


class FormatError(ValueError):
    """An access log format that cannot be used."""


def _clf_time() -> str:
    now = int(time.time())
    if now != _clf_time.second:
        _clf_time.second = now
        _clf_time.text = time.strftime("[%d/%b/%Y:%H:%M:%S %z]", time.localtime(now))
    return _clf_time.text


_clf_time.second = -1
_clf_time.text = ""


def _user(environ: dict) -> str:
    """The user name of HTTP Basic authentication, or '-'."""
    auth = environ.get("HTTP_AUTHORIZATION", "")
    scheme, _, credentials = auth.partition(" ")
    if scheme.lower() != "basic":
        return "-"
    try:
        decoded = base64.b64decode(credentials.strip(), validate=True).decode("latin-1")
    except (binascii.Error, ValueError):
        return "-"
    return decoded.partition(":")[0] or "-"


def _request_line(e: dict) -> str:
    target = e.get("RAW_URI") or e.get("PATH_INFO", "")
    return f"{e.get('REQUEST_METHOD', '-')} {target} {e.get('SERVER_PROTOCOL', '-')}"


#: The one-letter atoms: name -> (meaning, getter(environ, status, sent, seconds)).
ATOMS: dict[str, tuple[str, Getter]] = {
    "h": ("remote address", lambda e, s, n, d: e.get("REMOTE_ADDR") or "-"),
    "l": ("'-' (ident, for the common log format)", lambda e, s, n, d: "-"),
    "u": ("user name of HTTP Basic auth, or '-'", lambda e, s, n, d: _user(e)),
    "t": ("time of the log line, [10/Oct/2000:13:55:36 -0700]", lambda e, s, n, d: _clf_time()),
    "r": ("request line, GET /path?q HTTP/1.1", lambda e, s, n, d: _request_line(e)),
    "m": ("request method", lambda e, s, n, d: e.get("REQUEST_METHOD", "-")),
    "U": ("URL path, without the query", lambda e, s, n, d: e.get("PATH_INFO", "")),
    "q": ("query string, without '?'", lambda e, s, n, d: e.get("QUERY_STRING", "")),
    "H": ("protocol, HTTP/1.1", lambda e, s, n, d: e.get("SERVER_PROTOCOL", "-")),
    "s": ("status code", lambda e, s, n, d: s),
    "B": ("body bytes sent", lambda e, s, n, d: n),
    "b": ("body bytes sent, '-' for none", lambda e, s, n, d: n or "-"),
    "f": ("Referer header", lambda e, s, n, d: e.get("HTTP_REFERER", "-")),
    "a": ("User-Agent header", lambda e, s, n, d: e.get("HTTP_USER_AGENT", "-")),
    "T": ("duration, whole seconds", lambda e, s, n, d: int(d)),
    "M": ("duration, milliseconds", lambda e, s, n, d: int(d * 1e3)),
    "D": ("duration, microseconds", lambda e, s, n, d: int(d * 1e6)),
    "L": ("duration, seconds with 6 decimals", lambda e, s, n, d: f"{d:.6f}"),
    "p": ("worker process id, <1234>", lambda e, s, n, d: f"<{os.getpid()}>"),
}

_KEY = re.compile(r"%\(([^)]*)\)")
_BRACED = re.compile(r"\{([^{}]+)\}([ioe])")


def _request_header(name: str) -> Getter:
    key = name.upper().replace("-", "_")
    if key not in ("CONTENT_TYPE", "CONTENT_LENGTH"):
        key = "HTTP_" + key
    return lambda e, s, n, d: e.get(key, "-")


def _response_header(name: str) -> Getter:
    lower = name.lower()

    def get(e: dict, s: int, n: int, d: float) -> str:
        for key, value in e.get(RESPONSE_HEADERS, ()):
            if key.lower() == lower:
                return value
        return "-"

    return get


def _environ_value(name: str) -> Getter:
    """An environ key, matched without regard to case (``{remote_port}e``)."""

    def get(e: dict, s: int, n: int, d: float) -> Any:
        value = e.get(name, e.get(name.upper()))
        if value is None:
            lower = name.lower()
            value = next((v for k, v in e.items() if k.lower() == lower), "-")
        return value if isinstance(value, (str, int, float)) else str(value)

    return get


@dataclass(frozen=True)
class Format:
    text: str
    is_json: bool
    getters: tuple[tuple[str, Getter], ...]
    response_headers: bool
    #: Atoms that are none of gunicorn's: written as ``-``, as gunicorn does.
    unknown: tuple[str, ...] = ()


def _dash(e, s, n, d) -> str:
    return "-"


def compile_format(text: str) -> Format:
    """Checks ``text`` (``json`` or a gunicorn-style format) and prepares
    the getters its atoms need; raises :class:`FormatError`."""
    if text.strip().lower() == "json":
        return Format(text, True, (), False)
    getters: dict[str, Getter] = {}
    unknown: list[str] = []
    for key in _KEY.findall(text):
        braced = _BRACED.fullmatch(key)
        if key in ATOMS:
            getters[key] = ATOMS[key][1]
        elif braced:
            name, kind = braced.groups()
            make = {"i": _request_header, "o": _response_header, "e": _environ_value}[kind]
            getters[key] = make(name)
        else:
            getters[key] = _dash
            unknown.append(f"%({key})s")
    sample = {key: 0 if key in ("s", "B", "T", "M", "D") else "-" for key in getters}
    try:
        text % sample
    except (TypeError, ValueError, KeyError) as e:
        raise FormatError(f"bad access log format {text!r}: {e}") from None
    uses_output = any(key.endswith("}o") for key in getters)
    return Format(text, False, tuple(getters.items()), uses_output, tuple(unknown))


#: Request fields the one-letter atoms read (besides the CGI keys).
_ATOM_FIELDS = {"u": "authorization", "f": "referer", "a": "user-agent"}


def request_fields(text: str) -> list[str]:
    """The request fields (lower-case names) format ``text`` reads: what the
    engine keeps of a natively served request for the access log."""
    fmt = compile_format(text)
    if fmt.is_json:
        return ["referer", "user-agent"]
    fields = set()
    for key, _ in fmt.getters:
        braced = _BRACED.fullmatch(key)
        if key in _ATOM_FIELDS:
            fields.add(_ATOM_FIELDS[key])
        elif braced and braced.group(2) == "i":
            fields.add(braced.group(1).lower())
        elif braced and braced.group(2) == "e":
            name = braced.group(1).upper()
            if name.startswith("HTTP_"):
                fields.add(name[5:].lower().replace("_", "-"))
            elif name in ("CONTENT_TYPE", "CONTENT_LENGTH"):
                fields.add(name.lower().replace("_", "-"))
    return sorted(fields)


def _json_line(e: dict, status: int, sent: int, seconds: float) -> str:
    now = datetime.datetime.now().astimezone()
    return json.dumps(
        {
            "time": now.isoformat(timespec="milliseconds"),
            "pid": os.getpid(),
            "remote_addr": e.get("REMOTE_ADDR") or None,
            "method": e.get("REQUEST_METHOD"),
            "uri": e.get("RAW_URI") or e.get("PATH_INFO", ""),
            "protocol": e.get("SERVER_PROTOCOL"),
            "status": status,
            "bytes": sent,
            "duration": round(seconds, 6),
            "referer": e.get("HTTP_REFERER"),
            "user_agent": e.get("HTTP_USER_AGENT"),
        }
    )


# -- the queue and its writer thread ------------------------------------------

_queue: SimpleQueue = SimpleQueue()
_STOP = object()
_state = {"dropped": 0, "thread": None}


def _enqueue(line: str) -> None:
    if _queue.qsize() < MAX_QUEUED:
        _queue.put(line)
    else:
        _state["dropped"] += 1


def callback(text: str) -> Callable[[dict, int, int, float], None]:
    """The engine's ``access_log`` hook for format ``text``."""
    fmt = compile_format(text)
    enabled = access_logger.isEnabledFor
    info = logging.INFO
    if fmt.is_json:

        def access(environ: dict, status: int, sent: int, seconds: float) -> None:
            if enabled(info):
                _enqueue(_json_line(environ, status, sent, seconds))

        return access
    template, getters = fmt.text, fmt.getters

    def access(environ: dict, status: int, sent: int, seconds: float) -> None:
        if enabled(info):
            atoms = {key: get(environ, status, sent, seconds) for key, get in getters}
            line = template % atoms
            if _CONTROL.search(line):
                line = _CONTROL.sub(_escape, line)
            _enqueue(line)

    return access


def _escape(match: re.Match) -> str:
    return f"\\x{ord(match.group()):02x}"


def wrap_app(app: Any, text: str) -> Any:
    """``app``, or for a format with ``{name}o`` atoms a wrapper that keeps
    the response headers in the environ for the access log."""
    if not compile_format(text).response_headers:
        return app

    def with_response_headers(environ: dict, start_response: Any) -> Any:
        def capture(status: str, headers: list, exc_info: Any = None) -> Any:
            environ[RESPONSE_HEADERS] = headers
            return start_response(status, headers, exc_info)

        return app(environ, capture)

    return with_response_headers


def _write() -> None:
    while True:
        line = _queue.get()
        if line is _STOP:
            return
        try:
            record = access_logger.makeRecord(
                access_logger.name, logging.INFO, __file__, 0, line, None, None
            )
            access_logger.handle(record)
        except Exception:  # noqa: BLE001 - a broken handler must not end the writer
            error_log.exception("access log: cannot write a line")
        dropped = _state["dropped"]
        if dropped and _queue.empty():
            _state["dropped"] -= dropped
            error_log.warning(
                "access log: %d lines dropped (the destination is slower than the requests)",
                dropped,
            )


def start() -> None:
    """Starts the writer thread (in the process that serves, after forking)."""
    thread = _state["thread"]
    if thread is not None and thread.is_alive():
        return
    _state["thread"] = _threads.start(_write)  # a real thread, even under gevent


def stop(timeout: float) -> None:
    """Writes the queued lines, waiting at most ``timeout`` seconds (a
    destination that blocks must not keep the process from exiting)."""
    thread = _state["thread"]
    if thread is None:
        return
    _queue.put(_STOP)
    thread.join(timeout)
    _state["thread"] = None
    if thread.is_alive():
        error_log.warning(
            "access log: gave up after %.1fs with about %d lines unwritten",
            timeout,
            _queue.qsize(),
        )
