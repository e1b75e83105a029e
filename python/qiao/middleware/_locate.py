"""Locating a file for :class:`~qiao.middleware.static.Static`: its real path
and status first, for the containment checks, then that very file opened.

What it owns: the one place where a request's path becomes an open file.

On Linux the path is opened with ``O_PATH`` (no read access needed, no
device opened, a FIFO cannot block) and its real path is read back from
``/proc/self/fd/N``. That is the path of the inode actually opened, so the
file checked against the directory and the file served cannot differ, even
if a symlink is swapped in meanwhile (``os.path.realpath`` followed by
``open`` leaves that window), and it costs two system calls where
``realpath`` costs an ``lstat`` per path component plus Python work for each
(about half of ``Static``'s time per file before). The file is then opened
for reading through the same ``/proc`` link, which names the same inode.
Without ``O_PATH`` or ``/proc`` the fallback is ``realpath`` and ``stat``,
then an ``O_NOFOLLOW | O_NONBLOCK`` open checked again with ``fstat``.
"""

from __future__ import annotations

import os
import stat
from typing import BinaryIO

#: Where Linux shows each open descriptor as a link to its file's real path.
FD_LINKS = "/proc/self/fd"
_O_PATH = getattr(os, "O_PATH", 0)
_O_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
#: Whether files are located through ``O_PATH`` descriptors (else ``realpath``).
USE_FD_LINKS = bool(_O_PATH) and os.path.isdir(FD_LINKS)


class Found:
    """A located file: ``real`` (its real path), ``st`` (its status) and, on
    Linux, the ``O_PATH`` descriptor that pins it until :meth:`open` or
    :meth:`close`."""

    __slots__ = ("real", "st", "_fd")

    def __init__(self, real: str, st: os.stat_result, fd: int | None):
        self.real, self.st, self._fd = real, st, fd

    @classmethod
    def locate(cls, path: str) -> Found | None:
        """``path`` located (symlinks followed), or None if it does not exist
        or cannot be reached."""
        if not USE_FD_LINKS:
            real = os.path.realpath(path)
            try:
                return cls(real, os.stat(real), None)
            except (OSError, ValueError):
                return None
        try:
            fd = os.open(path, _O_PATH | _O_CLOEXEC)
        except (OSError, ValueError):
            return None
        try:
            return cls(os.readlink(f"{FD_LINKS}/{fd}"), os.fstat(fd), fd)
        except OSError:
            os.close(fd)
            return None

    def open(self) -> tuple[BinaryIO, os.stat_result] | None:
        """(file, stat) of the located file opened for reading, unbuffered, or
        None if it is not a regular file or cannot be read. Releases the
        location either way."""
        try:
            if not stat.S_ISREG(self.st.st_mode):
                return None
            if self._fd is not None:
                fd = os.open(f"{FD_LINKS}/{self._fd}", os.O_RDONLY | _O_CLOEXEC)
                return open(fd, "rb", buffering=0), self.st
            # O_NONBLOCK: a FIFO swapped in after the stat cannot hang the open.
            flags = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOFOLLOW", 0)
            fd = os.open(self.real, flags | _O_CLOEXEC)
        except OSError:
            return None
        finally:
            self.close()
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            os.close(fd)
            return None
        os.set_blocking(fd, True)
        return open(fd, "rb", buffering=0), st

    def close(self) -> None:
        """Releases the ``O_PATH`` descriptor, if any (idempotent)."""
        if self._fd is not None:
            fd, self._fd = self._fd, None
            os.close(fd)
