"""Finding the application from a ``MODULE[:CALLABLE]`` string.

``module`` alone looks for ``application``, then ``app`` (as gunicorn);
``module:name`` takes an attribute (dotted paths allowed); ``module:f()`` or
``module:f(arg, key=value)`` calls a factory with literal arguments.
"""

from __future__ import annotations

import ast
import importlib
import sys
from typing import Any


class AppLoadError(Exception):
    """The application could not be found; the message says why, in one line."""


class AppNotFound(AppLoadError):
    """The module imported but does not have the application named (a
    missing or uncallable attribute, bad factory arguments): gunicorn's
    "App failed to load." rather than "Worker failed to boot."."""


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


def load_app(spec: str) -> Any:
    """Imports and returns the WSGI callable named by ``spec``."""
    module_name, _, attr = spec.partition(":")
    if not module_name:
        raise AppLoadError(f"no module in {spec!r}: expected MODULE[:CALLABLE]")
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


def load_mounted(spec: str, mounts: list[str] | None) -> Any:
    """The application of ``spec``, with the ``--mount`` applications in
    front of it, if any."""
    return mount(load_app(spec), mounts)


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
