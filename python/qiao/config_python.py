"""gunicorn's Python configuration files (``gunicorn.conf.py``), read as
gunicorn reads them.

The file is executed as a module (``-c FILE``; ``-c python:package.module``
imports one); every module-level name that is a setting sets it, with the
Python value it has (``workers = multiprocessing.cpu_count() * 2 + 1``,
``bind = ["unix:/run/app.sock"]``, ``def post_fork(server, worker)``).
Names are gunicorn's (``preload_app``, ``accesslog``, ``pidfile``), plus
Qiao's own settings that gunicorn lacks (``static``, ``compress``...).

Other names are ignored, as gunicorn ignores them, except a near miss of
a setting (``keepallive``, ``access_logfile``, ``preload``): gunicorn
silently drops those, and the user believes the setting took effect, so
Qiao warns with the right name.
"""

from __future__ import annotations

import argparse
import difflib
import importlib
import importlib.machinery
import importlib.util
import inspect
import os
import sys
import types
from typing import Any

from .config import SETTINGS, Setting
from .settings.base import DICT, HOOK
from .settings.hooks import HOOKS, LEAST_ARGUMENTS

#: How close (difflib's ratio) an unknown name must be to a setting's to be
#: reported as a near miss.
NEAR_MISS_CUTOFF = 0.8
#: The module name a config file is executed under (gunicorn's).
CONFIG_MODULE = "__config__"


class PythonConfigError(Exception):
    """A Python config file that cannot be read or sets a bad value."""


def _names() -> dict[str, Setting]:
    """The names a Python file may set: gunicorn's, and Qiao's own."""
    names = {}
    for s in SETTINGS:
        names[s.gunicorn_name or s.name] = s
    return names


NAMES = _names()


def _other_spellings() -> dict[str, str]:
    """Spellings that are not a Python setting name but clearly mean one:
    a flag's long form (``access_logfile``) and Qiao's own name of a
    gunicorn setting (``preload``) -> the name to use."""
    spellings = {}
    for s in SETTINGS:
        right = s.gunicorn_name or s.name
        for flag in s.flags:
            if flag.startswith("--"):
                spellings.setdefault(flag[2:].replace("-", "_"), right)
        spellings.setdefault(s.name, right)
    return {wrong: right for wrong, right in spellings.items() if wrong not in NAMES}


SPELLINGS = _other_spellings()


def near_miss(name: str) -> str | None:
    """The setting ``name`` was probably meant to be, if any."""
    if name in SPELLINGS:
        return SPELLINGS[name]
    close = difflib.get_close_matches(name.lower(), list(NAMES), n=1, cutoff=NEAR_MISS_CUTOFF)
    return close[0] if close else None


def execute(location: str) -> dict[str, Any]:
    """The module-level names of the config file (or ``python:module``)."""
    if location.startswith("python:"):
        try:
            return vars(importlib.import_module(location[len("python:") :]))
        except Exception as e:
            raise PythonConfigError(f"cannot import config {location}: {_oneline(e)}") from e
    path = location.removeprefix("file:")
    if not os.path.exists(path):
        raise PythonConfigError(f"cannot read config file {path}: no such file")
    try:
        loader = importlib.machinery.SourceFileLoader(CONFIG_MODULE, path)
        spec = importlib.util.spec_from_file_location(CONFIG_MODULE, path, loader=loader)
        assert spec is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[CONFIG_MODULE] = module
        loader.exec_module(module)
    except Exception as e:
        raise PythonConfigError(f"failed to read config file {path}: {_oneline(e, path)}") from e
    return vars(module)


def _oneline(e: BaseException, path: str | None = None) -> str:
    """``Error: message (line N)``: the line of the config file, when known."""
    line = e.lineno if isinstance(e, SyntaxError) else None
    tb = e.__traceback__
    while tb is not None:
        if path and os.path.abspath(tb.tb_frame.f_code.co_filename) == os.path.abspath(path):
            line = tb.tb_lineno
        tb = tb.tb_next
    return f"{type(e).__name__}: {e}" + (f" (line {line})" if line else "")


def _text(value: Any) -> str:
    """A scalar Python value as the text a flag would have given."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(int(value))  # IntEnum values too (ssl.CERT_REQUIRED)
    if isinstance(value, (float, str)):
        return str(value)
    raise argparse.ArgumentTypeError(f"expected a string or a number, got {value!r}")


def _hook(s: Setting, value: Any) -> Any:
    if not callable(value):
        raise argparse.ArgumentTypeError(f"expected a function, got {value!r}")
    wanted = len(HOOKS[s.name][0]) if s.name in HOOKS else None
    if wanted is None:
        return value
    least = LEAST_ARGUMENTS.get(s.name, wanted)
    try:
        params = inspect.signature(value).parameters.values()
    except (TypeError, ValueError):
        return value  # a builtin or a C function: cannot tell, let it be called
    if any(p.kind == p.VAR_POSITIONAL for p in params):
        return value
    count = sum(p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) for p in params)
    required = sum(
        p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) and p.default is p.empty
        for p in params
    )
    if required > wanted or count < least:
        shown = f"{least} to {wanted}" if least != wanted else str(wanted)
        raise argparse.ArgumentTypeError(f"a {s.name} hook takes {shown} arguments, not {count}")
    return value


def convert(s: Setting, value: Any) -> Any:
    """A setting's value from what the Python file assigned to it."""
    if s.action == HOOK:
        return _hook(s, value)
    if s.action == DICT:
        if not isinstance(value, dict):
            raise argparse.ArgumentTypeError(f"expected a dict, got {value!r}")
        return value
    if s.is_flag:
        if isinstance(value, bool):
            return value
        if isinstance(value, str):
            return s.boolean(value)
        raise argparse.ArgumentTypeError(f"expected True or False, got {value!r}")
    if s.is_list:
        items = [value] if isinstance(value, str) else value
        if not isinstance(items, (list, tuple)):
            raise argparse.ArgumentTypeError(f"expected a string or a list, got {value!r}")
        return [s.convert(_text(item).strip()) for item in items if item]
    if isinstance(value, (list, tuple)) and s.name.endswith("_ips"):
        value = ",".join(str(v) for v in value)  # forwarded_allow_ips = ["10.0.0.1", ...]
    return s.convert(_text(value).strip())


def read(location: str) -> tuple[dict[str, tuple[Any, str]], list[str]]:
    """The settings a Python config file sets: (name -> (value, source),
    warnings about near misses). A name close to a setting the file also
    sets is a helper of the user's (``use_loglevel``, ``keepalive_str``,
    computing ``loglevel``, ``keepalive``), not a near miss."""
    namespace = execute(location)
    where = location.removeprefix("file:")
    found: dict[str, tuple[Any, str]] = {}
    misses: list[tuple[str, str]] = []
    for key, value in namespace.items():
        s = NAMES.get(key)
        if s is None:
            if key.startswith("_") or isinstance(value, (types.ModuleType, type)):
                continue
            meant = near_miss(key)
            if meant:
                misses.append((key, meant))
            continue
        if value is None:
            continue  # gunicorn's "not set" (accesslog = None)
        try:
            found[s.name] = (convert(s, value), f"file {where}")
        except (argparse.ArgumentTypeError, ValueError) as e:
            raise PythonConfigError(f"{where}: invalid value for {key}: {e}") from None
    warnings = [
        f"{where}: {key!r} is not a setting and is ignored; did you mean {meant!r}?"
        for key, meant in misses
        if NAMES[meant].name not in found
    ]
    return found, warnings
