"""Qiao's settings, in one table (as gunicorn's ``config.py``).

Every option is declared once, in a section module of :mod:`qiao.settings`:
its flags (Qiao's and gunicorn's spellings), type, default, help, gunicorn's
name for it, and for a gunicorn setting without a meaning here, what Qiao
does instead. Everything else is built from this table: ``cli.py``'s
argument parser, :mod:`qiao.config_sources`'s reading of config files
(TOML or gunicorn's Python files) and environment variables, the keyword
arguments of ``qiao.serve()``, and the option reference in ``docs/``.
"""

from __future__ import annotations

from .settings import hooks, logging, native, process, security, server, tls, unused, workers
from .settings.base import Setting
from .settings.logging import DEFAULT_ACCESS_LOG_FORMAT, LOG_LEVELS
from .settings.native import COMPRESS_CODINGS, COMPRESS_LEVELS
from .settings.server import DEFAULT_BIND
from .settings.tls import CERT_REQS
from .settings.workers import DEFAULT_THREADS

SETTINGS: tuple[Setting, ...] = (
    server.SETTINGS
    + workers.SETTINGS
    + security.SETTINGS
    + logging.SETTINGS
    + process.SETTINGS
    + native.SETTINGS
    + tls.SETTINGS
    + hooks.SETTINGS
    + unused.SETTINGS
)

#: Each setting by its name.
BY_NAME: dict[str, Setting] = {s.name: s for s in SETTINGS}

#: The names qiao.serve() accepts, with their defaults.
DEFAULTS: dict[str, object] = {s.name: s.default for s in SETTINGS}

__all__ = [
    "BY_NAME",
    "CERT_REQS",
    "COMPRESS_CODINGS",
    "COMPRESS_LEVELS",
    "DEFAULTS",
    "DEFAULT_ACCESS_LOG_FORMAT",
    "DEFAULT_BIND",
    "DEFAULT_THREADS",
    "LOG_LEVELS",
    "SETTINGS",
    "Setting",
]
