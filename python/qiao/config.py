"""Qiao's settings, in one table (as gunicorn's ``config.py``).

Every option the command line accepts is declared once here: its flags,
type, default and help. ``cli.py`` builds the argument parser from this
table, :mod:`qiao.config_sources` reads the same settings from a TOML file
and ``QIAO_*`` environment variables, and ``qiao.serve()`` accepts the same
names as keyword arguments.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import Any, Callable


@dataclass(frozen=True)
class Setting:
    name: str
    flags: tuple[str, ...]
    default: Any
    help: str
    type: Callable[[str], Any] | None = str
    action: str | None = None
    metavar: str | None = None
    #: How a list setting given as one string (a ``QIAO_*`` variable or a
    #: TOML string) splits into items: commas or blanks, unless an item can
    #: hold commas itself (``--proxy``: blanks only).
    split: str = r"[,\s]+"

    @property
    def is_flag(self) -> bool:
        """A boolean setting (``--preload`` / ``--no-preload``)."""
        return self.action == "store_true"

    @property
    def is_list(self) -> bool:
        """A repeatable setting (``--bind``): a list of values."""
        return self.action == "append"

    @property
    def env_var(self) -> str:
        return "QIAO_" + self.name.upper()

    def convert(self, text: str) -> Any:
        """One value from its text (raises ``argparse.ArgumentTypeError``)."""
        return self.type(text) if self.type else text


def _int(text: str, least: int, expected: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}") from None
    if value < least:
        raise argparse.ArgumentTypeError(f"expected {expected}, got {value}")
    return value


def _positive_int(text: str) -> int:
    return _int(text, 0, "an integer >= 0")


def _at_least_one(text: str) -> int:
    return _int(text, 1, "an integer >= 1")


def _workers(text: str) -> int:
    """A worker count; 0 or "auto" means one per CPU."""
    if text == "auto":
        return 0
    return _int(text, 0, "an integer >= 0 or 'auto'")


def _number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {text!r}") from None


def _seconds(text: str) -> float:
    value = _number(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a number of seconds > 0, got {value}")
    return value


def _ip_list(text: str) -> str:
    """Addresses or CIDR ranges, comma- or space-separated, or '*'."""
    import ipaddress

    for item in text.replace(",", " ").split():
        if item != "*":
            try:
                ipaddress.ip_network(item, strict=False)
            except ValueError:
                raise argparse.ArgumentTypeError(f"not an IP address or range: {item!r}") from None
    return text


def _prefixed(text: str, shape: str) -> str:
    """The part after ``PREFIX=`` of ``text`` (``shape`` names it in the
    error), with a prefix that starts with ``/`` and a non-empty rest."""
    prefix, sep, rest = text.partition("=")
    if not sep or not prefix.startswith("/") or not rest:
        raise argparse.ArgumentTypeError(f"expected PREFIX={shape}, got {text!r}")
    return rest


def _mount(text: str) -> str:
    _prefixed(text, "MODULE:CALLABLE")
    return text


def _static(text: str) -> str:
    """``PREFIX=DIR`` with an existing directory."""
    import os

    folder = _prefixed(text, "DIR")
    if not os.path.isdir(folder):
        raise argparse.ArgumentTypeError(f"--static {text}: {folder!r} is not a directory")
    return text


def _ext_type(text: str) -> str:
    """``EXT=TYPE`` (``.md=text/markdown``), the extension lower-cased and
    given its dot if it had none."""
    ext, sep, ctype = text.partition("=")
    ext = ext.strip().lower()
    ctype = ctype.strip()
    if ext and not ext.startswith("."):
        ext = "." + ext
    if not sep or len(ext) < 2 or "/" not in ctype or any(c in ext for c in "/ \t"):
        raise argparse.ArgumentTypeError(
            f"expected EXT=TYPE like '.md=text/markdown', got {text!r}"
        )
    return f"{ext}={ctype}"


def _upstream_url(url: str) -> str:
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises on a bad port
    except ValueError:
        parts = None
    if parts is None or parts.scheme != "http" or not parts.hostname:
        raise argparse.ArgumentTypeError(f"upstream {url!r}: expected http://HOST[:PORT][/PATH]")
    if parts.query or parts.fragment or "@" in parts.netloc:
        raise argparse.ArgumentTypeError(f"upstream {url!r}: no user, query or fragment allowed")
    return url


def _proxy(text: str) -> str:
    """``PREFIX=URL[,URL...]`` with http:// URLs."""
    for url in _prefixed(text, "URL[,URL...]").split(","):
        _upstream_url(url.strip())
    return text


