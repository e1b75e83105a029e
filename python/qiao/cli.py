"""The ``qiao`` command (also ``python -m qiao``): gather the settings of
:mod:`qiao.config` from the command line, ``GUNICORN_CMD_ARGS``, the
environment and a config file (:mod:`qiao.config_sources`), carry over what
gunicorn's settings mean (:mod:`qiao.gunicorn_compat`), load the
application, serve it. Every expected failure ends with one line on stderr
and a non-zero exit status.
"""

from __future__ import annotations

import argparse
import gc
import logging
import os
import shlex
import sys
from collections.abc import Mapping
from typing import Any, NoReturn

from . import __version__, gunicorn_compat
from .config import SETTINGS, Setting
from .config_sources import (
    APP,
    CMD_ARGS_VARS,
    ConfigError,
    Resolved,
    format_config,
    resolve,
)

EXIT_USAGE = 2
EXIT_FAILURE = 1


class _Parser(argparse.ArgumentParser):
    """Reports a usage error in one line (and exit status 2), not the
    whole usage block: the one line is what the user needs. Parsing the
    options of a variable (``source``), the error names the variable."""

    source: str | None = None

    def error(self, message: str) -> NoReturn:
        if self.source:
            raise ConfigError(f"{self.source}: {message}")
        self.exit(EXIT_USAGE, f"qiao: error: {message} (see qiao --help)\n")


