"""Settings of the native routes: static files, the reverse proxy and
response compression, served by the engine without the GIL."""

from __future__ import annotations

import argparse

from .base import Setting, at_least_one, choice, health_path, positive_int, seconds, section
from .server import prefixed


def static(text: str) -> str:
    """``PREFIX=DIR`` with an existing directory."""
    import os

    folder = prefixed(text, "DIR")
    if not os.path.isdir(folder):
        raise argparse.ArgumentTypeError(f"--static {text}: {folder!r} is not a directory")
    return text


def ext_type(text: str) -> str:
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


def upstream_url(url: str) -> str:
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


def proxy(text: str) -> str:
    """``PREFIX=URL[,URL...]`` with http:// URLs."""
    for url in prefixed(text, "URL[,URL...]").split(","):
        upstream_url(url.strip())
    return text


#: Content codings ``--compress`` may use (the portable ``Compress``'s ``CODINGS``).
COMPRESS_CODINGS = ("zstd", "br", "gzip")
#: Levels each coding accepts (``crates/http/src/codec.rs``, ``Kind::levels``).
COMPRESS_LEVELS = {"gzip": (0, 9), "br": (0, 11), "zstd": (1, 19)}


def media_type(text: str) -> str:
    """A media type (``text/html``) or a whole top-level type (``text/``)."""
    value = text.strip().lower()
    top, sep, sub = value.partition("/")
    if not top or not sep or any(c in value for c in " \t;,"):
        raise argparse.ArgumentTypeError(
            f"expected a media type like 'text/html' or 'text/', got {text!r}"
        )
    return value


def coding(text: str) -> str:
    value = text.strip().lower()
    if value not in COMPRESS_CODINGS:
        raise argparse.ArgumentTypeError(
            f"unknown coding {text!r} (choose from {', '.join(COMPRESS_CODINGS)})"
        )
    return value


def coding_level(text: str) -> str:
    """``CODING=LEVEL``, e.g. ``br=5``, within the coding's range."""
    name, sep, level = text.partition("=")
    name = coding(name) if sep else ""
    if not sep:
        raise argparse.ArgumentTypeError(f"expected CODING=LEVEL like 'br=5', got {text!r}")
    lo, hi = COMPRESS_LEVELS[name]
    try:
        value = int(level)
    except ValueError:
        value = None
    if value is None or not lo <= value <= hi:
        raise argparse.ArgumentTypeError(f"{name} level must be in {lo}..{hi}, got {level!r}")
    return f"{name}={value}"


