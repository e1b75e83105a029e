#!/usr/bin/env python3
"""CPU time per request of a server, user and system apart, plaintext and
over TLS: what TLS adds to a request, server by server.

A rate says which server is faster; it does not say where the time goes,
and on the shared 2-core machine it swings by ±10%. The CPU the server's
processes spend per request (their ``utime`` and ``stime`` in
``/proc/PID/stat``, summed over the server's process group, over one
``wrk`` run) splits into the application's side and the kernel's, and
moves less. ``bench/RESULTS.md`` (2026-12-05, 15:20 UTC) used it to show
that TLS adds 3–4 µs to a Qiao request and 1–2 µs to a Granian one.

Servers start as ``../shared/bench/h2tls.py`` starts them (one worker
pinned to CPU 0, wrk pinned to CPU 1, a throw-away P-256 certificate);
every (server, protocol) pair runs ``--rounds`` times, interleaved.

    python bench/cpu_per_request.py                          # qiao,granian; environ
    python bench/cpu_per_request.py --app hello --rounds 3
    PYTHONPATH=/tmp/other-build python bench/cpu_per_request.py --servers qiao

Needs wrk and openssl (and Granian for ``granian``).
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import tempfile
import time

from hostile import free_port, self_signed
from native import Running, median
from secure import load_h2tls, wrk_report

HERE = os.path.dirname(os.path.abspath(__file__))
COMPARE = os.path.join(HERE, os.pardir, os.pardir, "shared", "bench", "compare.py")
#: The benchmark apps of ``../shared/bench/apps.py`` by their short names.
APPS = {"hello": "hello", "environ": "environ_json"}
#: Seconds of load before the measured run (connections made, caches warm).
WARMUP_SECONDS = 1


def group_cpu(pgid: int) -> tuple[int, int]:
    """User and system clock ticks of every process in the group."""
    user = system = 0
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            stat = open(f"/proc/{pid}/stat").read()
        except OSError:
            continue
        # The command name may hold spaces and parentheses: fields follow
        # the last ')'.
        fields = stat[stat.rindex(")") + 2 :].split()
        if int(fields[2]) == pgid:
            user, system = user + int(fields[11]), system + int(fields[12])
    return user, system


def wrk(url: str, conns: int, seconds: int) -> tuple[int, float]:
    """(requests, requests per second) of one wrk run pinned to CPU 1."""
    out = wrk_report(url, conns, seconds)
    done = re.search(r"(\d+) requests in", out)
    rate = re.search(r"Requests/sec:\s+([\d.]+)", out)
    return (int(done.group(1)) if done else 0), (float(rate.group(1)) if rate else 0.0)


def one(h2tls, server: str, proto: str, args, work: str, cert: str, key: str) -> dict:
    """One measured run: req/s and µs of user and system CPU per request."""
    port = free_port()
    cmd = h2tls.cmd(server, proto, APPS[args.app], port, cert, key)
    # Another build through PYTHONPATH, made absolute: the server runs in
    # the benchmark apps' directory.
    given = [os.path.abspath(p) for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    env = {"PYTHONPATH": os.pathsep.join([*given, h2tls.BENCH])}
    url = f"{'https' if proto == 'h1tls' else 'http'}://127.0.0.1:{port}/"
    row = {"server": server, "proto": proto, "rps": 0.0, "user": 0.0, "system": 0.0}
    with Running(cmd, 0, f"{work}/{server}-{proto}.log", cwd=h2tls.BENCH, env=env) as run:
        if not h2tls.wait_port(port):
            return dict(row, error="did not start")
        wrk(url, args.conns, WARMUP_SECONDS)
        before = group_cpu(run.proc.pid)
        done, rate = wrk(url, args.conns, args.duration)
        after = group_cpu(run.proc.pid)
    if not done:
        return dict(row, error="no requests")
    us = 1e6 / os.sysconf("SC_CLK_TCK") / done
    user, system = (after[0] - before[0]) * us, (after[1] - before[1]) * us
    print(
        f"{server} {proto}: {rate:.0f} req/s, user {user:.2f} µs, system {system:.2f} µs",
        file=sys.stderr,
        flush=True,
    )
    return dict(row, rps=rate, user=user, system=system)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--servers", default="qiao,granian")
    ap.add_argument("--app", default="environ", choices=sorted(APPS))
    ap.add_argument("--conns", type=int, default=50)
    ap.add_argument("--duration", type=int, default=8, help="seconds per measured run")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--compare", default=COMPARE, help="../shared/bench/compare.py")
    args = ap.parse_args()

    h2tls = load_h2tls(args.compare)
    work = tempfile.mkdtemp(prefix="qiao-cpu-bench-")
    _, cert, _, key = self_signed(work)
    pairs = [(s, p) for s in args.servers.split(",") for p in ("h1", "h1tls")]
    runs: dict[tuple[str, str], list[dict]] = {pair: [] for pair in pairs}
    for _ in range(max(1, args.rounds)):
        for server, proto in pairs:
            runs[(server, proto)].append(one(h2tls, server, proto, args, work, cert, key))
            time.sleep(0.5)
    print(f"\nCPU per `{args.app}` request (median of {args.rounds} rounds, -c{args.conns}):\n")
    print("| server | protocol | req/s | user µs | system µs | total µs |")
    print("|---|---|---:|---:|---:|---:|")
    total: dict[tuple[str, str], float] = {}
    for (server, proto), rows in runs.items():
        good = [r for r in rows if not r.get("error")]
        if not good:
            print(f"| {server} | {proto} | failed ({rows[0]['error']}) | - | - | - |")
            continue
        user, system = median([r["user"] for r in good]), median([r["system"] for r in good])
        total[(server, proto)] = user + system
        rate = median([r["rps"] for r in good])
        cells = f"{rate:,.0f} | {user:.2f} | {system:.2f} | {user + system:.2f}"
        print(f"| {server} | {proto} | {cells} |")
    print()
    for server in args.servers.split(","):
        if (server, "h1") in total and (server, "h1tls") in total:
            added = total[(server, "h1tls")] - total[(server, "h1")]
            print(f"- {server}: TLS adds {added:.2f} µs per request")


if __name__ == "__main__":
    main()
