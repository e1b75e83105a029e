"""The listening sockets: bound from ``--bind`` addresses or inherited,
marked as speaking uwsgi, handed to the engine as ``listeners``, logged and
closed.

Sockets are bound here, in Python, and passed to the engine as file
descriptors, so a supervisor binds once and its forked workers share them.
A socket can also be inherited instead of bound: ``--bind fd://N``, or all
of them from systemd socket activation (``LISTEN_PID``/``LISTEN_FDS``).
Inherited sockets belong to whoever passed them: Qiao never shuts them
down or removes their files.

Apart from ``server.py`` (``serve()`` and the engine's configuration)
because the supervisor, its workers, binary upgrades and the command line
handle sockets without serving, and which sockets are inherited or uwsgi is
state of its own (the weak sets below). ``server.py`` imports back the names
other modules import from it: ``from qiao.server import bind_socket`` works.
"""

from __future__ import annotations

import contextlib
import logging
import os
import resource
import socket
import stat
import weakref
from collections.abc import Iterable
from typing import Any, Literal

from .config import DEFAULT_BIND

#: How the engine speaks on a listener (`_qiao.serve`'s `listeners`).
Protocol = Literal["http", "uwsgi", "tls"]

log = logging.getLogger("qiao.error")


class BindError(Exception):
    """A --bind address is malformed or cannot be listened on."""


#: systemd passes activated sockets from this descriptor on (sd_listen_fds).
LISTEN_FDS_START = 3
_LISTEN_VARS = ("LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES")
_inherited: weakref.WeakSet = weakref.WeakSet()
#: Prefix of an address whose connections speak the uwsgi protocol
#: (nginx ``uwsgi_pass``) instead of HTTP: ``uwsgi://HOST:PORT``,
#: ``uwsgi://unix:/path``, ``uwsgi://fd://N``.
UWSGI_PREFIX = "uwsgi://"
_uwsgi: weakref.WeakSet = weakref.WeakSet()


def engine_listeners(
    sockets: list[socket.socket], tls: bool = False
) -> list[tuple[int, bool, Protocol]]:
    """The engine's ``listeners``: ``(fd, is_unix, protocol)`` of each
    socket, the protocol ``"uwsgi"``, ``"tls"`` or ``"http"``. With ``tls``
    (``--certfile``), every TCP listener that is not a uwsgi one serves
    TLS, as gunicorn's ``certfile`` does."""

    def protocol(sock: socket.socket) -> Protocol:
        if sock in _uwsgi:
            return "uwsgi"
        return "tls" if tls and sock.family != socket.AF_UNIX else "http"

    return [(s.fileno(), s.family == socket.AF_UNIX, protocol(s)) for s in sockets]


def is_inherited(sock: socket.socket) -> bool:
    """A socket passed to Qiao (fd://N, systemd) rather than bound by it."""
    return sock in _inherited


def mark_shared(sock: socket.socket, shared: bool) -> None:
    """While another supervisor serves ``sock`` too (a binary upgrade,
    :mod:`qiao.upgrade`), it is treated as inherited: never shut down, its
    file never removed."""
    if shared:
        _inherited.add(sock)
    else:
        _inherited.discard(sock)


def is_uwsgi(sock: socket.socket) -> bool:
    """A socket whose connections speak the uwsgi protocol."""
    return sock in _uwsgi


def inherit_socket(fd: int, what: str) -> socket.socket:
    """The listening socket open at descriptor ``fd`` (TCP, TCP6 or Unix;
    the family is read from the socket itself)."""
    if any(s.fileno() == fd for s in _inherited):
        raise BindError(f"{what}: descriptor {fd} is already served")
    try:
        sock = socket.socket(fileno=fd)
    except OSError as e:
        raise BindError(f"{what}: descriptor {fd} is not a socket ({e.strerror or e})") from None
    problem = None
    if sock.family not in (socket.AF_INET, socket.AF_INET6, socket.AF_UNIX):
        problem = f"unsupported address family {sock.family!r}"
    elif sock.type != socket.SOCK_STREAM:
        problem = "not a stream socket"
    elif not sock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN):
        problem = "not listening"
    if problem:
        sock.detach()  # not ours to close
        raise BindError(f"{what}: descriptor {fd}: {problem}")
    os.set_inheritable(fd, False)  # the workers are forked; nothing exec'd needs it
    sock.setblocking(False)
    _inherited.add(sock)
    return sock


def systemd_sockets() -> list[socket.socket]:
    """The sockets of systemd socket activation, when ``LISTEN_PID`` is this
    process; the variables are removed either way, so that the workers and
    anything the application starts do not take them for theirs."""
    pid, count = os.environ.get("LISTEN_PID"), os.environ.get("LISTEN_FDS")
    for name in _LISTEN_VARS:
        os.environ.pop(name, None)
    if not pid or not count or pid.strip() != str(os.getpid()):
        return []
    if not count.strip().isdigit():
        raise BindError(f"socket activation: bad LISTEN_FDS={count!r}")
    what = f"socket activation (LISTEN_FDS={count})"
    sockets: list[socket.socket] = []
    for fd in range(LISTEN_FDS_START, LISTEN_FDS_START + int(count)):
        sockets.append(inherit_socket(fd, what))
    return sockets


