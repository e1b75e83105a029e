"""Builds the servers the middleware tests talk to, by *kind*, so the same
tests can run against another implementation of the same features.

Kinds (``QIAO_MW_KINDS``, comma-separated; default ``middleware``):

* ``middleware``: Qiao serving ``mw_apps:make_<feature>()``, the portable
  ``qiao.middleware`` stack, configured by the JSON in ``MW_CONFIG``.
* ``native``: Qiao's own ``--static``/``--proxy``/``--compress``/``--mount``
  flags, once they exist; until then its tests are skipped. Adding it means
  turning the same config into options in :func:`native_options` (an entry
  in :data:`NATIVE_OPTIONS`); :func:`kinds_for` then tests the feature with
  both kinds unless ``QIAO_MW_KINDS`` says otherwise.

Test modules parametrize a fixture over :data:`KINDS` and call
:func:`build`; everything else (the inner ``content`` app, the upstreams)
is shared.
"""

from __future__ import annotations

import json
import os
import sys

import pytest
from conftest import E2E_DIR, IS_GUNICORN, free_port

KINDS = [k.strip() for k in os.environ.get("QIAO_MW_KINDS", "middleware").split(",") if k.strip()]


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


def kinds_for(feature: str) -> list[str]:
    """The kinds to test ``feature`` against: :data:`KINDS`, plus ``native``
    when it exists for the feature and ``QIAO_MW_KINDS`` does not choose."""
    if (
        IS_GUNICORN
        or "QIAO_MW_KINDS" in os.environ
        or feature not in NATIVE_OPTIONS
        or "native" in KINDS
    ):
        return KINDS
    return [*KINDS, "native"]


def native_options(feature: str, config: dict) -> list[str]:
    """The command-line options of the native flags for ``config``."""
    if feature in NATIVE_OPTIONS:
        return NATIVE_OPTIONS[feature](config)
    pytest.skip(f"native --{feature} flags are not implemented yet")
    return []


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
