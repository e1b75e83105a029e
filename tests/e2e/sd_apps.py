"""An application for the sd_notify tests: it answers with the
NOTIFY_SOCKET its worker's environment holds ("unset" when none)."""

import os


def app(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [os.environ.get("NOTIFY_SOCKET", "unset").encode()]