def _choice(*choices: str) -> Callable[[str], str]:
    def check(text: str) -> str:
        if text not in choices:
            raise argparse.ArgumentTypeError(
                f"expected one of {', '.join(choices)}, got {text!r}"
            )
        return text

    return check


def _health_path(text: str) -> str:
    if not text.startswith("/") or any(c in text for c in "?# \t"):
        raise argparse.ArgumentTypeError(f"must be a path starting with /, got {text!r}")
    return text


LOG_LEVELS = ("debug", "info", "warning", "error", "critical")


def _log_level(text: str) -> str:
    if text.lower() not in LOG_LEVELS:
        raise argparse.ArgumentTypeError(
            f"unknown log level {text!r} (choose from {', '.join(LOG_LEVELS)})"
        )
    return text.lower()


def _access_log_format(text: str) -> str:
    """``json``, or a gunicorn-style format, checked now rather than at the
    first request."""
    from .accesslog import FormatError, compile_format

    try:
        compile_format(text)
    except FormatError as e:
        raise argparse.ArgumentTypeError(str(e)) from None
    return text


#: Content codings ``--compress`` may use (the portable ``Compress``'s ``CODINGS``).
COMPRESS_CODINGS = ("zstd", "br", "gzip")
#: Levels each coding accepts (``src/codec.rs``, ``Kind::levels``).
COMPRESS_LEVELS = {"gzip": (0, 9), "br": (0, 11), "zstd": (1, 19)}


def _media_type(text: str) -> str:
    """A media type (``text/html``) or a whole top-level type (``text/``)."""
    value = text.strip().lower()
    top, sep, sub = value.partition("/")
    if not top or not sep or any(c in value for c in " \t;,"):
        raise argparse.ArgumentTypeError(
            f"expected a media type like 'text/html' or 'text/', got {text!r}"
        )
    return value


def _coding(text: str) -> str:
    value = text.strip().lower()
    if value not in COMPRESS_CODINGS:
        raise argparse.ArgumentTypeError(
            f"unknown coding {text!r} (choose from {', '.join(COMPRESS_CODINGS)})"
        )
    return value


def _coding_level(text: str) -> str:
    """``CODING=LEVEL``, e.g. ``br=5``, within the coding's range."""
    coding, sep, level = text.partition("=")
    coding = _coding(coding) if sep else ""
    if not sep:
        raise argparse.ArgumentTypeError(f"expected CODING=LEVEL like 'br=5', got {text!r}")
    lo, hi = COMPRESS_LEVELS[coding]
    try:
        value = int(level)
    except ValueError:
        value = None
    if value is None or not lo <= value <= hi:
        raise argparse.ArgumentTypeError(f"{coding} level must be in {lo}..{hi}, got {level!r}")
    return f"{coding}={value}"


#: Default address when no --bind is given (as gunicorn).
DEFAULT_BIND = "127.0.0.1:8000"

#: Most serving threads a worker grows to by default (the engine's
#: ``DEFAULT_MAX_THREADS``). The pool starts with one thread and adds one
#: only while a request blocks, so a fast app never uses more.
DEFAULT_THREADS = 128

#: gunicorn's default access log format plus the duration in seconds.
DEFAULT_ACCESS_LOG_FORMAT = '%(h)s %(l)s %(u)s %(t)s "%(r)s" %(s)s %(b)s "%(f)s" "%(a)s" %(L)s'

