"""Scale-out: nginx in front of two Qiao instances. Under load, a worker of
one instance is killed (SIGKILL), then, once it is replaced, the other
instance is stopped gracefully (SIGTERM): nginx's retries of idempotent
requests plus Qiao's graceful stop and worker replacement give zero failed
requests. (The other order cannot promise zero with two instances: nginx
retries a request on each peer once, so a request lost with the killed
worker would have only the stopped instance left to go to.)"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import pytest
import requests
from conftest import Server, free_port
from nginx_support import NGINX, start_nginx
from rawhttp import wait_for

pytestmark = pytest.mark.qiao_only


def children(pid: int) -> list[int]:
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout
    return [int(p) for p in out.split()]


class Load:
    """Clients sending GETs through nginx until stopped, counting failures."""

    def __init__(self, url: str, clients: int = 4):
        self.url, self.ok, self.failures = url, 0, []
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._run) for _ in range(clients)]
        for t in self._threads:
            t.start()

    def _run(self):
        with requests.Session() as s:
            while not self._stop.is_set():
                try:
                    r = s.get(f"{self.url}/hello", timeout=10)
                    good = r.status_code == 200 and r.content == b"hello world"
                    with self._lock:
                        if good:
                            self.ok += 1
                        else:
                            self.failures.append(f"{r.status_code} {r.text[:80]!r}")
                except requests.RequestException as e:
                    with self._lock:
                        self.failures.append(repr(e))

    def stop(self):
        self._stop.set()
        for t in self._threads:
            t.join(15)


@pytest.mark.skipif(NGINX is None, reason="nginx is not installed")
def test_stop_one_instance_and_kill_a_worker_of_the_other_under_load():
    work = Path(tempfile.mkdtemp(prefix="qiao-scale-"))
    a = Server("apps:app", options=["--workers", "2", "--graceful-timeout", "5"])
    b = Server("apps:app", options=["--workers", "2"])
    a.start()
    b.start()
    nginx_port = free_port()
    nginx = start_nginx(
        work,
        f"""
        upstream app {{
            server 127.0.0.1:{a.port} max_fails=0;
            server 127.0.0.1:{b.port} max_fails=0;
            keepalive 16;
        }}
        server {{
            listen 127.0.0.1:{nginx_port};
            location / {{
                proxy_pass http://app;
                proxy_http_version 1.1;
                proxy_set_header Connection "";
                proxy_next_upstream error timeout http_502 http_503;
                proxy_next_upstream_tries 0;
                proxy_next_upstream_timeout 10s;
            }}
        }}
        """,
    )
    url = f"http://127.0.0.1:{nginx_port}"
    try:
        assert wait_for(lambda: _up(url), 10), (work / "error.log").read_text()
        load = Load(url)
        time.sleep(1.0)
        victim = children(b.proc.pid)[0]
        os.kill(victim, signal.SIGKILL)
        assert wait_for(lambda: victim not in children(b.proc.pid), 5)
        assert wait_for(lambda: len(children(b.proc.pid)) == 2, 5)
        time.sleep(0.5)
        a.proc.send_signal(signal.SIGTERM)
        time.sleep(2.0)
        load.stop()
        assert a.proc.wait(10) == 0, a.stderr()
        assert load.ok > 100, load.ok
        assert load.failures == [], (load.failures[:2], (work / "error.log").read_text()[-3000:])
        # B, with its replaced worker, serves on.
        assert requests.get(f"{url}/hello", timeout=5).status_code == 200
    finally:
        nginx.terminate()
        nginx.wait(10)
        a.cleanup()
        b.cleanup()
        shutil.rmtree(work, ignore_errors=True)


def _up(url: str) -> bool:
    try:
        return requests.get(f"{url}/hello", timeout=1).status_code == 200
    except requests.RequestException:
        return False
