"""An in-process WSGI caller for the middleware's unit-level tests: a tiny
server that follows PEP 3333 (start_response with exc_info, write(),
close()) and wraps the app in ``wsgiref.validate.validator``."""

from __future__ import annotations

import io
import warnings
from wsgiref.util import FileWrapper, setup_testing_defaults
from wsgiref.validate import validator


class Result:
    def __init__(self):
        self.status = None
        self.headers: list[tuple[str, str]] = []
        self.body = b""
        self.sent = False  # a non-empty body piece went out

    def header(self, name):
        for k, v in self.headers:
            if k.lower() == name.lower():
                return v
        return None

    @property
    def code(self) -> int:
        return int(self.status.split()[0])


def call(
    app,
    path="/",
    method="GET",
    headers=(),
    body=b"",
    *,
    file_wrapper=True,
    stop_after=None,
    validate=True,
    environ=None,
):
    """Calls ``app`` like a server; ``stop_after``: stop iterating after that
    many pieces (a client gone), closing the result all the same."""
    env = {}
    setup_testing_defaults(env)
    env.update(
        {
            "PATH_INFO": path,
            "REQUEST_METHOD": method,
            "QUERY_STRING": "",
            "wsgi.input": io.BytesIO(body),
        }
    )
    if body:
        env["CONTENT_LENGTH"] = str(len(body))
    if file_wrapper:
        env["wsgi.file_wrapper"] = FileWrapper
    for name, value in headers:
        env["HTTP_" + name.upper().replace("-", "_")] = value
    env.update(environ or {})
    res = Result()

    def start_response(status, response_headers, exc_info=None):
        if exc_info is not None:
            if res.sent:
                raise exc_info[1].with_traceback(exc_info[2])
        elif res.status is not None:
            raise AssertionError("start_response called twice")
        res.status, res.headers = status, list(response_headers)

        def write(data):
            assert res.status is not None
            res.sent = res.sent or bool(data)
            res.body += data

        return write

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # validator's advice on optional keys
        result = (validator(app) if validate else app)(env, start_response)
        try:
            for n, piece in enumerate(result, 1):
                res.sent = res.sent or bool(piece)
                res.body += piece
                if stop_after is not None and n >= stop_after:
                    break
        finally:
            if hasattr(result, "close"):
                result.close()
    return res
