"""Applications for the logging tests (tests/e2e/test_logging_gunicorn.py).

``app`` answers ``/pid`` (the worker's pid), ``/log?msg=X`` (X logged at
warning on ``gunicorn.error``, the name gunicorn apps log to), ``/print?msg=X``
(X printed, and written straight to file descriptors 1 and 2 as a C
extension would) and ``/sleep?s=N``.

With ``LOG_TICK=1`` in the environment, each worker runs a thread that
writes ``tick pid=N`` to the three destinations above every
``TICK_SECONDS``: the logrotate test sees each worker write into the new
files without having to route a request to a given worker.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from urllib.parse import parse_qs

TICK_SECONDS = 0.05
log = logging.getLogger("gunicorn.error")


def _param(environ, name: str, default: str = "") -> str:
    return parse_qs(environ.get("QUERY_STRING", "")).get(name, [default])[0]


def _write_everywhere(text: str) -> None:
    log.warning("log %s", text)
    print(f"print {text}", flush=True)
    os.write(1, f"fd1 {text}\n".encode())
    os.write(2, f"fd2 {text}\n".encode())


def app(environ, start_response):
    path = environ.get("PATH_INFO", "")
    body = b"ok"
    if path == "/pid":
        body = str(os.getpid()).encode()
    elif path == "/log":
        log.warning("%s", _param(environ, "msg"))
    elif path == "/print":
        _write_everywhere(_param(environ, "msg"))
    elif path == "/sleep":
        time.sleep(float(_param(environ, "s", "1")))
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]


def _tick() -> None:
    n = 0
    while True:
        n += 1
        _write_everywhere(f"tick pid={os.getpid()} n={n}")
        time.sleep(TICK_SECONDS)


if os.environ.get("LOG_TICK") == "1":
    threading.Thread(target=_tick, name="log-tick", daemon=True).start()
