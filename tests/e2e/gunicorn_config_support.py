"""Helpers of the gunicorn drop-in's settings tests
(``test_gunicorn_config_*.py``): a config file written, a command run to
its end, a server started with exactly the given arguments, its JSON
answers and its worker processes."""

from __future__ import annotations

import json
import os
import textwrap
import time
import urllib.request
from pathlib import Path

from conftest import E2E_DIR, Server, base_command
from test_config import qiao

#: The command run to its end, output captured (test_config's helper).
run = qiao


def conf(tmp_path: Path, text: str, name="gunicorn.conf.py") -> str:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return str(path)


def get_json(port: int, path="/", host="127.0.0.1"):
    with urllib.request.urlopen(f"http://{host}:{port}{path}", timeout=10) as r:
        return json.loads(r.read())


def serve(cmd_args, port, env=None, cwd=E2E_DIR) -> Server:
    """A server started with exactly ``cmd_args`` (no bind added), ready on ``port``."""
    srv = Server(cmd=base_command() + list(cmd_args), binds=[f"127.0.0.1:{port}"], env=env, cwd=cwd)
    return srv.start()


def workers_of(srv: Server, count: int, seconds=20.0) -> list[int]:
    """The worker processes of ``srv`` once there are ``count`` (workers
    boot one after the other); what there is after ``seconds`` otherwise."""
    deadline = time.monotonic() + seconds
    while True:
        found = children(srv.proc.pid)
        if len(found) >= count or time.monotonic() > deadline:
            return found
        time.sleep(0.05)


def children(pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry))
    return found
