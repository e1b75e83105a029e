"""Starts a command the way systemd's socket activation does.

    python cfg_launch.py [--pid other] FD[,FD...] -- COMMAND...

The descriptors (inherited from the caller through ``pass_fds``) are moved
to 3, 4, ... in that order, ``LISTEN_FDS`` is set to their number and
``LISTEN_PID`` to this process's pid, which the command keeps since it
replaces this process (``os.execv``). ``--pid other`` sets a pid that is
not the command's, as when the variables were meant for another process.
"""

from __future__ import annotations

import fcntl
import os
import sys

FIRST_FD = 3


def main(argv: list[str]) -> None:
    other = argv[:2] == ["--pid", "other"]
    if other:
        argv = argv[2:]
    fds = [int(fd) for fd in argv[0].split(",")]
    command = argv[argv.index("--") + 1 :]
    # Out of the way first, so that moving one does not overwrite another.
    high = [fcntl.fcntl(fd, fcntl.F_DUPFD, 100) for fd in fds]
    for fd in fds:
        os.close(fd)
    for i, fd in enumerate(high):
        os.dup2(fd, FIRST_FD + i)  # inheritable
        os.close(fd)
    os.environ["LISTEN_FDS"] = str(len(fds))
    os.environ["LISTEN_PID"] = str(os.getppid() if other else os.getpid())
    os.environ["LISTEN_FDNAMES"] = ":".join(f"sock{i}" for i in range(len(fds)))
    os.execv(command[0], command)


if __name__ == "__main__":
    main(sys.argv[1:])
