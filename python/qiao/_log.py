"""Logging hooks called from the Rust engine.

Everything goes through Python's :mod:`logging` so users configure Qiao the
usual way: ``qiao.error`` for errors and lifecycle, ``qiao.access`` for one
line per request.
"""

from __future__ import annotations

import logging
import sys
import time

error_log = logging.getLogger("qiao.error")
access_logger = logging.getLogger("qiao.access")


def log_error(message: str, exc: BaseException | None) -> None:
    """Logs an application failure with its traceback (called by the engine)."""
    if exc is None:
        error_log.error(message)
    else:
        error_log.error(message, exc_info=(type(exc), exc, exc.__traceback__))


def access(environ: dict, status: int, sent: int, seconds: float) -> None:
    """Logs one request in the combined log format, plus the duration."""
    target = environ.get("RAW_URI") or environ.get("PATH_INFO", "")
    access_logger.info(
        '%s - - [%s] "%s %s %s" %d %d "%s" "%s" %.6f',
        environ.get("REMOTE_ADDR", "-") or "-",
        time.strftime("%d/%b/%Y:%H:%M:%S %z"),
        environ.get("REQUEST_METHOD", "-"),
        target,
        environ.get("SERVER_PROTOCOL", "-"),
        status,
        sent,
        environ.get("HTTP_REFERER", "-"),
        environ.get("HTTP_USER_AGENT", "-"),
        seconds,
    )


def setup(level: str = "info", access_log: str | None = None) -> None:
    """Configures handlers the way the command line asks (library users of
    ``qiao.serve`` who configured logging themselves keep their setup)."""
    if not error_log.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(
            logging.Formatter(
                "[%(asctime)s] [%(process)d] [%(levelname)s] %(message)s", "%Y-%m-%d %H:%M:%S %z"
            )
        )
        error_log.addHandler(handler)
        error_log.propagate = False
    error_log.setLevel(level.upper())
    if access_log:
        if access_log == "-":
            handler = logging.StreamHandler(sys.stdout)
        else:
            handler = logging.FileHandler(access_log)
        handler.setFormatter(logging.Formatter("%(message)s"))
        access_logger.addHandler(handler)
        access_logger.setLevel(logging.INFO)
        access_logger.propagate = False


def log_debug(message: str) -> None:
    """Logs an event worth knowing when debugging (client disconnects...)."""
    error_log.debug(message)
