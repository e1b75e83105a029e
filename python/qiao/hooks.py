"""gunicorn's server hooks (``on_starting``, ``post_fork``, ``pre_request``...),
defined in a Python config file and called by the supervisor and the
workers at gunicorn's calling points. Their names, arguments and calling
points are listed in :mod:`qiao.settings.hooks`.

A hook that raises is logged with its traceback and the server goes on,
as in gunicorn (except where gunicorn lets it stop the server: a failing
``on_starting``/``when_ready`` is logged the same way here).
"""

from __future__ import annotations

import logging
from typing import Any

log = logging.getLogger("qiao.error")


def run_hook(opts: dict, name: str, *args: Any) -> Any:
    """Calls the hook ``name`` of the settings ``opts`` with ``args``, if
    it is set; returns what it returned (None when not set or failed)."""
    hook = opts.get(name)
    if hook is None:
        return None
    try:
        return hook(*args)
    except Exception:
        log.exception("Exception in %s hook", name)
        return None
