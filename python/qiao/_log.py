"""Logging hooks called from the Rust engine.

Everything goes through Python's :mod:`logging` so users configure Qiao the
usual way: ``qiao.error`` for errors and lifecycle, ``qiao.access`` for one
line per request (formatted and written by :mod:`qiao.accesslog`).
"""

from __future__ import annotations

import logging
import sys

error_log = logging.getLogger("qiao.error")
access_logger = logging.getLogger("qiao.access")


def log_error(message: str, exc: BaseException | None) -> None:
    """Logs an application failure with its traceback (called by the engine)."""
    if exc is None:
        error_log.error(message)
    else:
        error_log.error(message, exc_info=(type(exc), exc, exc.__traceback__))


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
        # A second qiao.serve() in one process replaces the first one's handler.
        for old in [h for h in access_logger.handlers if getattr(h, "qiao_access", False)]:
            access_logger.removeHandler(old)
            old.close()
        if access_log == "-":
            handler = logging.StreamHandler(sys.stdout)
        else:
            handler = logging.FileHandler(access_log)
        handler.setFormatter(logging.Formatter("%(message)s"))
        handler.qiao_access = True
        access_logger.addHandler(handler)
        access_logger.setLevel(logging.INFO)
        access_logger.propagate = False


def log_debug(message: str) -> None:
    """Logs an event worth knowing when debugging (client disconnects...)."""
    error_log.debug(message)
