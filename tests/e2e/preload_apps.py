"""WSGI test application for ``test_preload.py``: what the collector's
state is at import time and in the worker that serves.

``/gc`` answers one JSON object:

* ``import_gc_enabled``: ``gc.isenabled()`` while this module was imported
  (the supervisor turns the collector off for a ``--preload`` import);
* ``freeze_count``: ``gc.get_freeze_count()`` in the worker, at request
  time: the objects the supervisor froze before forking (0 without it);
* ``marker_collectable``: whether a list created at import is among the
  objects the collector scans (a frozen object is not);
* ``gc_enabled``: ``gc.isenabled()`` in the worker;
* ``importer``, ``pid``: the pid that imported this module, the worker's.
"""

from __future__ import annotations

import gc
import json
import os

IMPORT_GC_ENABLED = gc.isenabled()
IMPORTER = os.getpid()
MARKER = ["created at import time"]


def _collectable(obj: object) -> bool:
    return any(o is obj for o in gc.get_objects())


def app(environ, start_response):
    if environ.get("PATH_INFO") != "/gc":
        start_response("404 Not Found", [("Content-Length", "0")])
        return [b""]
    body = json.dumps(
        {
            "import_gc_enabled": IMPORT_GC_ENABLED,
            "freeze_count": gc.get_freeze_count(),
            "marker_collectable": _collectable(MARKER),
            "gc_enabled": gc.isenabled(),
            "importer": IMPORTER,
            "pid": os.getpid(),
        }
    ).encode()
    start_response(
        "200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
    )
    return [body]
