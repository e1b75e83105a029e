"""Log config files and syslog, with gunicorn's meanings.

gunicorn's logger names: real log configs name ``gunicorn.error`` and
``gunicorn.access``. Qiao makes those names aliases of its own loggers:
``logging.getLogger("gunicorn.error")`` returns the ``qiao.error`` logger
object itself (and ``gunicorn.access`` the ``qiao.access`` one). So a
config that gives ``gunicorn.error`` a handler, a level or ``propagate``
sets them on the logger Qiao writes to; nothing is copied or forwarded,
and there is no second logger to keep in step. Records keep Qiao's name
(``%(name)s`` is ``qiao.error``). The aliases sit outside gunicorn's
hierarchy: a handler on the ``gunicorn`` parent logger does not receive
Qiao's lines (give it to ``gunicorn.error`` or ``qiao.error``).

Log configs, as gunicorn applies them, after the error log, access log and
syslog settings (a config has the last word on the loggers it names):

- ``logconfig_dict``: merged over :data:`CONFIG_DEFAULTS` (its top-level
  keys replace the defaults' ones), then ``logging.config.dictConfig``;
- ``logconfig_json`` (``--log-config-json``): the same, read from JSON;
- ``logconfig`` (``--log-config``): ``logging.config.fileConfig`` ini,
  with ``%(here)s`` and ``%(__file__)s`` available in it.

Only the first of the three that is set is used (gunicorn's order).
"""

from __future__ import annotations

import json
import logging
import logging.config
import logging.handlers
import os
import socket

#: gunicorn's logger name -> Qiao's.
ALIASES = {"gunicorn.error": "qiao.error", "gunicorn.access": "qiao.access"}

#: What a ``logconfig_dict`` / ``logconfig_json`` is merged over
#: (gunicorn's defaults, with Qiao's logger names).
CONFIG_DEFAULTS: dict = {
    "version": 1,
    "disable_existing_loggers": False,
    "root": {"level": "INFO", "handlers": ["console"]},
    "loggers": {
        "qiao.error": {"level": "INFO", "handlers": ["error_console"], "propagate": True},
        "qiao.access": {"level": "INFO", "handlers": ["console"], "propagate": True},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "generic",
            "stream": "ext://sys.stdout",
        },
        "error_console": {
            "class": "logging.StreamHandler",
            "formatter": "generic",
            "stream": "ext://sys.stderr",
        },
    },
    "formatters": {
        "generic": {
            "format": "%(asctime)s [%(process)d] [%(levelname)s] %(message)s",
            "datefmt": "[%Y-%m-%d %H:%M:%S %z]",
            "class": "logging.Formatter",
        }
    },
}

#: syslog facility names -> codes (gunicorn's list).
SYSLOG_FACILITIES = {
    "auth": 4, "authpriv": 10, "cron": 9, "daemon": 3, "ftp": 11, "kern": 0, "lpr": 6,
    "mail": 2, "news": 7, "security": 4, "syslog": 5, "user": 1, "uucp": 8, "local0": 16,
    "local1": 17, "local2": 18, "local3": 19, "local4": 20, "local5": 21, "local6": 22,
    "local7": 23,
}  # fmt: skip
#: The syslog program name starts with this (gunicorn's starts with "gunicorn").
SYSLOG_PROGRAM = "qiao"
#: The port of a syslog address that names none.
SYSLOG_PORT = 514


class LogConfigError(Exception):
    """A log config that cannot be applied; the message is one line."""


def alias_gunicorn_loggers() -> None:
    """Makes ``gunicorn.error`` / ``gunicorn.access`` name Qiao's loggers."""
    manager = logging.Logger.manager
    with logging._lock:  # type: ignore[attr-defined] - the lock getLogger takes
        for alias, name in ALIASES.items():
            logger = logging.getLogger(name)
            if manager.loggerDict.get(alias) is logger:
                continue
            placeholder = manager.loggerDict.get(alias)
            manager.loggerDict[alias] = logger
            if isinstance(placeholder, logging.PlaceHolder):
                # Loggers below the alias (gunicorn.error.x) now hang under it.
                for child in placeholder.loggerMap:
                    child.parent = logger


def _named(config: dict) -> bool:
    """Whether a dictConfig names Qiao's loggers (by either name)."""
    loggers = config.get("loggers") or {}
    return any(name in loggers for name in (*ALIASES, *ALIASES.values()))


