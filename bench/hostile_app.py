"""The application ``bench/hostile.py`` attacks: ``/`` answers ``ok``,
``/big`` 8 MiB as one ``bytes`` object, ``/gen`` the same 8 MiB as a
generator of 64 KiB pieces, ``/upload`` reads the request body."""

from __future__ import annotations

BIG = b"b" * (8 << 20)
PIECE = 64 << 10


def app(environ, start_response):
    path = environ.get("PATH_INFO", "")
    if path == "/big":
        start_response("200 OK", [("Content-Length", str(len(BIG)))])
        return [BIG]
    if path == "/gen":
        start_response("200 OK", [("Content-Length", str(len(BIG)))])
        return (BIG[i : i + PIECE] for i in range(0, len(BIG), PIECE))
    if path == "/upload":
        n = len(environ["wsgi.input"].read())
        body = str(n).encode()
        start_response("200 OK", [("Content-Length", str(len(body)))])
        return [body]
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "2")])
    return [b"ok"]
