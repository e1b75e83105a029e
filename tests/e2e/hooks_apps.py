"""Applications for tests/e2e/test_hooks.py."""

import threading
import time

#: How long /stuck keeps its thread (far beyond any --timeout under test).
STUCK_SECONDS = 120


def stuck_in_request_marker():
    time.sleep(STUCK_SECONDS)


def app(environ, start_response):
    path = environ["PATH_INFO"]
    if path == "/stuck":
        threading.current_thread()  # the stack the supervisor's SIGABRT logs ends below
        stuck_in_request_marker()
    if path == "/file":
        f = open(environ["QUERY_STRING"].partition("=")[2], "rb")  # noqa: SIM115 - wrapper closes
        size = f.seek(0, 2)
        f.seek(0)
        start_response("200 OK", [("Content-Length", str(size))])
        return environ["wsgi.file_wrapper"](f, 8192)
    body = b"hello world"
    start_response(
        "200 OK",
        [("Content-Type", "text/plain"), ("Content-Length", str(len(body))), ("X-Test", "hello")],
    )
    return [body]
