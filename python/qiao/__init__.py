"""Qiao (桥, "bridge"): a WSGI server for Python with an HTTP/1.1 engine in Rust.

Run an application from the command line::

    qiao myapp:application --bind 127.0.0.1:8000

or from Python::

    import qiao
    qiao.serve(application, bind="127.0.0.1:8000")
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Callable

from . import _threads as _threads  # before any application patches threading
from ._qiao import FileWrapper, RequestBodyError
from ._qiao import __version__ as __version__


def serve(app: Callable[..., Any], bind: str | Iterable[str] | None = None, **options: Any) -> None:
    """Serves ``app``; see :func:`qiao.server.serve`."""
    from .server import serve as _serve

    return _serve(app, bind, **options)


__all__ = ["FileWrapper", "RequestBodyError", "serve", "__version__"]
