"""Applications for the gunicorn drop-in tests (test_gunicorn_*.py)."""

from __future__ import annotations

import json
import os
import threading

#: Requests of /meet wait here for a second request: they meet only if the
#: worker serves two requests at once.
MEET_WAIT_SECONDS = 3.0
_meeting = threading.Barrier(2)
_lock = threading.Lock()


def _json(start_response, value, status="200 OK"):
    body = json.dumps(value).encode()
    start_response(
        status, [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
    )
    return [body]


def app(environ, start_response):
    path = environ.get("PATH_INFO", "")
    if path == "/meet":
        # Two requests at once meet at the barrier; a worker serving one
        # request at a time leaves each alone until the wait runs out.
        try:
            _meeting.wait(MEET_WAIT_SECONDS)
            met = True
        except threading.BrokenBarrierError:
            met = False
            with _lock:
                if _meeting.broken:
                    _meeting.reset()
        return _json(start_response, {"met": met})
    return _json(
        start_response,
        {
            "pid": os.getpid(),
            "env": {k: v for k, v in os.environ.items() if k.startswith("GAPP_")},
            "scheme": environ["wsgi.url_scheme"],
            "remote_addr": environ.get("REMOTE_ADDR"),
            "umask": _umask(),
        },
    )


#: What gunicorn (and Qiao) look for when given the module alone.
application = app


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def create_app(name="factory"):
    """gunicorn's factory form: ``gunicorn_apps:create_app('x')``."""

    def factory_app(environ, start_response):
        return _json(start_response, {"factory": name})

    return factory_app
