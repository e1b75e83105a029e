"""Where settings come from, besides the command line, and in which order
(gunicorn's): command line > ``GUNICORN_CMD_ARGS`` / ``QIAO_CMD_ARGS`` >
``QIAO_*`` variables > config file > defaults, setting by setting.

- The file is ``-c FILE`` / ``--config FILE`` (or ``-c`` inside
  ``GUNICORN_CMD_ARGS``, or ``QIAO_CONFIG``). A ``.toml`` file holds setting
  names, with ``-`` or ``_`` (``graceful-timeout``), a flag's long name
  (``max-body-size``) or gunicorn's name; ``app`` names the application. In
  a ``pyproject.toml`` they are read from the ``[tool.qiao]`` table. Any
  other file, and ``python:package.module``, is a gunicorn Python config
  file (:mod:`qiao.config_python`). Without ``-c``, ``./gunicorn.conf.py`` is
  read if there is one (and said so in the log), over a ``[tool.qiao]``
  table of ``./pyproject.toml`` if there is one.
- ``GUNICORN_CMD_ARGS`` and ``QIAO_CMD_ARGS`` hold command-line options
  (``"--workers 3 --timeout 60"``), parsed by the command line's parser.
- ``QIAO_`` and the upper-cased name (``QIAO_WORKERS``, ``QIAO_APP``). A
  list (``QIAO_BIND``) is separated by commas or spaces; a boolean is 1/0,
  true/false, yes/no or on/off. An empty variable counts as unset, and
  ``QIAO_*`` variables that name no setting are left alone (the engine has
  its own, such as ``QIAO_DEBUG_POOL``).
- Defaults that gunicorn takes from the environment: ``PORT`` (bind
  ``0.0.0.0:$PORT``), ``WEB_CONCURRENCY`` (workers), ``FORWARDED_ALLOW_IPS``.

A bad value or an unknown key raises :class:`ConfigError`, whose message
names the source: the file and key, or the variable.
"""

from __future__ import annotations

import argparse
import difflib
import json
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from . import config_python
from .config import BY_NAME, DEFAULT_BIND, SETTINGS, Setting

#: The setting that names the application (the command line's positional).
APP = "app"
DEFAULT_SOURCE = "default"
CLI_SOURCE = "command line"
#: The config file gunicorn reads when no -c is given.
GUNICORN_CONF = "gunicorn.conf.py"
#: Variables holding command-line options, lowest precedence first.
CMD_ARGS_VARS = ("GUNICORN_CMD_ARGS", "QIAO_CMD_ARGS")
#: Exit status of a Python config file that fails (gunicorn's).
EXIT_PYTHON_CONFIG = 1


class ConfigError(Exception):
    """A setting from a file or the environment that cannot be used."""

    def __init__(self, message: str, status: int = 2) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class Resolved:
    """Every setting's value and where it came from, and what to log about
    them once logging is set up."""

    values: dict[str, Any]
    sources: dict[str, str]
    notes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def _key(name: str) -> str:
    return name.strip().lower().replace("-", "_")


def _names() -> dict[str, Setting | None]:
    """Every accepted key of a TOML file or a QIAO_* variable (normalized)
    -> its setting (None: ``app``)."""
    names: dict[str, Setting | None] = {APP: None}
    for s in SETTINGS:
        names[s.name] = s
        if s.gunicorn_name:
            names[s.gunicorn_name] = s
        for flag in s.flags:
            if flag.startswith("--"):
                names[_key(flag[2:])] = s
    return names


KEYS = _names()


def _from_text(s: Setting, text: str) -> Any:
    """A value from its text, as an environment variable gives it."""
    if s.is_flag or s.action == "store_const":
        return s.boolean(text)
    if s.is_list:
        return [s.convert(item) for item in re.split(s.split, text.strip()) if item]
    return s.convert(text.strip())


