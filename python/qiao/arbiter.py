"""The supervisor: binds the sockets, forks the workers and keeps them
running (the model is gunicorn's arbiter).

Signal handlers only enqueue the signal and wake the main loop through a
pipe; the loop does the work:

- SIGTERM: graceful stop: workers drain (in-flight requests finish), those
  still busy after ``--graceful-timeout`` are killed; exit 0.
- SIGINT, SIGQUIT: fast stop.
- SIGHUP: reload: start new workers (they import the application afresh),
  retire the old ones gracefully once the new ones serve.
- SIGTTIN, SIGTTOU: one worker more, one less.
- SIGUSR1: reopen the log files (logrotate), here and in every worker.
- SIGCHLD: reap; a dead worker is replaced at once.
- SIGUSR2, SIGWINCH, and the settings a SIGHUP reads again:
  :mod:`qiao.arbiter_process`.

:class:`Arbiter` is one class in three files:

- here: its state, the signal handlers, what each signal does, the loop
  (:meth:`Arbiter.run`), the log lines held back until a worker serves,
  ``--reload``'s watcher and ``--metrics-bind``'s server;
- :mod:`qiao.arbiter_workers` (the :class:`WorkerControl` mixin): the
  workers: forking, reaping, the ``--timeout`` watch through the
  heartbeats, keeping their number at target; and ``Worker``,
  ``BootError``;
- :mod:`qiao.arbiter_process` (the ``ProcessControl`` mixin): gunicorn's
  process model (upgrades, SIGWINCH, re-reading the settings, the pid
  file, the title).

gunicorn's server hooks are called here and in :mod:`qiao.arbiter_workers`
with a :class:`~qiao.hook_objects.HookServer` (``self.hook_server``) and the
workers' ``HookWorker`` views.
"""

from __future__ import annotations

import contextlib
import logging
import mmap
import os
import select
import signal
import socket
import time
from typing import Any

from . import _log
from .arbiter_process import SIGNALS as PROCESS_SIGNALS
from .arbiter_process import ProcessControl

# Moved to qiao.arbiter_workers with the code that uses them; the three
# this module does not use are imported so that they stay qiao.arbiter's.
from .arbiter_workers import ABORT_EXIT_MARGIN_SECONDS as ABORT_EXIT_MARGIN_SECONDS
from .arbiter_workers import BOOT_FAILURES as BOOT_FAILURES
from .arbiter_workers import RELOAD_READY_SECONDS as RELOAD_READY_SECONDS
from .arbiter_workers import SLOT_SIZE, BootError, Worker, WorkerControl
from .hook_objects import HookServer
from .hooks import HookFailed, run_hook
from .sdnotify import Notifier
from .server import is_inherited
from .statsd import SupervisorMetrics

log = logging.getLogger("qiao.error")

#: How often the supervisor wakes up with nothing to do (timeouts, reaping).
TICK_SECONDS = 0.25
#: A fast stop waits this long for workers before killing them.
FAST_STOP_SECONDS = 1.0
#: Heartbeat slots reserved per thread beyond the initial worker count, so
#: SIGTTIN can add workers without remapping.
EXTRA_WORKER_SLOTS = 32

_SIGNAMES = {
    signal.SIGHUP: "hup",
    signal.SIGTERM: "term",
    signal.SIGINT: "int",
    signal.SIGQUIT: "quit",
    signal.SIGTTIN: "ttin",
    signal.SIGTTOU: "ttou",
    signal.SIGCHLD: "chld",
    signal.SIGUSR1: "usr1",
    **PROCESS_SIGNALS,
}


