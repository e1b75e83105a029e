"""gunicorn's server hooks (``on_starting``, ``post_fork``, ``pre_request``...),
defined in a Python config file and called by the supervisor and the
workers at gunicorn's calling points. Their names, arguments and calling
points are listed in :mod:`qiao.settings.hooks`; the objects they are
given are :mod:`qiao.hook_objects`'s.

A hook that raises is logged with its traceback and the server goes on,
except for the hooks that prepare the server or a worker
(:data:`BOOT_HOOKS`): gunicorn cannot start without them either. A
failing ``on_starting`` or ``when_ready`` stops the server (exit status
1); a failing ``post_fork`` or ``post_worker_init`` is a worker that
failed to boot (at start-up that stops the server; after a reload, the
workers that serve are kept). ``pre_request`` is called by
:mod:`qiao.hook_request` itself: as in gunicorn, one that raises fails
that request with a 500.
"""

from __future__ import annotations

import logging
from typing import Any

log = logging.getLogger("qiao.error")

#: Hooks whose failure the server or the worker cannot go on after.
BOOT_HOOKS = frozenset({"on_starting", "when_ready", "post_fork", "post_worker_init"})


class HookFailed(Exception):
    """A hook of :data:`BOOT_HOOKS` raised (its traceback is logged)."""


def run_hook(opts: dict, name: str, *args: Any) -> Any:
    """Calls the hook ``name`` of the settings ``opts`` with ``args``, if
    it is set; returns what it returned (None when not set or failed).
    Raises :class:`HookFailed` when a hook of :data:`BOOT_HOOKS` raised."""
    hook = opts.get(name)
    if hook is None:
        return None
    try:
        return hook(*args)
    except Exception:
        log.exception("Exception in %s hook", name)
        if name in BOOT_HOOKS:
            raise HookFailed(f"the {name} hook failed") from None
        return None
