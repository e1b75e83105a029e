#!/usr/bin/env python3
"""Before/after of Qiao itself over HTTP/2 and TLS: two builds, interleaved.

``bench/ab.py`` does this for plaintext HTTP/1.1 through ``compare.py``;
this does it for the protocols of ``../shared/bench/h2tls.py`` (h2c, h2,
h1tls), loading each server the way that referee does (one worker pinned
to CPU 0, h2load ``-m 10`` or wrk on CPU 1). Each round runs every
(protocol, app) from build A and from build B back to back, the order
alternating by round; a run reports its rate and the worker's CPU per
request (user + system, from ``/proc``), which swings less than the rate.

A build is a directory holding a whole ``qiao`` package, put first on the
server's ``PYTHONPATH`` (as ``bench/cpu_per_request.py`` does):

    mkdir -p /tmp/b/qiao && cp -r python/qiao/. /tmp/b/qiao/ \\
        && cp target/release/libqiao.so /tmp/b/qiao/_qiao.cpython-311-x86_64-linux-gnu.so
    python bench/ab_secure.py /tmp/a /tmp/b --protos h2c,h2 --rounds 4

Needs h2load, wrk and openssl.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time

from cpu_per_request import APPS, COMPARE, group_cpu
from hostile import free_port, self_signed
from native import Running
from secure import load_h2tls

#: Seconds of load before the measured run.
WARMUP_SECONDS = 1


def one(h2tls, build: str, proto: str, app: str, args, work: str, pki) -> tuple[float, float, int]:
    """(req/s, worker CPU µs per request, failed requests) of one run."""
    port = free_port()
    cmd = h2tls.cmd("qiao", proto, APPS[app], port, *pki)
    env = {"PYTHONPATH": os.pathsep.join([os.path.abspath(build), h2tls.BENCH])}
    with Running(cmd, 0, f"{work}/{proto}-{app}.log", cwd=h2tls.BENCH, env=env) as run:
        if not h2tls.wait_port(port):
            return 0.0, 0.0, -1
        h2tls.load(proto, port, WARMUP_SECONDS, args.conns)
        before = group_cpu(run.proc.pid)
        rate, bad = h2tls.load(proto, port, args.duration, args.conns)
        after = group_cpu(run.proc.pid)
    done = max(rate * args.duration, 1.0)
    ticks = (after[0] + after[1]) - (before[0] + before[1])
    return rate, ticks * 1e6 / os.sysconf("SC_CLK_TCK") / done, bad


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("a", help="build A (before): a directory holding a qiao package")
    ap.add_argument("b", help="build B (after)")
    ap.add_argument("--protos", default="h2c,h2,h1tls")
    ap.add_argument("--apps", default="hello,environ")
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--duration", type=int, default=5)
    ap.add_argument("--conns", type=int, default=50)
    ap.add_argument("--compare", default=COMPARE, help="../shared/bench/compare.py")
    args = ap.parse_args()

    h2tls = load_h2tls(args.compare)
    work = tempfile.mkdtemp(prefix="qiao-ab-secure-")
    _, cert, _, key = self_signed(work)
    cases = [(p, a) for p in args.protos.split(",") for a in args.apps.split(",")]
    runs: dict[tuple[str, str, str], list[tuple[float, float]]] = {}
    for r in range(max(1, args.rounds)):
        for proto, app in cases:
            for name in ("a", "b") if r % 2 == 0 else ("b", "a"):
                rate, us, bad = one(h2tls, getattr(args, name), proto, app, args, work, (cert, key))
                runs.setdefault((proto, app, name), []).append((rate, us))
                print(
                    f"round {r + 1} {proto} {app} {name.upper()}: {rate:,.0f} req/s, "
                    f"{us:.2f} µs/request, {bad} failed",
                    file=sys.stderr,
                    flush=True,
                )
                time.sleep(0.3)
    print(f"\nMedians of {args.rounds} interleaved rounds, -c{args.conns}:\n")
    print("| protocol | app | A req/s | B req/s | B/A (median of rounds) | A µs/req | B µs/req |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for proto, app in cases:
        a, b = runs[(proto, app, "a")], runs[(proto, app, "b")]
        ratio = statistics.median(y[0] / x[0] for x, y in zip(a, b) if x[0])
        rate = [statistics.median(r[0] for r in rows) for rows in (a, b)]
        cpu = [statistics.median(r[1] for r in rows) for rows in (a, b)]
        print(
            f"| {proto} | {app} | {rate[0]:,.0f} | {rate[1]:,.0f} | {ratio:.3f} "
            f"| {cpu[0]:.2f} | {cpu[1]:.2f} |"
        )


if __name__ == "__main__":
    main()
