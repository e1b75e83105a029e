#!/usr/bin/env python3
"""How much memory ``--preload`` saves, measured on a real Django project.

With ``--preload`` the supervisor imports the application once and forks the
workers, which share its pages copy-on-write, until something writes into
them. CPython's reference counts and cyclic collector write into every
object's header, so a worker slowly copies the pages it inherited; Qiao
therefore imports with the collector off and freezes the supervisor's heap
(``gc.freeze()``) before each fork (docs/preload.md). This script serves
``bench/preload_site`` (Django admin, auth, a shop app, pydantic, lxml,
cryptography...) with N workers under each configuration below, warms every
worker with a mix of pages, API calls and admin pages (logged in), then
reads each process's USS (Private_Clean + Private_Dirty) and PSS from
``/proc/PID/smaps_rollup`` and prints a Markdown table:

- qiao without ``--preload``;
- qiao ``--preload`` as before this change (collector untouched: a small
  wrapper replaces ``gc.disable`` and ``gc.freeze`` with no-ops);
- qiao ``--preload`` with the import's collector off but no ``gc.freeze``;
- qiao ``--preload`` (collector off for the import, heap frozen at fork);
- gunicorn without and with ``--preload`` (its default sync worker).

Run from the repository root (Linux; Django and the project's libraries
importable by both Pythons; gunicorn's Python gets this interpreter's
site-packages appended to its path, so both serve the same libraries):

    PYTHONPATH=python python3 bench/preload_memory.py --out bench/RESULTS-preload.md
    PYTHONPATH=python python3 bench/preload_memory.py --workers 4 --per-worker 100 \\
        --gunicorn-python /tmp/gvenv/bin/python
    PYTHONPATH=python python3 bench/preload_memory.py --qiao-args "--threads 1" --only 1,4,5,6
"""

from __future__ import annotations

import argparse
import datetime
import http.cookiejar
import os
import platform
import re
import signal
import socket
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from collections import Counter
from importlib import metadata

