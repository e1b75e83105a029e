"""A gunicorn config file defining every server hook (tests/e2e/test_hooks.py).

Each hook appends one JSON line to the file named by $HOOKS_LOG: the hook's
name, the pid it ran in, and the attributes of its arguments that hooks use.
$HOOKS_RAISE names a hook that raises instead (after writing its line);
$HOOKS_ABORT_HANG makes worker_abort never return.
"""

import json as _json
import os as _os
import time as _time

_LOG = _os.environ["HOOKS_LOG"]
_RAISE = _os.environ.get("HOOKS_RAISE", "")
RAISED = "hook-raised-marker-5e1f"


def _write(name, **fields):
    fields.update(hook=name, in_pid=_os.getpid())
    line = _json.dumps(fields, default=repr) + "\n"
    fd = _os.open(_LOG, _os.O_WRONLY | _os.O_APPEND | _os.O_CREAT, 0o644)
    try:
        _os.write(fd, line.encode())
    finally:
        _os.close(fd)
    if name == _RAISE:
        raise RuntimeError(RAISED)


def _server(s):
    return {
        "server_pid": getattr(s, "pid", None),  # gunicorn: not yet at the first nworkers_changed
        "num_workers": s.num_workers,
        "workers": sorted(s.WORKERS),
        "cfg_workers": s.cfg.workers,
        "cfg_bind": s.cfg.bind,
        "cfg_timeout": s.cfg.timeout,
        "cfg_accesslog": s.cfg.accesslog,
        "worker_class": s.cfg.worker_class_str,
        "settings_workers": s.cfg.settings["workers"].value,
        "app_cfg_workers": s.app.cfg.workers,
    }


def _worker(w):
    return {
        "worker_pid": w.pid,
        "ppid": w.ppid,
        "age": w.age,
        "booted": w.booted,
        "alive": w.alive,
        "nr": w.nr,
        "cfg_workers": w.cfg.workers,
        "has_log": callable(w.log.info) and callable(w.log.exception),
    }


def on_starting(server):
    server.log.info("on_starting says hello")
    _write("on_starting", **_server(server))


def when_ready(server):
    _write("when_ready", **_server(server))


def nworkers_changed(server, new_value, old_value):
    _write("nworkers_changed", new=new_value, old=old_value, **_server(server))


def pre_fork(server, worker):
    _write("pre_fork", server=_server(server), **_worker(worker))


def post_fork(server, worker):
    _write("post_fork", server=_server(server), **_worker(worker))


def post_worker_init(worker):
    _write("post_worker_init", **_worker(worker))


def pre_request(worker, req):
    _write(
        "pre_request",
        method=req.method,
        path=req.path,
        uri=req.uri,
        query=req.query,
        version=list(req.version),
        headers=[list(h) for h in req.headers],
        scheme=req.scheme,
        remote_addr=req.remote_addr,
        **_worker(worker),
    )


def post_request(worker, req, environ, resp):
    _write(
        "post_request",
        path=req.path,
        environ_path=environ.get("PATH_INFO"),
        status=resp.status,
        status_code=resp.status_code,
        headers=[list(h) for h in resp.headers],
        sent=resp.sent,
        **_worker(worker),
    )


def worker_int(worker):
    _write("worker_int", **_worker(worker))


def worker_abort(worker):
    _write("worker_abort", **_worker(worker))
    while _os.environ.get("HOOKS_ABORT_HANG"):
        _time.sleep(1)


def worker_exit(server, worker):
    _write("worker_exit", **_worker(worker))


def child_exit(server, worker):
    _write("child_exit", server=_server(server), **_worker(worker))


def on_reload(server):
    _write("on_reload", **_server(server))


def on_exit(server):
    _write("on_exit", **_server(server))
