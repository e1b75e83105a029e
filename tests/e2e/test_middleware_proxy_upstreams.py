"""Proxy over real sockets, with real upstreams: second Qiao processes
(``mw_upstream``) and an ``http.server`` upstream (``mw_httpd.py``), for
which upstream answers: balancing, retries, down-marking and probing back,
502/504."""

from __future__ import annotations

import threading
import time

import requests
from conftest import free_port

# Fixtures, imported as themselves (an explicit re-export, which the linter
# does not take for an unused import): the upstreams start once per test module.
from mw_proxy_support import proxy as proxy
from mw_proxy_support import ups as ups
from mw_servers import dead_url, qiao_upstream
from rawhttp import wait_for


def state(proxy_url):
    return requests.get(proxy_url + "/_proxy/state", timeout=10).json()


def count(server, key):
    return int(requests.get(server.url + "/count", params={"key": key}, timeout=10).text)


def httpd_count(server, key):
    return requests.get(server.url + "/count", timeout=10).json().get(key, 0)


def names(url, n, path="/name"):
    return [requests.get(url + path, timeout=10).text for _ in range(n)]


# -- balancing ----------------------------------------------------------------------------


def test_round_robin(proxy, ups):
    url = proxy([ups["A"].url, ups["B"].url])
    assert names(url, 6) == ["A", "B", "A", "B", "A", "B"]


def test_least_conn_avoids_the_busy_upstream(proxy, ups):
    url = proxy([ups["A"].url, ups["B"].url], "least_conn")
    slow = {}
    thread = threading.Thread(
        target=lambda: slow.update(r=requests.get(url + "/sleep?s=3", timeout=20).text)
    )
    thread.start()
    try:
        assert wait_for(lambda: state(url)[0]["active"] == 1, 10), state(url)
        assert names(url, 4) == ["B"] * 4
    finally:
        thread.join(20)
    assert slow["r"] == "A"
    assert sorted(names(url, 2)) == ["A", "B"]


# -- failures -----------------------------------------------------------------------------


def test_idempotent_request_retried_when_upstream_is_down(proxy, ups):
    dead = dead_url()
    url = proxy([dead, ups["A"].url])
    assert names(url, 4) == ["A"] * 4
    down = state(url)[0]
    assert (down["url"], down["up"]) == (dead, False)


def test_post_is_not_retried_once_sent(proxy, ups):
    url = proxy([ups["H"].url, ups["A"].url])
    before_h, before_a = httpd_count(ups["H"], "POST /drop"), count(ups["A"], "POST /drop")
    resp = requests.post(url + "/drop", data=b"payload", timeout=10)
    assert resp.status_code == 502
    assert "no upstream answered" in resp.text and ups["H"].url in resp.text
    assert httpd_count(ups["H"], "POST /drop") == before_h + 1
    assert count(ups["A"], "POST /drop") == before_a


def test_get_is_retried_after_a_dropped_connection(proxy, ups):
    url = proxy([ups["H"].url, ups["A"].url])
    before = httpd_count(ups["H"], "GET /drop")
    resp = requests.get(url + "/drop", timeout=10)
    assert (resp.status_code, resp.text) == (200, "A")
    assert httpd_count(ups["H"], "GET /drop") == before + 1


def test_post_retried_when_nothing_was_sent(proxy, ups):
    url = proxy([dead_url(), ups["A"].url])
    resp = requests.post(url + "/echo", data=b"hello", timeout=10)
    assert (resp.status_code, resp.content) == (200, b"hello")


def test_down_marking_and_probing_back(proxy, ups, start_server):
    port = free_port()
    c = qiao_upstream(start_server, "C", port)
    url = proxy([c.url, ups["B"].url], probe_interval=0.2)
    assert names(url, 2) == ["C", "B"]
    c.stop()
    assert names(url, 3) == ["B"] * 3
    assert state(url)[0]["up"] is False
    time.sleep(0.5)  # probes fail meanwhile: still down
    assert state(url)[0]["up"] is False
    qiao_upstream(start_server, "C", port)
    assert wait_for(lambda: state(url)[0]["up"], 10), state(url)
    assert sorted(names(url, 4)) == ["B", "B", "C", "C"]


def test_health_path_probes_back(proxy, ups, start_server):
    """With ``health_path`` (``--proxy-health-path``) a down upstream comes back
    only once a GET of that path answers below 500: a listening socket whose
    health says 503 stays down."""
    port = free_port()
    c = qiao_upstream(start_server, "C", port)
    url = proxy([c.url, ups["B"].url], probe_interval=0.2, health_path="/health")
    assert names(url, 2) == ["C", "B"]
    c.stop()
    assert names(url, 2) == ["B"] * 2
    assert state(url)[0]["up"] is False
    c = start_server(
        "mw_upstream:app", binds=[f"127.0.0.1:{port}"], env={"MW_NAME": "C", "MW_HEALTH": "503"}
    )
    assert wait_for(lambda: count(c, "GET /health") >= 2, 10)
    assert state(url)[0]["up"] is False  # it accepts connections, but is not healthy
    requests.get(c.url + "/set-health", params={"code": "404"}, timeout=10)
    assert wait_for(lambda: state(url)[0]["up"], 10), state(url)
    assert sorted(names(url, 4)) == ["B", "B", "C", "C"]


def test_502_when_no_upstream_answers(proxy):
    dead = [dead_url(), dead_url()]
    url = proxy(dead)
    resp = requests.get(url + "/name", timeout=10)
    assert resp.status_code == 502
    assert resp.headers["Content-Type"].startswith("text/plain")
    assert all(d in resp.text for d in dead)
    assert "cannot connect" in resp.text


def test_504_on_upstream_timeout(proxy, ups):
    url = proxy([ups["A"].url], timeout=0.5)
    resp = requests.get(url + "/sleep?s=2", timeout=10)
    assert resp.status_code == 504
    assert "did not answer within 0.5s" in resp.text
