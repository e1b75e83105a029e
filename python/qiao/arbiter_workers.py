"""The supervisor's workers: forking one, reaping them, the ``--timeout``
watch, and keeping their number at target through start-up, reloads and
TTIN/TTOU. Kept apart from the loop in :mod:`qiao.arbiter` (which mixes
this class in and calls each method from one line): the loop decides when
(a signal, a tick), this module is what is done to the worker processes.

Each worker thread has a heartbeat slot in an anonymous shared mapping
(:mod:`qiao.heartbeat`); a request that has spent longer than
``--timeout`` in the application (waits for a slow client do not count)
has its slot marked and its worker sent SIGABRT: the worker gives that
request up, logs its stack, runs ``worker_abort`` and retires gracefully
(:mod:`qiao.timeout`). Its replacement starts at once; it is killed if
still there ``--graceful-timeout`` (plus ``ABORT_EXIT_MARGIN_SECONDS``)
later. The log names that request.
"""

from __future__ import annotations

import contextlib
import errno
import gc
import logging
import math
import mmap
import os
import signal
import sys
import time
from dataclasses import dataclass, field
from typing import Any

from . import heartbeat, hook_worker
from . import worker as worker_mod
from .hook_objects import HookServer
from .hooks import HookFailed, run_hook
from .sdnotify import Notifier
from .statsd import SupervisorMetrics

log = logging.getLogger("qiao.error")

#: How long a reload waits for the new workers to serve before retiring
#: the old ones anyway.
RELOAD_READY_SECONDS = 30.0
#: A worker retired for its --timeout has --graceful-timeout to let its other
#: requests finish and exit by itself; it is killed if still there this
#: much later (the time its worker_exit hook and last log lines take).
ABORT_EXIT_MARGIN_SECONDS = 1.0

SLOT_SIZE = heartbeat.SLOT_SIZE
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


class WorkerControl:
    """Mixed into :class:`qiao.arbiter.Arbiter` (which provides the
    attributes below, set in its ``__init__``, and ``_release_logs``;
    :class:`~qiao.arbiter_process.ProcessControl` provides
    ``_become_worker`` and ``_reaped_other``)."""

    opts: dict
    app: Any
    app_spec: str
    sockets: list
    pid: int
    workers: dict[int, Worker]
    num_workers: int
    threads: int
    generation: int
    stopping: str | None
    reload_started: float | None
    booting: bool
    held_handlers: list[logging.Handler] | None
    heartbeat: mmap.mmap
    free_slots: list[int]
    metrics: Any
    metrics_server: Any
    statsd: SupervisorMetrics
    notifier: Notifier
    hook_server: HookServer
    pipe_r: int
    pipe_w: int

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
            self._become_worker()  # type: ignore[attr-defined]
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
            if self._reaped_other(pid, status):  # type: ignore[attr-defined]
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
                self._release_logs(emit=True)  # type: ignore[attr-defined]
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
