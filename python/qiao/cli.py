"""The ``qiao`` command (also ``python -m qiao``): parse the options of
:mod:`qiao.config`, load the application, serve it. Every expected failure
ends with one line on stderr and a non-zero exit status.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import NoReturn

from . import __version__
from .config import LOG_LEVELS, SETTINGS

EXIT_USAGE = 2
EXIT_FAILURE = 1


class _Parser(argparse.ArgumentParser):
    """Reports a usage error in one line (and exit status 2), not the
    whole usage block: the one line is what the user needs."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"qiao: error: {message} (see qiao --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="qiao",
        description="Serve a WSGI application with Qiao.",
        epilog="Example: qiao myproject.wsgi:application --bind 0.0.0.0:8000 --threads 4",
    )
    parser.add_argument(
        "app",
        metavar="MODULE[:CALLABLE]",
        help="the WSGI application: module, module:name or module:factory()",
    )
    parser.add_argument("--version", action="version", version=f"qiao {__version__}")
    for s in SETTINGS:
        kwargs = {"dest": s.name, "default": s.default, "help": s.help}
        if s.action:
            kwargs["action"] = s.action
        if s.type is not None and s.action not in ("store_true", "store_false"):
            kwargs["type"] = s.type
        if s.metavar:
            kwargs["metavar"] = s.metavar
        parser.add_argument(*s.flags, **kwargs)
    return parser


def _fail(message: str) -> int:
    print(f"qiao: error: {message}", file=sys.stderr)
    return EXIT_FAILURE


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    options = {s.name: getattr(args, s.name) for s in SETTINGS}
    if options["log_level"].lower() not in LOG_LEVELS:
        return _fail(
            f"unknown --log-level {options['log_level']!r} (choose from {', '.join(LOG_LEVELS)})"
        )
    options["log_level"] = options["log_level"].lower()
    chdir = options.pop("chdir")
    if chdir:
        try:
            os.chdir(chdir)
        except OSError as e:
            return _fail(f"cannot change to directory {chdir!r}: {e.strerror}")
        sys.path.insert(0, os.getcwd())
    if options["workers"] == 0:
        options["workers"] = os.cpu_count() or 1
    if options["reload"] and options["preload"]:
        return _fail("--reload cannot be combined with --preload (preloaded code never reloads)")
    from . import _log
    from .arbiter import Arbiter
    from .loader import AppLoadError, load_app
    from .server import BindError, close_listeners, open_listeners

    try:
        _log.setup(options["log_level"], options["access_log"])
    except OSError as e:
        return _fail(f"cannot open the access log {options['access_log']!r}: {e.strerror or e}")
    app = None
    if options["preload"]:
        try:
            app = load_app(args.app)
        except AppLoadError as e:
            return _fail(str(e))
    try:
        sockets = open_listeners(options["bind"], options["backlog"])
    except BindError as e:
        return _fail(str(e))
    try:
        return Arbiter(app, args.app, sockets, options).run()
    finally:
        close_listeners(sockets)


def run() -> None:
    """Console-script entry point."""
    sys.exit(main())


if __name__ == "__main__":
    run()
