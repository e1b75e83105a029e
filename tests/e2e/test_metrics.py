"""``--metrics-bind``: Prometheus text from the supervisor, summed over the
workers, parsed with ``prometheus_client``'s own parser."""

from __future__ import annotations

import os
import signal
import threading

import pytest
import requests
from conftest import free_port
from rawhttp import wait_for

prometheus = pytest.importorskip("prometheus_client.parser")

pytestmark = pytest.mark.qiao_only


def scrape(url: str) -> dict[str, dict]:
    """{metric family: {(sample name, labels): value}}."""
    r = requests.get(url, timeout=5)
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain; version=0.0.4")
    out: dict[str, dict] = {}
    for family in prometheus.text_string_to_metric_families(r.text):
        out[family.name] = {
            (s.name, tuple(sorted(s.labels.items()))): s.value for s in family.samples
        }
    return out


@pytest.fixture
def metered(start_server):
    port = free_port()
    srv = start_server(
        "threads_app:app", options=["--workers", "2", "--metrics-bind", f"127.0.0.1:{port}"]
    )
    srv.metrics_url = f"http://127.0.0.1:{port}/metrics"
    assert wait_for(lambda: _ok(srv.metrics_url), 5), srv.stderr()
    assert wait_for(lambda: scrape(srv.metrics_url)["qiao_workers"][("qiao_workers", ())] == 2, 5)
    return srv


def _ok(url: str) -> bool:
    try:
        return requests.get(url, timeout=1).status_code == 200
    except requests.RequestException:
        return False


def test_requests_are_counted_over_all_workers(metered):
    for i in range(40):
        assert requests.get(f"{metered.url}/n{i}", timeout=5).status_code == 200
    body = os.urandom(10_000)
    assert requests.post(f"{metered.url}/echo", data=body, timeout=5).content == body
    m = scrape(metered.metrics_url)
    requests_total = m["qiao_requests"]
    assert requests_total[("qiao_requests_total", (("method", "GET"), ("status", "2xx")))] >= 40
    assert requests_total[("qiao_requests_total", (("method", "POST"), ("status", "2xx")))] == 1
    hist = m["qiao_request_duration_seconds"]
    count = hist[("qiao_request_duration_seconds_count", ())]
    assert count >= 41
    assert hist[("qiao_request_duration_seconds_bucket", (("le", "+Inf"),))] == count
    assert m["qiao_received_bytes"][("qiao_received_bytes_total", ())] >= 10_000
    assert m["qiao_sent_bytes"][("qiao_sent_bytes_total", ())] >= 10_000
    assert m["qiao_workers"][("qiao_workers", ())] == 2


def test_gauges_show_requests_in_flight(metered):
    t = threading.Thread(
        target=requests.get, args=(f"{metered.url}/sleep?s=1.5",), kwargs={"timeout": 10}
    )
    t.start()
    assert wait_for(lambda: requests.get(f"{metered.url}/inflight").text == "1", 5)
    m = scrape(metered.metrics_url)
    assert m["qiao_requests_in_flight"][("qiao_requests_in_flight", ())] >= 1
    assert m["qiao_open_connections"][("qiao_open_connections", ())] >= 1
    t.join(10)


def test_counts_survive_a_worker_restart(metered):
    for _ in range(20):
        requests.get(f"{metered.url}/x", timeout=5)
    before = scrape(metered.metrics_url)["qiao_request_duration_seconds"][
        ("qiao_request_duration_seconds_count", ())
    ]
    import subprocess

    pids = subprocess.run(
        ["pgrep", "-P", str(metered.proc.pid)], capture_output=True, text=True
    ).stdout.split()
    os.kill(int(pids[0]), signal.SIGKILL)

    def restarted():
        m = scrape(metered.metrics_url)
        return m["qiao_worker_restarts"][("qiao_worker_restarts_total", ())] == 1

    assert wait_for(restarted, 5)
    after = scrape(metered.metrics_url)["qiao_request_duration_seconds"][
        ("qiao_request_duration_seconds_count", ())
    ]
    assert after >= before  # the dead worker's counts were kept


def test_sent_bytes_are_body_bytes_for_app_and_native_requests(start_server, tmp_path):
    """``qiao_sent_bytes_total`` counts response bodies (no heads, no chunk
    framing), the same for the application, ``--static`` and ``--proxy``."""
    upstream = start_server("apps:app", binds=[f"127.0.0.1:{free_port()}"])
    public = tmp_path / "public"
    public.mkdir()
    (public / "hello.txt").write_bytes(b"hello static\n")
    port = free_port()
    srv = start_server(
        "apps:app",
        options=[
            *("--metrics-bind", f"127.0.0.1:{port}"),
            *("--static", f"/static={public}", "--proxy", f"/up={upstream.url}"),
        ],
    )
    url = f"http://127.0.0.1:{port}/metrics"
    assert wait_for(lambda: _ok(url), 5), srv.stderr()
    with requests.Session() as s:
        assert s.get(f"{srv.url}/static/hello.txt", timeout=5).content == b"hello static\n"
        chunked = s.get(f"{srv.url}/up/chunked?n=3", timeout=5).content
        assert chunked == b"chunk-0\nchunk-1\nchunk-2\n"
        assert s.get(f"{srv.url}/chunked?n=3", timeout=5).status_code == 200
        assert s.get(f"{srv.url}/hello", timeout=5).content == b"hello world"

    def counted():
        m = scrape(url)
        return m["qiao_sent_bytes"][("qiao_sent_bytes_total", ())]

    # Counters reach the supervisor a little after the requests.
    assert wait_for(lambda: counted() >= 13 + 24 + 24 + 11, 5), counted()
    assert counted() == 13 + 24 + 24 + 11
