"""The worker's side of gunicorn's hooks and signals: ``post_worker_init``
once the application is loaded, ``worker_int`` on SIGINT/SIGQUIT,
``worker_abort`` on SIGABRT, ``worker_exit`` as the worker ends.

SIGABRT is how the supervisor tells a worker that one of its requests
ran over ``--timeout``. The worker gives that request up, logs the stuck
thread's stack, calls ``worker_abort`` and retires gracefully: its other
requests finish, then ``worker_exit`` and exit status 1
(:mod:`qiao.timeout`; gunicorn's worker exits at once instead).

The signal handlers run the hooks themselves: Python runs them on the main
thread between two of the engine's ticks, not in signal context, and the
worker has no loop of its own to hand them to (the engine's is Rust).
"""

from __future__ import annotations

import logging
import signal
from typing import Any

# Imported here, in the supervisor, not when a worker needs it: a worker
# that runs as --user may no longer read the interpreter's library.
from . import _threads, hook_request, timeout
from .hooks import HookFailed, run_hook

log = logging.getLogger("qiao.error")

#: The ``opts`` key under which the supervisor hands a worker its
#: :class:`~qiao.hook_objects.HookWorker` (with ``.server`` beside it).
HOOK_WORKER = "hook_worker"
#: Exit status of a worker retired after SIGABRT (gunicorn's).
ABORT_STATUS = timeout.ABORT_STATUS

_exit_lock = _threads._allocate_lock()  # a real lock, whatever gevent patched


def worker_exit(opts: dict, worker: Any) -> None:
    """``worker_exit(server, worker)``, once, as the worker ends (from the
    main thread, or from the thread that ends a worker retired by
    ``--timeout``)."""
    if worker is None:
        return
    with _exit_lock:
        if getattr(worker, "_exited", False):
            return
        worker._exited = True
    worker.alive = False
    run_hook(opts, "worker_exit", worker.server, worker)


def install_signals(opts: dict, control: Any, slots: tuple[Any, int, int] | None = None) -> None:
    """The worker's handlers for SIGTERM (drain), SIGINT/SIGQUIT (stop,
    after ``worker_int``) and SIGABRT (see the module's docstring).
    ``slots``: the heartbeat mapping, the worker's offset, its threads."""
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

    def abort_hook() -> None:
        if worker is not None:
            run_hook(opts, "worker_abort", worker)

    def abort(signum: int, frame: Any) -> None:
        timeout.abort(opts, control, worker, slots, abort_hook, lambda: worker_exit(opts, worker))

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
