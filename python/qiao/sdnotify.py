"""systemd's readiness protocol (``sd_notify``), for ``Type=notify`` and
``Type=notify-reload`` units.

When systemd starts the supervisor with ``NOTIFY_SOCKET`` set (a Unix
datagram socket path, or ``@name`` for an abstract one), the supervisor
tells it, one datagram per change:

- ``READY=1`` with ``MAINPID=`` and ``STATUS=Serving N workers``, once
  the first workers all serve;
- ``RELOADING=1`` with ``MONOTONIC_USEC=`` (systemd 253 and later want it
  for ``Type=notify-reload``) at a reload (SIGHUP, ``--reload``), then
  ``READY=1`` again when the new workers serve (or the reload failed and
  the old ones go on);
- ``STOPPING=1`` when it starts stopping;
- ``STATUS=Serving N workers`` when the number of workers that serve
  changes (SIGTTIN, SIGTTOU, a worker replaced).

gunicorn sends a single ``READY=1`` (before its workers start); the rest
is systemd's protocol, which gunicorn does not follow further.

``NOTIFY_SOCKET`` is taken out of the environment when the supervisor
starts (systemd's ``sd_notify(unset_environment=1)``): the workers and
whatever the application starts do not inherit it. systemd only listens
to the main process by default (``NotifyAccess=main``), and an
application that finds the variable and sends its own ``READY=1`` or
``STOPPING=1`` would contradict the supervisor. (gunicorn leaves it set.)

A datagram that cannot be sent is logged at debug level and forgotten,
as gunicorn does: notifying must never stop the server.
"""

from __future__ import annotations

import logging
import os
import socket
import time

log = logging.getLogger("qiao.error")

#: The environment variable systemd sets to its notification socket.
NOTIFY_SOCKET = "NOTIFY_SOCKET"
#: A notification waits at most this long for room in systemd's socket.
SEND_TIMEOUT_SECONDS = 1.0


def socket_address(value: str) -> str:
    """The socket address of a ``NOTIFY_SOCKET`` value (``@name``: abstract)."""
    return "\0" + value[1:] if value.startswith("@") else value


class Notifier:
    """The supervisor's notifications; every method is a no-op when
    systemd did not ask for them."""

    def __init__(self, address: str | None) -> None:
        self.address = address
        self.ready = False
        self.reloading = False
        self.stopping = False
        self.status: str | None = None

    @classmethod
    def from_environ(cls) -> Notifier:
        """The notifier ``NOTIFY_SOCKET`` asks for; the variable is removed
        so that the workers (forked later) and the application do not see it."""
        value = os.environ.pop(NOTIFY_SOCKET, None)
        return cls(socket_address(value) if value else None)

    def send(self, *fields: str) -> None:
        if self.address is None:
            return
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
                sock.settimeout(SEND_TIMEOUT_SECONDS)
                sock.sendto("\n".join(fields).encode(), self.address)
        except OSError as e:
            log.debug("sd_notify: cannot send %s: %s", fields[0], e.strerror or e)

    def update(self, serving: int, starting: bool, reloading: bool) -> None:
        """Called by the supervisor once its first worker serves, then
        after each round of managing the workers: ``serving`` workers
        serve, others are still ``starting``, a reload is under way. READY
        once none is starting, READY again at the end of a reload, a new
        STATUS when ``serving`` changes."""
        if self.address is None or self.stopping:
            return
        status = f"STATUS=Serving {serving} worker{'' if serving == 1 else 's'}"
        if not self.ready:
            if starting:
                return
            self.ready = True
            self.send("READY=1", f"MAINPID={os.getpid()}", status)
        elif self.reloading:
            if reloading:
                return
            self.reloading = False
            self.send("READY=1", status)
        elif status != self.status:
            self.send(status)
        self.status = status

    def reload(self) -> None:
        """A reload starts (not before READY: systemd awaits that first)."""
        if self.address is None or not self.ready or self.stopping or self.reloading:
            return
        self.reloading = True
        self.send(
            "RELOADING=1", f"MONOTONIC_USEC={time.monotonic_ns() // 1000}", "STATUS=Reloading"
        )

    def stop(self) -> None:
        if self.address is None or self.stopping:
            return
        self.stopping = True
        self.send("STOPPING=1", "STATUS=Stopping")
