"""The process settings with gunicorn's meanings: ``--daemon``, ``--user``,
``--group``, ``--initgroups``, ``--umask``, ``--name`` and the pid file.

Why here and not in the supervisor: each is a small piece of Unix process
plumbing that the supervisor (:mod:`qiao.arbiter`) and the workers
(:mod:`qiao.worker`) call at one point of their life:

- ``daemonize`` runs before the sockets are opened (fork, setsid, fork, as
  gunicorn's ``util.daemonize``), so the pid file names the daemon;
- ``become_worker`` runs first in every forked worker: its title, its
  umask, then the privilege drop (the supervisor stays root, so a reload
  can bind and fork again). Changing credentials clears the kernel's
  parent-death signal, so the worker arms it afterwards;
- ``own_unix_sockets`` gives the Unix socket files Qiao binds to the
  workers' user and group, as gunicorn does;
- ``PidFile`` writes, renames (``.oldbin`` during a binary upgrade) and
  removes the pid file, never removing one that names another process.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import grp
import os
import pwd
import socket
import sys
import tempfile

from .server import is_inherited

#: Where the daemon's standard streams go (gunicorn's REDIRECT_TO).
DEV_NULL = os.devnull
#: The mask a daemon starts with (gunicorn's daemonize), before --umask.
DAEMON_UMASK = 0o22
#: The pid file's mode: -rw-r--r--, as gunicorn writes it.
PIDFILE_MODE = 0o644
#: Suffix of the pid file an upgraded supervisor keeps (nginx's, unicorn's).
OLDBIN_SUFFIX = ".oldbin"
#: prctl(2) option naming the calling thread (15 bytes, ``ps -o comm``).
_PR_SET_NAME = 15
_COMM_LENGTH = 15
#: The process title's prefix, gunicorn's pattern with Qiao's name.
TITLE_PREFIX = "qiao: "


class ProcessError(Exception):
    """A process setting that cannot be applied (unknown user...)."""


# -- users and groups ----------------------------------------------------------
def user_id(value: str | int | None) -> int | None:
    """The uid of ``--user`` (a name or a number); None when not set."""
    if value is None or value == "":
        return None
    if isinstance(value, int) or str(value).isdigit():
        return int(value)
    try:
        return pwd.getpwnam(str(value)).pw_uid
    except KeyError:
        raise ProcessError(f"No such user: {value!r}") from None


def group_id(value: str | int | None) -> int | None:
    """The gid of ``--group`` (a name or a number); None when not set."""
    if value is None or value == "":
        return None
    if isinstance(value, int) or str(value).isdigit():
        return int(value)
    try:
        return grp.getgrnam(str(value)).gr_gid
    except KeyError:
        raise ProcessError(f"No such group: {value!r}") from None


def check_owner(opts: dict) -> None:
    """Raises :class:`ProcessError` for a --user or --group that names
    nobody, before anything starts (gunicorn refuses them as config errors)."""
    user_id(opts.get("user"))
    group_id(opts.get("group"))


def drop_privileges(opts: dict) -> None:
    """gunicorn's ``set_owner_process``: the group first (and with
    --initgroups the user's supplementary groups), then the user. As in
    gunicorn, --user alone keeps the supervisor's group. Unlike gunicorn, a
    root supervisor's supplementary groups are dropped unless --initgroups
    asks for the user's: a worker running as another user keeps no group of
    root's."""
    uid, gid = user_id(opts.get("user")), group_id(opts.get("group"))
    if gid is None and uid is None:
        return
    changing_user = uid is not None and uid != os.getuid()
    if changing_user and os.geteuid() == 0:
        if opts.get("initgroups"):
            try:
                name = pwd.getpwuid(uid).pw_name
            except KeyError:
                os.setgroups([])
            else:
                os.initgroups(name, gid if gid is not None else os.getgid())
        else:
            os.setgroups([])
    if gid is not None and gid != os.getgid():
        os.setgid(gid)
    if changing_user:
        os.setuid(uid)


def own_unix_sockets(sockets: list[socket.socket], opts: dict) -> None:
    """The files of the Unix sockets Qiao bound belong to --user/--group
    (gunicorn's ``chown`` at bind), so the workers can remove or reuse them."""
    uid, gid = user_id(opts.get("user")), group_id(opts.get("group"))
    if uid is None and gid is None:
        return
    for sock in sockets:
        if sock.family != socket.AF_UNIX or is_inherited(sock):
            continue
        path = sock.getsockname()
        if isinstance(path, str) and path and not path.startswith("\0"):
            os.chown(path, -1 if uid is None else uid, -1 if gid is None else gid)


