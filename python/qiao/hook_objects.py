"""The objects gunicorn's server hooks are given: ``server``, ``worker``
and their ``cfg``, with the attributes hooks written for gunicorn use.

gunicorn passes its own Arbiter and Worker objects; Qiao's supervisor and
workers are built differently (the worker is a Rust event loop), so hooks
get views instead: :class:`HookServer` (one per supervisor, created before
the sockets are opened so that ``on_starting`` has one), and
:class:`HookWorker` (one per worker, created in the supervisor before the
fork for ``pre_fork``, carried into the child by the fork, and kept by the
supervisor for ``child_exit`` and ``server.WORKERS``: the same class, with
the same attributes, on both sides).

``cfg`` answers both gunicorn's setting names and Qiao's
(``cfg.accesslog`` and ``cfg.access_log``), and ``cfg.settings`` maps
gunicorn's names to objects with a ``.value``, as gunicorn's does.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass
from typing import Any

from .config import BY_NAME, DEFAULT_BIND

#: What ``cfg.worker_class_str`` says when no ``--worker-class`` was given:
#: Qiao's own pool is threaded, which is what gunicorn's gthread means.
DEFAULT_WORKER_CLASS = "gthread"
#: ``worker.pid`` between its creation and the fork (gunicorn's value).
BOOTING_PID = "[booting]"

log = logging.getLogger("qiao.error")

#: gunicorn's name of a setting -> Qiao's name, where they differ.
_QIAO_NAME: dict[str, str] = {
    s.gunicorn_name: s.name
    for s in BY_NAME.values()
    if s.gunicorn_name and s.gunicorn_name != s.name
}


@dataclass(frozen=True)
class SettingValue:
    """One entry of ``cfg.settings``: gunicorn's ``Setting`` has these."""

    name: str
    value: Any
    default: Any
    section: str
    desc: str

    def get(self) -> Any:
        return self.value


class HookConfig:
    """``server.cfg`` / ``worker.cfg``: the resolved settings, by attribute,
    under gunicorn's names and Qiao's."""

    def __init__(self, opts: dict) -> None:
        self._opts = opts

    def _value(self, name: str) -> Any:
        if name == "bind":
            return list(self._opts.get("bind") or [DEFAULT_BIND])
        return self._opts.get(name, BY_NAME[name].default)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        qiao_name = _QIAO_NAME.get(name, name)
        if qiao_name not in BY_NAME:
            raise AttributeError(f"no configuration setting for: {name}")
        return self._value(qiao_name)

    @property
    def worker_class_str(self) -> str:
        return self._opts.get("worker_class") or DEFAULT_WORKER_CLASS

    @property
    def is_ssl(self) -> bool:
        return bool(self._opts.get("certfile"))

    @property
    def address(self) -> list[str]:
        return self._value("bind")

    @property
    def settings(self) -> dict[str, SettingValue]:
        """Every setting, by gunicorn's name (Qiao's own settings by theirs)."""
        return {
            s.gunicorn_name or s.name: SettingValue(
                s.gunicorn_name or s.name, self._value(s.name), s.default, s.section, s.help
            )
            for s in BY_NAME.values()
        }

    def __repr__(self) -> str:
        return f"<qiao config: {len(BY_NAME)} settings>"


class HookApp:
    """``server.app`` / ``worker.app``: gunicorn's Application, which hooks
    use for its ``cfg`` (and, rarely, ``wsgi()``)."""

    def __init__(self, cfg: HookConfig, app_spec: str, loaded: Any = None) -> None:
        self.cfg = cfg
        self.app_uri = app_spec
        self.callable = loaded

    def wsgi(self) -> Any:
        """The application, imported on first use (as gunicorn's)."""
        if self.callable is None:
            from .loader import load_mounted

            self.callable = load_mounted(self.app_uri, self.cfg._opts.get("mount"))
        return self.callable


