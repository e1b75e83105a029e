"""Small applications for the deployment tests (config, access log, sockets).

``app``: ``/env`` answers the worker's pid and the ``LISTEN_*`` variables it
sees (socket activation must not leak to the workers); anything else is
``hello``.

``slow_log_app`` lives in :mod:`cfg_slowlog`, which attaches a slow handler
to the ``qiao.access`` logger when it is imported.
"""

from __future__ import annotations

import json
import os


def app(environ, start_response):
    if environ["PATH_INFO"] == "/env":
        seen = {k: v for k, v in os.environ.items() if k.startswith("LISTEN_")}
        body = json.dumps({"pid": os.getpid(), "listen": seen}).encode()
        ctype = "application/json"
    else:
        body, ctype = b"hello", "text/plain"
    start_response("200 OK", [("Content-Type", ctype), ("Content-Length", str(len(body)))])
    return [body]
