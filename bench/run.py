#!/usr/bin/env python3
"""Benchmark Qiao against peer WSGI servers and print a Markdown report.

A thin wrapper around ``../shared/bench/compare.py`` (beside the repository):
that script starts each server with one worker pinned to CPU 0, drives it
with wrk pinned to CPU 1 and writes raw results as JSON; this one turns them
into tables ready to paste into the README (throughput with a
"qiao / best peer" ratio, p99 latency, resident memory), headed by the date
and the machine. Every pair runs ``--rounds`` times, interleaved (each round
runs every app on every server), and the report keeps each pair's median
round and the median of the rounds' ratios: runs on a shared machine swing
by about 10%, enough for one run to decide a ratio target either way.

    python bench/run.py
    python bench/run.py --servers qiao,bjoern --apps hello,file --duration 10 --out bench.md
    python bench/run.py --apps none --native static,proxy   # native routes vs nginx
    python bench/run.py --apps none --secure h2c,h2,h1tls   # TLS, HTTP/2 vs Granian, nginx

See bench/README.md for the setup.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
import tempfile
from importlib import metadata

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import native as native_bench  # noqa: E402  (bench/native.py, beside this file)
import secure as secure_bench  # noqa: E402  (bench/secure.py: TLS and HTTP/2)
from native import median, median_row  # noqa: E402  (shared with the native rounds)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COMPARE = os.path.join(ROOT, os.pardir, "shared", "bench", "compare.py")
DEFAULT_SERVERS = "qiao,bjoern,granian"
DEFAULT_APPS = "hello,environ,file,echo64k,slow,flask"
OURS = "qiao"


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def version_of(server: str) -> str:
    """Installed version of the package behind a compare.py server name."""
    dist = server.split("-")[0]
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "not installed"


def run_compare(args: argparse.Namespace, server: str, app: str) -> dict:
    """One compare.py run of one server on one app; its result row.

    compare.py runs once per pair so that a server that fails to start
    (compare.py may then stop with a traceback) costs only its own cell.
    """
    fd, json_path = tempfile.mkstemp(prefix="qiao-bench-", suffix=".json")
    os.close(fd)
    cmd = [
        sys.executable,
        args.compare,
        "--servers",
        server,
        "--apps",
        app,
        "--conns",
        str(args.conns),
        "--duration",
        str(args.duration),
        "--json",
        json_path,
    ]
    try:
        proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
        try:
            with open(json_path) as f:
                rows = json.load(f)
        except (OSError, ValueError):
            rows = []
    finally:
        os.unlink(json_path)
    # Pass compare.py's own table row (and where its logs are) on as progress.
    for line in proc.stdout.splitlines():
        if line.startswith((f"| {app} |", "(logs in")):
            print(line, file=sys.stderr, flush=True)
    if rows:
        return rows[0]
    last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
    print(f"| {app} | {server} | compare.py failed: {last}", file=sys.stderr, flush=True)
    return {"app": app, "server": server, "rps": 0.0, "error": "did not run"}


def fmt_num(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def rps_cell(row: dict | None) -> str:
    if row is None:
        return "-"
    if row.get("error"):
        return f"failed ({row['error']})"
    cell = f"{row['rps']:,.0f}"
    if row.get("errors"):
        cell += f" ({row['errors']} errors)"
    return cell


def ratio(rows: dict[str, dict], servers: list[str]) -> float | None:
    """Ours over the best peer's rate, in one round (None if either is missing)."""
    ours = rows.get(OURS)
    peers = [rows[s]["rps"] for s in servers if s != OURS and s in rows and rows[s]["rps"] > 0]
    if not ours or not ours["rps"] or not peers:
        return None
    return ours["rps"] / max(peers)


def table(header: list[str], body: list[list[str]], align: list[str]) -> list[str]:
    return [
        "| " + " | ".join(header) + " |",
        "|" + "|".join(align) + "|",
        *("| " + " | ".join(cells) + " |" for cells in body),
    ]


