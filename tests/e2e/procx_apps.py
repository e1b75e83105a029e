"""WSGI test applications for ``test_process_gunicorn.py``: they import
nothing beyond ``os`` (a worker running as ``nobody`` cannot read the
interpreter's library under a private home directory).

``app`` dispatches on PATH_INFO:

* ``/pid``: the serving worker's pid; ``/ppid``: its supervisor's;
* ``/env?NAME``: the value of the environment variable NAME (``-`` unset);
* ``/sleep``: sleeps 3 seconds (a worker killed by ``--timeout 1`` never
  answers).

``make_app`` is a PasteDeploy factory (``use = call:procx_apps:make_app``)
answering ``WORD`` from its ``word`` setting.
"""

import os
import time

#: How long /sleep takes: longer than the --timeout the tests set.
SLEEP_SECONDS = 3


def _text(start_response, text: str):
    body = text.encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]


def app(environ, start_response):
    path, query = environ.get("PATH_INFO", ""), environ.get("QUERY_STRING", "")
    if path == "/pid":
        return _text(start_response, str(os.getpid()))
    if path == "/ppid":
        return _text(start_response, str(os.getppid()))
    if path == "/env":
        return _text(start_response, os.environ.get(query, "-"))
    if path == "/sleep":
        time.sleep(SLEEP_SECONDS)
        return _text(start_response, "slept")
    return _text(start_response, "procx")


def make_app(global_conf, word="none", **local_conf):
    def paste_app(environ, start_response):
        return _text(start_response, word)

    return paste_app
