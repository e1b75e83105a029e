"""One worker process, forked by the supervisor (:mod:`qiao.arbiter`).

It imports the application (unless the supervisor preloaded it), then
serves the inherited listening sockets with the Rust engine until told to
stop. Signal handlers only set a flag on the engine's ``Control``:

- SIGTERM: drain (finish in-flight requests, then exit 0),
- SIGINT, SIGQUIT: stop at once (after the ``worker_int`` hook),
- SIGABRT: a request ran over ``--timeout``: give it up, log its stack,
  ``worker_abort``, drain, exit 1 (:mod:`qiao.timeout`),
- SIGUSR1: reopen the log files (a thread does it: :func:`qiao._log.request_reopen`),
- SIGHUP, SIGTTIN, SIGTTOU: ignored (they are the supervisor's).

A worker also exits when the supervisor dies (``PR_SET_PDEATHSIG``).
"""

from __future__ import annotations

import ctypes
import os
import random
import signal
import socket
import sys
from typing import Any

from . import _log, accesslog, hook_worker, timeout
from ._qiao import Control
from ._qiao import serve as _serve_native
from .server import engine_listeners, engine_options

#: Exit statuses of a worker whose application could not be loaded: the
#: supervisor stops instead of respawning it forever (gunicorn's values:
#: the module failed to import or the engine refused a setting; the module
#: imported but has no such application).
WORKER_BOOT_ERROR = 3
#: Exit status of a worker whose module imports but names no application
#: (gunicorn's APP_LOAD_ERROR); the supervisor stops with it too.
APP_LOAD_ERROR = 4
BOOT_FAILURES = (WORKER_BOOT_ERROR, APP_LOAD_ERROR)

_PR_SET_PDEATHSIG = 1

#: Signals a worker handles itself; the supervisor blocks them around the
#: fork, and the worker unblocks them once its handlers are in place.
WORKER_SIGNALS = frozenset(
    {
        signal.SIGTERM,
        signal.SIGINT,
        signal.SIGQUIT,
        signal.SIGHUP,
        signal.SIGTTIN,
        signal.SIGTTOU,
        signal.SIGUSR1,
        signal.SIGUSR2,
        signal.SIGWINCH,
        signal.SIGABRT,
    }
)


def _die_with_parent() -> None:
    """Asks the kernel to send SIGTERM when the supervisor exits."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):
        pass


def _install_signals(control: Control) -> None:
    def drain(signum: int, frame: Any) -> None:
        control.drain()

    def stop(signum: int, frame: Any) -> None:
        control.stop()

    signal.signal(signal.SIGTERM, drain)
    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGQUIT, stop)
    signal.signal(signal.SIGUSR1, _log.request_reopen)
    for sig in (signal.SIGHUP, signal.SIGTTIN, signal.SIGTTOU):
        signal.signal(sig, signal.SIG_IGN)
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)


def run(
    app: Any,
    app_spec: str,
    sockets: list[socket.socket],
    opts: dict,
    heartbeat: Any,
    slot_offset: int,
    supervisor_pid: int,
) -> int:
    """Runs in the forked child; returns its exit status."""
    _die_with_parent()
    control = Control()
    _install_signals(control)
    hook_worker.install_signals(opts, control, (heartbeat, slot_offset, max(1, opts["threads"])))
    signal.pthread_sigmask(signal.SIG_UNBLOCK, WORKER_SIGNALS)  # blocked by the fork
    if os.getppid() != supervisor_pid:  # the supervisor died before we armed PDEATHSIG
        return 0
    if app is None:
        from .loader import AppLoadError, AppNotFound, load_mounted

        try:
            app = load_mounted(app_spec, opts.get("mount"), opts.get("raw_paste_global_conf"))
        except AppLoadError as e:
            print(f"qiao: error: {e}", file=sys.stderr, flush=True)
            return APP_LOAD_ERROR if isinstance(e, AppNotFound) else WORKER_BOOT_ERROR
        except BaseException as e:  # noqa: BLE001 - any failure to boot is reported the same way
            print(
                f"qiao: error: cannot load {app_spec!r}: {type(e).__name__}: {e}",
                file=sys.stderr,
                flush=True,
            )
            return WORKER_BOOT_ERROR
    max_requests = opts["max_requests"]
    if max_requests > 0 and opts["max_requests_jitter"] > 0:
        max_requests += random.randint(0, opts["max_requests_jitter"])
    app = hook_worker.booted(app, opts, control)  # post_worker_init, request hooks
    if app is None:
        return WORKER_BOOT_ERROR
    # Threads start only once the application is loaded: one that patches
    # the standard library at import (gevent.monkey.patch_all()) cannot do
    # so with other threads running. A SIGUSR1 meanwhile waits in its pipe.
    _log.start_reopener()
    if _log.access_enabled(opts):
        # The writer thread is started here, after the fork: threads do not
        # survive one.
        app = accesslog.wrap_app(app, opts["access_log_format"])
        accesslog.start()
    try:
        _serve_native(
            app,
            engine_listeners(sockets, tls=bool(opts["certfile"])),
            config={
                **hook_worker.engine_options(opts, engine_options(opts)),
                "max_requests": max_requests,
            },
            control=control,
            heartbeat=(heartbeat, slot_offset),
            metrics=opts.get("metrics_block"),
        )
    except ValueError as e:
        # The engine refused a setting before serving anything: every new
        # worker would too, so this is a boot failure, not a crash to retry.
        print(f"qiao: error: {e}", file=sys.stderr, flush=True)
        return WORKER_BOOT_ERROR
    finally:
        accesslog.stop(opts["graceful_timeout"])
    return timeout.exit_status()  # 1 for a worker retired by --timeout
