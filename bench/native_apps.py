"""Applications of the native-route benchmarks (``bench/native.py``): a fixed
hello answer for everything the native routes do not take, and the portable
``Static`` serving ``BENCH_STATIC_DIR`` under ``/static``."""

from __future__ import annotations

import os

from qiao.middleware import Static

HELLO = b"Hello, World!"


def hello(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(HELLO)))])
    return [HELLO]


static_app = Static(hello, {"/static": os.environ.get("BENCH_STATIC_DIR", ".")})
