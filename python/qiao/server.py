"""``qiao.serve()``: bind the listening sockets, set up logging and signals,
and hand everything to the Rust engine.

Sockets are bound here, in Python, and passed to the engine as file
descriptors, so a supervisor binds once and its forked workers share them.
A socket can also be inherited instead of bound: ``--bind fd://N``, or all
of them from systemd socket activation (``LISTEN_PID``/``LISTEN_FDS``).
Inherited sockets belong to whoever passed them: Qiao never shuts them
down or removes their files.
"""

from __future__ import annotations

import contextlib
import logging
import os
import resource
import signal
import socket
import stat
import weakref
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, Callable, Literal, cast

from . import _log, accesslog, statsd
from ._qiao import serve as _serve_native
from .config import DEFAULT_BIND, DEFAULTS

if TYPE_CHECKING:
    from ._qiao import EngineConfig

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


def check_tls(opts: dict) -> str | None:
    """Why the TLS settings cannot work (unreadable files, a policy without
    its CA), checked before any worker starts; ``None`` when they can. The
    engine checks the files' contents when each worker starts."""
    if not opts["certfile"]:
        if opts["keyfile"] or opts["ca_certs"] or opts["cert_reqs"] != "none":
            return "keyfile, ca_certs and cert_reqs need certfile"
        return None
    for name in ("certfile", "keyfile", "ca_certs"):
        path = opts[name]
        if path:
            try:
                with open(path, "rb"):
                    pass
            except OSError as e:
                return f"cannot read the {name} {path!r}: {e.strerror or e}"
    if opts["cert_reqs"] != "none" and not opts["ca_certs"]:
        return f"cert_reqs {opts['cert_reqs']} needs ca_certs (the CA of client certificates)"
    return None


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


def engine_options(opts: dict) -> dict:
    """The engine's ``config`` for these settings: every setting of
    :data:`qiao.config.DEFAULTS` it uses, grouped as ``src/wsgi/config.rs``
    reads them (the stub ``_qiao.pyi`` spells the shape). ``opts`` holds
    every setting; the defaults are the settings table's, never repeated
    here or in the engine."""
    logged, access_format = _log.access_enabled(opts), opts["access_log_format"]
    return {
        "threads": opts["threads"],
        "multiprocess": opts["workers"] > 1,
        "script_name": opts["script_name"],
        "health_path": opts["health_path"],
        "forwarded_allow_ips": opts["forwarded_allow_ips"],
        "proxy_protocol": opts["proxy_protocol"],
        "forwarded_headers": opts["forwarded_headers"],
        "proxy_allow_ips": opts["proxy_allow_ips"],
        "uwsgi_allow_ips": opts["uwsgi_allow_ips"],
        "max_requests": opts["max_requests"],
        "limits": {
            "limit_request_line": opts["limit_request_line"],
            "limit_request_fields": opts["limit_request_fields"],
            "limit_request_field_size": opts["limit_request_field_size"],
            "max_body": opts["max_body"],
            "max_connections": opts["max_connections"],
        },
        "timeouts": {
            "keepalive": opts["keepalive"],
            "header_timeout": opts["header_timeout"],
            "io_timeout": opts["io_timeout"],
            "graceful_timeout": opts["graceful_timeout"],
        },
        "tls": {
            "certfile": opts["certfile"],
            # --keyfile defaults to the key in --certfile itself.
            "keyfile": opts["keyfile"] or opts["certfile"],
            "ca_certs": opts["ca_certs"],
            "cert_reqs": opts["cert_reqs"],
            "http2": opts["http2"],
        },
        "static": {
            "dirs": [tuple(s.split("=", 1)) for s in _items(opts["static"])],
            "index": opts["static_index"],
            "cache_control": opts["static_cache_control"],
            "etag": opts["static_etag"],
            "hidden": bool(opts["static_hidden"]),
            "types": [tuple(t.split("=", 1)) for t in _items(opts["static_types"])],
        },
        "proxy": {
            "routes": [
                (prefix, [u.strip() for u in urls.split(",") if u.strip()])
                for prefix, urls in (p.split("=", 1) for p in _items(opts["proxy"]))
            ],
            "balance": opts["proxy_balance"],
            "timeout": opts["proxy_timeout"],
            "connect_timeout": opts["proxy_connect_timeout"],
            "max_fails": opts["proxy_max_fails"],
            "probe_interval": opts["proxy_probe_interval"],
            "preserve_host": bool(opts["proxy_preserve_host"]),
            "status": opts["proxy_status"],
            "health_path": opts["proxy_health_path"],
        },
        "compress": _compress(opts),
        "logging": {
            "log_error": _log.log_error,
            "access_log": statsd.request_hook(
                opts, accesslog.callback(access_format) if logged else None
            ),
            "access_log_fields": accesslog.request_fields(access_format) if logged else [],
        },
    }


