"""statsd metrics (``--statsd-host``), with gunicorn's metric names and
line format, so that dashboards built for gunicorn keep working.

Each process sends its own datagrams, as gunicorn's processes do:

- the workers, per request (counted from the engine's access-log hook,
  which :func:`request_hook` wraps or replaces; without ``--statsd-host``
  nothing is wrapped and a request pays nothing): ``gunicorn.requests``,
  ``gunicorn.request.duration`` (ms) and ``gunicorn.request.status.<code>``;
- the supervisor (:class:`SupervisorMetrics`): the ``gunicorn.workers``
  gauge when the count changes, and with ``--enable-backlog-metric`` the
  listen queue length ``gunicorn.backlog``;
- every process: ``gunicorn.log.<level>`` for each warning, error,
  exception and critical line of the ``qiao.error`` log (:class:`LogCounter`).

The client never blocks and never raises into the request path: the
socket is non-blocking, and a datagram that cannot leave (a full buffer,
nobody listening on the Unix socket) is dropped and counted; a warning
says so at most every ``WARNING_INTERVAL_SECONDS``. Datagrams are sent
unconnected (``sendto``), so a statsd daemon that restarts (or a Unix
socket recreated) is reached again without reconnecting. A host name is
resolved once, when the client is made.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import struct
import sys
import time
from typing import Any, Callable

log = logging.getLogger("qiao.error")

#: gunicorn's default statsd port, for a --statsd-host without one.
DEFAULT_PORT = 8125
#: After a dropped datagram, the next warning waits at least this long.
WARNING_INTERVAL_SECONDS = 60.0
#: The supervisor measures the listen queues at most this often.
BACKLOG_INTERVAL_SECONDS = 1.0
#: ``struct tcp_info`` up to ``tcpi_unacked``, which for a listening socket
#: is the length of its accept queue (Linux).
_TCP_INFO = struct.Struct("8B5I")
#: A log record with this attribute set is not counted (the client's own
#: warnings: counting them would send more to a destination that fails).
_NOT_COUNTED = "qiao_statsd_skip"

AccessHook = Callable[[dict, int, int, float], None]


def parse_address(text: str) -> tuple[int, Any]:
    """gunicorn's statsd addresses: ``HOST:PORT``, ``HOST`` (port 8125),
    ``[V6]:PORT``, ``unix:PATH`` or ``unix://PATH`` (``@name``: abstract)
    -> (address family, address). Raises ValueError."""
    if text.startswith("unix:"):
        path = text[7:] if text.startswith("unix://") else text[5:]
        if not path:
            raise ValueError(f"empty Unix socket path in {text!r}")
        return socket.AF_UNIX, "\0" + path[1:] if path.startswith("@") else path
    if text.startswith("["):
        host, sep, rest = text[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else str(DEFAULT_PORT) if not rest else ""
        family = socket.AF_INET6
    else:
        host, sep, port = text.rpartition(":") if ":" in text else (text, ":", str(DEFAULT_PORT))
        family = socket.AF_INET
    if not host or not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"expected HOST:PORT or unix:PATH, got {text!r}")
    return family, (host, int(port))


def metric_prefix(prefix: str) -> str:
    """gunicorn's rule: the prefix, then one '.' (none when empty)."""
    prefix = prefix.rstrip(".")
    return prefix + "." if prefix else ""


