#!/usr/bin/env python3
"""Instructions per request of one Qiao worker, counted by callgrind.

Rates on the shared 2-core machine swing by ±10% from run to run; an
instruction count does not (±0.3%: Python seeds its string hashing per
process), so a change worth a percent or two shows here first, and then
in ``bench/run.py``. The worker runs under ``valgrind --tool=callgrind``;
``h2load --h1`` sends ``--warmup`` requests, the counters are dumped, then
``--requests`` more, and the second dump's total over ``--requests`` is
the answer. Everything the worker does in that window counts: the loop,
the app, the front's runtime (inflated: callgrind makes the worker ~50×
slower, so time-driven ticks come more often per request), and with
``--tls`` the handshakes of the ``--conns`` connections.

    python bench/instructions.py                       # environ, plaintext
    python bench/instructions.py --tls --top 25        # over TLS, top functions
    PYTHONPATH=/tmp/other-build python bench/instructions.py   # another build

Needs valgrind (``callgrind_control``), h2load and openssl; the apps are
``../shared/bench/apps.py``'s.
"""

from __future__ import annotations

import argparse
import collections
import glob
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from hostile import free_port, self_signed  # noqa: E402  (bench/hostile.py, beside this file)

APPS_DIR = os.path.join(HERE, os.pardir, os.pardir, "shared", "bench")
#: Seconds a server under valgrind may take to start answering.
START_TIMEOUT = 120


def load(url: str, requests: int, conns: int) -> None:
    out = subprocess.run(
        ["h2load", "--h1", "-n", str(requests), "-c", str(conns), url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    if f"{requests} succeeded" not in out:
        sys.exit(f"h2load: not every request succeeded:\n{out}")


def dump(pid: int, work: str, part: int) -> str:
    subprocess.run(["callgrind_control", "-d", str(pid)], capture_output=True, check=True)
    path = f"{work}/cg.out.{pid}.{part}"
    deadline = time.monotonic() + 30
    while not (os.path.exists(path) and os.path.getsize(path) > 0):
        if time.monotonic() > deadline:
            sys.exit(f"callgrind wrote no {path}")
        time.sleep(0.2)
    time.sleep(1)  # the file is complete once valgrind has written it all
    return path


def self_costs(path: str) -> tuple[int, collections.Counter]:
    """The dump's total and each function's own instructions."""
    names: dict[str, str] = {}
    costs: collections.Counter = collections.Counter()
    current, in_call, total = None, False, 0
    with open(path) as f:
        for line in f:
            if line.startswith("totals:") or line.startswith("summary:"):
                total = int(line.split()[1])
            m = re.match(r"^(c?fn)=\((\d+)\)(?: (.*))?$", line.rstrip("\n"))
            if m:
                if m.group(3):
                    names[m.group(2)] = m.group(3)
                if m.group(1) == "fn":
                    current = names.get(m.group(2))
                continue
            if line.startswith("calls="):
                in_call = True
            elif line[:1].isdigit() or line[:1] in "+-*":
                if in_call:  # the inclusive cost of a call, not the caller's own
                    in_call = False
                elif current is not None and len(line.split()) > 1:
                    costs[current] += int(line.split()[1])
    return total, costs


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--app", default="environ_json", help="an app of shared/bench/apps.py")
    ap.add_argument("--tls", action="store_true", help="HTTP/1.1 over TLS")
    ap.add_argument("--requests", type=int, default=5000)
    ap.add_argument("--warmup", type=int, default=2000)
    ap.add_argument("--conns", type=int, default=10)
    ap.add_argument("--top", type=int, default=0, help="also list the N costliest functions")
    args = ap.parse_args()

    work = tempfile.mkdtemp(prefix="qiao-callgrind-")
    port = free_port()
    scheme = "https" if args.tls else "http"
    options = self_signed(work) if args.tls else []
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        [os.path.abspath(p) for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
        + [os.path.abspath(APPS_DIR)]
    )
    cmd = ["valgrind", "--tool=callgrind", "--trace-children=yes"]
    cmd += [f"--callgrind-out-file={work}/cg.out.%p", sys.executable, "-m", "qiao"]
    cmd += [f"apps:{args.app}", "--bind", f"127.0.0.1:{port}", "--workers", "1", *options]
    with open(f"{work}/server.log", "w") as log:
        master = subprocess.Popen(cmd, cwd=APPS_DIR, env=env, stdout=log, stderr=log)
    try:
        url = f"{scheme}://127.0.0.1:{port}/"
        deadline = time.monotonic() + START_TIMEOUT
        while subprocess.run(["curl", "-skf", "-o", "/dev/null", url]).returncode != 0:
            if time.monotonic() > deadline or master.poll() is not None:
                sys.exit(f"the server did not answer; see {work}/server.log")
            time.sleep(1)
        children = subprocess.run(
            ["pgrep", "-P", str(master.pid)], capture_output=True, text=True
        ).stdout.split()
        worker = int(children[0])
        load(url, args.warmup, args.conns)
        dump(worker, work, 1)
        load(url, args.requests, args.conns)
        total, costs = self_costs(dump(worker, work, 2))
    finally:
        master.terminate()
        try:
            master.wait(30)
        except subprocess.TimeoutExpired:
            master.kill()
        for leftover in glob.glob(f"{work}/cg.out.*"):
            os.remove(leftover)
    shutil.rmtree(work, ignore_errors=True)
    print(f"{args.app} over {scheme}: {total / args.requests:,.0f} instructions per request")
    for name, cost in costs.most_common(args.top):
        print(f"{cost / args.requests:9,.0f}  {name[:110]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
