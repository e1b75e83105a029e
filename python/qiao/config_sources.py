"""Where settings come from, besides the command line: a TOML file and
``QIAO_*`` environment variables. Precedence: command line > environment >
file > default, setting by setting.

- The file is ``-c FILE`` / ``--config FILE`` (or ``QIAO_CONFIG``). Its keys
  are setting names, with ``-`` or ``_`` (``graceful-timeout``), or a
  command line flag's long name (``max-body-size``); ``app`` names the
  application. In a file named ``pyproject.toml`` they are read from the
  ``[tool.qiao]`` table. Without ``-c``, a ``[tool.qiao]`` table in
  ``./pyproject.toml`` is read if there is one.
- The environment: ``QIAO_`` and the upper-cased name (``QIAO_WORKERS``,
  ``QIAO_APP``). A list (``QIAO_BIND``) is separated by commas or spaces; a
  boolean is 1/0, true/false, yes/no or on/off. An empty variable counts as
  unset, and ``QIAO_*`` variables that name no setting are left alone (the
  engine has its own, such as ``QIAO_DEBUG_POOL``).

A bad value or an unknown key raises :class:`ConfigError`, whose message
names the source: the file and key, or the variable.
"""

from __future__ import annotations

import argparse
import difflib
import json
import os
import re
from collections.abc import Mapping
from typing import Any

from .config import DEFAULT_BIND, SETTINGS, Setting

#: The setting that names the application (the command line's positional).
APP = "app"
DEFAULT_SOURCE = "default"
CLI_SOURCE = "command line"
_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")


class ConfigError(Exception):
    """A setting from a file or the environment that cannot be used."""


def _key(name: str) -> str:
    return name.strip().lower().replace("-", "_")


def _names() -> dict[str, Setting | None]:
    """Every accepted key (normalized) -> its setting (None: ``app``)."""
    names: dict[str, Setting | None] = {APP: None}
    for s in SETTINGS:
        names[s.name] = s
        for flag in s.flags:
            if flag.startswith("--"):
                names[_key(flag[2:])] = s
    return names


KEYS = _names()


def _boolean(text: str) -> bool:
    word = text.strip().lower()
    if word in _TRUE:
        return True
    if word in _FALSE:
        return False
    raise argparse.ArgumentTypeError(f"expected a boolean (1/0, true/false, yes/no), got {text!r}")


def _from_text(s: Setting, text: str) -> Any:
    """A value from its text, as an environment variable gives it."""
    if s.is_flag:
        return _boolean(text)
    if s.is_list:
        return [s.convert(item) for item in re.split(s.split, text.strip()) if item]
    return s.convert(text.strip())


def _from_toml(s: Setting, value: Any) -> Any:
    """A value from what TOML parsed: a bool, number, string or list."""
    if s.is_flag:
        if isinstance(value, bool):
            return value
        if isinstance(value, str):
            return _boolean(value)
        raise argparse.ArgumentTypeError(f"expected true or false, got {value!r}")
    if s.is_list and isinstance(value, list):
        if not all(isinstance(item, str) for item in value):
            raise argparse.ArgumentTypeError(f"expected a list of strings, got {value!r}")
        return [s.convert(item) for item in value]
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        kind = "a string or a list of strings" if s.is_list else "a string or a number"
        raise argparse.ArgumentTypeError(f"expected {kind}, got {value!r}")
    return _from_text(s, str(value))


