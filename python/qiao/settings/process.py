"""Settings of the supervisor process: running in the background, whose
user it runs as, its pid file and its name in ``ps``."""

from __future__ import annotations

import argparse
import re

from .base import Setting, section


def umask(text: str) -> int:
    """An octal (``0o22``, ``022``), hex or decimal mask, as gunicorn reads
    it (a leading 0 means octal)."""
    digits = text.strip()
    if re.match(r"0\d", digits):
        digits = "0o" + digits[1:]
    try:
        value = int(digits, 0)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a umask like 0o22, got {text!r}") from None
    if not 0 <= value <= 0o777:
        raise argparse.ArgumentTypeError(f"umask out of range: {text!r}")
    return value


SETTINGS = section(
    "Process",
    (
        Setting(
            "pid",
            ("-p", "--pid"),
            None,
            "Write the supervisor's process id to this file.",
            metavar="FILE",
            gunicorn="pidfile",
        ),
        Setting(
            "daemon",
            ("-D", "--daemon"),
            False,
            "Detach from the terminal and run in the background.",
            type=None,
            action="store_true",
        ),
        Setting(
            "user",
            ("-u", "--user"),
            None,
            "Run the workers as this user (a name or a numeric id); the supervisor needs to "
            "start as root.",
            metavar="USER",
        ),
        Setting(
            "group",
            ("-g", "--group"),
            None,
            "Run the workers as this group (a name or a numeric id).",
            metavar="GROUP",
        ),
        Setting(
            "umask",
            ("-m", "--umask"),
            0,
            "The mask Unix sockets are bound with (gunicorn's: the default 0 lets every user "
            "connect); when not 0, the workers' umask too (e.g. 0o27).",
            type=umask,
            metavar="INT",
        ),
        Setting(
            "initgroups",
            ("--initgroups",),
            False,
            "With --user: give the workers that user's supplementary groups too.",
            type=None,
            action="store_true",
        ),
        Setting(
            "proc_name",
            ("-n", "--name"),
            None,
            "The process title shown by ps and top (with setproctitle installed, else the "
            "thread name): 'qiao: master [NAME]', 'qiao: worker [NAME]'.",
            metavar="NAME",
        ),
        Setting(
            "check_config",
            ("--check-config",),
            False,
            "Check the configuration and import the application, then exit: 0 when it "
            "loads, 1 when it does not.",
            type=None,
            action="store_true",
        ),
    ),
)
