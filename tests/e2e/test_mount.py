"""``--mount PREFIX=MODULE:CALLABLE``: several applications in one process,
the main one getting everything no prefix takes."""

from __future__ import annotations

import subprocess
import sys

import pytest
import requests

pytestmark = pytest.mark.qiao_only


def test_mounted_apps_share_the_process(pooled):
    srv = pooled("apps:app", options=["--mount", "/t=threads_app:app"])
    # threads_app answers unknown paths with PATH_INFO: the prefix moved out.
    assert requests.get(f"{srv.url}/t/some/where", timeout=5).text == "/some/where"
    assert requests.get(f"{srv.url}/t", timeout=5).text == ""
    # Segment boundaries: /tx is not under /t, so the main app gets it.
    assert requests.get(f"{srv.url}/tx", timeout=5).status_code == 404
    assert requests.get(f"{srv.url}/hello", timeout=5).text == "hello world"
    environ = requests.get(f"{srv.url}/environ", timeout=5).json()["str"]
    assert environ["SCRIPT_NAME"] == ""


def test_longest_prefix_wins(pooled):
    srv = pooled(
        "apps:app", options=["--mount", "/t=threads_app:app", "--mount", "/t/x=threads_app:app"]
    )
    assert requests.get(f"{srv.url}/t/x/y", timeout=5).text == "/y"
    assert requests.get(f"{srv.url}/t/xy", timeout=5).text == "/xy"


@pytest.mark.parametrize("value", ["api=apps:app", "/api", "/api="])
def test_bad_mount_is_a_one_line_error(value):
    proc = subprocess.run(
        [sys.executable, "-m", "qiao", "--mount", value, "apps:app"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert proc.returncode == 2
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
