"""The heartbeat slots as Python reads them: one per serving thread, in an
anonymous shared mapping the supervisor makes before forking its workers
(the engine writes them; layout in ``crates/io/src/heartbeat.rs``, read here
from :func:`qiao._qiao.heartbeat_layout` so it is stated once).

The supervisor reads a slot to find a request that has spent more than
``--timeout`` in the application (time waiting for a slow client is not
counted: the engine pauses the slot's clock then) and marks that slot, so
the worker knows which of its threads is stuck (:mod:`qiao.timeout`).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any

from ._qiao import heartbeat_layout

_LAYOUT = heartbeat_layout()
SLOT_SIZE = _LAYOUT["slot_size"]
LINE_CAPACITY = _LAYOUT["line_capacity"]
_BUSY, _ALIVE, _THREAD = _LAYOUT["busy"], _LAYOUT["alive"], _LAYOUT["thread"]
_LINE_LEN, _ABORT, _LINE = _LAYOUT["line_len"], _LAYOUT["abort"], _LAYOUT["line"]
_PAUSED = _LAYOUT["paused"]
_ABORT_MARKED = _LAYOUT["abort_marked"]


@dataclass(frozen=True)
class Slot:
    """One thread's slot, as read at one moment."""

    busy: int  # the raw word: 0 idle, else a start time or a paused count
    alive_ms: int  # CLOCK_MONOTONIC ms of the thread's last loop turn
    thread: int  # the thread's ident (``threading.get_ident()``)
    line: str  # the current (or last) request line
    abort: int  # nonzero once the supervisor marked the request (see :func:`mark`)

    def app_ms(self, now_ms: int) -> int:
        """Milliseconds the current request has spent in the application
        (0 when idle): its waits for the client are left out."""
        if not self.busy:
            return 0
        if self.busy & _PAUSED:
            return self.busy & ~_PAUSED
        return max(0, now_ms - self.busy)

    @property
    def waiting_for_client(self) -> bool:
        return bool(self.busy & _PAUSED)


def read(buffer: Any, base: int) -> Slot:
    """The slot at byte ``base`` of ``buffer`` (the shared mapping)."""
    (busy,) = struct.unpack_from("=Q", buffer, base + _BUSY)
    (alive,) = struct.unpack_from("=Q", buffer, base + _ALIVE)
    (thread,) = struct.unpack_from("=Q", buffer, base + _THREAD)
    (length,) = struct.unpack_from("=I", buffer, base + _LINE_LEN)
    (abort,) = struct.unpack_from("=I", buffer, base + _ABORT)
    length = min(length, LINE_CAPACITY)
    line = bytes(buffer[base + _LINE : base + _LINE + length]).decode("latin-1")
    return Slot(busy, alive, thread, line, abort)


def mark(buffer: Any, base: int) -> None:
    """Tells the worker that the request in the slot at ``base`` ran over
    ``--timeout`` (it gives that one up: ``Control.abandon``)."""
    struct.pack_into("=I", buffer, base + _ABORT, _ABORT_MARKED)
