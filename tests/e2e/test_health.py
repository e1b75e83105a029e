"""``--health-path``: answered by the engine, never by the app; 503 and
``Connection: close`` once the worker stops, so a load balancer drains it.
"""

from __future__ import annotations

import signal
import subprocess
import threading

import pytest
import requests
from rawhttp import wait_for

pytestmark = pytest.mark.qiao_only

APP = "threads_app:app"


def test_probe_is_answered_without_the_app(pooled):
    srv = pooled(APP, options=["--health-path", "/healthz"])
    r = requests.get(f"{srv.url}/healthz", timeout=5)
    assert (r.status_code, r.text) == (200, "ok\n")
    head = requests.head(f"{srv.url}/healthz", timeout=5)
    assert head.status_code == 200 and head.content == b""
    # The app answers everything else with the path (threads_app's default).
    assert requests.get(f"{srv.url}/healthz/more", timeout=5).text == "/healthz/more"
    out = subprocess.run(
        ["curl", "-sS", "-i", f"{srv.url}/healthz"], capture_output=True, text=True, timeout=10
    ).stdout
    assert out.startswith("HTTP/1.1 200 OK") and out.endswith("ok\n"), out


def test_without_the_option_the_app_gets_the_path(pooled):
    srv = pooled(APP)
    assert requests.get(f"{srv.url}/healthz", timeout=5).text == "/healthz"


def test_probe_answers_while_requests_block(pooled):
    srv = pooled(APP, options=["--health-path", "/healthz"])
    with requests.Session() as blocked:
        t = threading.Thread(
            target=blocked.get, args=(f"{srv.url}/sleep?s=1",), kwargs={"timeout": 10}
        )
        t.start()
        assert wait_for(lambda: requests.get(f"{srv.url}/inflight").text == "1", 5)
        assert requests.get(f"{srv.url}/healthz", timeout=5).status_code == 200
        t.join(10)


def test_probe_says_503_while_stopping(start_server):
    srv = start_server(APP, options=["--health-path", "/healthz"])
    probe = requests.Session()
    assert probe.get(f"{srv.url}/healthz", timeout=5).status_code == 200
    done = {}
    t = threading.Thread(
        target=lambda: done.update(r=requests.get(f"{srv.url}/sleep?s=1.5", timeout=10).text)
    )
    t.start()
    assert wait_for(lambda: requests.get(f"{srv.url}/inflight").text == "1", 5)
    srv.proc.send_signal(signal.SIGTERM)
    # The keep-alive probe connection stays while the worker drains (the
    # signal reaches it through the supervisor): it soon sees 503.
    statuses = []

    def draining():
        r = probe.get(f"{srv.url}/healthz", timeout=5)
        statuses.append((r.status_code, r.headers.get("connection")))
        return r.status_code == 503

    assert wait_for(draining, 3, interval=0.02), statuses
    assert statuses[-1] == (503, "close")
    t.join(10)
    assert done["r"] == "slept"
    assert srv.proc.wait(10) == 0
