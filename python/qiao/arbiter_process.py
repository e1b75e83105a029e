"""The supervisor's share of gunicorn's process model, kept apart from the
loop in :mod:`qiao.arbiter` (which mixes this class in and calls each
method from one line):

- SIGUSR2: binary upgrade (:mod:`qiao.upgrade`): the new supervisor is a
  child of this one; reaping it (it died) gives the pid file its name back;
  a re-executed supervisor is promoted once its parent has gone;
- SIGWINCH: with --daemon, stop the workers gracefully and keep the
  supervisor (its sockets stay open for the new supervisor); otherwise
  ignored, as in gunicorn;
- SIGHUP re-reads the settings (config file, environment, with the
  original command line) before the new workers start; a setting the
  running supervisor cannot change is logged as needing a restart;
- the pid file and the supervisor's title.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
from typing import Any

from . import process, upgrade
from .gunicorn_compat import environment
from .worker import WORKER_BOOT_ERROR

log = logging.getLogger("qiao.error")

#: Settings a reload cannot change: the sockets, the process itself, what
#: the supervisor imported or set up once. Every other setting applies to
#: the workers a reload starts.
RESTART_NEEDED = frozenset(
    {
        "bind",
        "backlog",
        "reuse_port",
        "protocol",
        "chdir",
        "pythonpath",
        "threads",
        "preload",
        "reload",
        "reload_extra_files",
        "daemon",
        "pid",
        "check_config",
        "metrics_bind",
        "log_level",
        "error_log",
        "access_log",
        "capture_output",
        "enable_stdio_inheritance",
        "logconfig",
        "logconfig_dict",
        "logconfig_json",
        "syslog",
        "syslog_addr",
        "syslog_prefix",
        "syslog_facility",
        "statsd_host",
        "statsd_prefix",
        "dogstatsd_tags",
    }
)
#: With --preload the application is the supervisor's: changing it needs a
#: restart (or SIGUSR2).
PRELOADED = frozenset({"app", "paste", "raw_paste_global_conf", "mount", "wsgi_app"})
#: Settings gathered but never part of the supervisor's options.
_NOT_OPTIONS = frozenset({"app", "chdir"})


class ProcessControl:
    """Mixed into :class:`qiao.arbiter.Arbiter` (which provides ``opts``,
    ``sockets``, ``workers``, ``app``, ``app_spec``, ``num_workers``,
    ``pid`` and ``retire``)."""

    opts: dict
    sockets: list
    workers: dict
    app: Any
    app_spec: str
    num_workers: int
    pid: int

    def _process_init(self) -> None:
        self.start_ctx = upgrade.START
        self.reexec_pid = 0
        self.master_pid = upgrade.parent_supervisor()
        self.pidfile: process.PidFile | None = None
        self.proc_name = self.opts.get("proc_name") or process.default_name(self.app_spec)
        # What --env set at start, undone by a reload that changes it.
        try:
            self.raw_env_set = environment(self.opts.get("raw_env"))
        except ValueError:
            self.raw_env_set = {}

    def _title(self, role: str) -> str:
        return self.proc_name + (".2" if self.master_pid and role == "master" else "")

    def _process_start(self) -> None:
        """In run(), before the workers: title and pid file."""
        process.set_title("master", self._title("master"))
        if self.opts.get("pid"):
            self.pidfile = process.PidFile(self.opts["pid"])
            self.pidfile.create(self.pid)

    def _process_exit(self) -> None:
        if self.pidfile is not None:
            self.pidfile.unlink()

    def _become_worker(self) -> None:
        """In a forked worker, first (before it loads the application). A
        worker that cannot become --user/--group cannot boot: the server
        stops rather than forking it again and again."""
        try:
            process.become_worker(self.opts, self._title("worker"))
        except (OSError, process.ProcessError) as e:
            owner = f"user {self.opts.get('user')!r}, group {self.opts.get('group')!r}"
            print(f"qiao: error: cannot run a worker as {owner}: {e}", file=sys.stderr, flush=True)
            os._exit(WORKER_BOOT_ERROR)

    # -- SIGUSR2 --------------------------------------------------------------
    def reexec(self) -> None:
        if self.reexec_pid:
            log.warning("USR2 signal ignored. Child exists.")
            return
        if self.master_pid:
            log.warning("USR2 signal ignored. Parent exists.")
            return
        self._rename_pidfile(self.pidfile.path + process.OLDBIN_SUFFIX if self.pidfile else None)
        upgrade.share(self.sockets)
        self.reexec_pid = upgrade.reexec(self, self.sockets, self.opts)
        log.info("Re-executing the supervisor: new supervisor pid %d", self.reexec_pid)

    def _reaped_other(self, pid: int, status: int) -> bool:
        """reap(): a child that is not a worker. The new supervisor of an
        upgrade that died: take the pid file's name and the sockets back."""
        if pid != self.reexec_pid or not pid:
            return False
        self.reexec_pid = 0
        code = os.waitstatus_to_exitcode(status)
        log.warning("New supervisor (pid:%d) exited (status %d): this one goes on", pid, code)
        self._rename_pidfile(self.opts.get("pid"))
        upgrade.unshare()
        return True

    def _rename_pidfile(self, path: str | None) -> None:
        if self.pidfile is None or not path:
            return
        try:
            self.pidfile.rename(path)
        except (OSError, process.ProcessError) as e:
            log.error("Cannot rename the pid file %s to %s: %s", self.pidfile.path, path, e)

    def _maybe_promote(self) -> None:
        """A re-executed supervisor whose parent has gone is the only one."""
        if not self.master_pid or os.getppid() == self.master_pid:
            return
        log.info("Master has been promoted.")
        self.master_pid = 0
        upgrade.unshare()
        process.set_title("master", self._title("master"))

    # -- SIGWINCH -------------------------------------------------------------
    def winch(self) -> None:
        if not self.opts.get("daemon"):
            log.debug("SIGWINCH ignored. Not daemonized")
            return
        log.info("graceful stop of workers")
        self.num_workers = 0
        for w in list(self.workers.values()):
            self.retire(w)  # type: ignore[attr-defined]

    # -- SIGHUP ---------------------------------------------------------------
    def reread_config(self) -> None:
        """The settings read again as at start; what changed applies to the
        workers started next."""
        from .cli import gather
        from .config_sources import ConfigError
        from .loader import app_spec_of

        # As in gunicorn, a reload starts the configured number of workers
        # (whatever TTIN, TTOU or WINCH changed), even if the file fails.
        self.num_workers = self.opts["workers"]
        ctx = self.start_ctx
        if ctx is None:
            return
        here = os.getcwd()
        try:
            os.chdir(ctx.cwd)  # a relative -c FILE, ./gunicorn.conf.py, --paste FILE
            _, resolved = gather(ctx.argv, ctx.environ)
            new_env = environment(resolved.values.get("raw_env"))
            new_spec = app_spec_of(resolved.values)
        except (ConfigError, ValueError, OSError) as e:
            log.error("Reloading the configuration failed, keeping the previous one: %s", e)
            return
        except SystemExit:
            log.error("Reloading the configuration failed, keeping the previous one")
            return
        finally:
            os.chdir(here)
        values = resolved.values
        if values.get("workers") == 0:
            values["workers"] = os.cpu_count() or 1
        fixed = RESTART_NEEDED | (PRELOADED if self.app is not None else frozenset())
        old = {**self.opts, "app": self.app_spec}
        changed = sorted(
            n for n in fixed if n in values and n in old and values[n] != old[n] and n != "chdir"
        )
        if new_spec and new_spec != self.app_spec and self.app is not None:
            changed.append("app")
        if changed:
            log.warning("Restart needed for %s: keeping the running value(s)", ", ".join(changed))
        for name, value in values.items():
            if name not in fixed and name not in _NOT_OPTIONS:
                self.opts[name] = value
        if new_spec and self.app is None:
            self.app_spec = new_spec
        self._apply_env(new_env)
        self.num_workers = self.opts["workers"]
        self.proc_name = self.opts.get("proc_name") or process.default_name(self.app_spec)
        process.set_title("master", self._title("master"))

    def _apply_env(self, new_env: dict[str, str]) -> None:
        """--env of the new settings: what the old ones set is first undone
        (back to the environment the supervisor started with)."""
        original = self.start_ctx.environ if self.start_ctx else {}
        for key in self.raw_env_set:
            if key in original:
                os.environ[key] = original[key]
            else:
                os.environ.pop(key, None)
        os.environ.update(new_env)
        self.raw_env_set = dict(new_env)


#: Signals of this module, with the names the log uses.
SIGNALS = {signal.SIGUSR2: "usr2", signal.SIGWINCH: "winch"}