def parse_bind(address: str) -> tuple[int, Any]:
    """``HOST:PORT``, ``[v6]:PORT``, ``:PORT`` or ``unix:PATH`` →
    (address family, socket address)."""
    if address.startswith("unix:"):
        path = address[5:]
        if not path:
            raise BindError(f"empty Unix socket path in {address!r}")
        return socket.AF_UNIX, path
    if address.startswith("["):
        host, sep, port = address[1:].partition("]:")
        if not sep:
            raise BindError(f"bad IPv6 address {address!r}: expected [HOST]:PORT")
        family = socket.AF_INET6
    else:
        host, sep, port = address.rpartition(":")
        if not sep:
            host, port = address, "8000"
        host = host or "0.0.0.0"
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        port_num = int(port)
        if not 0 <= port_num <= 65535:
            raise ValueError
    except ValueError:
        raise BindError(f"bad port in {address!r}") from None
    return family, (host, port_num)


def bind_socket(
    address: str, backlog: int, reuse_port: bool = False, v6only: bool = False
) -> socket.socket:
    """A listening socket for ``address``; ``reuse_port``: SO_REUSEPORT,
    so that several servers can listen on one TCP port. An IPv6 socket
    takes IPv4 clients too (the system's default, as in gunicorn: ``[::]:80``
    serves both) unless ``v6only``."""
    if address.startswith(UWSGI_PREFIX):
        sock = bind_socket(address[len(UWSGI_PREFIX) :], backlog, reuse_port, v6only)
        _uwsgi.add(sock)
        return sock
    if address.startswith("fd://"):
        fd = address[5:]
        if not fd.isdigit():
            raise BindError(f"bad descriptor in {address!r}: expected fd://N")
        return inherit_socket(int(fd), address)
    family, addr = parse_bind(address)
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        if family == socket.AF_UNIX:
            with contextlib.suppress(FileNotFoundError):
                if stat.S_ISSOCK(os.stat(addr).st_mode):
                    os.unlink(addr)
        else:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if reuse_port:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            if family == socket.AF_INET6 and v6only:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.bind(addr)
        sock.listen(backlog)
    except OSError as e:
        sock.close()
        raise BindError(f"cannot listen on {address}: {e.strerror or e}") from None
    sock.setblocking(False)
    return sock


def _tcp_of(address: str) -> tuple[int, int] | None:
    """(family, port) of a TCP bind address (None: a Unix socket, fd://N,
    an address that does not parse)."""
    address = address.removeprefix(UWSGI_PREFIX)
    if address.startswith(("unix:", "fd://")):
        return None
    try:
        family, addr = parse_bind(address)
    except BindError:
        return None
    return family, addr[1]


def _url(sock: socket.socket) -> str:
    if sock in _uwsgi:
        return UWSGI_PREFIX + _url_of(sock).removeprefix("http://")
    return _url_of(sock)


def _url_of(sock: socket.socket) -> str:
    if sock.family == socket.AF_UNIX:
        return f"unix:{sock.getsockname()}"
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}" if sock.family == socket.AF_INET6 else f"http://{host}:{port}"


def _raise_nofile_limit() -> None:
    """Thousands of keep-alive connections need more descriptors than the
    usual soft limit of 1024: raise it to the hard limit."""
    with contextlib.suppress(ValueError, OSError):
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if soft < hard:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def open_listeners(
    bind: str | Iterable[str] | None, backlog: int, *, reuse_port: bool = False
) -> list[socket.socket]:
    """The sockets systemd passed (socket activation), or else every
    address bound (the default one when none is given)."""
    if isinstance(bind, str):
        bind = [bind]
    sockets = systemd_sockets()
    if sockets:
        if bind:
            log.info("Socket activation: serving the sockets systemd passed, not --bind")
        _raise_nofile_limit()
        return sockets
    addresses = list(bind or [DEFAULT_BIND])
    tcp = {address: _tcp_of(address) for address in addresses}
    ipv4_ports = {t[1] for t in tcp.values() if t and t[0] == socket.AF_INET}
    try:
        for address in addresses:
            # IPv6-only where an IPv4 bind takes the same port, so both can listen.
            family_port = tcp[address]
            v6only = family_port is not None and family_port[1] in ipv4_ports
            sockets.append(bind_socket(address, backlog, reuse_port, v6only))
    except BindError:
        close_listeners(sockets)
        raise
    _raise_nofile_limit()
    return sockets


def log_listening(sockets: list[socket.socket], tls: bool = False) -> None:
    for sock in sockets:
        url, pid = _url(sock), os.getpid()
        if tls and sock not in _uwsgi:
            url = url.replace("http://", "https://", 1)
        if is_inherited(sock):
            log.info("Listening at: %s (%d), inherited fd %d", url, pid, sock.fileno())
        else:
            log.info("Listening at: %s (%d)", url, pid)


def close_listeners(sockets: list[socket.socket]) -> None:
    """Closes the sockets, removing the files of the Unix ones Qiao bound."""
    for sock in sockets:
        path = None
        if sock.family == socket.AF_UNIX and not is_inherited(sock):
            path = sock.getsockname()
        sock.close()
        if path:
            with contextlib.suppress(OSError):
                os.unlink(path)