SETTINGS: tuple[Setting, ...] = (
    Setting(
        "bind",
        ("-b", "--bind"),
        None,
        "Address to listen on: HOST:PORT, [IPv6]:PORT, unix:/path, or fd://N (an inherited "
        "listening socket); uwsgi:// before one speaks the uwsgi protocol there. "
        f"Repeatable. Default {DEFAULT_BIND}.",
        action="append",
        metavar="ADDRESS",
    ),
    Setting(
        "mount",
        ("--mount",),
        None,
        "Serve another application below a path prefix in the same process "
        "(PREFIX=MODULE:CALLABLE; repeatable; the longest prefix wins, the prefix moves to "
        "SCRIPT_NAME). The main application gets everything else.",
        type=_mount,
        action="append",
        metavar="PREFIX=APP",
    ),
    Setting(
        "workers",
        ("-w", "--workers"),
        1,
        "Worker processes; 0 or 'auto' for one per CPU.",
        type=_workers,
        metavar="N",
    ),
    Setting(
        "threads",
        ("--threads",),
        DEFAULT_THREADS,
        "Most serving threads per worker. The pool starts with one and grows "
        "only while requests block in the app (1: strictly one thread).",
        type=_at_least_one,
        metavar="N",
    ),
    Setting(
        "backlog",
        ("--backlog",),
        2048,
        "Maximum number of pending connections in the listen queue.",
        type=_positive_int,
        metavar="N",
    ),
    Setting(
        "preload",
        ("--preload",),
        False,
        "Import the application once in the supervisor, before forking the workers "
        "(saves memory; SIGHUP then restarts workers without reloading code).",
        type=None,
        action="store_true",
    ),
    Setting(
        "timeout",
        ("-t", "--timeout"),
        30.0,
        "Kill a worker that spends longer than this many seconds in one request (0 disables).",
        type=_number,
        metavar="SECONDS",
    ),
    Setting(
        "graceful_timeout",
        ("--graceful-timeout",),
        30.0,
        "Seconds a stopping worker may take to finish its requests before it is killed.",
        type=_seconds,
        metavar="SECONDS",
    ),
    Setting(
        "max_requests",
        ("--max-requests",),
        0,
        "Restart a worker (gracefully) after this many requests (0 disables).",
        type=_positive_int,
        metavar="N",
    ),
    Setting(
        "max_requests_jitter",
        ("--max-requests-jitter",),
        0,
        "Add a random 0..N to --max-requests per worker, so they do not all restart at once.",
        type=_positive_int,
        metavar="N",
    ),
    Setting(
        "reload",
        ("--reload",),
        False,
        "Restart the workers when a Python file under the current directory changes (development).",
        type=None,
        action="store_true",
    ),
    Setting(
        "pid",
        ("-p", "--pid"),
        None,
        "Write the supervisor's process id to this file.",
        metavar="FILE",
    ),
    Setting(
        "chdir",
        ("--chdir",),
        None,
        "Change to this directory before loading the application.",
        metavar="DIR",
    ),
    Setting(
        "log_level",
        ("--log-level",),
        "info",
        "Error log level: debug, info, warning, error, critical.",
        type=_log_level,
        metavar="LEVEL",
    ),
    Setting(
        "access_log",
        ("--access-log",),
        None,
        "Write an access log line per request to FILE ('-' for stdout). Off by default.",
        metavar="FILE",
    ),
    Setting(
        "access_log_format",
        ("--access-logformat", "--access-log-format"),
        DEFAULT_ACCESS_LOG_FORMAT,
        "Access log line: gunicorn's atoms, e.g. '%%(h)s \"%%(r)s\" %%(s)s %%(L)s', or 'json' "
        "for one JSON object per line.",
        type=_access_log_format,
        metavar="FORMAT",
    ),
    Setting(
        "keepalive",
        ("--keepalive",),
        5.0,
        "Seconds to wait for the next request on a keep-alive connection.",
        type=_seconds,
        metavar="SECONDS",
    ),
    Setting(
        "header_timeout",
        ("--header-timeout",),
        30.0,
        "Seconds allowed to receive a whole request head.",
        type=_seconds,
        metavar="SECONDS",
    ),
    Setting(
        "io_timeout",
        ("--io-timeout",),
        30.0,
        "Longest stall allowed while reading a request body or writing a response.",
        type=_seconds,
        metavar="SECONDS",
    ),
    Setting(
        "max_connections",
        ("--max-connections",),
        10000,
        "Connections one serving thread holds at most; beyond, accepting pauses.",
        type=_positive_int,
        metavar="N",
    ),
    Setting(
        "limit_request_line",
        ("--limit-request-line",),
        8190,
        "Longest request line in bytes (longer: 414).",
        type=_positive_int,
        metavar="N",
    ),
    Setting(
        "limit_request_fields",
        ("--limit-request-fields",),
        100,
        "Most header fields in a request (more: 431).",
        type=_positive_int,
        metavar="N",
    ),
    Setting(
        "limit_request_field_size",
        ("--limit-request-field-size",),
        8190,
        "Longest header field line in bytes (longer: 431).",
        type=_positive_int,
        metavar="N",
    ),
    Setting(
        "max_body",
        ("--max-body-size",),
        None,
        "Largest request body in bytes (larger: 413). Off by default.",
        type=_positive_int,
        metavar="N",
    ),
    Setting(
        "script_name",
        ("--script-name",),
        "",
        "SCRIPT_NAME for every request (when mounted below a prefix).",
        metavar="PREFIX",
    ),
    Setting(
        "health_path",
        ("--health-path",),
        None,
        "Answer GET/HEAD of this path from the engine, without the app: 200 ok, or 503 "
        "while the worker stops (for load balancer and Kubernetes probes). Off by default.",
        type=_health_path,
        metavar="PATH",
    ),
    Setting(
        "static",
        ("--static",),
        None,
        "Serve the files of DIR below PREFIX natively (Rust, sendfile, no GIL), as "
        "qiao.middleware.Static does: validators, ranges, precompressed .br/.gz siblings. "
        "Repeatable; the longest prefix wins over --proxy and the app.",
        type=_static,
        action="append",
        metavar="PREFIX=DIR",
    ),
    Setting(
        "static_cache_control",
        ("--static-cache-control",),
        "public, max-age=3600",
        "Cache-Control of --static files ('' for none).",
        metavar="VALUE",
    ),
    Setting(
        "static_etag",
        ("--static-etag",),
        "strong",
        "ETag of --static files: strong, weak or none.",
        type=_choice("strong", "weak", "none"),
        metavar="KIND",
    ),
    Setting(
        "static_index",
        ("--static-index",),
        "index.html",
        "File --static serves for a directory ('' for none: directories are 404).",
        metavar="NAME",
    ),
    Setting(
        "static_hidden",
        ("--static-hidden",),
        False,
        "Let --static serve names starting with '.' (default: 404 for them).",
        type=None,
        action="store_true",
    ),
    Setting(
        "static_types",
        ("--static-type",),
        None,
        "Content-Type of --static files with this extension, e.g. '.md=text/markdown' "
        "(text types get charset=utf-8); repeatable. Default: a built-in table.",
        type=_ext_type,
        action="append",
        metavar="EXT=TYPE",
    ),
    Setting(
        "proxy",
        ("--proxy",),
        None,
        "Reverse-proxy requests below PREFIX to the upstreams natively (Rust, pooled "
        "keep-alive connections, no GIL), as qiao.middleware.Proxy does; the prefix is "
        "removed and the URL's path put before the rest. Repeatable.",
        type=_proxy,
        action="append",
        metavar="PREFIX=URL[,URL...]",
        split=r"\s+",
    ),
    Setting(
        "proxy_balance",
        ("--proxy-balance",),
        "round_robin",
        "How --proxy picks an upstream: round_robin or least_conn (fewest in flight).",
        type=_choice("round_robin", "least_conn"),
        metavar="POLICY",
    ),
    Setting(
        "proxy_timeout",
        ("--proxy-timeout",),
        30.0,
        "Seconds an upstream may stay silent (then 504, or the response is cut).",
        type=_seconds,
        metavar="SECONDS",
    ),
    Setting(
        "proxy_connect_timeout",
        ("--proxy-connect-timeout",),
        5.0,
        "Seconds allowed to open a connection to an upstream.",
        type=_seconds,
        metavar="SECONDS",
    ),
    Setting(
        "proxy_max_fails",
        ("--proxy-max-fails",),
        1,
        "Consecutive failures after which an upstream is marked down (then probed back).",
        type=_at_least_one,
        metavar="N",
    ),
    Setting(
        "proxy_probe_interval",
        ("--proxy-probe-interval",),
        5.0,
        "Seconds between two probes of a down upstream (see --proxy-health-path).",
        type=_seconds,
        metavar="SECONDS",
    ),
    Setting(
        "proxy_health_path",
        ("--proxy-health-path",),
        None,
        "Probe a down --proxy upstream with a GET of its URL's path plus this one, "
        "answered below 500, instead of a TCP connect. Off by default.",
        type=_health_path,
        metavar="PATH",
    ),
    Setting(
        "proxy_preserve_host",
        ("--proxy-preserve-host",),
        False,
        "Send the client's Host to the upstream (default: the upstream's own).",
        type=None,
        action="store_true",
    ),
    Setting(
        "proxy_status",
        ("--proxy-status",),
        None,
        "Answer GET of this path with the --proxy upstreams' state as JSON (url, up, "
        "active, failures). Off by default.",
        type=_health_path,
        metavar="PATH",
    ),
    Setting(
        "forwarded_allow_ips",
        ("--forwarded-allow-ips",),
        "",
        "Proxies (addresses or CIDR ranges, comma-separated; '*' for any) whose "
        "Forwarded / X-Forwarded-For/-Proto/-Host headers set REMOTE_ADDR, "
        "wsgi.url_scheme and the host. Empty (default): no one's.",
        type=_ip_list,
        metavar="LIST",
    ),
    Setting(
        "metrics_bind",
        ("--metrics-bind",),
        None,
        "Serve Prometheus metrics (summed over the workers) at http://ADDRESS/metrics, "
        "from the supervisor. Off by default.",
        metavar="HOST:PORT",
    ),
    Setting(
        "compress",
        ("--compress",),
        False,
        "Compress responses with zstd, brotli or gzip, as the client's Accept-Encoding "
        "prefers, as they stream (the rules of qiao.middleware.Compress, in the engine).",
        type=None,
        action="store_true",
    ),
    Setting(
        "compress_min_size",
        ("--compress-min-size",),
        1024,
        "With --compress: bodies known to be shorter than this many bytes are sent as they are.",
        type=_positive_int,
        metavar="BYTES",
    ),
    Setting(
        "compress_types",
        ("--compress-type",),
        None,
        "With --compress: a media type to compress ('text/' for all of text/*); repeatable. "
        "Default: text/, JSON, JavaScript, XML, SVG, wasm (as qiao.middleware.Compress).",
        type=_media_type,
        action="append",
        metavar="TYPE",
    ),
    Setting(
        "compress_codings",
        ("--compress-coding",),
        None,
        "With --compress: a coding to offer (zstd, br, gzip); repeatable, in order of "
        "preference when the client rates them alike. Default: zstd, br, gzip.",
        type=_coding,
        action="append",
        metavar="CODING",
    ),
    Setting(
        "compress_levels",
        ("--compress-level",),
        None,
        "With --compress: CODING=LEVEL (e.g. br=5; gzip 0-9, br 0-11, zstd 1-19); repeatable. "
        "Default: gzip 6, br 4, zstd 3.",
        type=_coding_level,
        action="append",
        metavar="CODING=N",
    ),
    Setting(
        "proxy_protocol",
        ("--proxy-protocol",),
        False,
        "Every connection starts with HAProxy's PROXY v1/v2 header naming the client "
        "(REMOTE_ADDR/REMOTE_PORT); accepted only from --forwarded-allow-ips when set.",
        type=None,
        action="store_true",
    ),
)

