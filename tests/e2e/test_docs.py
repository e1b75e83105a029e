"""The generated parts of ``docs/`` (the option reference, the gunicorn
migration tables) are current: regenerating them from the settings table
changes nothing."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from conftest import server_env

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.qiao_only


def test_generated_docs_are_current():
    proc = subprocess.run(
        [sys.executable, "-m", "qiao._docs", "--check", "--root", str(ROOT)],
        env=server_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr


def test_reference_names_every_setting_with_a_meaning():
    from qiao._docs import reference
    from qiao.config import SETTINGS

    text = reference()
    for s in SETTINGS:
        if not s.ignored and s.action != "hook":
            assert f"setting `{s.name}`" in text, s.name
