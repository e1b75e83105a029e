"""Finding the application from a ``MODULE[:CALLABLE]`` string.

``module`` alone looks for ``application``, then ``app`` (as gunicorn);
``module:name`` takes an attribute (dotted paths allowed); ``module:f()`` or
``module:f(arg, key=value)`` calls a factory with literal arguments.

``--paste FILE[#NAME]`` (gunicorn's): the application of a PasteDeploy
``.ini`` file; its spec is ``paste:/absolute/FILE[#NAME]``, loaded with
``paste.deploy.loadapp`` and the ``--paste-global KEY=VALUE`` globals.
"""

from __future__ import annotations

import ast
import configparser
import importlib
import os
import re
import sys
from typing import Any


class AppLoadError(Exception):
    """The application could not be found; the message says why, in one line."""


class AppNotFound(AppLoadError):
    """The module imports but names no application (no such attribute, not
    callable, a spec that does not parse): gunicorn's ``AppImportError``,
    which ends the server with its own exit status (4) rather than the
    boot failure's (3)."""


def _call_factory(obj: Any, spec: str, args_src: str) -> Any:
    try:
        call = ast.parse(f"f({args_src})", mode="eval").body
        assert isinstance(call, ast.Call)
        args = [ast.literal_eval(a) for a in call.args]
        kwargs = {k.arg: ast.literal_eval(k.value) for k in call.keywords}
    except (SyntaxError, ValueError, AssertionError) as e:
        raise AppNotFound(f"cannot parse factory arguments in {spec!r}: {e}") from None
    if not callable(obj):
        raise AppNotFound(f"{spec!r}: the factory is not callable")
    return obj(*args, **kwargs)


#: The spec of an application loaded from a PasteDeploy file.
PASTE_PREFIX = "paste:"


def app_spec_of(values: dict) -> str | None:
    """The application's spec for the settings ``values``: ``--paste``'s
    file (absolute, so a later --chdir or reload finds it), else ``app``."""
    paste = values.get("paste")
    if paste:
        path, sep, name = paste.partition("#")
        return PASTE_PREFIX + os.path.abspath(path) + sep + name
    return values.get("app")


def paste_file(spec: str) -> str | None:
    """The .ini file of a ``paste:`` spec (None for any other spec)."""
    if not spec.startswith(PASTE_PREFIX):
        return None
    return spec[len(PASTE_PREFIX) :].partition("#")[0]


def paste_has_logging(path: str) -> bool:
    """gunicorn configures logging from the .ini file when it has a
    ``[loggers]`` section."""
    parser = configparser.ConfigParser()
    try:
        parser.read([path])
    except configparser.Error:
        return False
    return parser.has_section("loggers")


def paste_globals(items: list[str] | None) -> dict[str, str] | None:
    """``--paste-global KEY=VALUE`` items as a mapping (``\\=`` is a literal
    ``=`` in the key, as in gunicorn)."""
    if not items:
        return None
    pairs = {}
    for item in items:
        parts = re.split(r"(?<!\\)=", item, maxsplit=1)
        if len(parts) != 2:
            raise AppLoadError(f"--paste-global {item!r}: expected KEY=VALUE")
        key, value = (p.replace("\\=", "=") for p in parts)
        pairs[key] = value
    return pairs


def load_paste(spec: str, global_items: list[str] | None = None) -> Any:
    """The application of a ``paste:FILE[#NAME]`` spec."""
    location = spec[len(PASTE_PREFIX) :]
    path, _, name = location.partition("#")
    if not os.path.exists(path):
        raise AppLoadError(f"{path!r} not found")
    try:
        from paste.deploy import loadapp
    except ImportError:
        raise AppLoadError("--paste needs PasteDeploy (pip install PasteDeploy)") from None
    try:
        return loadapp(
            "config:" + path,
            name=name or None,
            relative_to=os.getcwd(),
            global_conf=paste_globals(global_items),
        )
    except AppLoadError:
        raise
    except Exception as e:
        raise AppLoadError(f"cannot load {location!r}: {type(e).__name__}: {e}") from e


def load_app(spec: str, paste_global: list[str] | None = None) -> Any:
    """Imports and returns the WSGI callable named by ``spec``."""
    if spec.startswith(PASTE_PREFIX):
        return load_paste(spec, paste_global)
    module_name, _, attr = spec.partition(":")
    if not module_name:
        raise AppNotFound(f"no module in {spec!r}: expected MODULE[:CALLABLE]")
    if "" not in sys.path and "." not in sys.path:
        sys.path.insert(0, "")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as e:
        if e.name and module_name.startswith(e.name):
            raise AppLoadError(f"cannot import module {module_name!r}: {e}") from None
        raise AppLoadError(f"error while importing {module_name!r}: {type(e).__name__}: {e}") from e
    except Exception as e:
        raise AppLoadError(f"error while importing {module_name!r}: {type(e).__name__}: {e}") from e

    factory_args = None
    if attr.endswith(")") and "(" in attr:
        attr, _, rest = attr.partition("(")
        factory_args = rest[:-1]
    names = [attr] if attr else ["application", "app"]
    for name in names:
        obj: Any = module
        try:
            for part in name.split("."):
                obj = getattr(obj, part)
        except AttributeError:
            continue
        if factory_args is not None:
            try:
                obj = _call_factory(obj, spec, factory_args)
            except AppLoadError:
                raise
            except Exception as e:
                raise AppLoadError(f"factory {spec!r} failed: {type(e).__name__}: {e}") from e
        if not callable(obj):
            raise AppNotFound(f"{module_name}:{name} is not callable (got {type(obj).__name__})")
        return obj
    wanted = " or ".join(repr(n) for n in names)
    raise AppNotFound(f"module {module_name!r} has no attribute {wanted}")


def load_mounted(spec: str, mounts: list[str] | None, paste_global: list[str] | None = None) -> Any:
    """The application of ``spec``, with the ``--mount`` applications in
    front of it, if any."""
    return mount(load_app(spec, paste_global), mounts)


def mount(app: Any, mounts: list[str] | None) -> Any:
    """``app`` with the ``--mount PREFIX=SPEC`` applications in front of it
    (``qiao.middleware.Mount``); ``app`` itself when there are none."""
    if not mounts:
        return app
    from .middleware import Mount

    apps = {}
    for item in mounts:
        prefix, _, mounted = item.partition("=")
        apps[prefix] = load_app(mounted)
    return Mount(apps, default=app)
