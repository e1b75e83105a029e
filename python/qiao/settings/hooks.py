"""gunicorn's server hooks: functions a Python config file defines, called
by the supervisor and the workers at fixed points (``qiao.hooks`` calls
them). Each is listed with the arguments gunicorn passes."""

from __future__ import annotations

from .base import HOOK, Setting, section

#: hook name -> (its arguments, when it is called). The order is the
#: order of a server's life.
HOOKS: dict[str, tuple[tuple[str, ...], str]] = {
    "on_starting": (("server",), "in the supervisor, before the sockets are opened"),
    "when_ready": (("server",), "in the supervisor, once the sockets listen"),
    "pre_fork": (("server", "worker"), "in the supervisor, just before a worker is forked"),
    "post_fork": (("server", "worker"), "in the worker, just after it is forked"),
    "post_worker_init": (("worker",), "in the worker, once the application is loaded"),
    "pre_request": (("worker", "req"), "in the worker, before each request"),
    "post_request": (
        ("worker", "req", "environ", "resp"),
        "in the worker, after each request (2 to 4 arguments, as gunicorn)",
    ),
    "worker_int": (("worker",), "in the worker, on SIGINT or SIGQUIT"),
    "worker_abort": (("worker",), "in the worker, on SIGABRT (a --timeout)"),
    "worker_exit": (("server", "worker"), "in the worker, as it exits"),
    "child_exit": (("server", "worker"), "in the supervisor, once a worker has exited"),
    "nworkers_changed": (
        ("server", "new_value", "old_value"),
        "in the supervisor, when the worker count changes (TTIN/TTOU)",
    ),
    "on_reload": (("server",), "in the supervisor, on SIGHUP"),
    "pre_exec": (("server",), "in the new supervisor, before it re-executes (SIGUSR2)"),
    "on_exit": (("server",), "in the supervisor, just before it exits"),
}

#: Hooks that take fewer arguments than they may be given.
LEAST_ARGUMENTS = {"post_request": 2}

SETTINGS = section(
    "Server hooks",
    tuple(
        Setting(
            name,
            (),
            None,
            f"{name}({', '.join(args)}): {when}.",
            type=None,
            action=HOOK,
        )
        for name, (args, when) in HOOKS.items()
    ),
)
