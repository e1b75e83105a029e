"""Response headers the benchmark reads: which worker served
(``X-Worker-Pid``) and how many full collections it has run
(``X-Gc-Full``)."""

from __future__ import annotations

import gc
import os


def worker_headers(get_response):
    def middleware(request):
        response = get_response(request)
        response["X-Worker-Pid"] = str(os.getpid())
        response["X-Gc-Full"] = str(gc.get_stats()[2]["collections"])
        return response

    return middleware
