"""Settings of the worker processes and their serving threads: how many,
which worker class they stand for, and how long a request, a connection
and a stop may take."""

from __future__ import annotations

import argparse

from .base import (
    Setting,
    at_least_one,
    health_path,
    int_at_least,
    number,
    positive_int,
    seconds,
    seconds_or_zero,
    section,
)

#: Most serving threads a worker grows to by default (the engine's
#: ``DEFAULT_MAX_THREADS``). The pool starts with one thread and adds one
#: only while a request blocks, so a fast app never uses more.
DEFAULT_THREADS = 128

#: gunicorn's worker classes that serve WSGI, by every name gunicorn takes
#: for them (``-k gevent``, ``egg:gunicorn#gevent``, the class path).
WSGI_WORKER_CLASSES = {
    "sync": ("sync", "gunicorn.workers.sync.SyncWorker"),
    "gthread": ("gthread", "gunicorn.workers.gthread.ThreadWorker"),
    "gevent": (
        "gevent",
        "gunicorn.workers.ggevent.GeventWorker",
        "gevent_wsgi",
        "gevent_pywsgi",
        "gunicorn.workers.ggevent.GeventPyWSGIWorker",
    ),
    "eventlet": ("eventlet", "gunicorn.workers.geventlet.EventletWorker"),
    "tornado": ("tornado", "gunicorn.workers.gtornado.TornadoWorker"),
}

#: Words in a worker class that mark an ASGI server (uvicorn's workers,
#: gunicorn 24's own ``asgi`` worker...): Qiao cannot run those apps.
ASGI_MARKERS = ("uvicorn", "asgi", "hypercorn", "daphne", "aiohttp")


class AsgiWorkerClass(argparse.ArgumentTypeError):
    """A worker class for ASGI applications: Qiao serves WSGI only."""


def worker_class(text: str) -> str:
    """A gunicorn worker class, named the way gunicorn takes it, as its
    short name (``sync``, ``gthread``, ``gevent``, ``eventlet``,
    ``tornado``). ASGI classes and unknown classes are refused."""
    name = text.strip()
    bare = name.removeprefix("egg:gunicorn#")
    for short, names in WSGI_WORKER_CLASSES.items():
        if bare.lower() in names or bare in names:
            return short
    if any(marker in bare.lower() for marker in ASGI_MARKERS):
        raise AsgiWorkerClass(
            f"{name} runs ASGI applications; Qiao serves WSGI applications only "
            "(drop -k for Qiao's thread pool if the application is WSGI)"
        )
    raise argparse.ArgumentTypeError(
        f"unknown worker class {name!r}: Qiao serves WSGI with its own thread pool "
        f"(gunicorn classes accepted: {', '.join(WSGI_WORKER_CLASSES)})"
    )


def workers(text: str) -> int:
    """A worker count; 0 or "auto" means one per CPU."""
    if text == "auto":
        return 0
    return int_at_least(text, 0, "an integer >= 0 or 'auto'")


SETTINGS = section(
    "Workers and threads",
    (
        Setting(
            "workers",
            ("-w", "--workers"),
            1,
            "Worker processes; 0 or 'auto' for one per CPU. Default: $WEB_CONCURRENCY "
            "when set (as gunicorn), else 1.",
            type=workers,
            metavar="N",
        ),
        Setting(
            "worker_class",
            ("-k", "--worker-class"),
            None,
            "gunicorn's worker class, for a deployment moving over: sync (one request at a "
            "time per worker: --threads 1 unless set), gthread (--threads is the ceiling, "
            "1 unless set), gevent, eventlet and tornado (served by Qiao's thread pool, with "
            "a warning). ASGI classes are refused. Without it: Qiao's adaptive pool.",
            type=worker_class,
            metavar="CLASS",
        ),
        Setting(
            "threads",
            ("--threads",),
            DEFAULT_THREADS,
            "Most serving threads per worker. The pool starts with one and grows "
            "only while requests block in the app (1: strictly one thread).",
            type=at_least_one,
            metavar="N",
        ),
        Setting(
            "preload",
            ("--preload",),
            False,
            "Import the application once in the supervisor, before forking the workers "
            "(saves memory; SIGHUP then restarts workers without reloading code).",
            type=None,
            action="store_true",
            gunicorn="preload_app",
        ),
        Setting(
            "timeout",
            ("-t", "--timeout"),
            30.0,
            "Give up a request that spends longer than this many seconds in the application "
            "(waiting for the client does not count) and retire its worker gracefully "
            "(0 disables).",
            type=number,
            metavar="SECONDS",
        ),
        Setting(
            "graceful_timeout",
            ("--graceful-timeout",),
            30.0,
            "Seconds a stopping worker may take to finish its requests before it is killed "
            "(0: at once).",
            type=seconds_or_zero,
            metavar="SECONDS",
        ),
        Setting(
            "max_requests",
            ("--max-requests",),
            0,
            "Restart a worker (gracefully) after this many requests (0 disables).",
            type=positive_int,
            metavar="N",
        ),
        Setting(
            "max_requests_jitter",
            ("--max-requests-jitter",),
            0,
            "Add a random 0..N to --max-requests per worker, so they do not all restart at once.",
            type=positive_int,
            metavar="N",
        ),
        Setting(
            "keepalive",
            ("--keepalive", "--keep-alive"),
            5.0,
            "Seconds to wait for the next request on a keep-alive connection "
            "(0: close each connection after its response).",
            type=seconds_or_zero,
            metavar="SECONDS",
        ),
        Setting(
            "header_timeout",
            ("--header-timeout",),
            30.0,
            "Seconds allowed to receive a whole request head.",
            type=seconds,
            metavar="SECONDS",
            gunicorn=False,
        ),
        Setting(
            "io_timeout",
            ("--io-timeout",),
            30.0,
            "Longest stall allowed while reading a request body or writing a response.",
            type=seconds,
            metavar="SECONDS",
            gunicorn=False,
        ),
        Setting(
            "max_connections",
            ("--max-connections",),
            10000,
            "Connections one worker holds at most; beyond, accepting pauses.",
            type=positive_int,
            metavar="N",
            gunicorn=False,
        ),
        Setting(
            "health_path",
            ("--health-path",),
            None,
            "Answer GET/HEAD of this path from the engine, without the app: 200 ok, or 503 "
            "while the worker stops (for load balancer and Kubernetes probes). Off by default.",
            type=health_path,
            metavar="PATH",
            gunicorn=False,
        ),
        Setting(
            "reload",
            ("--reload",),
            False,
            "Restart the workers when a Python file under the current directory changes "
            "(development).",
            type=None,
            action="store_true",
        ),
        Setting(
            "reload_extra_files",
            ("--reload-extra-file",),
            None,
            "With --reload: also restart the workers when this file changes; repeatable.",
            action="append",
            metavar="FILE",
        ),
    ),
)
