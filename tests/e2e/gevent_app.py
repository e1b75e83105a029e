"""An application that monkey-patches the standard library with gevent when
imported, as apps deployed with ``-k gevent`` often do."""

from gevent import monkey

monkey.patch_all()

import socket  # noqa: E402 - after patching, as such apps do
import threading  # noqa: E402

import gevent  # noqa: E402


def app(environ, start_response):
    # Cooperative sleep and a patched socket, inside a request.
    gevent.sleep(0.01)
    a, b = socket.socketpair()
    a.sendall(b"ping")
    data = b.recv(4)
    a.close()
    b.close()
    body = b"%s %s %d" % (
        data,
        threading.current_thread().name.encode(),
        monkey.is_module_patched("socket"),
    )
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
