"""bench/run.py's report: medians of interleaved rounds (no server is run;
the rows are compare.py's JSON rows, made up)."""

from __future__ import annotations

import argparse
import importlib.util
from pathlib import Path

import pytest

pytestmark = pytest.mark.qiao_only

RUN_PY = Path(__file__).resolve().parents[2] / "bench" / "run.py"


@pytest.fixture(scope="module")
def run():
    spec = importlib.util.spec_from_file_location("bench_run", RUN_PY)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def row(app: str, server: str, rps: float, p99: float = 1.0, **extra) -> dict:
    return {"app": app, "server": server, "rps": rps, "p99_ms": p99, "rss_mib": 30.0, **extra}


def args(servers: str, apps: str) -> argparse.Namespace:
    return argparse.Namespace(servers=servers, apps=apps, conns=50, duration=5)


def test_median_round_and_median_ratio(run):
    rounds = [
        [row("hello", "qiao", 120_000, p99=0.5), row("hello", "bjoern", 100_000)],
        [row("hello", "qiao", 90_000, p99=0.9), row("hello", "bjoern", 100_000)],
        [row("hello", "qiao", 130_000, p99=0.4), row("hello", "bjoern", 110_000)],
    ]
    text = run.report(rounds, args("qiao,bjoern", "hello"))
    # qiao's median round is the 120k one (its p99 goes with it); the
    # ratios by round are 1.20, 0.90, 1.18: their median is 1.18, not
    # the ratio of the medians (120k / 100k).
    assert "| hello | 120,000 | 100,000 | 1.18x | 1.20, 0.90, 1.18 |" in text
    assert "| hello | 0.50 | 1.00 |" in text
    assert "median of 3 interleaved round(s)" in text


def test_one_round_has_no_rounds_column_and_failures_show(run):
    rounds = [
        [
            row("hello", "qiao", 120_000),
            {"app": "hello", "server": "bjoern", "rps": 0.0, "error": "did not run"},
        ]
    ]
    text = run.report(rounds, args("qiao,bjoern", "hello"))
    assert "ratio by round" not in text
    assert "| hello | 120,000 | failed (did not run) | - |" in text


def test_median_is_a_real_round(run):
    assert run.median([3.0, 1.0, 2.0]) == 2.0
    assert run.median([4.0, 1.0, 3.0, 2.0]) == 2.0
    rows = [row("a", "q", 5.0), row("a", "q", 7.0, error="x"), row("a", "q", 6.0)]
    assert run.median_row(rows)["error"] == "x"
