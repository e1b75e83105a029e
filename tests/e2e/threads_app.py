"""The application of test_threads.py: endpoints that block in ways a
thread pool must absorb, and one that reports its thread.

- ``/gather?n=N&key=K``: waits until N requests with the same key are
  inside at once (a ``threading.Barrier``), answers ``all``, or ``timeout``
  after ``t`` seconds (default 3). Only requests served concurrently can
  all answer ``all``.
- ``/sleep?s=S``: sleeps S seconds (the GIL released), answers ``slept``.
- ``/inflight``: how many requests are inside ``/sleep`` now.
- ``/echo``: the request body back.
- ``/thread``: the serving thread's ident.
- ``/pid``: the worker's process id.
- ``/gated?key=K``: a streamed body: yields ``first``, waits until
  ``/release?key=K`` is requested (10 s at most), then yields ``second``.
- ``/gated-end?key=K``: a body of announced length, all in the first block;
  the generator then waits for ``/release?key=K`` before it ends.
"""

from __future__ import annotations

import os
import threading
import time
from urllib.parse import parse_qs

_barriers: dict[tuple[str, int], threading.Barrier] = {}
_lock = threading.Lock()
_sleeping = 0
_gates: dict[str, threading.Event] = {}


def _gate(key: str) -> threading.Event:
    with _lock:
        return _gates.setdefault(key, threading.Event())


def _gated(key: str):
    yield b"first"
    _gate(key).wait(10)
    yield b"second"


def _gated_end(key: str):
    yield b"whole"
    _gate(key).wait(10)


def _query(environ) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(environ.get("QUERY_STRING", "")).items()}


def _barrier(key: str, n: int, timeout: float) -> threading.Barrier:
    with _lock:
        if (key, n) not in _barriers:
            _barriers[(key, n)] = threading.Barrier(n, timeout=timeout)
        return _barriers[(key, n)]


def app(environ, start_response):
    global _sleeping
    path = environ["PATH_INFO"]
    q = _query(environ)
    if path == "/gated":
        start_response("200 OK", [("Content-Type", "text/plain")])
        return _gated(q["key"])
    if path == "/gated-end":
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "5")])
        return _gated_end(q["key"])
    if path == "/release":
        _gate(q["key"]).set()  # then answered with the path, below
    if path == "/gather":
        barrier = _barrier(q.get("key", ""), int(q["n"]), float(q.get("t", "3")))
        try:
            barrier.wait()
            body = b"all"
        except threading.BrokenBarrierError:
            body = b"timeout"
    elif path == "/sleep":
        with _lock:
            _sleeping += 1
        try:
            time.sleep(float(q.get("s", "0.1")))
        finally:
            with _lock:
                _sleeping -= 1
        body = b"slept"
    elif path == "/inflight":
        body = str(_sleeping).encode()
    elif path == "/echo":
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length)
    elif path == "/pid":
        body = str(os.getpid()).encode()
    elif path == "/thread":
        body = str(threading.get_ident()).encode()
    else:
        body = path.encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
