"""The upstream servers of a :class:`~qiao.middleware.Proxy`: their pools of
idle keep-alive connections, the probe that brings a down server back, and
the I/O around ``_upstream_policy.py``'s rules (the choice of one for each
request, round robin or least connections; marking one down and up again;
when to probe). No HTTP beyond opening connections: ``proxy.py`` speaks it.

All state lives in one :class:`Upstreams` under one lock, so any number of
serving threads may proxy at once (``wsgi.multithread``). The probe thread
starts when a server is marked down and ends at a round of probes that
finds every server up; it is started lazily, in the process that serves, so
a pre-fork server's workers each get their own.
"""

from __future__ import annotations

import http.client
import select
import socket
import threading
import time
from typing import BinaryIO
from urllib.parse import urlsplit

from ._upstream_policy import (
    MAX_FAILS,
    PROBE_INTERVAL,
    PROBE_MAX_INTERIM,
    Policy,
    Probe,
    State,
    Stop,
    Wait,
    probe_status_up,
)

#: Seconds allowed to open a TCP connection to an upstream.
CONNECT_TIMEOUT = 5.0
#: Idle keep-alive connections kept per upstream; more are closed.
POOL_SIZE = 16
#: An idle connection older than this is closed rather than reused: it must
#: stay below the upstream's own keep-alive timeout (Qiao's default is 5 s),
#: or the upstream may close it while the request is on its way.
POOL_IDLE_SECONDS = 2.0


class Upstream:
    """One upstream server, the ``index``-th; its pool is guarded by the
    owner's lock, its health is the owner's policy's."""

    def __init__(self, url: str, index: int = 0):
        parts = urlsplit(url)
        if parts.scheme != "http" or not parts.hostname:
            raise ValueError(f"upstream {url!r}: only http://host[:port][/path] is supported")
        if parts.query or parts.fragment:
            raise ValueError(f"upstream {url!r}: no query or fragment allowed")
        self.url = url
        self.index = index
        self.host = parts.hostname
        self.port = parts.port or 80
        self.netloc = parts.netloc
        self.base_path = parts.path.rstrip("/")
        self.idle: list[tuple[http.client.HTTPConnection, float]] = []

    def __repr__(self) -> str:
        return f"<Upstream {self.url}>"