# -- the process title ---------------------------------------------------------
def default_name(app_spec: str | None) -> str:
    """gunicorn's ``default_proc_name``: the application as given."""
    return app_spec or "qiao"


def set_title(role: str, name: str) -> None:
    """``qiao: ROLE [NAME]`` in ``ps``: the whole command line with the
    ``setproctitle`` package installed, else the thread name (``comm``,
    15 bytes)."""
    title = f"{TITLE_PREFIX}{role} [{name}]"
    try:
        from setproctitle import setproctitle
    except ImportError:
        with contextlib.suppress(OSError, AttributeError):
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(_PR_SET_NAME, title.encode()[:_COMM_LENGTH], 0, 0, 0)
        return
    setproctitle(title)


def become_worker(opts: dict, name: str) -> None:
    """First thing in a forked worker: its title, its umask, its owner."""
    set_title("worker", name)
    if opts.get("umask"):
        os.umask(opts["umask"])
    drop_privileges(opts)


# -- daemon --------------------------------------------------------------------
def redirect_stdio(keep_output: bool) -> None:
    """stdin from /dev/null; stdout and stderr too unless ``keep_output``
    (--enable-stdio-inheritance), where only a terminal is replaced."""
    null = os.open(DEV_NULL, os.O_RDWR)
    try:
        for fd in (0, 1, 2):
            if fd and keep_output:
                with contextlib.suppress(OSError):
                    if not os.isatty(fd):
                        continue
            os.dup2(null, fd)
    finally:
        if null > 2:
            os.close(null)


def daemonize(keep_output: bool) -> None:
    """Detaches as gunicorn's ``util.daemonize``: fork (the command
    returns), setsid, fork (no controlling terminal ever again), umask
    0o22, standard streams to /dev/null."""
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    if os.fork():
        os._exit(0)
    os.setsid()
    if os.fork():
        os._exit(0)
    os.umask(DAEMON_UMASK)
    redirect_stdio(keep_output)


def daemon_start(options: dict) -> None:
    """--daemon: gunicorn's warning under systemd's Type=notify, then
    detach; a supervisor re-executed by SIGUSR2 is already detached."""
    if os.environ.get("NOTIFY_SOCKET"):
        print(
            "Warning: --daemon (daemon = True) should not be used when systemd starts "
            "the server with Type=notify",
            file=sys.stderr,
            flush=True,
        )
    from .upgrade import FD_VAR

    if FD_VAR not in os.environ:
        daemonize(bool(options.get("enable_stdio_inheritance")))


# -- the pid file ----------------------------------------------------------------
class PidFile:
    """The supervisor's pid file, written atomically (temporary file, then
    rename), mode 0644; removed only while it still names this process."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.pid: int | None = None

    def create(self, pid: int) -> None:
        other = self.running()
        if other and other != pid:
            raise ProcessError(
                f"Already running on PID {other} (or pid file {self.path!r} is stale)"
            )
        self.pid = pid
        directory = os.path.dirname(self.path) or "."
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=".qiao-pid-")
        try:
            os.write(fd, f"{pid}\n".encode())
            os.fchmod(fd, PIDFILE_MODE)
        finally:
            os.close(fd)
        os.replace(tmp, self.path)

    def running(self) -> int | None:
        """The live process the file names, if any."""
        try:
            with open(self.path) as f:
                pid = int(f.read().strip() or 0)
        except (OSError, ValueError):
            return None
        if pid <= 0:
            return None
        try:
            os.kill(pid, 0)
        except OSError as e:
            return pid if e.errno == errno.EPERM else None
        return pid

    def rename(self, path: str) -> None:
        """Moves the file (``PIDFILE.oldbin`` and back)."""
        if path == self.path or self.pid is None:
            return
        self.unlink()
        self.path = path
        self.create(self.pid)

    def unlink(self) -> None:
        try:
            with open(self.path) as f:
                if int(f.read().strip() or 0) != self.pid:
                    return
            os.unlink(self.path)
        except (OSError, ValueError):
            pass


# -- the listening sockets -------------------------------------------------------
def open_sockets(options: dict) -> list[socket.socket]:
    """The sockets a re-executed supervisor inherited (``QIAO_FD``), else
    every --bind, bound under --umask (gunicorn binds a Unix socket with it,
    so the default 0 leaves the file open to every user) and owned by
    --user/--group."""
    from .server import open_listeners
    from .upgrade import inherited_sockets

    sockets = inherited_sockets()
    if sockets is not None:
        return sockets
    previous = os.umask(options.get("umask") or 0)
    try:
        sockets = open_listeners(
            options["bind"], options["backlog"], reuse_port=bool(options.get("reuse_port"))
        )
    finally:
        os.umask(previous)
    own_unix_sockets(sockets, options)
    return sockets