BENCH_DIR = os.path.dirname(os.path.abspath(__file__))
APP = "preload_site.wsgi:application"
START_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0
REQUEST_TIMEOUT = 30.0
CLIENT_THREADS = 8
#: The warm-up ends once every worker served this many requests...
DEFAULT_PER_WORKER = 100
#: ...or after this many requests per worker in all, whichever comes first.
MAX_REQUESTS_PER_WORKER = 1000
SETTLE_SECONDS = 1.0
MIB = 1024 * 1024
ADMIN = ("admin", "bench-password")  # preload_site.shop.seed.ADMIN
#: Runs qiao with gc.freeze (and gc.disable) made no-ops: the comparisons
#: without them, with no knob in Qiao itself.
QIAO_WRAPPER = """import gc, runpy, sys
for name in sys.argv.pop(1).split(","):
    setattr(gc, name, lambda: None)
runpy.run_module("qiao", run_name="__main__", alter_sys=True)
"""
# (label, server, preload, gc functions made no-ops)
CONFIGS = [
    ("qiao", "qiao", False, ""),
    ("qiao --preload, collector untouched (before)", "qiao", True, "disable,freeze"),
    ("qiao --preload, import without collector, no freeze", "qiao", True, "freeze"),
    ("qiao --preload (import without collector, gc.freeze at fork)", "qiao", True, ""),
    ("gunicorn", "gunicorn", False, ""),
    ("gunicorn --preload", "gunicorn", True, ""),
]
PATHS = [
    "/",
    "/?page={n}",
    "/product/{k}/",
    "/category/cat-{c}/",
    "/api/products?page={n}",
    "/api/orders",
    "/feed.xml",
    "/sitemap.xml",
    "/admin/",
    "/admin/shop/product/?p={n}",
    "/admin/shop/product/{k}/change/",
    "/admin/shop/order/?status=paid",
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def command(server: str, preload: bool, noop: str, port: int, args) -> list[str]:
    bind = f"127.0.0.1:{port}"
    flags = ["--preload"] if preload else []
    if server == "gunicorn":
        return [args.gunicorn_python, "-m", "gunicorn", "-b", bind, "-w", str(args.workers)] + [
            *flags,
            APP,
        ]
    qiao = [sys.executable, "-c", QIAO_WRAPPER, noop] if noop else [sys.executable, "-m", "qiao"]
    extra = args.qiao_args.split()
    return qiao + ["--bind", bind, "--workers", str(args.workers), *extra, *flags, APP]


def environment(server: str, db: str) -> dict:
    env = dict(os.environ, PRELOAD_BENCH_DB=db, PYTHONUNBUFFERED="1")
    paths = [BENCH_DIR, *filter(None, env.get("PYTHONPATH", "").split(os.pathsep))]
    if server == "gunicorn":  # the same Django and libraries as qiao's interpreter
        paths.append(sysconfig.get_paths()["purelib"])
    env["PYTHONPATH"] = os.pathsep.join(paths)
    env.pop("GUNICORN_CMD_ARGS", None)
    return env


def wait_listening(proc: subprocess.Popen, port: int) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with status {proc.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"server not listening after {START_TIMEOUT}s")


def children(pid: int) -> list[int]:
    with open(f"/proc/{pid}/task/{pid}/children") as f:
        return [int(p) for p in f.read().split()]


def memory(pid: int) -> dict[str, int]:
    """USS and PSS of one process, in bytes, from smaps_rollup, and its
    number of threads."""
    fields = {}
    with open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            m = re.match(r"(\w+):\s+(\d+) kB", line)
            if m:
                fields[m.group(1)] = int(m.group(2)) * 1024
    uss = fields["Private_Clean"] + fields["Private_Dirty"]
    return {"uss": uss, "pss": fields["Pss"], "threads": len(os.listdir(f"/proc/{pid}/task"))}


class Warmup:
    """Client threads, each logged into the admin, requesting a mix of
    pages until every worker has served ``per_worker`` requests."""

    def __init__(self, base: str, workers: int, per_worker: int) -> None:
        self.base, self.workers, self.per_worker = base, workers, per_worker
        self.served: Counter[int] = Counter()
        self.full_collections: dict[int, int] = {}
        self.errors: list[str] = []
        self.lock = threading.Lock()
        self.done = threading.Event()

    def _opener(self) -> urllib.request.OpenerDirector:
        opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar())
        )
        page = opener.open(f"{self.base}/admin/login/", timeout=REQUEST_TIMEOUT).read().decode()
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
        form = {"username": ADMIN[0], "password": ADMIN[1], "csrfmiddlewaretoken": token}
        form["next"] = "/admin/"
        data = urllib.parse.urlencode(form).encode()
        opener.open(f"{self.base}/admin/login/", data, timeout=REQUEST_TIMEOUT).read()
        return opener

    def _client(self, seed: int) -> None:
        opener = self._opener()
        i = seed
        while not self.done.is_set():
            i += 1
            path = PATHS[i % len(PATHS)].format(n=i % 10 + 1, k=i % 400 + 1, c=i % 12)
            try:
                with opener.open(self.base + path, timeout=REQUEST_TIMEOUT) as r:
                    r.read()
                    pid, full = int(r.headers["X-Worker-Pid"]), int(r.headers["X-Gc-Full"])
            except Exception as e:  # noqa: BLE001 - counted, reported
                with self.lock:
                    self.errors.append(f"{path}: {e}")
                continue
            with self.lock:
                self.served[pid] += 1
                self.full_collections[pid] = full
                total = sum(self.served.values())
                warm = len(self.served) >= self.workers and all(
                    n >= self.per_worker for n in self.served.values()
                )
                if warm or total >= self.workers * MAX_REQUESTS_PER_WORKER:
                    self.done.set()

    def run(self) -> None:
        threads = [
            threading.Thread(target=self._client, args=(n * 7,)) for n in range(CLIENT_THREADS)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()


def measure(label: str, server: str, preload: bool, noop: str, db: str, args) -> dict:
    port = free_port()
    proc = subprocess.Popen(
        command(server, preload, noop, port, args),
        cwd=BENCH_DIR,
        env=environment(server, db),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        wait_listening(proc, port)
        warm = Warmup(f"http://127.0.0.1:{port}", args.workers, args.per_worker)
        warm.run()
        time.sleep(SETTLE_SECONDS)
        workers = children(proc.pid)
        mem = {pid: memory(pid) for pid in workers}
        supervisor = memory(proc.pid)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    if warm.errors:
        print(
            f"{label}: {len(warm.errors)} failed requests, e.g. {warm.errors[0]}", file=sys.stderr
        )
    return {
        "label": label,
        "workers": len(workers),
        "requests": sum(warm.served.values()),
        "errors": len(warm.errors),
        "uss": statistics.median(m["uss"] for m in mem.values()),
        "worker_pss": statistics.median(m["pss"] for m in mem.values()),
        "supervisor_pss": supervisor["pss"],
        "total_pss": supervisor["pss"] + sum(m["pss"] for m in mem.values()),
        "threads": statistics.median(m["threads"] for m in mem.values()),
        "full": statistics.median(warm.full_collections.get(p, 0) for p in workers),
    }


def machine(args) -> str:
    cpu = platform.processor() or "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name"))
    except (OSError, StopIteration):
        pass
    gunicorn = subprocess.run(
        [args.gunicorn_python, "-c", "import gunicorn; print(gunicorn.__version__)"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    return (
        f"{cpu}, {os.cpu_count()} cores, Linux {platform.release()}, "
        f"Python {platform.python_version()}, Django {metadata.version('django')}, "
        f"gunicorn {gunicorn or '?'}"
    )


def report(rows: list[dict], args) -> str:
    def mib(n: float) -> str:
        return f"{n / MIB:.1f}"

    lines = [
        "# `--preload` memory: Qiao and gunicorn serving a Django project",
        "",
        f"{datetime.date.today().isoformat()} · {machine(args)} · {args.workers} workers, "
        f"each warmed with at least {args.per_worker} requests"
        f"{f', qiao {args.qiao_args}' if args.qiao_args else ''} "
        "(`bench/preload_memory.py`, see docs/preload.md).",
        "",
        "| configuration | worker USS, median (MiB) | worker PSS, median (MiB) "
        "| supervisor PSS (MiB) | total PSS (MiB) | requests | worker threads "
        "| full collections per worker |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['label']} | {mib(r['uss'])} | {mib(r['worker_pss'])} | "
            f"{mib(r['supervisor_pss'])} | {mib(r['total_pss'])} | {r['requests']} | "
            f"{r['threads']:g} | {r['full']:g} |"
        )
    lines += [
        "",
        "USS: memory only that worker holds (Private_Clean + Private_Dirty of "
        "/proc/PID/smaps_rollup). PSS: each shared page divided among the processes "
        "sharing it; the total PSS (supervisor and workers) is what the server costs the "
        "machine.",
        "",
    ]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--per-worker", type=int, default=DEFAULT_PER_WORKER)
    parser.add_argument("--gunicorn-python", default="/tmp/gvenv/bin/python")
    parser.add_argument(
        "--qiao-args", default="", help="more qiao options, e.g. '--threads 1' (gunicorn's sync)"
    )
    parser.add_argument("--only", help="comma-separated configuration numbers (1-based)")
    parser.add_argument("--out", help="also write the Markdown report to this file")
    args = parser.parse_args()
    chosen = [int(n) for n in args.only.split(",")] if args.only else range(1, len(CONFIGS) + 1)
    with tempfile.TemporaryDirectory(prefix="qiao-preload-bench-") as tmp:
        db = os.path.join(tmp, "bench.sqlite3")
        seed = [sys.executable, "-m", "preload_site.shop.seed"]
        subprocess.run(seed, cwd=BENCH_DIR, env=environment("qiao", db), check=True)
        rows = []
        for n in chosen:
            label, server, preload, noop = CONFIGS[n - 1]
            print(f"measuring: {label}", file=sys.stderr)
            rows.append(measure(label, server, preload, noop, db, args))
    text = report(rows, args)
    print(text)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