def _unknown(key: str) -> str:
    close = difflib.get_close_matches(_key(key), list(KEYS), n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return f"unknown setting {key!r}{hint}"


def read_file(path: str, required: bool = True) -> dict[str, tuple[Any, str]]:
    """The settings of a TOML file: name -> (value, source). ``required``:
    the file was asked for (``-c``), so it must exist and, for a
    pyproject.toml, have a ``[tool.qiao]`` table."""
    try:
        import tomllib
    except ImportError:  # Python < 3.11
        try:
            import tomli as tomllib
        except ImportError:
            raise ConfigError(
                f"{path}: reading TOML needs Python 3.11 or the tomli package"
            ) from None
    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
    except FileNotFoundError:
        if not required:
            return {}
        raise ConfigError(f"cannot read config file {path}: no such file") from None
    except OSError as e:
        raise ConfigError(f"cannot read config file {path}: {e.strerror or e}") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: invalid TOML: {e}") from None
    where = path
    if os.path.basename(path) == "pyproject.toml":
        tool = data.get("tool", {})
        if "qiao" not in tool:
            if required:
                raise ConfigError(f"{path}: no [tool.qiao] table")
            return {}
        data, where = tool["qiao"], f"{path} [tool.qiao]"
        if not isinstance(data, dict):
            raise ConfigError(f"{where}: tool.qiao must be a table")
    found: dict[str, tuple[Any, str]] = {}
    for key, value in data.items():
        if _key(key) not in KEYS:
            raise ConfigError(f"{where}: {_unknown(key)}")
        s = KEYS[_key(key)]
        name = APP if s is None else s.name
        if name in found:
            raise ConfigError(f"{where}: {key!r} sets {name!r} a second time")
        if s is None:
            if not isinstance(value, str) or not value:
                raise ConfigError(f"{where}: app: expected 'MODULE[:CALLABLE]', got {value!r}")
            found[name] = (value, f"file {path}")
            continue
        try:
            found[name] = (_from_toml(s, value), f"file {path}")
        except (argparse.ArgumentTypeError, ValueError) as e:
            raise ConfigError(f"{where}: {key}: {e}") from None
    return found


def read_env(environ: Mapping[str, str]) -> dict[str, tuple[Any, str]]:
    """The settings given as ``QIAO_*`` variables: name -> (value, source)."""
    found: dict[str, tuple[Any, str]] = {}
    for var, text in environ.items():
        if not var.startswith("QIAO_") or not text.strip():
            continue
        key = var[5:].lower()
        if key not in KEYS:
            continue
        s = KEYS[key]
        name = APP if s is None else s.name
        if name in found:
            raise ConfigError(f"{var}: sets {name!r}, which {found[name][1][4:]} sets too")
        try:
            value = text.strip() if s is None else _from_text(s, text)
        except (argparse.ArgumentTypeError, ValueError) as e:
            raise ConfigError(f"{var}={text!r}: {e}") from None
        found[name] = (value, f"env {var}")
    return found


def resolve(
    cli: dict[str, Any], config: str | None, environ: Mapping[str, str]
) -> tuple[dict[str, Any], dict[str, str]]:
    """Every setting's value and source, from the command line values given
    (``cli``: only the options that were on it), the environment, the
    config file and the defaults."""
    values: dict[str, Any] = {APP: None, **{s.name: s.default for s in SETTINGS}}
    sources = dict.fromkeys(values, DEFAULT_SOURCE)
    env = read_env(environ)
    config = config or environ.get("QIAO_CONFIG", "").strip() or None
    if config:
        layers = [read_file(config), env]
    else:
        layers = [read_file("pyproject.toml", required=False), env]
    layers.append({name: (value, CLI_SOURCE) for name, value in cli.items()})
    for layer in layers:
        for name, (value, source) in layer.items():
            values[name], sources[name] = value, source
    return values, sources


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    return json.dumps(value)  # a TOML basic string


def format_config(values: dict[str, Any], sources: dict[str, str]) -> str:
    """``--print-config``: one ``name = value  # source`` line per setting
    (a setting that is not set is shown commented out)."""
    shown = dict(values)
    if not shown.get("bind"):
        shown["bind"] = [DEFAULT_BIND]
    width = min(40, max(len(f"{name} = {_toml(v)}") for name, v in shown.items() if v is not None))
    lines = []
    for name, value in shown.items():
        text = f"# {name} = (not set)" if value is None else f"{name} = {_toml(value)}"
        lines.append(f"{text:<{width}}  # {sources[name]}")
    return "\n".join(lines) + "\n"