def report(rounds: list[list[dict]], args: argparse.Namespace) -> str:
    """The tables, from every round's rows (one per app and server)."""
    servers = args.servers.split(",")
    apps = args.apps.split(",")
    # by_round[i][app][server]: round i's row.
    by_round: list[dict[str, dict[str, dict]]] = []
    for results in rounds:
        by_app: dict[str, dict[str, dict]] = {app: {} for app in apps}
        for row in results:
            by_app.setdefault(row["app"], {})[row["server"]] = row
        by_round.append(by_app)
    by_app = {
        app: {
            s: median_row([r[app][s] for r in by_round if s in r[app]])
            for s in servers
            if any(s in r[app] for r in by_round)
        }
        for app in apps
    }

    now = datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    versions = ", ".join(f"{s} {version_of(s)}" for s in servers)
    lines = [
        f"Benchmark of {now} on {cpu_model()}, {os.cpu_count()} cores, "
        f"Linux {platform.release()}, Python {platform.python_version()}.",
        "",
        f"One worker process per server pinned to CPU 0, wrk pinned to CPU 1, "
        f"{args.conns} connections, {args.duration} s per run after a 1 s warm-up "
        f"({versions}). Compare columns, not runs: absolute numbers vary between runs.",
        "",
        f"Requests per second (higher is better; the median of {len(rounds)} interleaved "
        "round(s), and the median of the rounds' ratios):",
        "",
    ]
    show_ratio = OURS in servers and len(servers) > 1
    header = ["app", *servers]
    if show_ratio:
        header += ["qiao / best peer"] + (["ratio by round"] if len(rounds) > 1 else [])
    body = []
    for app in apps:
        rows = by_app[app]
        cells = [app, *(rps_cell(rows.get(s)) for s in servers)]
        if show_ratio:
            each = [ratio(r[app], servers) for r in by_round]
            known = [x for x in each if x is not None]
            cells.append(f"{median(known):.2f}x" if known else "-")
            if len(rounds) > 1:
                cells.append(", ".join("-" if x is None else f"{x:.2f}" for x in each))
        body.append(cells)
    lines += table(header, body, ["---"] + ["---:"] * (len(header) - 1))

    for title, key, digits in (
        ("p99 latency, ms (lower is better):", "p99_ms", 2),
        ("Resident memory of the server after the run, MiB:", "rss_mib", 1),
    ):
        body = [
            [app, *(fmt_num((by_app[app].get(s) or {}).get(key), digits) for s in servers)]
            for app in apps
        ]
        lines += ["", title, ""]
        lines += table(["app", *servers], body, ["---"] + ["---:"] * len(servers))
    return "\n".join(lines) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument(
        "--servers",
        default=DEFAULT_SERVERS,
        help=f"comma-separated compare.py servers (default {DEFAULT_SERVERS})",
    )
    ap.add_argument(
        "--apps",
        default=DEFAULT_APPS,
        help=f"comma-separated compare.py apps (default {DEFAULT_APPS})",
    )
    ap.add_argument("--conns", type=int, default=50, help="wrk connections (default 50)")
    ap.add_argument("--duration", type=int, default=5, help="seconds per measured run (default 5)")
    ap.add_argument(
        "--native",
        default="",
        metavar="SCENARIOS",
        help="also run native-route scenarios against nginx: static,proxy (bench/native.py)",
    )
    ap.add_argument(
        "--secure",
        default="",
        metavar="PROTOCOLS",
        help="also run TLS/HTTP/2 rounds against Granian (and nginx over TLS): "
        "h2c,h2,h1tls (bench/secure.py, with ../shared/bench/h2tls.py)",
    )
    ap.add_argument(
        "--rounds",
        type=int,
        default=3,
        help="interleaved rounds of every pair (and native scenario); medians are "
        "reported (default 3)",
    )
    ap.add_argument("--out", metavar="FILE", help="also write the Markdown report to FILE")
    ap.add_argument(
        "--compare",
        default=os.path.normpath(COMPARE),
        help="path of compare.py (default ../shared/bench/compare.py)",
    )
    args = ap.parse_args()
    if not os.path.isfile(args.compare):
        ap.error(f"{args.compare} not found: the shared/ directory must sit beside the repo")

    print(
        f"{args.compare}: servers {args.servers}; apps {args.apps}; "
        f"{args.conns} connections, {args.duration} s, {args.rounds} round(s)",
        file=sys.stderr,
        flush=True,
    )
    native = [n for n in args.native.split(",") if n]
    unknown = set(native) - set(native_bench.SCENARIOS)
    if unknown:
        ap.error(f"unknown native scenarios {sorted(unknown)}: choose from static, proxy")
    secure = [p for p in args.secure.split(",") if p]
    if set(secure) - set(secure_bench.PROTOCOLS):
        ap.error(f"unknown protocols {sorted(set(secure) - set(secure_bench.PROTOCOLS))}")
    apps = [a for a in args.apps.split(",") if a and a != "none"]
    args.apps = ",".join(apps)
    rounds = [
        [run_compare(args, server, app) for app in apps for server in args.servers.split(",")]
        for _ in range(max(1, args.rounds) if apps else 0)
    ]
    failed = sorted({f"{r['server']}/{r['app']}" for rs in rounds for r in rs if r.get("error")})

    text = report(rounds, args) if apps else ""
    if native:
        section, ok = native_bench.run(args, native)
        text += section
        if not ok:
            failed.append("native")
    if secure:
        section, ok = secure_bench.run(args, secure)
        text += section
        if not ok:
            failed.append("secure")
    print()
    print(text, end="")
    if args.out:
        with open(args.out, "w") as f:
            f.write(text)
        print(f"\n(written to {args.out})", file=sys.stderr)
    if failed:
        print(f"\nfailed to run: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
