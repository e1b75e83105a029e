"""A worker's side of ``--timeout``: give up the one request that ran
over, retire gracefully, let the others finish.

The supervisor finds a request that has spent more than ``--timeout`` in
the application (its heartbeat slot, :mod:`qiao.heartbeat`), marks that
slot and sends SIGABRT. The worker then

1. gives that request up (``Control.abandon``: the drain does not wait
   for it) and drains, as SIGTERM does: no new connections or requests,
   the requests in flight on its other threads finish;
2. logs the stuck thread's Python stack (the other threads' at debug) and
   calls the ``worker_abort`` hook;
3. once the drain is over, or ``--graceful-timeout`` has passed, calls
   ``worker_exit`` and exits with status 1: the stuck thread cannot be
   interrupted in Python, only the process's end stops it (a daemon
   thread waits for that moment: the main thread is inside the engine).

gunicorn's worker exits at once on SIGABRT, cutting the requests of its
other threads; the supervisor here starts the replacement at once as
well, and kills a worker still there after ``--graceful-timeout``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import threading
import time
import traceback
from typing import Any, Callable

from . import _threads, accesslog, heartbeat

log = logging.getLogger("qiao.error")

#: Exit status of a worker retired for its ``--timeout`` (gunicorn's).
ABORT_STATUS = 1
#: How often the retiring worker looks whether its drain is over.
DRAIN_POLL_SECONDS = 0.05
#: Longest wait for the access log's last lines before the worker exits.
ACCESS_LOG_FLUSH_SECONDS = 1.0

_state = {"aborted": False}

#: Held while a request is given up and logged, and taken by the exit: once
#: given up, a request no longer holds the drain back, so without it the
#: worker could exit between giving a request up and logging it (seen
#: under load: a second request's "aborted request" line lost).
_giving_up = _threads._allocate_lock()  # a real lock, even under gevent


def aborted() -> bool:
    """Whether this worker was told its request ran over ``--timeout``."""
    return _state["aborted"]


def exit_status() -> int:
    """The status of a worker whose engine returned: 1 after an abort."""
    return ABORT_STATUS if _state["aborted"] else 0


def thread_stacks(skip: int | None = None) -> dict[int, tuple[str, str]]:
    """{thread ident: (name, formatted stack)} of every thread running
    Python code but ``skip``: a request's thread is among them while it is
    in the application."""
    names = {
        t.ident: t.name
        for t in threading.enumerate()
        if not isinstance(t, threading._DummyThread)  # the engine's threads: no name
    }
    stacks = {}
    for ident, frame in sys._current_frames().items():
        if ident == skip:
            continue
        name = names.get(ident) or f"serving thread 0x{ident:x}"
        stacks[ident] = (name, "".join(traceback.format_stack(frame)).rstrip())
    return stacks


def log_stuck(pid: int, stuck: list[heartbeat.Slot], others: bool = True) -> None:
    """Logs where the stuck threads are (error), and the others (debug)."""
    stacks = thread_stacks(skip=threading.get_ident())
    if not stuck:
        log.error("Worker (pid:%d) aborted: the request over --timeout has ended", pid)
    for slot in stuck:
        name, stack = stacks.pop(slot.thread, ("its thread", "(no Python code running)"))
        log.error(
            "Worker (pid:%d) aborted request %s after --timeout; %s was at:\n%s",
            pid,
            slot.line,
            name,
            stack,
        )
    if others and log.isEnabledFor(logging.DEBUG):
        for name, stack in stacks.values():
            log.debug("Worker (pid:%d) retiring; %s was at:\n%s", pid, name, stack)


def _give_up(control: Any, slots: tuple[Any, int, int] | None, pid: int) -> list[heartbeat.Slot]:
    """Gives up the requests the supervisor marked; returns their slots."""
    if slots is None:
        return []
    buffer, offset, threads = slots
    try:
        taken = control.abandon(buffer, offset, threads)
    except (ValueError, BufferError) as e:  # a bad mapping: retire all the same
        log.error("Worker (pid:%d): cannot read its heartbeat slots: %s", pid, e)
        taken = []
    return [heartbeat.read(buffer, offset + t * heartbeat.SLOT_SIZE) for t in taken]


def flush_logs() -> None:
    for handler in logging.getLogger("qiao.error").handlers:
        with contextlib.suppress(Exception):
            handler.flush()
    with contextlib.suppress(Exception):
        sys.stdout.flush()
        sys.stderr.flush()


def abort(
    opts: dict,
    control: Any,
    worker: Any,
    slots: tuple[Any, int, int] | None,
    run_abort_hook: Callable[[], None],
    run_exit_hook: Callable[[], None],
) -> None:
    """SIGABRT from the supervisor (see the module's docstring). ``slots``:
    the heartbeat mapping, this worker's offset in it and its thread count.
    Sent again when another request runs over while the worker retires:
    that one is given up too."""
    pid = os.getpid()
    with _giving_up:
        stuck = _give_up(control, slots, pid)
        if _state["aborted"]:
            if stuck:
                log_stuck(pid, stuck, others=False)
                flush_logs()
            return
    _state["aborted"] = True
    control.drain()
    if worker is not None:
        worker.alive = False
        worker.aborted = True
    deadline = time.monotonic() + opts["graceful_timeout"]
    try:
        log_stuck(pid, stuck)
        run_abort_hook()
    finally:
        flush_logs()
    _threads.start(lambda: _exit_when_drained(control, deadline, run_exit_hook))


def _exit_when_drained(control: Any, deadline: float, run_exit_hook: Callable[[], None]) -> None:
    """Waits for the drain (or the deadline), then ends the process, stuck
    thread and all."""
    nap = _threads._allocate_lock()  # a real lock: time.sleep may be gevent's
    nap.acquire()
    while not control.finished and time.monotonic() < deadline:
        nap.acquire(True, DRAIN_POLL_SECONDS)
    try:
        run_exit_hook()
        accesslog.stop(ACCESS_LOG_FLUSH_SECONDS)
    finally:
        _giving_up.acquire()  # a request being given up is logged first
        flush_logs()
        os._exit(ABORT_STATUS)