def _enable() -> None:
    """A config with ``disable_existing_loggers`` that configured
    ``gunicorn.error`` disables it under its other name, ``qiao.error``:
    a logger a config configured stays enabled."""
    for name in ALIASES.values():
        logging.getLogger(name).disabled = False


def apply(opts: dict) -> None:
    """Applies the log config the settings name, if any."""
    if opts.get("logconfig_dict"):
        _dict_config(opts["logconfig_dict"], "logconfig_dict")
    elif opts.get("logconfig_json"):
        path = opts["logconfig_json"]
        try:
            with open(path, encoding="utf-8") as f:
                data = json.load(f)
        except OSError as e:
            raise LogConfigError(
                f"cannot read the log config {path!r}: {e.strerror or e}"
            ) from None
        except json.JSONDecodeError as e:
            raise LogConfigError(f"{path}: invalid JSON: {e}") from None
        if not isinstance(data, dict):
            raise LogConfigError(f"{path}: expected a JSON object (a dictConfig dictionary)")
        _dict_config(data, path)
    elif opts.get("logconfig"):
        _file_config(opts["logconfig"])


def _dict_config(config: dict, where: str) -> None:
    merged = {**CONFIG_DEFAULTS, **config}
    try:
        logging.config.dictConfig(merged)
    except (AttributeError, ImportError, ValueError, TypeError, KeyError) as e:
        raise LogConfigError(f"{where}: bad log config: {_one_line(e)}") from None
    if _named(merged):
        _enable()


def _file_config(path: str) -> None:
    if not os.path.exists(path):
        raise LogConfigError(f"log config {path!r} not found")
    defaults = {"__file__": path, "here": os.path.dirname(path)}
    try:
        logging.config.fileConfig(path, defaults=defaults, disable_existing_loggers=False)
    except Exception as e:  # noqa: BLE001 - configparser, import and key errors alike
        raise LogConfigError(f"{path}: bad log config: {_one_line(e)}") from None


def _one_line(e: BaseException) -> str:
    text = str(e) or type(e).__name__
    while e.__cause__ is not None:  # dictConfig wraps the reason: "Unable to configure..."
        e = e.__cause__
        text = f"{text}: {e}"
    return " ".join(text.split())


# -- syslog --------------------------------------------------------------------


def parse_syslog_address(addr: str) -> tuple[int | None, object]:
    """(socket type, address) of ``udp://HOST:PORT``, ``tcp://HOST:PORT``
    or ``unix://PATH[#dgram|#stream]``."""
    if addr.startswith("unix://"):
        path, _, kind = addr[len("unix://") :].partition("#")
        socktype = {"dgram": socket.SOCK_DGRAM, "stream": socket.SOCK_STREAM}.get(kind)
        return socktype, path
    scheme, _, rest = addr.partition("://")
    socktype = {"udp": socket.SOCK_DGRAM, "tcp": socket.SOCK_STREAM}.get(scheme)
    if socktype is None:
        raise ValueError(f"invalid syslog address {addr!r}")
    if rest.startswith("["):
        host, _, port = rest[1:].partition("]")
        port = port.removeprefix(":")
    else:
        host, _, port = rest.partition(":")
    if port and not port.isdigit():
        raise ValueError(f"{port!r} is not a valid port number")
    return socktype, (host.lower() or "localhost", int(port) if port else SYSLOG_PORT)


def syslog_handler(opts: dict, kind: str) -> logging.Handler:
    """A handler sending the ``kind`` ("error" or "access") log to syslog,
    tagged ``qiao.PREFIX.KIND`` (PREFIX: ``--log-syslog-prefix``, else
    ``--name``; without either, ``qiao.KIND``)."""
    prefix = opts.get("syslog_prefix") or opts.get("proc_name")
    parts = [SYSLOG_PROGRAM, prefix.replace(":", ".") if prefix else None, kind]
    tag = ".".join(p for p in parts if p)
    facility = SYSLOG_FACILITIES[opts.get("syslog_facility", "user").lower()]
    socktype, address = parse_syslog_address(opts["syslog_addr"])
    handler = logging.handlers.SysLogHandler(address=address, facility=facility, socktype=socktype)
    handler.setFormatter(logging.Formatter(f"{tag}: [%(process)d] %(message)s"))
    return handler
