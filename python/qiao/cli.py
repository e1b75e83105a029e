"""The ``qiao`` command (also ``python -m qiao``): gather the settings of
:mod:`qiao.config` from the command line, the environment and a config file
(:mod:`qiao.config_sources`), load the application, serve it. Every expected
failure ends with one line on stderr and a non-zero exit status.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import NoReturn

from . import __version__
from .config import SETTINGS, Setting
from .config_sources import APP, ConfigError, format_config, resolve

EXIT_USAGE = 2
EXIT_FAILURE = 1


class _Parser(argparse.ArgumentParser):
    """Reports a usage error in one line (and exit status 2), not the
    whole usage block: the one line is what the user needs."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"qiao: error: {message} (see qiao --help)\n")


def build_parser() -> argparse.ArgumentParser:
    """The command line, from the settings table. Options not given stay
    out of the result (``SUPPRESS``), so the environment and the config file
    can supply them."""
    parser = _Parser(
        prog="qiao",
        description="Serve a WSGI application with Qiao. Every option can also be set in a "
        "TOML file (-c) or a QIAO_* environment variable (QIAO_WORKERS=4); "
        "the command line wins, then the environment, then the file.",
        epilog="Example: qiao myproject.wsgi:application --bind 0.0.0.0:8000 --workers 4",
        argument_default=argparse.SUPPRESS,
    )
    parser.add_argument(
        "app",
        nargs="?",
        default=None,
        metavar="MODULE[:CALLABLE]",
        help="the WSGI application: module, module:name or module:factory() "
        "(or 'app' in the config file, or QIAO_APP)",
    )
    parser.add_argument("--version", action="version", version=f"qiao {__version__}")
    parser.add_argument(
        "-c",
        "--config",
        default=None,
        metavar="FILE",
        help="read settings from this TOML file ([tool.qiao] in a pyproject.toml); "
        "without it, [tool.qiao] of ./pyproject.toml is read if there is one",
    )
    parser.add_argument(
        "--print-config",
        action="store_true",
        default=False,
        help="print the effective settings and where each comes from, then exit",
    )
    groups: dict[str, argparse._ArgumentGroup] = {}
    for s in SETTINGS:
        if not s.flags:
            continue  # only a config file sets it (hooks, dictionaries)
        group = groups.get(s.section) or groups.setdefault(
            s.section, parser.add_argument_group(s.section)
        )
        group.add_argument(*s.flags, **_argument(s))
    return parser


def _argument(s: Setting) -> dict:
    """``add_argument``'s keywords for one setting."""
    kwargs: dict = {"dest": s.name, "help": s.help.replace("%", "%%")}
    if s.ignored:
        kwargs["help"] = f"gunicorn's; no effect in Qiao: {s.ignored}."
    if s.is_flag:
        kwargs["action"] = argparse.BooleanOptionalAction
    elif s.action:
        kwargs["action"] = s.action
    if s.action == "store_const":
        kwargs["const"] = s.const
    if s.nargs:
        kwargs["nargs"], kwargs["const"] = s.nargs, s.const
    if s.type is not None and not s.is_flag and s.action != "store_const":
        kwargs["type"] = s.type
    if s.metavar and s.action != "store_const":
        kwargs["metavar"] = s.metavar
    return kwargs


def _fail(message: str, status: int = EXIT_FAILURE) -> int:
    print(f"qiao: error: {message}", file=sys.stderr)
    return status


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    given = {s.name: getattr(args, s.name) for s in SETTINGS if hasattr(args, s.name)}
    if args.app:
        given[APP] = args.app
    try:
        options, sources = resolve(given, args.config, os.environ)
    except ConfigError as e:
        return _fail(str(e), EXIT_USAGE)
    if args.print_config:
        sys.stdout.write(format_config(options, sources))
        return 0
    app_spec = options.pop(APP)
    if not app_spec:
        return _fail(
            "no application given: pass MODULE[:CALLABLE], or set app in the config file "
            "or QIAO_APP (see qiao --help)",
            EXIT_USAGE,
        )
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
    from .loader import AppLoadError, load_mounted
    from .server import BindError, check_tls, close_listeners, open_listeners

    problem = check_tls(options)
    if problem:
        return _fail(problem)

    try:
        _log.setup(options)
    except _log.LogSetupError as e:
        return _fail(str(e))
    app = None
    if options["preload"]:
        try:
            app = load_mounted(app_spec, options.get("mount"))
        except AppLoadError as e:
            return _fail(str(e))
    try:
        sockets = open_listeners(options["bind"], options["backlog"])
    except BindError as e:
        return _fail(str(e))
    try:
        return Arbiter(app, app_spec, sockets, options).run()
    except BindError as e:  # the metrics address
        return _fail(str(e))
    finally:
        close_listeners(sockets)


def run() -> None:
    """Console-script entry point."""
    sys.exit(main())


if __name__ == "__main__":
    run()
