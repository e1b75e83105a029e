#!/usr/bin/env python3
"""Does a well-behaved client still get served while hostile clients
attack the same worker? (Issue "hostile clients", docs/security.md.)

One worker serves ``bench/hostile_app.py``. A well-behaved client sends
``GET /`` on a keep-alive connection, one request after another (a new
connection after any failure), for ``--duration`` seconds, first with no
attack, then while each attack below runs against the same worker:

- ``pipelining``: 4 connections with a 4 KiB receive buffer pipeline
  ``GET /`` and never read;
- ``probe-flood``: the same with the ``--health-path`` probe;
- ``slow-readers``: 140 connections ask for an 8 MiB body and never read;
- ``slow-generator``: the same, the body made by a generator;
- ``h2-zero-window``: one h2c connection, 128 streams of the 8 MiB body,
  flow-control window 0 (needs the ``h2`` package);
- ``slowloris``: 500 connections send a request head one byte a second;
- ``slow-upload``: 50 connections send a 10 MB body at 1 KiB a second.

With ``--tls`` the worker serves TLS (a throw-away self-signed P-256
certificate), the well-behaved client and every attack above go through
TLS (``h2-zero-window`` with ALPN ``h2``), and two attacks on the
handshake itself are added:

- ``tls-slow-hello``: 500 connections send a ClientHello one byte a
  second (slowloris before the handshake);
- ``tls-handshakes``: 2 processes make full handshakes back to back and
  close each connection at once (a flood of the handshake's CPU). Processes,
  not threads beside the well-behaved client: a busy thread of its own
  process would hold the GIL and delay the client's own reads by up to
  Python's switch interval (5 ms), which measures the client, not Qiao;
  and at the lowest CPU priority (``nice`` 19), so that on a small machine
  they take the CPU the worker and the client leave, and the client's
  latency is the worker's doing, not the scheduler's.

For each it reports the client's success rate, median and p99 latency, the
p99 against the unattacked one (goal: 100 % and within 2x), and the
worker's resident memory after the attack ended (a burst must not leave
it tens of MB larger for good: the last line is its memory once the
threads the attacks started have ended, ``--settle`` seconds later).
Prints a Markdown table; ``--out`` also writes it with the date and
machine.

    PYTHONPATH=python python3 bench/hostile.py
    PYTHONPATH=python python3 bench/hostile.py --duration 10 --out bench/RESULTS-hostile.md
    PYTHONPATH=python python3 bench/hostile.py --server-args "--threads 1"
    PYTHONPATH=python python3 bench/hostile.py --tls --out bench/RESULTS-hostile-tls.md
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import shlex
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

# The clients (bench/hostile_clients.py, beside this file): the well-behaved
# one and the attacks.
import hostile_clients
from hostile_clients import ATTACKS, TLS_ONLY, client_context, well_behaved

BENCH_DIR = os.path.dirname(os.path.abspath(__file__))


def self_signed(work: str) -> list[str]:
    """A throw-away certificate and key in `work`, as qiao options."""
    cert, key = f"{work}/c.pem", f"{work}/k.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"]
        + ["-nodes", "-keyout", key, "-out", cert, "-days", "2", "-subj", "/CN=127.0.0.1"],
        check=True,
        capture_output=True,
    )
    return ["--certfile", cert, "--keyfile", key]


class Server:
    def __init__(self, port: int, args: list[str]):
        cmd = [sys.executable, "-m", "qiao", "hostile_app:app", "--bind", f"127.0.0.1:{port}"]
        cmd += ["--workers", "1", "--io-timeout", "30", "--health-path", "/healthz", *args]
        # The server runs in bench/: a relative PYTHONPATH (the docstring's
        # `python`) is made absolute first, or the installed qiao would be
        # measured instead of the tree's.
        given = os.environ.get("PYTHONPATH", "").split(os.pathsep)
        given = [os.path.abspath(p) for p in given if p]
        path = os.pathsep.join([BENCH_DIR, *given])
        env = dict(os.environ, PYTHONPATH=path)
        self.port = port
        self.proc = subprocess.Popen(cmd, cwd=BENCH_DIR, env=env)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.1)
        raise SystemExit("the server did not start")

    def worker_rss_mib(self) -> float:
        """Resident memory of the (one) worker process."""
        children = open(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children").read().split()
        for pid in children:
            for line in open(f"/proc/{pid}/status"):
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
        return float("nan")

    def stop(self):
        self.proc.terminate()
        self.proc.wait(15)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_one(server: Server, name: str, duration: float) -> dict:
    attack = ATTACKS[name]
    stop = threading.Event()
    held: list = []
    thread = None
    if attack is not None:

        def attacking():
            held.extend(attack(server.port, stop) or [])

        thread = threading.Thread(target=attacking, daemon=True)
        thread.start()
        time.sleep(1.0)  # let the attack take hold before measuring
    tried, lat = well_behaved(server.port, duration)
    stop.set()
    if thread is not None:
        thread.join(10)
    for s in held:
        s.close()
    time.sleep(1.5)  # the worker sees the closes and frees what they held
    lat.sort()
    return {
        "attack": name,
        "tried": tried,
        "ok": len(lat),
        "p50": statistics.median(lat) * 1000 if lat else float("nan"),
        "p99": lat[min(len(lat) - 1, int(len(lat) * 0.99))] * 1000 if lat else float("nan"),
        "rss": server.worker_rss_mib(),
    }


def table(rows: list[dict], base_rss: float, settle: float, settled_rss: float) -> str:
    base = rows[0]["p99"]
    out = [
        f"Worker RSS before any attack: {base_rss:.1f} MiB.",
        "",
        "| attack | requests | success | p50 ms | p99 ms | p99 / unattacked "
        "| worker RSS after, MiB |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        rate = 100.0 * r["ok"] / max(1, r["tried"])
        out.append(
            f"| {r['attack']} | {r['tried']} | {rate:.1f} % | {r['p50']:.2f} | {r['p99']:.2f} "
            f"| {r['p99'] / base:.2f}x | {r['rss']:.1f} |"
        )
    out += ["", f"Worker RSS {settle:g} s after the last attack: {settled_rss:.1f} MiB."]
    return "\n".join(out)


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--duration", type=float, default=5.0, help="seconds measured per attack")
    ap.add_argument("--server-args", default="", help="more options for qiao")
    ap.add_argument(
        "--attacks",
        help="comma-separated, 'none' first (default: all; the tls- ones need --tls)",
    )
    ap.add_argument("--tls", action="store_true", help="serve and attack over TLS")
    ap.add_argument("--out", help="also write the table (with date and machine) here")
    ap.add_argument(
        "--settle",
        type=float,
        default=35.0,
        help="seconds to wait after the attacks before the last memory reading "
        "(idle serving threads end after 30 s)",
    )
    args = ap.parse_args()
    server_args = shlex.split(args.server_args)
    if args.tls:
        hostile_clients.TLS, hostile_clients.TLS_H2 = client_context(), client_context(["h2"])
        server_args += self_signed(tempfile.mkdtemp(prefix="qiao-hostile-"))
    default = [a for a in ATTACKS if args.tls or a not in TLS_ONLY]
    names = [a for a in args.attacks.split(",") if a] if args.attacks else default
    if not args.tls and TLS_ONLY & set(names):
        raise SystemExit(f"{', '.join(sorted(TLS_ONLY & set(names)))} need --tls")
    if names[0] != "none":
        names.insert(0, "none")
    server = Server(free_port(), server_args)
    try:
        well_behaved(server.port, 1.0)  # warm up
        base_rss = server.worker_rss_mib()
        rows = []
        for name in names:
            rows.append(run_one(server, name, args.duration))
            print(rows[-1], file=sys.stderr, flush=True)
        time.sleep(args.settle)
        settled_rss = server.worker_rss_mib()
    finally:
        server.stop()
    text = table(rows, base_rss, args.settle, settled_rss)
    print(text)
    if args.out:
        with open(args.out, "w") as f:
            f.write(f"# Hostile clients against one worker ({datetime.date.today()})\n\n")
            f.write(f"`python3 bench/hostile.py --duration {args.duration:g}")
            f.write(" --tls" if args.tls else "")
            f.write(f" --server-args {shlex.quote(args.server_args)}`" if args.server_args else "`")
            machine = f"{platform.node()}, {os.cpu_count()} CPUs"
            f.write(f" on {machine}, Python {platform.python_version()}.\n\n")
            f.write(text + "\n")


if __name__ == "__main__":
    main()
