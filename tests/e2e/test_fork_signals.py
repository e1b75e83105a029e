"""A signal sent to a worker right after it is forked is not lost: the
supervisor blocks the workers' signals around the fork and the worker
unblocks them once its own handlers are in place."""

from __future__ import annotations

import signal
import subprocess
import time

from conftest import Server, base_command, free_port

#: The graceful timeout the server is given: a TERM the new worker lost
#: makes the supervisor wait for all of it.
GRACEFUL_SECONDS = 60


def test_term_right_after_ttin_stops_promptly():
    for _ in range(3):
        port = free_port()
        cmd = base_command() + ["-b", f"127.0.0.1:{port}", "-w", "1"]
        cmd += ["--graceful-timeout", str(GRACEFUL_SECONDS), "gunicorn_apps:app"]
        srv = Server(cmd=cmd, binds=[f"127.0.0.1:{port}"]).start()
        try:
            started = time.monotonic()
            srv.proc.send_signal(signal.SIGTTIN)  # a worker is forked...
            time.sleep(0.01)
            srv.proc.send_signal(signal.SIGTERM)  # ...and told to stop as it starts
            try:
                srv.proc.wait(GRACEFUL_SECONDS / 2)
            except subprocess.TimeoutExpired:
                raise AssertionError(f"the stop waited for a lost TERM:\n{srv.stderr()}") from None
            assert time.monotonic() - started < GRACEFUL_SECONDS / 2
        finally:
            srv.cleanup()
