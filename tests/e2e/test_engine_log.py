"""The engine's own messages (a native proxy's upstream failing, an
internal error) go through Python's ``qiao.error`` logger like every other
line: into ``--error-logfile`` in its format, filtered by ``--log-level``,
never straight to the terminal (``crates/io/src/notice.rs``)."""

from __future__ import annotations

import pytest
from conftest import free_port
from rawhttp import Conn, wait_for

pytestmark = pytest.mark.qiao_only("Qiao's native proxy and engine log path")

NEEDLE = "proxy: upstream"


def proxied_to_nowhere(start_server, tmp_path, level: str):
    log = tmp_path / "error.log"
    dead = f"http://127.0.0.1:{free_port()}"
    srv = start_server(
        "apps:app",
        options=[
            "--workers", "1",
            "--proxy", f"/up={dead}",
            "--error-logfile", str(log),
            "--log-level", level,
        ],
    )  # fmt: skip
    with Conn(srv.host, srv.port) as c:
        assert c.request("GET", "/up/x").status == 502
    return srv, log


def test_an_upstream_failure_is_logged_in_the_error_log(start_server, tmp_path):
    srv, log = proxied_to_nowhere(start_server, tmp_path, "info")
    assert wait_for(lambda: NEEDLE in log.read_text()), log.read_text()
    line = next(x for x in log.read_text().splitlines() if NEEDLE in x)
    assert "[ERROR]" in line, line  # the error log's format and level
    assert NEEDLE not in srv.stderr()


def test_the_log_level_filters_engine_messages(start_server, tmp_path):
    srv, log = proxied_to_nowhere(start_server, tmp_path, "critical")
    # Stopped gracefully: what the worker had queued is written by then.
    srv.stop()
    assert NEEDLE not in log.read_text() + srv.stderr()
