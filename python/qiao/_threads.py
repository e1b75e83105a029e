"""Qiao's own background threads (access log writer, log reopener, reload
watcher, metrics server), started as real OS threads whatever the
application did to :mod:`threading`.

An application served with ``-k gevent`` often calls
``gevent.monkey.patch_all()`` when imported. After that,
``threading.Thread`` starts a greenlet on the calling thread, not a
thread: a writer that blocks on its queue would block the worker's main
thread for ever. The functions here are taken from :mod:`_thread` when
Qiao is imported, before any application, so they stay the real ones.
"""

from __future__ import annotations

import _thread
from typing import Callable

_start_new_thread = _thread.start_new_thread
_allocate_lock = _thread.allocate_lock


class Thread:
    """A started OS thread that can be waited for."""

    def __init__(self, target: Callable[[], object]) -> None:
        self._done = _allocate_lock()
        self._done.acquire()

        def run() -> None:
            try:
                target()
            finally:
                self._done.release()

        _start_new_thread(run, ())

    def join(self, timeout: float | None = None) -> bool:
        """Waits until the thread ends (at most ``timeout`` seconds);
        whether it did."""
        ended = self._done.acquire(True, -1 if timeout is None else max(0.0, timeout))
        if ended:
            self._done.release()
        return ended

    def is_alive(self) -> bool:
        if self._done.acquire(False):
            self._done.release()
            return False
        return True


def start(target: Callable[[], object]) -> Thread:
    """Runs ``target`` in a new OS thread (daemon-like: the process does
    not wait for it at exit)."""
    return Thread(target)
