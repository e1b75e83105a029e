"""Shared by the HTTP/2 tests (``test_http2_*.py``): the app they serve, a
cleartext server for each test module, client settings that trust the test
CA, and an ``httpx`` client that speaks HTTP/2."""

from __future__ import annotations

import shutil
import ssl

import pytest
from conftest import Server

httpx = pytest.importorskip("httpx")
pytest.importorskip("h2")

APP = "tls_apps:app"
needs_curl = pytest.mark.skipif(shutil.which("curl") is None, reason="curl not installed")


@pytest.fixture(scope="module")
def plain_server():
    srv = Server(APP).start()
    yield srv
    srv.cleanup()


def trust(pki) -> dict:
    """Client kwargs that trust the test CA."""
    return {"verify": ssl.create_default_context(cafile=str(pki.ca))}


def client(kwargs, **more) -> httpx.Client:
    return httpx.Client(http2=True, timeout=20, **kwargs, **more)
