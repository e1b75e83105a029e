"""The worker's side of gunicorn's hooks and signals: ``post_worker_init``
once the application is loaded, ``worker_int`` on SIGINT/SIGQUIT,
``worker_abort`` on SIGABRT, ``worker_exit`` as the worker ends.

SIGABRT is how the supervisor ends a worker stuck in a request longer than
``--timeout`` (gunicorn's order: SIGABRT, then SIGKILL if the worker is
still there after ``ABORT_GRACE_SECONDS``). The worker logs where each of
its threads is (the stuck request's stack is among them), calls
``worker_abort`` and ``worker_exit``, and exits with status 1 at once,
without waiting for the stuck thread.

The signal handlers run the hooks themselves: Python runs them on the main
thread between two of the engine's ticks, not in signal context, and the
worker has no loop of its own to hand them to (the engine's is Rust).
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import sys
import threading
import traceback
from typing import Any

# Imported here, in the supervisor, not when a worker needs it: a worker
# that runs as --user may no longer read the interpreter's library.
from . import hook_request
from .hooks import HookFailed, run_hook

log = logging.getLogger("qiao.error")

#: The ``opts`` key under which the supervisor hands a worker its
#: :class:`~qiao.hook_objects.HookWorker` (with ``.server`` beside it).
HOOK_WORKER = "hook_worker"
#: Exit status of a worker ended by SIGABRT (gunicorn's).
ABORT_STATUS = 1


def thread_stacks(skip: int | None = None) -> list[tuple[str, str]]:
    """(thread name, formatted stack) of every thread running Python code
    but ``skip`` (a thread ident): a request's thread is among them while
    it is in the application."""
    names = {
        t.ident: t.name
        for t in threading.enumerate()
        if not isinstance(t, threading._DummyThread)  # the engine's threads: no name
    }
    stacks = []
    for ident, frame in sys._current_frames().items():
        if ident == skip:
            continue
        name = names.get(ident) or f"serving thread 0x{ident:x}"
        stacks.append((name, "".join(traceback.format_stack(frame))))
    return stacks


def log_stacks(pid: int) -> None:
    """Logs where the worker's threads are (all but the one calling)."""
    stacks = thread_stacks(skip=threading.get_ident())
    if not stacks:
        log.error("Worker (pid:%d) aborted: no thread was running Python code", pid)
    for name, stack in stacks:
        log.error("Worker (pid:%d) aborted; %s was at:\n%s", pid, name, stack.rstrip())


def _flush() -> None:
    for handler in logging.getLogger("qiao.error").handlers:
        with contextlib.suppress(Exception):
            handler.flush()
    with contextlib.suppress(Exception):
        sys.stdout.flush()
        sys.stderr.flush()


def worker_exit(opts: dict, worker: Any) -> None:
    """``worker_exit(server, worker)``, once, as the worker ends."""
    if worker is None or getattr(worker, "_exited", False):
        return
    worker._exited = True
    worker.alive = False
    run_hook(opts, "worker_exit", worker.server, worker)


def install_signals(opts: dict, control: Any) -> None:
    """The worker's handlers for SIGTERM (drain), SIGINT/SIGQUIT (stop,
    after ``worker_int``) and SIGABRT (see the module's docstring)."""
    worker = opts.get(HOOK_WORKER)

    def drain(signum: int, frame: Any) -> None:
        if worker is not None:
            worker.alive = False
        control.drain()

    def stop(signum: int, frame: Any) -> None:
        if worker is not None:
            worker.alive = False
            run_hook(opts, "worker_int", worker)
        control.stop()

    def abort(signum: int, frame: Any) -> None:
        pid = os.getpid()
        try:
            log_stacks(pid)
            if worker is not None:
                worker.alive = False
                worker.aborted = True
                run_hook(opts, "worker_abort", worker)
                worker_exit(opts, worker)
        finally:
            _flush()
            os._exit(ABORT_STATUS)

    signal.signal(signal.SIGTERM, drain)
    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGQUIT, stop)
    signal.signal(signal.SIGABRT, abort)


def booted(app: Any, opts: dict, control: Any) -> Any:
    """After the application is loaded: ``post_worker_init(worker)``, then
    the application with the request hooks (:mod:`qiao.hook_request`).
    None: ``post_worker_init`` failed (logged), the worker cannot boot."""
    worker = opts.get(HOOK_WORKER)
    if worker is None:
        return app
    worker.wsgi = app
    worker._control = control
    try:
        run_hook(opts, "post_worker_init", worker)
    except HookFailed:
        return None
    worker.booted = True
    return hook_request.wrap(app, opts, worker)


def engine_options(opts: dict, engine: dict) -> dict:
    """The engine's keyword arguments, with ``post_request`` wired in."""
    worker = opts.get(HOOK_WORKER)
    if worker is None:
        return engine
    return hook_request.engine_options(opts, worker, engine)
