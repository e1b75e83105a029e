"""SIGUSR2: gunicorn's binary upgrade, re-executing the supervisor in place.

The running supervisor forks; the child calls the ``pre_exec`` hook and
executes the same command line (same interpreter, same arguments, same
working directory and original environment), so new code and new settings
are read afresh. The listening sockets survive the exec: their descriptors
are made inheritable in the child only, and named by ``QIAO_FD``; the old
supervisor's pid is in ``QIAO_PARENT_PID``. Both variables are Qiao's own (a
gunicorn master's ``GUNICORN_FD`` is not read).

``QIAO_FD`` is a comma-separated list of ``N[:FLAG...]`` items: ``N`` the
descriptor, ``uwsgi`` when it speaks the uwsgi protocol, ``inherited`` when
the old supervisor had it from systemd or ``fd://N`` (then neither
supervisor ever shuts it down or removes its file).

While both supervisors run, the sockets are shared: neither shuts them
down on stop, nor removes a Unix socket's file (``server.mark_shared``).
The old supervisor's pid file is renamed ``PIDFILE.oldbin`` and the new one
writes ``PIDFILE``; if the new supervisor dies, the old one takes its name
back. Once the old supervisor exits, the new one is promoted: the sockets
are its own again.
"""

from __future__ import annotations

import logging
import os
import socket
import sys
from dataclasses import dataclass, field

from .hooks import run_hook

# qiao.server (and the engine) is imported by the functions that need it:
# the command calls remember_start() first, even for --print-config.

log = logging.getLogger("qiao.error")

#: The listening sockets a re-executed supervisor inherits.
FD_VAR = "QIAO_FD"
#: The pid of the supervisor that re-executed this one.
PID_VAR = "QIAO_PARENT_PID"
UWSGI_FLAG = "uwsgi"
INHERITED_FLAG = "inherited"
#: Exit status of a forked child whose exec failed.
EXEC_FAILED = 127


@dataclass
class StartContext:
    """What the supervisor was started with: a re-exec repeats it, and a
    reload (SIGHUP) reads the settings from it again."""

    argv: list[str]
    environ: dict[str, str]
    cwd: str
    command: list[str] = field(default_factory=list)


START: StartContext | None = None


def _command() -> list[str]:
    """The interpreter's own command line, to execute again: ``python -m
    qiao ...`` or ``/usr/bin/qiao ...`` as it was started."""
    orig = getattr(sys, "orig_argv", None)  # Python 3.10+
    if orig:
        return [sys.executable, *orig[1:]]
    argv0 = sys.argv[0]
    if os.path.basename(argv0) == "__main__.py":  # python -m qiao on 3.9
        return [sys.executable, "-m", "qiao", *sys.argv[1:]]
    return [sys.executable, *sys.argv]


def remember_start(argv: list[str] | None) -> StartContext:
    """Called first by the command, before --chdir and --env change anything."""
    global START
    START = StartContext(
        argv=list(sys.argv[1:] if argv is None else argv),
        environ=dict(os.environ),
        cwd=os.getcwd(),
        command=_command(),
    )
    # Not passed on: the sockets a re-executed supervisor gets are named
    # by FD_VAR (systemd's variables name this process).
    for name in (FD_VAR, PID_VAR, "LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"):
        START.environ.pop(name, None)
    return START


def parent_supervisor() -> int:
    """The pid of the supervisor that re-executed this one (0: none)."""
    text = os.environ.pop(PID_VAR, "")
    return int(text) if text.isdigit() else 0


def inherited_sockets() -> list[socket.socket] | None:
    """The sockets of ``QIAO_FD`` (None when not re-executed). They are
    shared until this supervisor is promoted."""
    text = os.environ.pop(FD_VAR, None)
    if text is None:
        return None
    from .server import bind_socket, mark_shared

    sockets = []
    for item in filter(None, (i.strip() for i in text.split(","))):
        fd, *flags = item.split(":")
        address = f"fd://{fd}"
        if UWSGI_FLAG in flags:
            address = "uwsgi://" + address
        sock = bind_socket(address, 0)
        if INHERITED_FLAG not in flags:
            mark_shared(sock, True)
            _OWNED.append(sock)
        sockets.append(sock)
    return sockets


#: Sockets this supervisor owns but shares with the other one for now.
_OWNED: list[socket.socket] = []


def describe(sockets: list[socket.socket]) -> str:
    """``QIAO_FD``'s value for ``sockets``."""
    from .server import is_inherited, is_uwsgi

    items = []
    for sock in sockets:
        flags = [str(sock.fileno())]
        if is_uwsgi(sock):
            flags.append(UWSGI_FLAG)
        if is_inherited(sock) and sock not in _OWNED:
            flags.append(INHERITED_FLAG)
        items.append(":".join(flags))
    return ",".join(items)


def share(sockets: list[socket.socket]) -> None:
    """The old supervisor's side of the upgrade: its own sockets are shared."""
    from .server import is_inherited, mark_shared

    for sock in sockets:
        if not is_inherited(sock):
            mark_shared(sock, True)
            _OWNED.append(sock)


def unshare() -> None:
    """The other supervisor is gone: the shared sockets are ours alone."""
    from .server import mark_shared

    for sock in _OWNED:
        mark_shared(sock, False)
    _OWNED.clear()


def reexec(server, sockets: list[socket.socket], opts: dict) -> int:
    """Forks the new supervisor; returns its pid (in the old one). The
    child never returns: it executes the command again."""
    if START is None:
        raise RuntimeError("remember_start() was not called")
    fds = describe(sockets)
    master_pid = os.getpid()
    pid = os.fork()
    if pid:
        return pid
    try:
        run_hook(opts, "pre_exec", server)
        environ = dict(START.environ)
        environ[PID_VAR] = str(master_pid)
        environ[FD_VAR] = fds
        for sock in sockets:
            os.set_inheritable(sock.fileno(), True)
        os.chdir(START.cwd)
        os.execve(START.command[0], START.command, environ)
    except BaseException as e:  # noqa: BLE001 - the child must not return
        print(f"qiao: error: cannot re-execute {START.command[0]}: {e}", file=sys.stderr)
    finally:
        os._exit(EXEC_FAILED)
