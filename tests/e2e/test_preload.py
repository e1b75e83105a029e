"""``--preload`` keeps the imported heap shared with the workers: the
supervisor imports the application with the cyclic collector off (the
import leaves no freed holes for the workers to fill), freezes every
object it holds just before forking (``gc.freeze()``: the collector never
writes into their headers, so their pages stay shared), and the workers
serve with the collector on. Without ``--preload`` nothing changes.
``preload_apps`` reports what a worker sees; docs/preload.md has the
measurement.
"""

from __future__ import annotations

import pytest
import requests

APP = "preload_apps:app"
WORKERS = 2
REQUESTS = 6  # a few, so more than one worker is likely asked


def _reports(srv) -> list[dict]:
    return [requests.get(f"{srv.url}/gc", timeout=10).json() for _ in range(REQUESTS)]


@pytest.mark.qiao_only  # gunicorn's preload_app does not freeze the heap
def test_preload_freezes_the_supervisors_heap_before_forking(start_server):
    srv = start_server(APP, options=["--workers", str(WORKERS), "--preload"])
    for report in _reports(srv):
        assert report["importer"] == srv.proc.pid, report  # imported by the supervisor
        assert report["pid"] != srv.proc.pid, report
        assert not report["import_gc_enabled"], report
        assert report["freeze_count"] > 0, report
        assert not report["marker_collectable"], report
        assert report["gc_enabled"], report


def test_without_preload_nothing_is_frozen(start_server):
    srv = start_server(APP, options=["--workers", str(WORKERS)])
    for report in _reports(srv):
        assert report["importer"] == report["pid"], report  # imported by the worker
        assert report["import_gc_enabled"], report
        assert report["freeze_count"] == 0, report
        assert report["marker_collectable"], report
        assert report["gc_enabled"], report