SETTINGS = section(
    "Native static files, proxy and compression",
    (
        Setting(
            "static",
            ("--static",),
            None,
            "Serve the files of DIR below PREFIX natively (Rust, sendfile, no GIL), as "
            "qiao.middleware.Static does: validators, ranges, precompressed .br/.gz siblings. "
            "Repeatable; the longest prefix wins over --proxy and the app.",
            type=static,
            action="append",
            metavar="PREFIX=DIR",
            gunicorn=False,
        ),
        Setting(
            "static_cache_control",
            ("--static-cache-control",),
            "public, max-age=3600",
            "Cache-Control of --static files ('' for none).",
            metavar="VALUE",
            gunicorn=False,
        ),
        Setting(
            "static_etag",
            ("--static-etag",),
            "strong",
            "ETag of --static files: strong, weak or none.",
            type=choice("strong", "weak", "none"),
            metavar="KIND",
            gunicorn=False,
        ),
        Setting(
            "static_index",
            ("--static-index",),
            "index.html",
            "File --static serves for a directory ('' for none: directories are 404).",
            metavar="NAME",
            gunicorn=False,
        ),
        Setting(
            "static_hidden",
            ("--static-hidden",),
            False,
            "Let --static serve names starting with '.' (default: 404 for them).",
            type=None,
            action="store_true",
            gunicorn=False,
        ),
        Setting(
            "static_types",
            ("--static-type",),
            None,
            "Content-Type of --static files with this extension, e.g. '.md=text/markdown' "
            "(text types get charset=utf-8); repeatable. Default: a built-in table.",
            type=ext_type,
            action="append",
            metavar="EXT=TYPE",
            gunicorn=False,
        ),
        Setting(
            "proxy",
            ("--proxy",),
            None,
            "Reverse-proxy requests below PREFIX to the upstreams natively (Rust, pooled "
            "keep-alive connections, no GIL), as qiao.middleware.Proxy does; the prefix is "
            "removed and the URL's path put before the rest. Repeatable.",
            type=proxy,
            action="append",
            metavar="PREFIX=URL[,URL...]",
            split=r"\s+",
            gunicorn=False,
        ),
        Setting(
            "proxy_balance",
            ("--proxy-balance",),
            "round_robin",
            "How --proxy picks an upstream: round_robin or least_conn (fewest in flight).",
            type=choice("round_robin", "least_conn"),
            metavar="POLICY",
            gunicorn=False,
        ),
        Setting(
            "proxy_timeout",
            ("--proxy-timeout",),
            30.0,
            "Seconds an upstream may stay silent (then 504, or the response is cut).",
            type=seconds,
            metavar="SECONDS",
            gunicorn=False,
        ),
        Setting(
            "proxy_connect_timeout",
            ("--proxy-connect-timeout",),
            5.0,
            "Seconds allowed to open a connection to an upstream.",
            type=seconds,
            metavar="SECONDS",
            gunicorn=False,
        ),
        Setting(
            "proxy_max_fails",
            ("--proxy-max-fails",),
            1,
            "Consecutive failures after which an upstream is marked down (then probed back).",
            type=at_least_one,
            metavar="N",
            gunicorn=False,
        ),
        Setting(
            "proxy_probe_interval",
            ("--proxy-probe-interval",),
            5.0,
            "Seconds between two probes of a down upstream (see --proxy-health-path).",
            type=seconds,
            metavar="SECONDS",
            gunicorn=False,
        ),
        Setting(
            "proxy_health_path",
            ("--proxy-health-path",),
            None,
            "Probe a down --proxy upstream with a GET of its URL's path plus this one, "
            "answered below 500 (interim 1xx answers skipped), instead of a TCP connect. "
            "Off by default.",
            type=health_path,
            metavar="PATH",
            gunicorn=False,
        ),
        Setting(
            "proxy_preserve_host",
            ("--proxy-preserve-host",),
            False,
            "Send the client's Host to the upstream (default: the upstream's own).",
            type=None,
            action="store_true",
            gunicorn=False,
        ),
        Setting(
            "proxy_status",
            ("--proxy-status",),
            None,
            "Answer GET of this path with the --proxy upstreams' state as JSON (url, up, "
            "active, failures). Off by default.",
            type=health_path,
            metavar="PATH",
            gunicorn=False,
        ),
        Setting(
            "compress",
            ("--compress",),
            False,
            "Compress responses with zstd, brotli or gzip, as the client's Accept-Encoding "
            "prefers, as they stream (the rules of qiao.middleware.Compress, in the engine).",
            type=None,
            action="store_true",
            gunicorn=False,
        ),
        Setting(
            "compress_min_size",
            ("--compress-min-size",),
            1024,
            "With --compress: bodies known to be shorter than this many bytes are sent as "
            "they are.",
            type=positive_int,
            metavar="BYTES",
            gunicorn=False,
        ),
        Setting(
            "compress_types",
            ("--compress-type",),
            None,
            "With --compress: a media type to compress ('text/' for all of text/*); repeatable. "
            "Default: text/, JSON, JavaScript, XML, SVG, wasm (as qiao.middleware.Compress).",
            type=media_type,
            action="append",
            metavar="TYPE",
            gunicorn=False,
        ),
        Setting(
            "compress_codings",
            ("--compress-coding",),
            None,
            "With --compress: a coding to offer (zstd, br, gzip); repeatable, in order of "
            "preference when the client rates them alike. Default: zstd, br, gzip.",
            type=coding,
            action="append",
            metavar="CODING",
            gunicorn=False,
        ),
        Setting(
            "compress_levels",
            ("--compress-level",),
            None,
            "With --compress: CODING=LEVEL (e.g. br=5; gzip 0-9, br 0-11, zstd 1-19); repeatable. "
            "Default: gzip 6, br 4, zstd 3.",
            type=coding_level,
            action="append",
            metavar="CODING=N",
            gunicorn=False,
        ),
    ),
)
