"""``qiao.serve()``: bind the listening sockets, set up logging and signals,
and hand everything to the Rust engine; and the engine's one configuration
(:func:`engine_options`), which the supervisor's workers use too.

The sockets themselves (binding, inheriting them from ``fd://N`` or systemd
socket activation, closing them) are ``listeners.py``'s; the names other
modules import from here are imported back from there.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import socket
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, Callable, cast

from . import _log, accesslog, statsd
from ._qiao import serve as _serve_native
from .config import DEFAULTS
from .listeners import BindError as BindError
from .listeners import bind_socket as bind_socket
from .listeners import close_listeners, engine_listeners, log_listening, open_listeners
from .listeners import is_inherited as is_inherited
from .listeners import is_uwsgi as is_uwsgi
from .listeners import mark_shared as mark_shared
from .listeners import parse_bind as parse_bind

if TYPE_CHECKING:
    from ._qiao import EngineConfig

log = logging.getLogger("qiao.error")


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
