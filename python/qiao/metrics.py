"""Prometheus metrics for ``--metrics-bind HOST:PORT``, served by the
supervisor and summed over its workers.

Each worker slot has a block of counters in an anonymous shared mapping
(layout in ``crates/io/src/metrics.rs``, read here with the numbers the engine's
``metrics_layout()`` gives); the workers' threads add to it atomically per
request. When a worker ends, its counters are folded into the retired
totals, so every counter only grows. The supervisor answers ``GET
/metrics`` from a small HTTP server thread: reading the blocks is all it
does, nothing is asked of the workers.
"""

from __future__ import annotations

import logging
import mmap
import struct
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from ._qiao import metrics_layout

log = logging.getLogger("qiao.error")

(BLOCK, REQUESTS, HISTOGRAM, LATENCY_SUM, WORDS), METHODS, CLASSES, BUCKETS = metrics_layout()
_METHOD_LABELS = [*METHODS, "OTHER"]
#: Words that are gauges (not folded into the retired totals).
_GAUGES = (0, 1)
#: Text format version of the exposition (Prometheus 0.0.4).
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class MetricsStore:
    """The shared blocks (one per worker slot) and the retired totals."""

    def __init__(self, slots: int) -> None:
        self.buffer = mmap.mmap(-1, slots * BLOCK)
        self.retired = [0] * WORDS
        self.restarts = 0
        self.lock = threading.Lock()

    def offset(self, slot: int) -> int:
        return slot * BLOCK

    def _read(self, slot: int) -> tuple[int, ...]:
        return struct.unpack_from(f"={WORDS}Q", self.buffer, self.offset(slot))

    def clear(self, slot: int) -> None:
        off = self.offset(slot)
        self.buffer[off : off + BLOCK] = bytes(BLOCK)

    def retire(self, slot: int) -> None:
        """A worker ended: keep its counts, free its block."""
        with self.lock:
            words = self._read(slot)
            for i, v in enumerate(words):
                if i not in _GAUGES:
                    self.retired[i] += v
            self.clear(slot)

    def totals(self, live_slots: list[int]) -> list[int]:
        with self.lock:
            total = list(self.retired)
            for slot in live_slots:
                for i, v in enumerate(self._read(slot)):
                    # Gauges are signed counts kept in unsigned words.
                    total[i] += v - (1 << 64) if v >= 1 << 63 else v
            return total

    def render(self, live_slots: list[int], workers: int) -> str:
        t = self.totals(live_slots)
        out = [
            "# HELP qiao_requests_total Requests served, by method and status class.",
            "# TYPE qiao_requests_total counter",
        ]
        for m, method in enumerate(_METHOD_LABELS):
            for c in range(CLASSES):
                n = t[REQUESTS + m * CLASSES + c]
                if n:
                    out.append(f'qiao_requests_total{{method="{method}",status="{c + 1}xx"}} {n}')
        out += [
            "# HELP qiao_request_duration_seconds Time from request to response end.",
            "# TYPE qiao_request_duration_seconds histogram",
        ]
        cumulative = 0
        for i, le in enumerate([*BUCKETS, None]):
            cumulative += t[HISTOGRAM + i]
            label = "+Inf" if le is None else repr(le)
            out.append(f'qiao_request_duration_seconds_bucket{{le="{label}"}} {cumulative}')
        out.append(f"qiao_request_duration_seconds_sum {t[LATENCY_SUM] / 1e6}")
        out.append(f"qiao_request_duration_seconds_count {t[LATENCY_SUM + 1]}")
        for name, kind, help_text, value in (
            ("qiao_requests_in_flight", "gauge", "Requests being served now.", t[0]),
            ("qiao_open_connections", "gauge", "Client connections open now.", t[1]),
            ("qiao_received_bytes_total", "counter", "Request body bytes received.", t[2]),
            ("qiao_sent_bytes_total", "counter", "Response body bytes sent.", t[3]),
            ("qiao_workers", "gauge", "Worker processes running.", workers),
            (
                "qiao_worker_restarts_total",
                "counter",
                "Workers replaced after dying unexpectedly.",
                self.restarts,
            ),
        ):
            out += [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}", f"{name} {value}"]
        return "\n".join(out) + "\n"


def serve_metrics(address: tuple[str, int], render) -> ThreadingHTTPServer:
    """Starts the ``/metrics`` HTTP server on a daemon thread; ``render()``
    returns the exposition text."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - the http.server API
            if self.path.split("?", 1)[0] != "/metrics":
                self.send_error(404)
                return
            body = render().encode()
            self.send_response(200)
            self.send_header("Content-Type", CONTENT_TYPE)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args) -> None:  # noqa: A002
            pass

    server = ThreadingHTTPServer(address, Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="qiao-metrics", daemon=True).start()
    return server