def _from_toml(s: Setting, value: Any) -> Any:
    """A value from what TOML parsed: a bool, number, string or list."""
    if s.is_flag or s.action == "store_const":
        if isinstance(value, bool):
            return value
        if isinstance(value, str):
            return s.boolean(value)
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
        if s is not None and s.python_only:
            raise ConfigError(f"{where}: {key}: only a Python config file can set it")
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
        if s is not None and s.python_only:
            raise ConfigError(f"{var}: only a Python config file can set {s.name}")
        name = APP if s is None else s.name
        if name in found:
            raise ConfigError(f"{var}: sets {name!r}, which {found[name][1][4:]} sets too")
        try:
            value = text.strip() if s is None else _from_text(s, text)
        except (argparse.ArgumentTypeError, ValueError) as e:
            raise ConfigError(f"{var}={text!r}: {e}") from None
        found[name] = (value, f"env {var}")
    return found


def is_python_config(location: str) -> bool:
    """Whether a ``-c`` value names a gunicorn Python config, not TOML."""
    return location.startswith("python:") or not location.endswith(".toml")


def read_python(location: str) -> tuple[dict[str, tuple[Any, str]], list[str]]:
    try:
        return config_python.read(location)
    except config_python.PythonConfigError as e:
        raise ConfigError(str(e), EXIT_PYTHON_CONFIG) from None


def _env_defaults(environ: Mapping[str, str]) -> dict[str, tuple[Any, str]]:
    """The defaults gunicorn takes from ``PORT``, ``WEB_CONCURRENCY`` and
    ``FORWARDED_ALLOW_IPS``."""
    found: dict[str, tuple[Any, str]] = {}
    for var, name in (
        ("PORT", "bind"),
        ("WEB_CONCURRENCY", "workers"),
        ("FORWARDED_ALLOW_IPS", "forwarded_allow_ips"),
    ):
        text = environ.get(var, "").strip()
        if not text:
            continue
        s = BY_NAME[name]
        try:
            value = [s.convert(f"0.0.0.0:{int(text)}")] if var == "PORT" else s.convert(text)
        except (argparse.ArgumentTypeError, ValueError) as e:
            raise ConfigError(f"{var}={text!r}: {e}") from None
        found[name] = (value, f"env {var}")
    return found


def _config_layers(config: str | None, environ: Mapping[str, str], notes: list[str]):
    """The config file layers (lowest first) and their near-miss warnings."""
    warnings: list[str] = []
    config = config or environ.get("QIAO_CONFIG", "").strip() or None
    if config:
        if is_python_config(config):
            found, warnings = read_python(config)
            return [found], warnings
        return [read_file(config)], warnings
    layers = [read_file("pyproject.toml", required=False)]
    if os.path.isfile(GUNICORN_CONF):
        notes.append(f"Reading settings from ./{GUNICORN_CONF} (as gunicorn would)")
        found, warnings = read_python(GUNICORN_CONF)
        layers.append(found)
    return layers, warnings


def resolve(
    cli: dict[str, Any],
    config: str | None,
    environ: Mapping[str, str],
    cmd_args: Sequence[tuple[str, dict[str, Any]]] = (),
) -> Resolved:
    """Every setting's value and source, from the command line values given
    (``cli``: only the options that were on it), the options of
    ``GUNICORN_CMD_ARGS``/``QIAO_CMD_ARGS`` (``cmd_args``: (variable,
    options given) pairs), the environment, the config file and the
    defaults."""
    values: dict[str, Any] = {APP: None, **{s.name: s.default for s in SETTINGS}}
    sources = dict.fromkeys(values, DEFAULT_SOURCE)
    notes: list[str] = []
    env = read_env(environ)
    layers, warnings = _config_layers(config, environ, notes)
    layers = [_env_defaults(environ), *layers, env]
    for var, given in cmd_args:
        layers.append({name: (value, f"env {var}") for name, value in given.items()})
    layers.append({name: (value, CLI_SOURCE) for name, value in cli.items()})
    for layer in layers:
        for name, (value, source) in layer.items():
            values[name], sources[name] = value, source
    if values[APP] is None and values["wsgi_app"]:
        values[APP], sources[APP] = values["wsgi_app"], sources["wsgi_app"]
    return Resolved(values, sources, notes, warnings)


def _toml(value: Any) -> str:
    if callable(value):
        return json.dumps(f"<{getattr(value, '__qualname__', type(value).__name__)}>")
    if isinstance(value, dict):
        return json.dumps(value, default=str)
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
