"""Builds the servers the middleware tests talk to, by *kind*, so the same
tests can run against another implementation of the same features.

Kinds (``QIAO_MW_KINDS``, comma-separated; default ``middleware,native``):

* ``middleware``: Qiao serving ``mw_apps:make_<feature>()``, the portable
  ``qiao.middleware`` stack, configured by the JSON in ``MW_CONFIG``.
* ``native``: Qiao's own flags (``--static``, ``--proxy``, ``--compress``)
  in front of ``mw_apps:content``, the same config turned into options by
  :func:`native_options` (for compress, an entry in :data:`NATIVE_OPTIONS`);
  features without native flags are skipped.

Test modules parametrize a fixture over :data:`KINDS` and call
:func:`build`; everything else (the inner ``content`` app, the upstreams)
is shared.
"""

from __future__ import annotations

import gzip
import json
import os
import sys

import brotli
import pytest
import zstandard
from conftest import E2E_DIR, IS_GUNICORN, free_port

KINDS = [
    k.strip()
    for k in os.environ.get("QIAO_MW_KINDS", "middleware,native").split(",")
    # Under gunicorn (the suite run against another server) there are no
    # native flags.
    if k.strip() and not (IS_GUNICORN and k.strip() == "native")
]

#: The portable options of each feature and the native flag they map to.
STATIC_FLAGS = {"cache_control": "--static-cache-control", "etag": "--static-etag"}
PROXY_FLAGS = {
    "timeout": "--proxy-timeout",
    "connect_timeout": "--proxy-connect-timeout",
    "max_fails": "--proxy-max-fails",
    "probe_interval": "--proxy-probe-interval",
    "health_path": "--proxy-health-path",
}
#: Where the native proxy reports its upstreams (``Proxy.states()`` for the
#: portable one, mounted at the same path by ``mw_apps.make_proxy``).
PROXY_STATUS_PATH = "/_proxy/state"


def _compress_options(config: dict) -> list[str]:
    """``Compress(app, **config["opts"])`` as ``--compress`` options."""
    opts = dict(config.get("opts", {}))
    args = ["--compress"]
    if "min_size" in opts:
        args += ["--compress-min-size", str(opts.pop("min_size"))]
    for t in opts.pop("types", ()):
        args += ["--compress-type", t]
    for c in opts.pop("codings", ()):
        args += ["--compress-coding", c]
    for c, level in opts.pop("levels", {}).items():
        args += ["--compress-level", f"{c}={level}"]
    assert not opts, f"no native option for {sorted(opts)}"
    return args


#: Per feature, how a test's config becomes native options.
NATIVE_OPTIONS = {"compress": _compress_options}


def decode(coding, data: bytes) -> bytes:
    """``data`` decoded from the content coding ``coding`` (None: as is)."""
    if coding == "gzip":
        return gzip.decompress(data)
    if coding == "br":
        return brotli.decompress(data)
    if coding == "zstd":
        return zstandard.ZstdDecompressor().decompressobj().decompress(data)
    assert coding is None, coding
    return data


def native_options(feature: str, config: dict) -> list[str]:
    """The command-line options of the native flags for ``config``."""
    if feature in NATIVE_OPTIONS:
        return NATIVE_OPTIONS[feature](config)
    out: list[str] = []
    opts = dict(config.get("opts", {}))
    if feature == "static":
        for prefix, folder in config["dirs"].items():
            out.append(f"--static={prefix}={folder}")
        if "index" in opts:
            out.append(f"--static-index={opts.pop('index') or ''}")
        if opts.pop("hidden", False):
            out.append("--static-hidden")
        for ext, ctype in opts.pop("types", {}).items():
            out.append(f"--static-type={ext}={ctype}")
        flags = STATIC_FLAGS
    elif feature == "proxy":
        out.append("--proxy=/=" + ",".join(config["upstreams"]))
        out.append(f"--proxy-balance={config.get('balance', 'round_robin')}")
        out.append(f"--proxy-status={PROXY_STATUS_PATH}")
        if opts.pop("preserve_host", False):
            out.append("--proxy-preserve-host")
        flags = PROXY_FLAGS
    else:
        pytest.skip(f"no native flags for {feature}")
    for key, value in opts.items():
        if key not in flags:
            pytest.skip(f"no native flag for {feature} option {key}")
        if key == "etag" and value is None:
            value = "none"
        out.append(f"{flags[key]}={'' if value is None else value}")
    return out


def build(kind: str, start, feature: str, config: dict, options=()):
    """A running server with ``feature`` configured by ``config``; ``start`` is
    ``start_server`` or ``pooled`` (anything taking ``app, options=, env=``)."""
    if kind == "middleware":
        env = {"MW_CONFIG": json.dumps(config, sort_keys=True)}
        return start(f"mw_apps:make_{feature}()", options=list(options), env=env)
    if kind == "native":
        return start("mw_apps:content", options=[*options, *native_options(feature, config)])
    raise pytest.UsageError(f"unknown middleware server kind {kind!r}")


def qiao_upstream(start_server, name: str, port: int | None = None, options=()):
    """A second Qiao serving ``mw_upstream:app`` as ``name``."""
    port = port or free_port()
    return start_server(
        "mw_upstream:app",
        binds=[f"127.0.0.1:{port}"],
        options=list(options),
        env={"MW_NAME": name},
    )


def httpd_upstream(start_server, name: str, port: int | None = None):
    """An ``http.server`` upstream (``mw_httpd.py``) as ``name``."""
    port = port or free_port()
    cmd = [sys.executable, str(E2E_DIR / "mw_httpd.py"), str(port), name]
    return start_server(cmd=cmd, binds=[f"127.0.0.1:{port}"])


def stdlib_http_server(start_server, directory: str):
    """``python -m http.server`` serving ``directory``."""
    port = free_port()
    cmd = [sys.executable, "-m", "http.server", "--bind", "127.0.0.1", "-d", directory, str(port)]
    return start_server(cmd=cmd, binds=[f"127.0.0.1:{port}"])


def dead_url() -> str:
    """The URL of a port nothing listens on."""
    return f"http://127.0.0.1:{free_port()}"


class ChunkedReader:
    """Reads a chunked body from a ``rawhttp.Conn`` as its bytes arrive, not
    chunk by chunk: a server that has written only part of a large chunk
    before the app blocks (Qiao writes what the socket takes) still lets a
    test see the part."""

    def __init__(self, conn):
        self.conn, self.left = conn, 0  # bytes left in the current chunk

    def some(self) -> bytes:
        """Some body bytes as soon as any arrive; ``b""`` after the last chunk."""
        conn = self.conn
        if self.left == 0:
            size = int(conn.read_until(b"\r\n").split(b";")[0].strip(), 16)
            if size == 0:
                while conn.read_until(b"\r\n") != b"\r\n":  # trailers
                    pass
                return b""
            self.left = size
        if not conn.buf and not conn._fill():
            raise EOFError("connection closed inside a chunk")
        data, conn.buf = conn.buf[: self.left], conn.buf[self.left :]
        self.left -= len(data)
        if self.left == 0:
            assert conn.read_exact(2) == b"\r\n"
        return data

    def rest(self) -> bytes:
        return b"".join(iter(self.some, b""))