class HookServer:
    """The ``server`` argument: gunicorn's Arbiter, as hooks see it."""

    def __init__(self, opts: dict, app_spec: str = "", app: Any = None) -> None:
        self.opts = opts
        self.cfg = HookConfig(opts)
        self.log = log
        self.app = HookApp(self.cfg, app_spec, app)
        self.arbiter: Any = None  # set by the Arbiter once it exists
        self.worker_age = 0
        self._pid = os.getpid()

    @property
    def pid(self) -> int:
        return self.arbiter.pid if self.arbiter is not None else self._pid

    @property
    def num_workers(self) -> int:
        if self.arbiter is not None:
            return self.arbiter.num_workers
        return self.opts.get("workers") or 1

    @property
    def timeout(self) -> float:
        return self.opts.get("timeout", 0)

    @property
    def proc_name(self) -> str:
        return self.opts.get("proc_name") or self.app.app_uri

    @property
    def LISTENERS(self) -> list:  # noqa: N802 - gunicorn's name
        return list(self.arbiter.sockets) if self.arbiter is not None else []

    @property
    def WORKERS(self) -> dict[int, HookWorker]:  # noqa: N802 - gunicorn's name
        """pid -> worker, for the workers running now."""
        if self.arbiter is None:
            return {}
        return {pid: w.hook for pid, w in self.arbiter.workers.items()}

    @classmethod
    def for_arbiter(cls, arbiter: Any) -> HookServer:
        """The view of ``arbiter``: the one :func:`starting` made for its
        settings, or a new one."""
        server = _starting.pop(id(arbiter.opts), None) or cls(
            arbiter.opts, arbiter.app_spec, arbiter.app
        )
        server.arbiter = arbiter
        return server

    def new_worker(self) -> HookWorker:
        """The view of a worker about to be forked."""
        self.worker_age += 1
        return HookWorker(self, self.worker_age)

    def __repr__(self) -> str:
        return f"<qiao server {self.pid}>"


#: Servers made by :func:`starting`, until their Arbiter takes them.
_starting: dict[int, HookServer] = {}


def starting(opts: dict, app_spec: str, app: Any = None) -> HookServer | None:
    """Before the sockets are opened: calls ``nworkers_changed(server, N,
    None)`` and ``on_starting(server)`` (gunicorn's order) with the server
    the Arbiter will take over. None: ``on_starting`` failed (logged)."""
    from .hooks import HookFailed, run_hook

    server = HookServer(opts, app_spec, app)
    run_hook(opts, "nworkers_changed", server, server.num_workers, None)
    try:
        run_hook(opts, "on_starting", server)
    except HookFailed:
        return None
    _starting[id(opts)] = server
    return server


class WorkerTmp:
    """``worker.tmp``: gunicorn's heartbeat file. Qiao's heartbeats live in
    shared memory and the engine keeps them, so this one only answers."""

    name = None

    def notify(self) -> None:
        pass

    def last_update(self) -> float:
        return time.monotonic()

    def close(self) -> None:
        pass


class HookWorker:
    """The ``worker`` argument: gunicorn's Worker, as hooks see it.

    In the supervisor, ``booted`` and ``alive`` follow the supervisor's
    record of the worker; in the worker, its own state. ``nr`` (requests
    served) is counted in the worker: 0 in the supervisor."""

    def __init__(self, server: HookServer, age: int) -> None:
        self.server = server
        self.age = age
        self.pid: int | str = BOOTING_PID
        self.ppid = server.pid
        self.cfg = server.cfg
        self.log = server.log
        self.app = server.app
        self.sockets = server.LISTENERS
        self.timeout = server.timeout
        self.max_requests = server.opts.get("max_requests", 0)
        self.aborted = False
        self.tmp = WorkerTmp()
        self.wsgi: Any = None  # the application, once the worker loaded it
        self._record: Any = None  # the supervisor's bookkeeping of it, once forked
        self._control: Any = None  # the engine's, in the worker
        self._alive = True
        self._booted = False

    def forked(self, pid: int, record: Any) -> None:
        """In the supervisor, after the fork: ``record`` is its own
        bookkeeping of the worker (``booted``, ``retiring``)."""
        self.pid = pid
        self._record = record

    def in_child(self) -> None:
        """In the forked worker: from now on, its own state."""
        self.pid = os.getpid()
        self._record = None

    @property
    def booted(self) -> bool:
        return self._record.booted if self._record is not None else self._booted

    @booted.setter
    def booted(self, value: bool) -> None:
        self._booted = value

    @property
    def alive(self) -> bool:
        if self._record is not None:
            return not self._record.retiring
        return self._alive

    @alive.setter
    def alive(self, value: bool) -> None:
        self._alive = value

    @property
    def nr(self) -> int:
        return self._control.served if self._control is not None else 0

    def notify(self) -> None:
        """gunicorn's heartbeat: the engine beats for Qiao's workers."""

    def __str__(self) -> str:
        return f"<Worker {self.pid}>"

    __repr__ = __str__
