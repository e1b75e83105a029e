"""Settings of the error log, the access log, syslog and the metrics
(Prometheus from the supervisor, statsd from the workers)."""

from __future__ import annotations

import argparse

from .base import DICT, Setting, choice, section

LOG_LEVELS = ("debug", "info", "warning", "error", "critical")

#: gunicorn's default access log format plus the duration in seconds.
DEFAULT_ACCESS_LOG_FORMAT = '%(h)s %(l)s %(u)s %(t)s "%(r)s" %(s)s %(b)s "%(f)s" "%(a)s" %(L)s'

#: syslog facilities gunicorn accepts for --log-syslog-facility.
SYSLOG_FACILITIES = (
    "auth", "authpriv", "cron", "daemon", "ftp", "kern", "lpr", "mail", "news", "security",
    "syslog", "user", "uucp", "local0", "local1", "local2", "local3", "local4", "local5",
    "local6", "local7",
)  # fmt: skip


def log_level(text: str) -> str:
    word = text.lower()
    if word == "warn":
        word = "warning"
    if word not in LOG_LEVELS:
        raise argparse.ArgumentTypeError(
            f"unknown log level {text!r} (choose from {', '.join(LOG_LEVELS)})"
        )
    return word


def access_log_format(text: str) -> str:
    """``json``, or a gunicorn-style format, checked now rather than at the
    first request."""
    from ..accesslog import FormatError, compile_format

    try:
        compile_format(text)
    except FormatError as e:
        raise argparse.ArgumentTypeError(str(e)) from None
    return text


def syslog_address(text: str) -> str:
    """gunicorn's ``udp://HOST:PORT``, ``tcp://HOST:PORT`` or ``unix://PATH#TYPE``."""
    if not text.startswith(("udp://", "tcp://", "unix://")):
        raise argparse.ArgumentTypeError(
            f"expected udp://HOST:PORT, tcp://HOST:PORT or unix://PATH, got {text!r}"
        )
    return text


def statsd_address(text: str) -> str:
    """gunicorn's forms: ``HOST:PORT``, ``HOST`` (port 8125), ``[V6]:PORT``
    (UDP), ``unix:PATH`` or ``unix://PATH`` (a datagram socket)."""
    from ..statsd import parse_address

    try:
        parse_address(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None
    return text


SETTINGS = section(
    "Logging and metrics",
    (
        Setting(
            "log_level",
            ("--log-level",),
            "info",
            "Error log level: debug, info, warning, error, critical.",
            type=log_level,
            metavar="LEVEL",
            gunicorn="loglevel",
        ),
        Setting(
            "error_log",
            ("--error-logfile", "--log-file"),
            "-",
            "Where the error log goes: a file, or '-' for stderr.",
            metavar="FILE",
            gunicorn="errorlog",
        ),
        Setting(
            "access_log",
            ("--access-log", "--access-logfile"),
            None,
            "Write an access log line per request to FILE ('-' for stdout). Off by default.",
            metavar="FILE",
            gunicorn="accesslog",
        ),
        Setting(
            "access_log_format",
            ("--access-logformat", "--access-log-format"),
            DEFAULT_ACCESS_LOG_FORMAT,
            "Access log line: gunicorn's atoms, e.g. '%(h)s \"%(r)s\" %(s)s %(L)s', or "
            "'json' for one JSON object per line.",
            type=access_log_format,
            metavar="FORMAT",
        ),
        Setting(
            "capture_output",
            ("--capture-output",),
            False,
            "Send the workers' stdout and stderr to the error log file.",
            type=None,
            action="store_true",
        ),
        Setting(
            "enable_stdio_inheritance",
            ("-R", "--enable-stdio-inheritance"),
            False,
            "With --daemon: keep stdout and stderr open (not redirected to /dev/null).",
            type=None,
            action="store_true",
        ),
        Setting(
            "logconfig",
            ("--log-config",),
            None,
            "Configure logging from this logging.config.fileConfig ini file.",
            metavar="FILE",
        ),
        Setting(
            "logconfig_dict",
            (),
            None,
            "Configure logging from this logging.config.dictConfig dictionary (config files).",
            action=DICT,
        ),
        Setting(
            "logconfig_json",
            ("--log-config-json",),
            None,
            "Configure logging from this JSON file of a dictConfig dictionary.",
            metavar="FILE",
        ),
        Setting(
            "syslog",
            ("--log-syslog",),
            False,
            "Send the error log (and the access log) to syslog too.",
            type=None,
            action="store_true",
        ),
        Setting(
            "syslog_addr",
            ("--log-syslog-to",),
            "udp://localhost:514",
            "The syslog daemon: udp://HOST:PORT, tcp://HOST:PORT or unix://PATH.",
            type=syslog_address,
            metavar="ADDRESS",
        ),
        Setting(
            "syslog_prefix",
            ("--log-syslog-prefix",),
            None,
            "The program name in syslog lines (default: the process name).",
            metavar="PREFIX",
        ),
        Setting(
            "syslog_facility",
            ("--log-syslog-facility",),
            "user",
            "The syslog facility.",
            type=choice(*SYSLOG_FACILITIES),
            metavar="FACILITY",
        ),
        Setting(
            "disable_redirect_access_to_syslog",
            ("--disable-redirect-access-to-syslog",),
            False,
            "With --log-syslog: keep the access log out of syslog.",
            type=None,
            action="store_true",
        ),
        Setting(
            "metrics_bind",
            ("--metrics-bind",),
            None,
            "Serve Prometheus metrics (summed over the workers) at http://ADDRESS/metrics, "
            "from the supervisor. Off by default.",
            metavar="HOST:PORT",
            gunicorn=False,
        ),
        Setting(
            "statsd_host",
            ("--statsd-host",),
            None,
            "Send gunicorn's statsd metrics to HOST:PORT (UDP; port 8125 if omitted) or "
            "unix:PATH (a datagram socket). Off by default.",
            type=statsd_address,
            metavar="ADDRESS",
        ),
        Setting(
            "statsd_prefix",
            ("--statsd-prefix",),
            "",
            "Prefix of every statsd metric name (a '.' is added).",
            metavar="PREFIX",
        ),
        Setting(
            "dogstatsd_tags",
            ("--dogstatsd-tags",),
            "",
            "DogStatsD tags (comma-separated key:value) added to every statsd metric.",
            metavar="TAGS",
        ),
        Setting(
            "enable_backlog_metric",
            ("--enable-backlog-metric",),
            False,
            "Send the listen queue's length as the statsd gauge gunicorn.backlog.",
            type=None,
            action="store_true",
        ),
    ),
)
