#!/usr/bin/env python3
"""Before/after of Qiao itself: two builds, interleaved, one machine.

A change that must cost no speed (a refactoring, a new layer) is measured
here: each round serves the same apps from build A and from build B (the
order alternating by round), with ``../shared/bench/compare.py`` (one
worker pinned to CPU 0, wrk on CPU 1).
A build is a directory holding a whole ``qiao`` package (its Python files
and its ``_qiao*.so``); this script puts it in place of the installed
package for its runs (a fresh copy, moved in whole, never overwritten while
a server runs) and puts the installed one back at the end.

    # a build of the current tree, and one of an older commit:
    cargo build --release -p qiao --features extension-module
    mkdir -p /tmp/b/qiao && cp -r python/qiao/. /tmp/b/qiao/ \\
        && cp target/release/libqiao.so /tmp/b/qiao/_qiao.cpython-311-x86_64-linux-gnu.so
    python bench/ab.py /tmp/a /tmp/b --apps hello,environ --rounds 8

The report gives each app's median rate per build and the median of the
rounds' B/A ratios (a round's two runs are back to back, so their ratio
swings less than the rates do).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile

import run as bench_run

HERE = os.path.dirname(os.path.abspath(__file__))


def installed_package() -> str:
    """The directory of the ``qiao`` package this Python imports."""
    code = "import os, qiao; print(os.path.dirname(qiao.__file__))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd="/")
    if out.returncode != 0:
        sys.exit("qiao is not installed in this Python (pip install . first)")
    return out.stdout.strip()


def put(build: str, target: str) -> None:
    """Replaces ``target`` with a copy of ``build``'s package, whole."""
    staging = target + ".ab-staging"
    shutil.rmtree(staging, ignore_errors=True)
    src = os.path.join(build, "qiao") if os.path.isdir(os.path.join(build, "qiao")) else build
    shutil.copytree(src, staging, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.rmtree(target)
    os.rename(staging, target)


def measure(compare: str, apps: str, duration: int) -> dict[str, float]:
    with tempfile.NamedTemporaryFile(suffix=".json") as out:
        subprocess.run(
            [sys.executable, compare, "--servers", "qiao", "--apps", apps]
            + ["--duration", str(duration), "--json", out.name],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        with open(out.name) as f:
            rows = json.load(f)
    return {r["app"]: float(r["rps"]) for r in rows if r.get("rps")}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("a", help="build A (before): a directory holding a qiao package")
    ap.add_argument("b", help="build B (after)")
    ap.add_argument("--apps", default="hello,environ,file,flask")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--duration", type=int, default=5)
    ap.add_argument("--compare", default=os.path.normpath(bench_run.COMPARE))
    args = ap.parse_args()
    target = installed_package()
    saved = target + ".ab-saved"
    shutil.rmtree(saved, ignore_errors=True)
    shutil.copytree(target, saved)
    rates: dict[str, dict[str, list[float]]] = {"A": {}, "B": {}}
    try:
        for n in range(args.rounds):
            # The order alternates by round: whichever build runs second in
            # a round was measured ~3% apart from its place alone
            # (bench/RESULTS.md, 2026-12-05 18:00 UTC).
            builds = (("A", args.a), ("B", args.b))
            for name, build in builds if n % 2 == 0 else builds[::-1]:
                put(build, target)
                for app, rps in measure(args.compare, args.apps, args.duration).items():
                    rates[name].setdefault(app, []).append(rps)
                print(f"round {n + 1} {name}: {rates[name]}", file=sys.stderr, flush=True)
    finally:
        shutil.rmtree(target, ignore_errors=True)
        os.rename(saved, target)
    print("| app | A median req/s | B median req/s | median of B/A per round | rounds |")
    print("|---|---:|---:|---:|---:|")
    for app in args.apps.split(","):
        a, b = rates["A"].get(app, []), rates["B"].get(app, [])
        ratios = [y / x for x, y in zip(a, b) if x]
        if not ratios:
            continue
        print(
            f"| {app} | {statistics.median(a):,.0f} | {statistics.median(b):,.0f} "
            f"| {statistics.median(ratios):.3f} | {len(ratios)} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
