"""What gunicorn's request hooks cost: the worker's CPU time per request
(user + system, from /proc) with no hooks, with ``pre_request`` and/or
``post_request`` doing nothing, and with both logging at debug level.

CPU time per request is steadier than requests per second on a shared
machine. One worker pinned to CPU 0, wrk pinned to CPU 1; needs wrk and
Linux. Run from the repository: ``python bench/hooks_cost.py`` (results in
docs/hooks.md).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROUNDS = 3
WRK_SECONDS = 5
CONNECTIONS = 16
BOOT_SECONDS = 1.5
FIRST_PORT = 18400

APP = """
def app(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "11")])
    return [b"hello world"]
"""
PRE = "def pre_request(worker, req):\n    pass\n"
POST = "def post_request(worker, req, environ, resp):\n    pass\n"
LOGGING = (
    "def pre_request(worker, req):\n    worker.log.debug('%s %s', req.method, req.path)\n\n"
    "def post_request(worker, req, environ, resp):\n"
    "    worker.log.debug('%s %s %s', req.path, resp.status_code, resp.sent)\n"
)
CONFIGS = {
    "no hooks": "",
    "pre_request only": PRE,
    "post_request only": POST,
    "both (pass)": PRE + POST,
    "both (log.debug)": LOGGING,
}


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measure(directory: str, config: str, port: int) -> float:
    """Worker CPU microseconds per request for one config file."""
    python = str(Path(__file__).resolve().parent.parent / "python")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([python, directory]))
    command = [sys.executable, "-m", "qiao", "-c", config, "-w", "1"]
    command += ["-b", f"127.0.0.1:{port}", "hello:app"]
    server = subprocess.Popen(
        ["taskset", "-c", "0", *command], cwd=directory, env=env, stderr=subprocess.DEVNULL
    )
    try:
        time.sleep(BOOT_SECONDS)
        children = Path(f"/proc/{server.pid}/task/{server.pid}/children").read_text()
        worker = int(children.split()[0])
        before = cpu_seconds(worker)
        wrk = ["taskset", "-c", "1", "wrk", "-t1", f"-c{CONNECTIONS}", f"-d{WRK_SECONDS}s"]
        out = subprocess.run(
            [*wrk, f"http://127.0.0.1:{port}/"], capture_output=True, text=True, check=True
        ).stdout
        used = cpu_seconds(worker) - before
        requests = int(re.search(r"(\d+) requests in", out).group(1))
        return used / requests * 1e6
    finally:
        server.terminate()
        server.wait()


def main() -> None:
    results: dict[str, list[float]] = {name: [] for name in CONFIGS}
    with tempfile.TemporaryDirectory() as directory:
        Path(directory, "hello.py").write_text(APP)
        for i, text in enumerate(CONFIGS.values()):
            Path(directory, f"conf{i}.py").write_text(text)
        port = FIRST_PORT
        for _ in range(ROUNDS):
            for i, name in enumerate(CONFIGS):
                results[name].append(measure(directory, f"conf{i}.py", port))
                port += 1
    for name, values in results.items():
        median = sorted(values)[len(values) // 2]
        shown = " ".join(f"{v:5.1f}" for v in values)
        print(f"{name:20} µs CPU/request: {shown}   median {median:.1f}")


if __name__ == "__main__":
    main()
