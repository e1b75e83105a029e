"""WSGI test application for the process-model tests
(``test_process_workers.py``, ``test_process_supervisor.py``).

``app`` dispatches on PATH_INFO:

* ``/pid``: the serving worker's ``os.getpid()``;
* ``/sleep?s=X``: sleeps X seconds, then answers ``slept``;
* ``/exit``: the worker dies at once with ``os._exit(1)``;
* ``/segv``: the worker segfaults (``ctypes.string_at(0)``);
* ``/version``: ``VERSION PID``, VERSION being read at import time from the
  file named by ``$PROC_VERSION_FILE`` (``none`` without it), so a worker that
  imports the module afresh after a reload serves the file's new content;
* ``/multiprocess``: ``environ["wsgi.multiprocess"]`` as ``True``/``False``;
* ``/imported-by``: ``IMPORTER PID``, the pid that imported this module (the
  supervisor with ``--preload``, else the worker itself) and the worker's.
"""

from __future__ import annotations

import ctypes
import os
import time
from urllib.parse import parse_qs


def _read_version() -> str:
    path = os.environ.get("PROC_VERSION_FILE")
    if not path:
        return "none"
    with open(path) as f:
        return f.read().strip()


VERSION = _read_version()
IMPORTER = os.getpid()


def _text(start_response, text: str, status="200 OK"):
    body = text.encode()
    start_response(status, [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]


def app(environ, start_response):
    path = environ.get("PATH_INFO", "")
    params = parse_qs(environ.get("QUERY_STRING", ""))
    if path == "/pid":
        return _text(start_response, str(os.getpid()))
    if path == "/sleep":
        time.sleep(float(params.get("s", ["1"])[0]))
        return _text(start_response, "slept")
    if path == "/exit":
        os._exit(1)
    if path == "/segv":
        ctypes.string_at(0)
        return _text(start_response, "still alive?", "500 Internal Server Error")
    if path == "/version":
        return _text(start_response, f"{VERSION} {os.getpid()}")
    if path == "/multiprocess":
        return _text(start_response, str(environ["wsgi.multiprocess"]))
    if path == "/imported-by":
        return _text(start_response, f"{IMPORTER} {os.getpid()}")
    return _text(start_response, "not found", "404 Not Found")


application = app
