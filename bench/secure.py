"""TLS and HTTP/2 rounds for ``bench/run.py --secure h2c,h2,h1tls``.

The servers and the load come from ``../shared/bench/h2tls.py`` (the open
referee of these numbers): one worker pinned to CPU 0, h2load (``-m 10``
streams per connection) or wrk pinned to CPU 1, a throw-away self-signed
P-256 certificate. To those this adds, for HTTP/1.1 over TLS, nginx
answering a fixed 14-byte body over the same certificate: the reference
Qiao is measured against there (goal: ≥ 0.8× nginx), and wrk's p99. Every
pair runs ``--rounds`` times, interleaved, and the report keeps medians.

Targets (issue 17): each protocol ≥ 1.3× Granian for ``hello`` and
``environ``; HTTP/1.1 over TLS ≥ 0.8× nginx.
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
import tempfile
import time

from hostile import self_signed
from native import Running, median, nginx_cmd

HERE = os.path.dirname(os.path.abspath(__file__))
PROTOCOLS = ("h2c", "h2", "h1tls")
SERVERS = ("qiao", "granian")
APPS = ("hello", "environ")
#: Goals of the report: (protocol, numerator, denominator, ratio).
GOAL_PEER = 1.3
GOAL_NGINX = 0.8
NGINX_BODY = "Hello, World!\n"


def load_h2tls(compare_path: str):
    """``h2tls.py`` (beside compare.py) as a module."""
    path = os.path.join(os.path.dirname(compare_path), "h2tls.py")
    spec = importlib.util.spec_from_file_location("bench_h2tls", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def wrk_report(url: str, conns: int, seconds: int, *options: str) -> str:
    """wrk's report of one run pinned to CPU 1 (one thread, `conns`
    connections)."""
    cmd = ["taskset", "-c", "1", "wrk", "-t1", f"-c{conns}", f"-d{seconds}s", *options, url]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 60).stdout


def wrk_p99(port: int, duration: int, conns: int) -> tuple[float, float | None]:
    """HTTP/1.1 over TLS with wrk --latency: (req/s, p99 in ms)."""
    out = wrk_report(f"https://127.0.0.1:{port}/", conns, duration, "--latency")
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)", out)
    ms = None
    if p99:
        ms = float(p99.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[p99.group(2)]
    return (float(rps.group(1)) if rps else 0.0), ms


def nginx_tls(work: str, port: int, cert: str, key: str) -> list[str]:
    block = f"""
    server {{
        listen 127.0.0.1:{port} ssl;
        ssl_certificate {cert};
        ssl_certificate_key {key};
        location / {{ default_type text/plain; return 200 "{NGINX_BODY.strip()}\\n"; }}
    }}
    """
    return nginx_cmd(work, block)


def one(h2tls, proto: str, app: str, server: str, args, work: str, cert: str, key: str) -> dict:
    port = h2tls.free_port()
    if server == "nginx":
        cmd = nginx_tls(work, port, cert, key)
        env = None
    else:
        appname = {"hello": "hello", "environ": "environ_json"}[app]
        cmd = h2tls.cmd(server, proto, appname, port, cert, key)
        env = {"PYTHONPATH": h2tls.BENCH}
    log = os.path.join(work, f"{server}-{proto}-{app}.log")
    row = {"proto": proto, "app": app, "server": server, "rps": 0.0, "p99_ms": None}
    with Running(cmd, 0, log, cwd=h2tls.BENCH, env=env):
        if not h2tls.wait_port(port):
            return dict(row, error="did not start")
        time.sleep(0.5)
        if proto == "h1tls":
            wrk_p99(port, 1, args.conns)  # warm-up
            row["rps"], row["p99_ms"] = wrk_p99(port, args.duration, args.conns)
        else:
            h2tls.load(proto, port, 1, args.conns)
            row["rps"], bad = h2tls.load(proto, port, args.duration, args.conns)
            if bad:
                row["error"] = f"{bad} failed requests"
    p99 = "-" if row["p99_ms"] is None else f"{row['p99_ms']:.2f}"
    print(
        f"| {proto} | {app} | {server} | {row['rps']:.0f} | p99 {p99} |",
        file=sys.stderr,
        flush=True,
    )
    return row


def run(args, protos: list[str]) -> tuple[str, bool]:
    """The rounds; the Markdown section and whether everything ran."""
    h2tls = load_h2tls(args.compare)
    work = tempfile.mkdtemp(prefix="qiao-secure-bench-")
    _, cert, _, key = self_signed(work)
    print(f"TLS/HTTP/2 rounds (logs in {work})", file=sys.stderr, flush=True)
    entries = [(p, a, s) for p in protos for a in APPS for s in SERVERS]
    if "h1tls" in protos:
        entries.append(("h1tls", "fixed", "nginx"))
    runs: dict[tuple, list[dict]] = {e: [] for e in entries}
    for _ in range(max(1, args.rounds)):
        for e in entries:
            app = "hello" if e[1] == "fixed" else e[1]
            runs[e].append(dict(one(h2tls, e[0], app, e[2], args, work, cert, key), app=e[1]))
    ok = True
    lines = [
        "",
        "TLS and HTTP/2 (requests per second, median of the rounds):",
        "",
        "| protocol | app | server | req/s | rounds | p99 ms |",
        "|---|---|---|---:|---|---:|",
    ]
    med: dict[tuple, float] = {}
    for e, rows in runs.items():
        if any(r.get("error") for r in rows):
            ok = False
            err = next(r["error"] for r in rows if r.get("error"))
            lines.append(f"| {e[0]} | {e[1]} | {e[2]} | failed ({err}) | - | - |")
            continue
        rates = [r["rps"] for r in rows]
        med[e] = median(rates)
        p99s = [r["p99_ms"] for r in rows if r["p99_ms"] is not None]
        p99 = f"{median(p99s):.2f}" if p99s else "-"
        lines.append(
            f"| {e[0]} | {e[1]} | {e[2]} | {med[e]:,.0f} | "
            f"{', '.join(f'{x:,.0f}' for x in rates)} | {p99} |"
        )
    lines += ["", "| target | ratio | goal | met |", "|---|---:|---:|---|"]
    for proto in protos:
        for app in APPS:
            q, g = med.get((proto, app, "qiao")), med.get((proto, app, "granian"))
            if q and g:
                r = q / g
                lines.append(
                    f"| {proto} {app}: qiao / granian | {r:.2f} | ≥ {GOAL_PEER} | "
                    f"{'yes' if r >= GOAL_PEER else 'no'} |"
                )
        q, n = med.get(("h1tls", "hello", "qiao")), med.get(("h1tls", "fixed", "nginx"))
        if proto == "h1tls" and q and n:
            r = q / n
            lines.append(
                f"| h1tls hello: qiao / nginx (fixed body) | {r:.2f} | ≥ {GOAL_NGINX} | "
                f"{'yes' if r >= GOAL_NGINX else 'no'} |"
            )
    return "\n".join(lines) + "\n", ok
