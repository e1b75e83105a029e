"""The upstream servers of a :class:`~qiao.middleware.Proxy`: their health,
their pools of idle keep-alive connections, the choice of one for each
request (round robin or least connections) and the probe that brings a
down server back. No HTTP beyond opening connections: ``proxy.py`` speaks it.

All state lives in one :class:`Upstreams` under one lock, so any number of
serving threads may proxy at once (``wsgi.multithread``). The probe thread
starts when a server is marked down and ends when every server is up again;
it is started lazily, in the process that serves, so a pre-fork server's
workers each get their own.
"""

from __future__ import annotations

import http.client
import select
import socket
import threading
import time
from urllib.parse import urlsplit

#: Seconds allowed to open a TCP connection to an upstream.
CONNECT_TIMEOUT = 5.0
#: Consecutive failures after which an upstream is marked down.
MAX_FAILS = 1
#: Seconds between two probes of a down upstream (a TCP connect, or a GET of
#: ``health_path`` answered below 500).
PROBE_INTERVAL = 5.0
#: Idle keep-alive connections kept per upstream; more are closed.
POOL_SIZE = 16
#: An idle connection older than this is closed rather than reused: it must
#: stay below the upstream's own keep-alive timeout (Qiao's default is 5 s),
#: or the upstream may close it while the request is on its way.
POOL_IDLE_SECONDS = 2.0

BALANCERS = ("round_robin", "least_conn")


class Upstream:
    """One upstream server; its counters are guarded by the owner's lock."""

    def __init__(self, url: str):
        parts = urlsplit(url)
        if parts.scheme != "http" or not parts.hostname:
            raise ValueError(f"upstream {url!r}: only http://host[:port][/path] is supported")
        if parts.query or parts.fragment:
            raise ValueError(f"upstream {url!r}: no query or fragment allowed")
        self.url = url
        self.host = parts.hostname
        self.port = parts.port or 80
        self.netloc = parts.netloc
        self.base_path = parts.path.rstrip("/")
        self.active = 0
        self.failures = 0
        self.up = True
        self.idle: list[tuple[http.client.HTTPConnection, float]] = []

    def __repr__(self) -> str:
        return f"<Upstream {self.url} up={self.up} active={self.active}>"


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
        if balance not in BALANCERS:
            raise ValueError(f"balance must be one of {BALANCERS}, not {balance!r}")
        self.servers = [Upstream(u) for u in urls]
        self.balance = balance
        self.connect_timeout = connect_timeout
        self.max_fails = max(1, max_fails)
        self.probe_interval = probe_interval
        self.pool_size = pool_size
        self.health_path = health_path
        self._lock = threading.Lock()
        self._next = 0  # round-robin cursor
        self._prober: threading.Thread | None = None

    # -- choosing --------------------------------------------------------------------
    def acquire(self, exclude: set[int]) -> tuple[int, Upstream] | None:
        """Picks a server not in ``exclude`` and counts a request on it. Servers
        that are up come first; when none is, a down one still gets the request
        (it may have recovered since its last probe) rather than none at all."""
        with self._lock:
            n = len(self.servers)
            order = [(self._next + k) % n for k in range(n)]
            order = [i for i in order if i not in exclude]
            candidates = [i for i in order if self.servers[i].up] or order
            if not candidates:
                return None
            if self.balance == "least_conn":
                index = min(candidates, key=lambda i: self.servers[i].active)
            else:
                index = candidates[0]
            self._next = (index + 1) % n
            server = self.servers[index]
            server.active += 1
            return index, server

    def release(self, server: Upstream, ok: bool | None) -> None:
        """The request on ``server`` is over: ``ok`` True counts a success, False
        a failure (which may mark it down), None neither."""
        with self._lock:
            server.active -= 1
            if ok:
                server.failures, server.up = 0, True
            elif ok is False:
                server.failures += 1
                if server.failures >= self.max_fails and server.up:
                    server.up = False
                    self._start_prober()

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
                    "up": s.up,
                    "active": s.active,
                    "failures": s.failures,
                    "idle": len(s.idle),
                }
                for s in self.servers
            ]

    # -- probing ---------------------------------------------------------------------
    def _start_prober(self) -> None:
        """Starts the probe thread unless it runs (called under the lock)."""
        if self._prober is not None and self._prober.is_alive():
            return
        self._prober = threading.Thread(target=self._probe_loop, name="qiao-proxy-probe")
        self._prober.daemon = True
        self._prober.start()

    def _probe_loop(self) -> None:
        while True:
            time.sleep(self.probe_interval)
            with self._lock:
                down = [s for s in self.servers if not s.up]
                if not down:
                    self._prober = None
                    return
            for server in down:
                if self.probe(server):
                    with self._lock:
                        server.up, server.failures = True, 0

    def probe(self, server: Upstream) -> bool:
        """Whether ``server`` answers: a TCP connect, or a GET of ``health_path``."""
        try:
            if self.health_path is None:
                socket.create_connection((server.host, server.port), self.connect_timeout).close()
                return True
            conn = http.client.HTTPConnection(
                server.host, server.port, timeout=self.connect_timeout
            )
            try:
                conn.request("GET", server.base_path + self.health_path)
                return conn.getresponse().status < 500
            finally:
                conn.close()
        except (OSError, http.client.HTTPException):
            return False


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