class Arbiter(WorkerControl, ProcessControl):
    def __init__(self, app: Any, app_spec: str, sockets: list, opts: dict) -> None:
        self.app = app  # preloaded application, or None
        self.app_spec = app_spec
        self.sockets = sockets
        self.opts = opts
        self.num_workers = opts["workers"]
        self.threads = max(1, opts["threads"])
        self.workers: dict[int, Worker] = {}
        self.generation = 0
        self.signals: list[int] = []
        self.stopping: str | None = None  # None, "graceful" or "fast"
        self.reload_started: float | None = None
        # Until the first worker serves, only one worker is started and the
        # supervisor's log lines are held back: if the application cannot be
        # loaded, the worker's one-line error is all the user sees.
        self.booting = True
        self.held_handlers: list[logging.Handler] | None = None
        self.pid = os.getpid()
        slots = self.num_workers + EXTRA_WORKER_SLOTS
        self.heartbeat = mmap.mmap(-1, slots * self.threads * SLOT_SIZE)
        self.free_slots = list(range(slots))
        # --metrics-bind: counter blocks per worker slot, served from here.
        self.metrics = None
        if opts.get("metrics_bind"):
            from .metrics import MetricsStore  # http.server only when asked for

            self.metrics = MetricsStore(slots)
        self.metrics_server = None
        self.statsd = SupervisorMetrics(opts, sockets)  # --statsd-host (no-op without)
        self.notifier = Notifier.from_environ()  # systemd's NOTIFY_SOCKET (no-op without)
        self.hook_server = HookServer.for_arbiter(self)
        self.pipe_r, self.pipe_w = os.pipe()
        for fd in (self.pipe_r, self.pipe_w):
            os.set_blocking(fd, False)
            os.set_inheritable(fd, False)
        self._process_init()

    # -- signals: handlers only enqueue -------------------------------------
    def _on_signal(self, signum: int, frame: Any) -> None:
        if len(self.signals) < 16:
            self.signals.append(signum)
        with contextlib.suppress(OSError):
            os.write(self.pipe_w, b".")

    def _install_signals(self) -> None:
        for sig in _SIGNAMES:
            signal.signal(sig, self._on_signal)

    def _sleep(self) -> None:
        with contextlib.suppress(InterruptedError, OSError):
            ready, _, _ = select.select([self.pipe_r], [], [], TICK_SECONDS)
            if ready:
                while os.read(self.pipe_r, 4096):
                    pass

    # -- the loop -------------------------------------------------------------
    def handle(self, sig: int) -> None:
        name = _SIGNAMES.get(sig, str(sig))
        if sig != signal.SIGCHLD:
            log.info("Handling signal: %s", name)
        if sig == signal.SIGTERM:
            self.stop(graceful=True)
        elif sig in (signal.SIGINT, signal.SIGQUIT):
            self.stop(graceful=False)
        elif sig == signal.SIGHUP:
            self.reload()
        elif sig in (signal.SIGTTIN, signal.SIGTTOU):
            self._resize(1 if sig == signal.SIGTTIN else -1)
        elif sig == signal.SIGUSR1:
            self.reopen_logs()
        elif sig == signal.SIGUSR2:
            self.reexec()
        elif sig == signal.SIGWINCH:
            self.winch()

    def _resize(self, delta: int) -> None:
        """One worker more or less (never fewer than one)."""
        old = self.num_workers
        self.num_workers = max(1, old + delta)
        if self.num_workers != old:
            run_hook(self.opts, "nworkers_changed", self.hook_server, self.num_workers, old)

    def reopen_logs(self) -> None:
        """SIGUSR1 (logrotate): reopen the log files here, then in the workers."""
        _log.reopen_files(self.held_handlers or ())
        for pid in list(self.workers):
            self._kill(pid, signal.SIGUSR1)

    def reload(self) -> None:
        """New workers first (fresh imports), old ones retired once the new
        ones serve: the listening sockets never stop being served."""
        if self.app is not None:
            log.info("Reloading workers (the application was preloaded: code is not reloaded)")
        self.notifier.reload()
        self.reread_config()
        run_hook(self.opts, "on_reload", self.hook_server)
        self.generation += 1
        self.reload_started = time.monotonic()
        for _ in range(self.num_workers):
            self.spawn()

    def stop(self, graceful: bool) -> None:
        if self.stopping == "fast":
            return
        self.stopping = "graceful" if graceful else "fast"
        self.notifier.stop()
        # Stop accepting everywhere at once: shutting down the listening
        # sockets (not just closing our descriptors) acts on the sockets
        # every worker shares, so new clients are refused, not queued,
        # even by a worker that is busy in a request. Not an inherited
        # socket (systemd, fd://N): its owner keeps it, and the clients
        # queued there are served by the next instance.
        for sock in self.sockets:
            if is_inherited(sock):
                continue
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RD)
        deadline = time.monotonic() + (
            self.opts["graceful_timeout"] if graceful else FAST_STOP_SECONDS
        )
        for w in self.workers.values():
            w.retiring = True
            w.kill_at = min(w.kill_at or deadline, deadline)
            self._kill(w.pid, signal.SIGTERM if graceful else signal.SIGQUIT)

    def _watch_files(self) -> None:
        """--reload: a thread waits for changes to Python files under the
        current directory and to the --reload-extra-file files (inotify,
        through watchfiles) and asks for a reload as SIGHUP would."""
        try:
            from watchfiles import PythonFilter, watch
        except ImportError:
            log.warning("--reload needs the watchfiles package (pip install watchfiles)")
            return
        extra = {os.path.abspath(p) for p in self.opts.get("reload_extra_files") or []}
        python = PythonFilter()

        def wanted(change: Any, path: str) -> bool:
            return os.path.abspath(path) in extra or python(change, path)

        def loop() -> None:
            for changes in watch(
                os.getcwd(),
                *[p for p in extra if os.path.exists(p)],
                watch_filter=wanted,
                debounce=200,
                stop_event=self.watch_stop,
            ):
                log.info("Reloading: %s changed", sorted(p for _, p in changes)[0])
                self._on_signal(signal.SIGHUP, None)

        import threading

        self.watch_stop = threading.Event()
        threading.Thread(target=loop, name="qiao-reload", daemon=True).start()

    def _hold_logs(self) -> None:
        from logging.handlers import MemoryHandler

        self.held_handlers = log.handlers[:]
        log.handlers = [MemoryHandler(capacity=10_000, flushLevel=logging.CRITICAL + 1)]

    def _release_logs(self, emit: bool) -> None:
        if self.held_handlers is None:
            return
        memory = log.handlers[0]
        log.handlers = self.held_handlers
        self.held_handlers = None
        if emit:
            for record in getattr(memory, "buffer", []):
                log.handle(record)

    def _serve_metrics(self) -> None:
        from .metrics import serve_metrics
        from .server import BindError, parse_bind

        address = self.opts["metrics_bind"]
        _family, addr = parse_bind(address)
        metrics = self.metrics
        assert metrics is not None

        def render() -> str:
            return metrics.render([w.slot for w in self.workers.values()], len(self.workers))

        try:
            self.metrics_server = serve_metrics(addr, render)
        except OSError as e:
            raise BindError(f"cannot serve metrics on {address}: {e.strerror or e}") from None
        log.info("Metrics at: http://%s/metrics", address)

    def run(self) -> int:
        from .server import log_listening

        self._hold_logs()
        log_listening(self.sockets, tls=bool(self.opts["certfile"]))
        if self.metrics is not None:
            self._serve_metrics()
        self._install_signals()
        if self.opts.get("reload"):
            self._watch_files()
        self._process_start()
        status, reason = 0, None
        try:
            run_hook(self.opts, "when_ready", self.hook_server)
            self.manage()
            while True:
                while self.signals:
                    self.handle(self.signals.pop(0))
                try:
                    self.reap()
                except BootError as e:
                    if self.booting:
                        self._release_logs(emit=False)  # the worker said why
                    status, reason = e.status, e.reason
                    self.stop(graceful=False)
                if self.stopping and not self.workers:
                    break
                self.check_workers()
                self.manage()
                self.report()
                self._maybe_promote()
                self._sleep()
        except HookFailed as e:  # when_ready: gunicorn does not start either
            self._release_logs(emit=True)
            log.error("%s: stopping", e)
            status = 1
        finally:
            for w in self.workers.values():
                self._kill(w.pid, signal.SIGKILL)
            self._process_exit()
        if status == 0 or not self.booting:
            self._release_logs(emit=True)
        # gunicorn's words (alerts are keyed on them).
        log.log(logging.INFO if status == 0 else logging.ERROR, "Shutting down: Master")
        if reason:
            log.error("Reason: %s", reason)
        run_hook(self.opts, "on_exit", self.hook_server)
        return status