def _items(value: str | Iterable[str] | None) -> list[str]:
    """A list setting's items: qiao.serve() may be given one string where
    the command line builds a list; None (or "") is the empty list."""
    if not value:
        return []
    return [value] if isinstance(value, str) else list(value)


def _compress(opts: dict) -> dict | None:
    """The ``compress`` group (None when ``--compress`` is off). Types and
    codings not given are the portable ``Compress``'s own lists."""
    if not opts["compress"]:
        return None
    from .middleware import compress

    levels = opts["compress_levels"] or {}
    if not isinstance(levels, dict):  # CODING=LEVEL strings, as the command line gives them
        pairs = (item.partition("=") for item in _items(levels))
        levels = {c.strip(): int(n) for c, _, n in pairs}
    return {
        "min_size": opts["compress_min_size"],
        "types": [t.strip().lower() for t in _items(opts["compress_types"]) or compress.TYPES],
        "codings": _items(opts["compress_codings"]) or list(compress.CODINGS),
        "levels": levels,
    }


class _Stop(Exception):
    """Raised by the SIGTERM handler inside the engine's signal check."""


def _on_sigterm(signum: int, frame: Any) -> None:
    raise _Stop()


def serve(
    app: Callable,
    bind: str | Iterable[str] | None = None,
    *,
    sockets: list[socket.socket] | None = None,
    **options: Any,
) -> None:
    """Serves the WSGI callable ``app`` until SIGINT or SIGTERM.

    ``bind``: one address or a list (``"127.0.0.1:8000"``, ``"[::1]:8000"``,
    ``"unix:/run/app.sock"``, ``"fd://3"``); under systemd socket activation,
    the sockets systemd passed instead. Other keyword arguments are the
    settings of :mod:`qiao.config` (``threads``, ``keepalive``, ``access_log``...).
    """
    unknown = set(options) - set(DEFAULTS)
    if unknown:
        raise TypeError(f"unknown option(s): {', '.join(sorted(unknown))}")
    opts = {**DEFAULTS, **options}
    _log.setup(opts)
    if opts["mount"]:
        from .loader import mount

        app = mount(app, opts["mount"])
    if _log.access_enabled(opts):
        app = accesslog.wrap_app(app, opts["access_log_format"])
    problem = check_tls(opts)
    if problem:
        raise ValueError(problem)
    owned = (
        []
        if sockets
        else open_listeners(bind, opts["backlog"], reuse_port=bool(opts["reuse_port"]))
    )
    listeners = list(sockets or []) + owned
    log_listening(listeners, tls=bool(opts["certfile"]))
    previous = {}
    with contextlib.suppress(ValueError):  # not the main thread: leave signals alone
        previous[signal.SIGTERM] = signal.signal(signal.SIGTERM, _on_sigterm)
        # Explicitly, because a process started in the background by a
        # shell inherits SIGINT ignored, and Python then installs nothing.
        previous[signal.SIGINT] = signal.signal(signal.SIGINT, signal.default_int_handler)
        previous[signal.SIGUSR1] = signal.signal(signal.SIGUSR1, _log.request_reopen)
        _log.start_reopener()  # SIGUSR1 reopens the log files, as under the supervisor
    if _log.access_enabled(opts):
        accesslog.start()
    try:
        _serve_native(
            app,
            engine_listeners(listeners, tls=bool(opts["certfile"])),
            # No supervisor to replace this process: --max-requests is the workers'.
            config=cast("EngineConfig", {**engine_options(opts), "max_requests": 0}),
        )
    except (KeyboardInterrupt, _Stop):
        log.info("Shutting down")
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        close_listeners(owned)
        accesslog.stop(opts["graceful_timeout"])