def build_parser(source: str | None = None) -> argparse.ArgumentParser:
    """The command line, from the settings table. Options not given stay
    out of the result (``SUPPRESS``), so the environment and the config file
    can supply them. ``source``: the variable whose options it parses."""
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
    parser.source = source
    parser.add_argument("-v", "--version", action="version", version=f"qiao {__version__}")
    parser.add_argument(
        "-c",
        "--config",
        default=None,
        metavar="FILE",
        help="read settings from this file: a gunicorn Python config (FILE.py, or "
        "python:MODULE) or TOML (FILE.toml, [tool.qiao] of a pyproject.toml); without it, "
        "./gunicorn.conf.py and [tool.qiao] of ./pyproject.toml are read if present",
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


def _given(args: argparse.Namespace) -> dict[str, Any]:
    """The settings an option was given for (the rest were left out)."""
    given = {s.name: getattr(args, s.name) for s in SETTINGS if hasattr(args, s.name)}
    if args.app:
        given[APP] = args.app
    return given


def _worded_flags(argv: list[str]) -> list[str]:
    """gunicorn's ``--proxy-protocol v2`` / ``--proxy-protocol=off`` as
    Qiao's boolean flag: a bare flag must not swallow the application
    name that follows it (``--proxy-protocol app:app``, gunicorn 23's form)."""
    worded = {f: s for s in SETTINGS if s.words for f in s.flags}
    out: list[str] = []
    i = 0
    while i < len(argv):
        word, consumed = None, 1
        flag, eq, value = argv[i].partition("=")
        setting = worded.get(flag)
        if setting and eq:
            word = value
        elif setting and i + 1 < len(argv) and argv[i + 1].lower() in dict(setting.words):
            word, consumed = argv[i + 1], 2
        if setting and word is not None:
            try:
                on = setting.boolean(word)
            except argparse.ArgumentTypeError as e:
                raise ConfigError(f"argument {flag}: {e}") from None
            out.append(flag if on else "--no-" + flag[2:])
        else:
            out.append(argv[i])
        i += consumed
    return out


def gather(argv: list[str] | None, environ: Mapping[str, str]) -> tuple[bool, Resolved]:
    """(``--print-config`` was asked for, every setting resolved) from the
    command line ``argv``, the variables and files ``environ`` points to.
    Raises :class:`ConfigError`."""
    args = build_parser().parse_args(_worded_flags(sys.argv[1:] if argv is None else argv))
    config = args.config
    cmd_args = []
    for var in CMD_ARGS_VARS:
        text = environ.get(var, "").strip()
        if not text:
            continue
        try:
            words = shlex.split(text)
        except ValueError as e:
            raise ConfigError(f"{var}: {e}") from None
        env_args = build_parser(source=var).parse_args(_worded_flags(words))
        cmd_args.append((var, _given(env_args)))
        config = config or env_args.config  # gunicorn: -c of the command line wins
    resolved = resolve(_given(args), config, environ, cmd_args)
    gunicorn_compat.apply(resolved)
    return args.print_config, resolved


def _fail(message: str, status: int = EXIT_FAILURE) -> int:
    print(f"qiao: error: {message}", file=sys.stderr)
    return status


def _prepare_imports(options: dict) -> str | None:
    """--chdir, --pythonpath and --env, before the application is imported;
    why they cannot be applied, or None."""
    chdir = options.pop("chdir")
    if chdir:
        try:
            os.chdir(chdir)
        except OSError as e:
            return f"cannot change to directory {chdir!r}: {e.strerror}"
        sys.path.insert(0, os.getcwd())
    for path in reversed((options["pythonpath"] or "").split(",")):
        if path.strip() and os.path.abspath(path.strip()) not in sys.path:
            sys.path.insert(0, os.path.abspath(path.strip()))
    try:
        os.environ.update(gunicorn_compat.environment(options["raw_env"]))
    except ValueError as e:
        return str(e)
    return None


def main(argv: list[str] | None = None) -> int:
    from . import upgrade

    upgrade.remember_start(argv)
    try:
        print_config, resolved = gather(argv, os.environ)
    except ConfigError as e:
        return _fail(str(e), e.status)
    options, sources = resolved.values, resolved.sources
    if print_config:
        sys.stdout.write(format_config(options, sources))
        return 0
    from . import process
    from .loader import app_spec_of, paste_file, paste_has_logging

    app_spec = app_spec_of(options)
    options.pop(APP)
    if not app_spec:
        return _fail(
            "no application given: pass MODULE[:CALLABLE], or set app in the config file "
            "or QIAO_APP (see qiao --help)",
            EXIT_USAGE,
        )
    problem = _prepare_imports(options)
    if problem:
        return _fail(problem)
    paste = paste_file(app_spec)
    if paste and not os.path.exists(paste):
        return _fail(f"{paste!r} not found")
    if paste and not options.get("logconfig") and paste_has_logging(paste):
        options["logconfig"] = paste  # gunicorn's: the .ini file's [loggers]
    try:
        process.check_owner(options)
    except process.ProcessError as e:
        return _fail(str(e))
    if options["workers"] == 0:
        options["workers"] = os.cpu_count() or 1
    if options["reload"] and options["preload"]:
        return _fail("--reload cannot be combined with --preload (preloaded code never reloads)")
    from . import _log
    from .arbiter import Arbiter
    from .loader import AppLoadError, load_mounted
    from .server import BindError, check_tls, close_listeners

    problem = check_tls(options)
    if problem:
        return _fail(problem)

    try:
        _log.setup(options)
    except _log.LogSetupError as e:
        return _fail(str(e))
    log = logging.getLogger("qiao.error")
    for note in resolved.notes:
        log.info("%s", note)
    for warning in resolved.warnings:
        log.warning("%s", warning)
    if options["daemon"] and not options["check_config"]:
        process.daemon_start(options)
    app = None
    if options["preload"] or options["check_config"]:
        if options["preload"]:
            gc.disable()  # the import frees nothing the workers would share (docs/preload.md)
        try:
            app = load_mounted(app_spec, options.get("mount"), options.get("raw_paste_global_conf"))
        except AppLoadError as e:
            return _fail(str(e))
        if options["check_config"]:
            return 0
    from .hook_objects import starting

    if starting(options, app_spec, app) is None:  # on_starting failed (logged)
        return EXIT_FAILURE
    try:
        sockets = process.open_sockets(options)
    except BindError as e:
        return _fail(str(e))
    try:
        return Arbiter(app, app_spec, sockets, options).run()
    except (BindError, process.ProcessError) as e:  # the metrics address, the pid file
        return _fail(str(e))
    finally:
        close_listeners(sockets)


def run() -> None:
    """Console-script entry point."""
    sys.exit(main())


if __name__ == "__main__":
    run()
