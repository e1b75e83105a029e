#!/usr/bin/env python3
"""HTTP/2 request bodies: Qiao against Granian (or two Qiao builds), h2c and
h2 over TLS, `POST`s of a few sizes to ``apps:echo`` (reads the body,
answers its length), set up as ``../shared/bench/h2tls.py`` sets up its
runs: one worker pinned to CPU 0, ``h2load -m 10`` pinned to CPU 1,
interleaved rounds, medians.

The referee's own runs are ``GET``s; this covers what a stream with a body
costs (`crates/front/src/upload.rs`: one whose declared length is at most
256 KiB is taken into memory and handed to the loop with its head).

    python bench/uploads.py                                  # qiao, granian
    python bench/uploads.py --sizes 1000,65536 --protos h2c --rounds 5
    python bench/uploads.py --servers qiao,qiao:/tmp/before  # two builds

``qiao:DIR`` runs the ``qiao`` package in DIR (put first on the server's
``PYTHONPATH``; see ``bench/ab_secure.py`` for making one). Needs h2load
and openssl.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import tempfile

from cpu_per_request import COMPARE
from hostile import free_port, self_signed
from native import Running, median
from secure import load_h2tls

#: Seconds of load before the measured run.
WARMUP_SECONDS = 1


def h2load(proto: str, port: int, seconds: int, conns: int, body: str) -> tuple[float, int]:
    """(req/s, failed requests) of one run posting the file `body`."""
    scheme = "https" if proto == "h2" else "http"
    cmd = ["taskset", "-c", "1", "h2load", "-D", str(seconds), "-c", str(conns), "-m", "10"]
    cmd += ["-t", "1", "-d", body, f"{scheme}://127.0.0.1:{port}/"]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 60).stdout
    rate = re.search(r"finished in .*?, ([\d.]+) req/s", out)
    ok = re.search(r"(\d+) succeeded, (\d+) failed, (\d+) errored", out)
    bad = int(ok.group(2)) + int(ok.group(3)) if ok else -1
    return (float(rate.group(1)) if rate else 0.0), bad


def one(h2tls, server: str, proto: str, body: str, args, work: str, pki) -> tuple[float, int]:
    name, _, build = server.partition(":")
    port = free_port()
    cmd = h2tls.cmd(name, proto, "echo", port, *pki)
    path = [os.path.abspath(build)] if build else []
    env = {"PYTHONPATH": os.pathsep.join([*path, h2tls.BENCH])}
    log = f"{work}/{name}-{proto}-{os.path.basename(body)}.log"
    with Running(cmd, 0, log, cwd=h2tls.BENCH, env=env):
        if not h2tls.wait_port(port):
            return 0.0, -1
        h2load(proto, port, WARMUP_SECONDS, args.conns, body)
        return h2load(proto, port, args.duration, args.conns, body)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--servers", default="qiao,granian")
    ap.add_argument("--protos", default="h2c,h2")
    ap.add_argument("--sizes", default="1000,65536", help="body sizes in bytes")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--duration", type=int, default=5)
    ap.add_argument("--conns", type=int, default=50)
    ap.add_argument("--compare", default=COMPARE, help="../shared/bench/compare.py")
    args = ap.parse_args()

    h2tls = load_h2tls(args.compare)
    work = tempfile.mkdtemp(prefix="qiao-uploads-")
    _, cert, _, key = self_signed(work)
    servers = args.servers.split(",")
    bodies = {}
    for size in map(int, args.sizes.split(",")):
        bodies[size] = f"{work}/body-{size}"
        with open(bodies[size], "wb") as f:
            f.write(os.urandom(size))
    cases = [(p, s) for p in args.protos.split(",") for s in bodies]
    runs: dict[tuple[str, int, str], list[float]] = {}
    for r in range(max(1, args.rounds)):
        for proto, size in cases:
            order = servers if r % 2 == 0 else servers[::-1]
            for server in order:
                rate, bad = one(h2tls, server, proto, bodies[size], args, work, (cert, key))
                runs.setdefault((proto, size, server), []).append(rate)
                note = f" ({bad} failed)" if bad else ""
                print(f"round {r + 1} {proto} {size} B {server}: {rate:,.0f} req/s{note}")
    first = servers[0]
    print(f"\n| protocol | body | {' | '.join(servers)} | {first} / each |")
    print(f"|---|---:|{'---:|' * len(servers)}---|")
    for proto, size in cases:
        meds = [median(runs[(proto, size, s)]) for s in servers]
        ratios = ", ".join(f"{meds[0] / m:.2f}" if m else "-" for m in meds[1:])
        cells = " | ".join(f"{m:,.0f}" for m in meds)
        print(f"| {proto} | {size:,} B | {cells} | {ratios} |")
    print(f"\n(logs in {work})")


if __name__ == "__main__":
    main()
