"""Shared by the Proxy tests over real sockets
(``test_middleware_proxy_*.py``): the upstreams of a test module (Qiao ``A``
and ``B``, http.server ``H``) and a proxy of each kind in front of given
upstreams."""

from __future__ import annotations

import pytest
from conftest import Server
from mw_servers import KINDS, build, httpd_upstream, qiao_upstream


@pytest.fixture(scope="module")
def ups():
    """Upstreams shared by the module: Qiao ``A`` and ``B``, http.server ``H``."""
    started = []

    def start_server(app="apps:app", **kwargs):
        srv = Server(app, **kwargs)
        started.append(srv)
        return srv.start()

    servers = {
        "A": qiao_upstream(start_server, "A"),
        "B": qiao_upstream(start_server, "B"),
        "H": httpd_upstream(start_server, "H"),
    }
    yield servers
    for srv in started:
        srv.cleanup()


@pytest.fixture(params=KINDS)
def proxy(request, start_server):
    """proxy(upstream_urls, balance=..., **opts) -> the proxy's base URL."""

    def make(upstreams, balance="round_robin", **opts):
        config = {"upstreams": list(upstreams), "balance": balance, "opts": opts}
        return build(request.param, start_server, "proxy", config).url

    return make
