"""The smallest useful WSGI application.

Run it with Qiao from this directory:

    qiao hello:application --bind 127.0.0.1:8000
"""


def application(environ, start_response):
    body = b"Hello, world!\n"
    start_response(
        "200 OK",
        [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(body)))],
    )
    return [body]
