"""Settings of the application and the listening sockets: what is served,
from where, and on which addresses."""

from __future__ import annotations

import argparse

from .base import Setting, choice, positive_int, section

#: Default address when no --bind is given (as gunicorn; ``0.0.0.0:$PORT``
#: when the ``PORT`` variable is set).
DEFAULT_BIND = "127.0.0.1:8000"


def prefixed(text: str, shape: str) -> str:
    """The part after ``PREFIX=`` of ``text`` (``shape`` names it in the
    error), with a prefix that starts with ``/`` and a non-empty rest."""
    prefix, sep, rest = text.partition("=")
    if not sep or not prefix.startswith("/") or not rest:
        raise argparse.ArgumentTypeError(f"expected PREFIX={shape}, got {text!r}")
    return rest


def mount(text: str) -> str:
    prefixed(text, "MODULE:CALLABLE")
    return text


SETTINGS = section(
    "Application and sockets",
    (
        Setting(
            "bind",
            ("-b", "--bind"),
            None,
            "Address to listen on: HOST:PORT, :PORT, [IPv6]:PORT, unix:/path, or fd://N (an "
            "inherited listening socket); uwsgi:// before one speaks the uwsgi protocol there. "
            f"Repeatable. Default {DEFAULT_BIND}, or 0.0.0.0:$PORT when PORT is set.",
            action="append",
            metavar="ADDRESS",
        ),
        Setting(
            "backlog",
            ("--backlog",),
            2048,
            "Maximum number of pending connections in the listen queue.",
            type=positive_int,
            metavar="N",
        ),
        Setting(
            "reuse_port",
            ("--reuse-port",),
            False,
            "Set SO_REUSEPORT on the listening sockets (several servers may bind one port).",
            type=None,
            action="store_true",
        ),
        Setting(
            "protocol",
            ("--protocol",),
            "http",
            "What every --bind speaks: http, or uwsgi (as a uwsgi:// prefix on each bind).",
            type=choice("http", "uwsgi"),
            metavar="PROTOCOL",
        ),
        Setting(
            "wsgi_app",
            (),
            None,
            "The application, MODULE[:CALLABLE], when the command line names none (config "
            "files; on the command line it is the positional argument).",
            gunicorn=True,
        ),
        Setting(
            "mount",
            ("--mount",),
            None,
            "Serve another application below a path prefix in the same process "
            "(PREFIX=MODULE:CALLABLE; repeatable; the longest prefix wins, the prefix moves to "
            "SCRIPT_NAME). The main application gets everything else.",
            type=mount,
            action="append",
            metavar="PREFIX=APP",
            gunicorn=False,
        ),
        Setting(
            "script_name",
            ("--script-name",),
            "",
            "SCRIPT_NAME for every request (when mounted below a prefix).",
            metavar="PREFIX",
            gunicorn=False,
        ),
        Setting(
            "chdir",
            ("--chdir",),
            None,
            "Change to this directory before loading the application.",
            metavar="DIR",
        ),
        Setting(
            "pythonpath",
            ("--pythonpath",),
            None,
            "Directories (comma-separated) put first on sys.path before the application is "
            "imported.",
            metavar="DIRS",
        ),
        Setting(
            "raw_env",
            ("-e", "--env"),
            None,
            "Set an environment variable (KEY=VALUE) before the application is loaded; repeatable.",
            action="append",
            metavar="KEY=VALUE",
        ),
        Setting(
            "paste",
            ("--paste", "--paster"),
            None,
            "Load the application from a PasteDeploy .ini file (CONFIG[#NAME]) instead of "
            "MODULE:CALLABLE (needs the PasteDeploy package).",
            metavar="FILE",
        ),
        Setting(
            "raw_paste_global_conf",
            ("--paste-global",),
            None,
            "With --paste: a KEY=VALUE global for the .ini file's interpolation; repeatable.",
            action="append",
            metavar="KEY=VALUE",
        ),
    ),
)