#: Client certificate policies of ``--cert-reqs``.
CERT_REQS = ("none", "optional", "required")


def _cert_reqs(text: str) -> str:
    if text.lower() not in CERT_REQS:
        raise argparse.ArgumentTypeError(
            f"unknown cert_reqs {text!r} (choose from {', '.join(CERT_REQS)})"
        )
    return text.lower()


TLS_SETTINGS: tuple[Setting, ...] = (
    Setting(
        "certfile",
        ("--certfile",),
        None,
        "Serve TLS (https) on every TCP --bind with this PEM certificate chain; "
        "uwsgi:// and unix: binds stay plaintext.",
        metavar="FILE",
    ),
    Setting(
        "keyfile",
        ("--keyfile",),
        None,
        "The PEM private key of --certfile (default: read from --certfile itself).",
        metavar="FILE",
    ),
    Setting(
        "ca_certs",
        ("--ca-certs",),
        None,
        "PEM CA certificates that client certificates are verified with (see --cert-reqs).",
        metavar="FILE",
    ),
    Setting(
        "cert_reqs",
        ("--cert-reqs",),
        "none",
        "Client certificates: none (not asked for), optional (verified when sent) or "
        "required (the handshake fails without one). Needs --ca-certs unless none.",
        type=_cert_reqs,
        metavar="POLICY",
    ),
    Setting(
        "http2",
        ("--http2",),
        True,
        "HTTP/2: offered by ALPN on TLS binds, and served in cleartext to clients with "
        "prior knowledge (h2c) on HTTP binds. On by default; --no-http2 turns it off.",
        type=None,
        action="store_true",
    ),
)

SETTINGS = SETTINGS + TLS_SETTINGS

#: The names qiao.serve() accepts, with their defaults.
DEFAULTS: dict[str, Any] = {s.name: s.default for s in SETTINGS}