class Statsd:
    """One process's statsd sender (also usable by the application:
    ``counter``, ``gauge``, ``timer``, ``histogram``)."""

    def __init__(self, address: str, prefix: str = "", tags: str = "") -> None:
        family, addr = parse_address(address)
        if family != socket.AF_UNIX:
            # Resolved once (at start-up, never in a request).
            family, _, _, _, addr = socket.getaddrinfo(*addr, type=socket.SOCK_DGRAM)[0]
        self.address = address
        self.target = addr
        self.sock = socket.socket(family, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
        self.sock.setblocking(False)
        self.prefix = metric_prefix(prefix).encode()
        self.suffix = b"|#" + tags.encode() if tags else b""
        self.dropped = 0
        self.next_warning = 0.0

    def line(self, name: str, value: Any, kind: str) -> bytes:
        """One statsd line: ``<prefix><name>:<value>|<kind>[|#tags]``."""
        return b"".join(
            (
                self.prefix,
                name.encode(),
                b":",
                str(value).encode(),
                b"|",
                kind.encode(),
                self.suffix,
            )
        )

    def send(self, data: bytes) -> None:
        try:
            self.sock.sendto(data, self.target)
        except OSError as e:
            self.dropped += 1
            now = time.monotonic()
            if now >= self.next_warning:
                self.next_warning = now + WARNING_INTERVAL_SECONDS
                dropped, self.dropped = self.dropped, 0
                log.warning(
                    "statsd: cannot send to %s (%s): %d metrics dropped",
                    self.address,
                    e.strerror or e,
                    dropped,
                    extra={_NOT_COUNTED: True},
                )

    def counter(self, name: str, value: int = 1) -> None:
        self.send(self.line(name, value, "c|@1.0"))

    def gauge(self, name: str, value: float) -> None:
        self.send(self.line(name, value, "g"))

    def timer(self, name: str, milliseconds: float) -> None:
        self.send(self.line(name, f"{milliseconds:.3f}", "ms"))

    def histogram(self, name: str, value: float) -> None:
        self.send(self.line(name, value, "h"))

    def close(self) -> None:
        self.sock.close()


class LogCounter(logging.Handler):
    """Counts the error log's warnings and worse as ``gunicorn.log.*``
    (an ERROR record with a traceback is an ``exception``, as gunicorn's
    ``log.exception`` is)."""

    def __init__(self, client: Statsd) -> None:
        super().__init__(logging.WARNING)
        self.client = client

    def handle(self, record: logging.LogRecord) -> bool:
        # No handler lock: emit only sends a datagram.
        if record.levelno >= self.level and not getattr(record, _NOT_COUNTED, False):
            self.emit(record)
        return True

    def emit(self, record: logging.LogRecord) -> None:
        if record.levelno >= logging.CRITICAL:
            level = "critical"
        elif record.levelno >= logging.ERROR:
            level = "exception" if record.exc_info else "error"
        else:
            level = "warning"
        self.client.counter("gunicorn.log." + level)


_process: dict[str, Any] = {"key": None, "client": None, "handler": None}


def setup(opts: dict) -> Statsd | None:
    """This process's client for the settings ``opts`` (None when
    ``statsd_host`` is unset), made once; it also counts the error log.
    Forked workers inherit the supervisor's."""
    address = opts.get("statsd_host")
    if not address:
        return None
    key = (address, opts.get("statsd_prefix") or "", opts.get("dogstatsd_tags") or "")
    if _process["key"] == key:
        return _process["client"]
    old_client, old_handler = _process["client"], _process["handler"]
    if old_handler is not None:
        log.removeHandler(old_handler)
    if old_client is not None:
        old_client.close()
    client = handler = None
    try:
        client = Statsd(*key)
    except (OSError, ValueError) as e:  # an unknown host name
        log.warning("statsd: cannot use %s (%s): no metrics are sent", address, e)
    else:
        handler = LogCounter(client)
        log.addHandler(handler)
    _process.update(key=key, client=client, handler=handler)
    return client


def request_hook(opts: dict, access: AccessHook | None) -> AccessHook | None:
    """The engine's per-request hook: ``access`` (the access log's, or
    None) as it is when statsd is off; otherwise a hook that sends the
    request metrics, then calls ``access``."""
    client = setup(opts)
    if client is None:
        return access
    send = client.send
    requests_line = client.line("gunicorn.requests", 1, "c|@1.0")
    duration = client.prefix + b"gunicorn.request.duration:%.3f|ms" + client.suffix
    status_lines: dict[int, bytes] = {}

    def hook(environ: dict, status: int, sent: int, seconds: float) -> None:
        send(duration % (seconds * 1000.0))
        send(requests_line)
        line = status_lines.get(status)
        if line is None:  # at most one per status code (100..999)
            line = client.line(f"gunicorn.request.status.{status}", 1, "c|@1.0")
            status_lines[status] = line
        send(line)
        if access is not None:
            access(environ, status, sent, seconds)

    return hook


def listen_queue(sockets: list[socket.socket]) -> int | None:
    """Connections waiting in the TCP listen queues (Linux; None where
    it cannot be measured: no TCP listener, another system)."""
    if not sys.platform.startswith("linux"):
        return None
    total, measured = 0, False
    for sock in sockets:
        if sock.family not in (socket.AF_INET, socket.AF_INET6):
            continue
        with contextlib.suppress(OSError):
            info = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, _TCP_INFO.size)
            total += _TCP_INFO.unpack_from(info)[12]
            measured = True
    return total if measured else None


class SupervisorMetrics:
    """The supervisor's metrics: ``update`` after each round of managing
    the workers (a no-op when statsd is off)."""

    def __init__(self, opts: dict, sockets: list[socket.socket]) -> None:
        self.client = setup(opts)
        self.sockets = sockets
        self.backlog = bool(opts.get("enable_backlog_metric"))
        self.workers: int | None = None
        self.next_backlog = 0.0

    def update(self, workers: int) -> None:
        client = self.client
        if client is None:
            return
        if workers != self.workers:
            self.workers = workers
            client.gauge("gunicorn.workers", workers)
        if self.backlog:
            now = time.monotonic()
            if now >= self.next_backlog:
                self.next_backlog = now + BACKLOG_INTERVAL_SECONDS
                queued = listen_queue(self.sockets)
                if queued is not None:
                    client.histogram("gunicorn.backlog", queued)