class Upstreams:
    """The servers behind one proxy, and the policy that picks among them."""

    def __init__(
        self,
        urls: list[str],
        balance: str = "round_robin",
        *,
        connect_timeout: float = CONNECT_TIMEOUT,
        max_fails: int = MAX_FAILS,
        probe_interval: float = PROBE_INTERVAL,
        pool_size: int = POOL_SIZE,
        health_path: str | None = None,
    ):
        if not urls:
            raise ValueError("a proxy needs at least one upstream")
        self.policy = Policy(len(urls), balance, max_fails, probe_interval)
        self.servers = [Upstream(u, i) for i, u in enumerate(urls)]
        self.balance = balance
        self.connect_timeout = connect_timeout
        self.probe_interval = probe_interval
        self.pool_size = pool_size
        self.health_path = health_path
        self._lock = threading.Lock()

    # -- choosing --------------------------------------------------------------------
    def acquire(self, exclude: set[int]) -> tuple[int, Upstream] | None:
        """Picks a server not in ``exclude`` and counts a request on it
        (:meth:`Policy.pick`)."""
        with self._lock:
            index = self.policy.pick(exclude)
        return None if index is None else (index, self.servers[index])

    def release(self, server: Upstream, ok: bool | None) -> None:
        """The request on ``server`` is over: ``ok`` True counts a success, False
        a failure (which may mark it down and start the probe thread), None
        neither (:meth:`Policy.release`)."""
        with self._lock:
            if self.policy.release(server.index, ok, time.monotonic()):
                prober = threading.Thread(target=self._probe_loop, name="qiao-proxy-probe")
                prober.daemon = True
                try:
                    prober.start()
                except BaseException:
                    self.policy.prober_gone()
                    raise

    # -- connections -----------------------------------------------------------------
    def connect(self, server: Upstream, *, reuse: bool) -> tuple[http.client.HTTPConnection, bool]:
        """A connection to ``server``: a pooled idle one if ``reuse`` and one
        is fresh enough (then the flag is True), else a new one. Raises
        OSError if it cannot connect."""
        if reuse:
            now = time.monotonic()
            with self._lock:
                while server.idle:
                    conn, since = server.idle.pop()
                    if now - since < POOL_IDLE_SECONDS and _quiet(conn):
                        return conn, True
                    conn.close()
        conn = http.client.HTTPConnection(server.host, server.port, timeout=self.connect_timeout)
        try:
            conn.connect()
        except BaseException:
            conn.close()
            raise
        return conn, False

    def give_back(self, server: Upstream, conn: http.client.HTTPConnection) -> None:
        """Returns a connection whose response was read to its end."""
        with self._lock:
            if len(server.idle) < self.pool_size:
                server.idle.append((conn, time.monotonic()))
                return
        conn.close()

    def states(self) -> list[dict]:
        with self._lock:
            return [
                {
                    "url": s.url,
                    "up": h.state is State.UP,
                    "active": h.active,
                    "failures": h.failures,
                    "idle": len(s.idle),
                }
                for s, h in zip(self.servers, self.policy.health)
            ]

    # -- probing ---------------------------------------------------------------------
    def _probe_loop(self) -> None:
        while True:
            with self._lock:
                step = self.policy.probe_step(time.monotonic())
            if isinstance(step, Wait):
                time.sleep(step.seconds)
                continue
            if isinstance(step, Stop):
                return
            assert isinstance(step, Probe)
            for index in step.servers:
                up = self.probe(self.servers[index])
                with self._lock:
                    self.policy.probed(index, up)
            with self._lock:
                self.policy.probes_over(time.monotonic())

    def probe(self, server: Upstream) -> bool:
        """Whether ``server`` answers: a TCP connect, or a GET of ``health_path``."""
        try:
            if self.health_path is None:
                socket.create_connection((server.host, server.port), self.connect_timeout).close()
                return True
            with socket.create_connection((server.host, server.port), self.connect_timeout) as s:
                status = health_status(s, server.netloc, server.base_path + self.health_path)
            return status is not None and probe_status_up(status)
        except OSError:
            return False


class _OneReader:
    """A socket stand-in for :class:`http.client.HTTPResponse`: every
    response made on it reads from the same buffered file, each from where
    the one before stopped."""

    def __init__(self, fp: BinaryIO):
        self._fp = fp

    def makefile(self, mode: str) -> BinaryIO:
        return self._fp


def health_status(sock: socket.socket, host: str, target: str) -> int | None:
    """The status of the final answer to a ``GET target`` on ``sock``:
    interim (1xx) heads skipped, up to ``PROBE_MAX_INTERIM``. None: no
    valid final head (within the socket's timeout per read). Heads are
    parsed by ``http.client``, with its limits; it skips only ``100
    Continue`` itself, so a ``103 Early Hints`` would otherwise stand for
    the answer. The native probe (``crates/native/src/upstream.rs``)
    answers the same; both run the ``health_answers`` cases of
    ``tests/cases/upstream.json``."""
    request = (
        f"GET {target} HTTP/1.1\r\nHost: {host}\r\nAccept-Encoding: identity\r\n"
        "Connection: close\r\n\r\n"
    )
    try:
        sock.sendall(request.encode("latin-1"))
        with sock.makefile("rb") as fp:
            # Kept until the end: a response's finalizer closes the shared file.
            heads: list[http.client.HTTPResponse] = []
            while len(heads) <= PROBE_MAX_INTERIM:
                head = http.client.HTTPResponse(_OneReader(fp), method="GET")  # type: ignore[arg-type]
                heads.append(head)
                head.begin()
                if not 100 <= head.status < 200:
                    return head.status
            return None
    except (OSError, http.client.HTTPException):
        return None


def _quiet(conn: http.client.HTTPConnection) -> bool:
    """Whether nothing arrived on an idle connection (no bytes, no close).
    An upstream may send a last answer (a 408) before it closes an idle
    connection: read as the next request's response, it would answer the
    wrong request."""
    sock = conn.sock
    if sock is None:
        return False
    try:
        readable, _, _ = select.select([sock], [], [], 0)
    except (OSError, ValueError):
        return False
    return not readable
