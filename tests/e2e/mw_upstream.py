"""The Qiao upstream of the proxy tests (served as ``mw_upstream:app`` with
``MW_NAME`` set). Every answer carries ``X-Upstream: NAME``.

``/name``; ``/headers...`` (what arrived, as JSON); ``/echo``; ``/upload?id=``
(reads in 64 KiB pieces, progress visible at ``/progress?id=``, answers
length and sha256); ``/download?n=`` (a streamed body without length);
``/gate?id=&n=`` (``n`` bytes, then the rest once ``/release?id=``);
``/sleep?s=``; ``/peer`` (the proxy's port: the same port twice means a
reused connection); ``/count?key=METHOD%20/path``; ``/cookies``; ``/health``
(status ``MW_HEALTH``, 200 by default, until ``/set-health?code=`` changes it).
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
from urllib.parse import parse_qs

NAME = os.environ.get("MW_NAME", "upstream")
PIECE = 64 * 1024
GATE_WAIT = 10.0
PROGRESS: dict[str, int] = {}
COUNTS: dict[str, int] = {}
GATES: dict[str, threading.Event] = {}
LOCK = threading.Lock()
HEALTH = {"code": os.environ.get("MW_HEALTH", "200")}


def pattern(n: int) -> bytes:
    """Deterministic bytes, the same in the tests (``pattern(n)``)."""
    block = hashlib.sha256(b"qiao").digest() * 2048  # 64 KiB
    return (block * (n // len(block) + 1))[:n]


def query(environ) -> dict:
    return {k: v[0] for k, v in parse_qs(environ.get("QUERY_STRING", "")).items()}


def answer(start_response, body: bytes, ctype="text/plain", status="200 OK", extra=()):
    start_response(
        status,
        [("Content-Type", ctype), ("Content-Length", str(len(body))), ("X-Upstream", NAME), *extra],
    )
    return [body]


def gate(key: str) -> threading.Event:
    with LOCK:
        return GATES.setdefault(key, threading.Event())


def app(environ, start_response):
    path, q = environ["PATH_INFO"], query(environ)
    method = environ["REQUEST_METHOD"]
    with LOCK:
        key = f"{method} {path}"
        COUNTS[key] = COUNTS.get(key, 0) + 1
    inp = environ["wsgi.input"]
    if path.startswith("/headers"):
        info = {
            "method": method,
            "path": path,
            "raw": environ.get("RAW_URI"),
            "query": environ.get("QUERY_STRING"),
            "content_length": environ.get("CONTENT_LENGTH"),
            "headers": {k[5:]: v for k, v in environ.items() if k.startswith("HTTP_")},
            "body": inp.read().decode("latin-1"),
        }
        return answer(start_response, json.dumps(info).encode(), "application/json")
    if path == "/echo":
        return answer(start_response, inp.read(), environ.get("CONTENT_TYPE") or "text/plain")
    if path == "/upload":
        digest, size, key = hashlib.sha256(), 0, q.get("id", "")
        while True:
            piece = inp.read(PIECE)
            if not piece:
                break
            digest.update(piece)
            size += len(piece)
            with LOCK:
                PROGRESS[key] = size
        body = json.dumps({"length": size, "sha256": digest.hexdigest()}).encode()
        return answer(start_response, body, "application/json")
    if path == "/progress":
        with LOCK:
            done = PROGRESS.get(q.get("id", ""), 0)
        return answer(start_response, json.dumps({"bytes": done}).encode(), "application/json")
    if path == "/download":
        n = int(q.get("n", "1048576"))
        start_response(
            "200 OK", [("Content-Type", "application/octet-stream"), ("X-Upstream", NAME)]
        )
        data = pattern(n)
        return (data[i : i + PIECE] for i in range(0, n, PIECE))
    if path == "/gate":
        return gated(start_response, q["id"], int(q.get("n", str(256 * 1024))))
    if path == "/release":
        gate(q["id"]).set()
        return answer(start_response, b"released")
    if path == "/sleep":
        time.sleep(float(q.get("s", "1")))
        return answer(start_response, NAME.encode())
    if path == "/peer":
        return answer(start_response, environ.get("REMOTE_PORT", "").encode())
    if path == "/count":
        with LOCK:
            n = COUNTS.get(q.get("key", ""), 0)
        return answer(start_response, str(n).encode())
    if path == "/cookies":
        return answer(start_response, b"c", extra=[("Set-Cookie", "a=1"), ("Set-Cookie", "b=2")])
    if path == "/health":
        code = HEALTH["code"]
        return answer(start_response, f"health {code}".encode(), status=f"{code} Health")
    if path == "/set-health":
        HEALTH["code"] = q.get("code", "200")
        return answer(start_response, b"set")
    if path == "/status":
        code = q.get("code", "404")
        return answer(start_response, f"status {code}".encode(), status=f"{code} Whatever")
    return answer(start_response, NAME.encode())


def gated(start_response, key, n):
    """``n`` bytes first (more than the 64 KiB Qiao coalesces before sending)."""
    start_response("200 OK", [("Content-Type", "text/plain"), ("X-Upstream", NAME)])
    yield pattern(n)
    yield b"released\n" if gate(key).wait(GATE_WAIT) else b"timed out\n"
