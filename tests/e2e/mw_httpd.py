"""A small upstream on Python's ``http.server`` for the proxy tests (the
other upstream is a second Qiao serving ``mw_upstream``).

    python mw_httpd.py PORT NAME

``/drop`` reads the request and closes the connection without answering;
``/hop`` answers with hop-by-hop headers a proxy must drop; ``/count``
returns how many requests each ``METHOD path`` got; anything else answers
with the server's name.
"""

from __future__ import annotations

import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

COUNTS: dict[str, int] = {}
LOCK = threading.Lock()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "mw-httpd"

    def log_message(self, *args):
        pass

    def _answer(self, body: bytes, headers=(), ctype="text/plain"):
        self.send_response(200)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-Upstream", NAME)
        for name, value in headers:
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _handle(self):
        path = self.path.split("?", 1)[0]
        with LOCK:
            key = f"{self.command} {path}"
            COUNTS[key] = COUNTS.get(key, 0) + 1
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        if path == "/drop":
            self.close_connection = True
            return
        if path == "/count":
            return self._answer(json.dumps(COUNTS).encode(), ctype="application/json")
        if path == "/hop":
            return self._answer(
                b"hop",
                [
                    ("Connection", "X-Secret-Hop"),
                    ("X-Secret-Hop", "1"),
                    ("Keep-Alive", "timeout=9"),
                    ("Proxy-Authenticate", "Basic"),
                    ("X-End-To-End", "kept"),
                ],
            )
        self._answer(NAME.encode())

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _handle


if __name__ == "__main__":
    PORT, NAME = int(sys.argv[1]), sys.argv[2]
    ThreadingHTTPServer.daemon_threads = True
    ThreadingHTTPServer(("127.0.0.1", PORT), Handler).serve_forever()
