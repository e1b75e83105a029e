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

Each worker thread has a heartbeat slot in an anonymous shared mapping
(:mod:`qiao.heartbeat`); a request that has spent longer than
``--timeout`` in the application (waits for a slow client do not count)
has its slot marked and its worker sent SIGABRT: the worker gives that
request up, logs its stack, runs ``worker_abort`` and retires gracefully
(:mod:`qiao.timeout`). Its replacement starts at once; it is killed if
still there ``--graceful-timeout`` (plus ``ABORT_EXIT_MARGIN_SECONDS``)
later. The log names that request.

gunicorn's server hooks are called here with a :class:`~qiao.hook_objects.
HookServer` (``self.hook_server``) and the workers' ``HookWorker`` views.
"""

from __future__ import annotations

import contextlib
import errno
import gc
import logging
import math
import mmap
import os
import select
import signal
import socket
import sys
import time
from dataclasses import dataclass, field
from typing import Any

from . import _log, heartbeat, hook_worker
from . import worker as worker_mod
from .arbiter_process import SIGNALS as PROCESS_SIGNALS
from .arbiter_process import ProcessControl
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
#: How long a reload waits for the new workers to serve before retiring
#: the old ones anyway.
RELOAD_READY_SECONDS = 30.0
#: Heartbeat slots reserved per thread beyond the initial worker count, so
#: SIGTTIN can add workers without remapping.
EXTRA_WORKER_SLOTS = 32
#: A worker retired for its --timeout has --graceful-timeout to let its other
#: requests finish and exit by itself; it is killed if still there this
#: much later (the time its worker_exit hook and last log lines take).
ABORT_EXIT_MARGIN_SECONDS = 1.0

SLOT_SIZE = heartbeat.SLOT_SIZE
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
#: What the supervisor logs when a worker exits with these statuses, and
#: exits with itself when no worker serves (gunicorn's statuses and words).
BOOT_FAILURES = {
    worker_mod.WORKER_BOOT_ERROR: "Worker failed to boot.",
    worker_mod.APP_LOAD_ERROR: "App failed to load.",
}


@dataclass
class Worker:
    pid: int
    slot: int
    generation: int
    started: float = field(default_factory=time.monotonic)
    booted: bool = False
    retiring: bool = False
    kill_at: float | None = None
    aborted: bool = False
    hook: Any = None  # its HookWorker, the ``worker`` the hooks are given


class BootError(Exception):
    """A worker could not load the application: stop, do not respawn;
    ``status`` is the supervisor's exit status (gunicorn's: the worker's)."""

    def __init__(self, reason: str, status: int) -> None:
        super().__init__(reason)
        self.reason, self.status = reason, status


class Arbiter(ProcessControl):
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

    # -- workers --------------------------------------------------------------
    def _slot_offset(self, slot: int) -> int:
        return slot * self.threads * SLOT_SIZE

    def spawn(self) -> None:
        if not self.free_slots:
            log.warning("no heartbeat slot left: not starting another worker")
            return
        slot = self.free_slots.pop(0)
        offset = self._slot_offset(slot)
        self.heartbeat[offset : offset + self.threads * SLOT_SIZE] = bytes(self.threads * SLOT_SIZE)
        opts = self.opts
        if self.metrics is not None:
            self.metrics.clear(slot)
            opts = {**opts, "metrics_block": (self.metrics.buffer, self.metrics.offset(slot))}
        if self.app is not None:  # --preload: keep the imported heap shared (docs/preload.md)
            gc.freeze()  # the collector never writes to what the workers inherit
            gc.enable()  # disabled by cli.main for the preload import
        hook = self.hook_server.new_worker()
        run_hook(opts, "pre_fork", self.hook_server, hook)
        # The worker's signals wait (blocked) until the child has its own
        # handlers: a TERM sent right after the fork would otherwise run the
        # supervisor's handler in the child, and be lost.
        mask = signal.pthread_sigmask(signal.SIG_BLOCK, worker_mod.WORKER_SIGNALS)
        pid = os.fork()
        if pid:
            signal.pthread_sigmask(signal.SIG_SETMASK, mask)
            self.workers[pid] = Worker(pid, slot, self.generation, hook=hook)
            hook.forked(pid, self.workers[pid])
            log.info("Booting worker with pid: %d", pid)
            return
        # In the child: never return into the supervisor's loop.
        status = 1
        if self.held_handlers is not None:
            log.handlers = self.held_handlers
        try:
            os.close(self.pipe_r)
            os.close(self.pipe_w)
            if self.metrics_server is not None:
                self.metrics_server.socket.close()  # the supervisor's, not ours
            hook.in_child()
            opts = {**opts, hook_worker.HOOK_WORKER: hook}
            run_hook(opts, "post_fork", self.hook_server, hook)
            self._become_worker()
            status = worker_mod.run(
                self.app, self.app_spec, self.sockets, opts, self.heartbeat, offset, self.pid
            )
        except HookFailed:
            status = worker_mod.WORKER_BOOT_ERROR
        except BaseException:  # noqa: BLE001 - report, then exit with a status
            log.exception("Worker failed")
        finally:
            hook_worker.worker_exit(opts, hook)
            with contextlib.suppress(Exception):
                sys.stdout.flush()
                sys.stderr.flush()
            os._exit(status)

    def _slot_base(self, w: Worker, thread: int) -> int:
        return self._slot_offset(w.slot) + thread * SLOT_SIZE

    def reap(self) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            if self._reaped_other(pid, status):
                continue
            w = self.workers.pop(pid, None)
            if w is None:
                continue
            self.free_slots.append(w.slot)
            code = os.waitstatus_to_exitcode(status)  # -N: killed by signal N
            run_hook(self.opts, "child_exit", self.hook_server, w.hook)
            if self.metrics is not None:
                self.metrics.retire(w.slot)
                # Died, rather than retired (a signal, or an error exit
                # other than a boot failure; --max-requests exits 0).
                died = code != 0 and code not in BOOT_FAILURES
                if died and (w.aborted or not w.retiring) and not self.stopping:
                    self.metrics.restarts += 1
            if code < 0:
                sig = -code
                name = signal.Signals(sig).name if sig in signal.Signals._value2member_map_ else sig
                log.error("Worker (pid:%d) was killed by signal %s", pid, name)
            else:
                if code in BOOT_FAILURES:
                    self._boot_failed(w, code)
                    continue
                level = logging.INFO if code == 0 else logging.ERROR
                log.log(level, "Worker (pid:%d) exited with code %d", pid, code)

    def _boot_failed(self, w: Worker, code: int) -> None:
        """A worker could not load the application. At start-up that ends
        the server; after a reload, the workers that serve are kept."""
        serving = [o for o in self.workers.values() if o.booted and not o.retiring]
        if not serving:
            raise BootError(BOOT_FAILURES[code], code)
        log.error(
            "Worker (pid:%d) failed to boot: keeping the %d workers that serve", w.pid, len(serving)
        )
        self.generation = max(o.generation for o in serving)
        self.reload_started = None
        for o in list(self.workers.values()):
            if o.generation > self.generation:
                self.retire(o)

    def check_workers(self) -> None:
        """Marks booted workers, kills those stuck in one request too long,
        and those that outlived their graceful timeout."""
        now = time.monotonic()
        now_ms = int(now * 1000)
        timeout = self.opts["timeout"]
        for w in list(self.workers.values()):
            if w.kill_at is not None and now >= w.kill_at:
                self._kill(w.pid, signal.SIGKILL)
                continue
            over = False
            for t in range(self.threads):
                base = self._slot_base(w, t)
                slot = heartbeat.read(self.heartbeat, base)
                if slot.alive_ms and not w.booted:
                    w.booted = True
                if timeout and not slot.abort and slot.app_ms(now_ms) > timeout * 1000:
                    heartbeat.mark(self.heartbeat, base)  # the worker gives this one up
                    if not w.aborted and not over:
                        log.critical("WORKER TIMEOUT (pid:%d)", w.pid)  # gunicorn's words
                    log.error(
                        "Worker (pid:%d) timed out after %ss in request: %s",
                        w.pid,
                        timeout,
                        slot.line,
                    )
                    over = True
            if over:
                self._abort(w, now)

    def _abort(self, w: Worker, now: float) -> None:
        """SIGABRT: the worker gives up its marked requests and retires
        gracefully; its replacement starts now (it no longer counts), and
        it is killed if still there after ``--graceful-timeout``. Sent
        again for a request marked later: the worker gives that one up too."""
        if not w.aborted:
            w.aborted = True
            w.retiring = True
            grace = self.opts["graceful_timeout"] + ABORT_EXIT_MARGIN_SECONDS
            w.kill_at = min(w.kill_at or math.inf, now + grace)
        self._kill(w.pid, signal.SIGABRT)

    def manage(self) -> None:
        """Keeps the number of serving (not retiring) workers at target."""
        if self.stopping:
            return
        current = [w for w in self.workers.values() if not w.retiring]
        newest = [w for w in current if w.generation == self.generation]
        if self.booting:
            if any(w.booted for w in current):
                self.booting = False
                self._release_logs(emit=True)
            elif not current:
                self.spawn()
                return
            else:
                return
        for _ in range(self.num_workers - len(newest)):
            self.spawn()
        if self.reload_started is not None:
            waited = time.monotonic() - self.reload_started
            if all(w.booted for w in newest) or waited > RELOAD_READY_SECONDS:
                for w in current:
                    if w.generation < self.generation:
                        self.retire(w)
                self.reload_started = None
            return
        surplus = len(newest) - self.num_workers
        for w in sorted(newest, key=lambda w: w.started)[: max(0, surplus)]:
            self.retire(w)

    def report(self) -> None:
        """After each round of manage(): statsd's worker gauge, systemd's state."""
        if self.booting or self.stopping:
            return
        current = [w for w in self.workers.values() if not w.retiring]
        self.statsd.update(len(current))
        serving = sum(w.booted for w in current)
        reloading = self.reload_started is not None
        self.notifier.update(serving, starting=serving < len(current), reloading=reloading)

    def retire(self, w: Worker) -> None:
        if w.retiring:
            return
        w.retiring = True
        w.kill_at = time.monotonic() + self.opts["graceful_timeout"]
        self._kill(w.pid, signal.SIGTERM)

    def _kill(self, pid: int, sig: int) -> None:
        try:
            os.kill(pid, sig)
        except OSError as e:
            if e.errno != errno.ESRCH:
                raise

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
