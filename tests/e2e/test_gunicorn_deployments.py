"""Deployments written for gunicorn, with the word ``gunicorn`` replaced:
command lines as Procfiles, Dockerfile ``CMD``s and systemd units have
them, environments (``PORT``, ``WEB_CONCURRENCY``, ``GUNICORN_CMD_ARGS``)
and config files, each started as it is and asked for a page.

Each case runs against gunicorn too (``QIAO_TEST_SERVER=gunicorn``): a case
that gunicorn does not serve is not a gunicorn deployment.
"""

from __future__ import annotations

import shlex
import textwrap
import urllib.request

import pytest
from conftest import Server, base_command, free_port

APP = "gunicorn_apps:app"

CONF_TYPICAL = """
import multiprocessing
import os

bind = f"0.0.0.0:{os.environ.get('PORT', '8000')}"
workers = min(multiprocessing.cpu_count() * 2 + 1, 3)
worker_class = "gthread"
threads = 4
timeout = 120
keepalive = 5
accesslog = "-"
errorlog = "-"
loglevel = "info"
access_log_format = '%(h)s %(l)s %(u)s %(t)s "%(r)s" %(s)s %(b)s "%(f)s" "%(a)s" %(D)s'
max_requests = 1000
max_requests_jitter = 50
raw_env = ["GAPP_STAGE=prod"]
forwarded_allow_ips = "*"
secure_scheme_headers = {"X-FORWARDED-PROTO": "https"}

def on_starting(server):
    server.log.info("starting")

def when_ready(server):
    server.log.info("ready")

def post_fork(server, worker):
    server.log.info("worker %s forked", worker.pid)

def worker_exit(server, worker):
    server.log.info("worker %s exits", worker.pid)
"""

CONF_PRELOAD = """
bind = "0.0.0.0:{port}"
workers = 2
preload_app = True
worker_tmp_dir = "/dev/shm"
capture_output = True
wsgi_app = "gunicorn_apps:app"
def pre_request(worker, req):
    worker.log.debug("%s %s", req.method, req.path)
def post_request(worker, req, environ, resp):
    pass
"""

LOGGING_INI = """
[loggers]
keys=root, gunicorn.error, gunicorn.access

[handlers]
keys=console

[formatters]
keys=generic

[logger_root]
level=INFO
handlers=console

[logger_gunicorn.error]
level=INFO
handlers=console
propagate=0
qualname=gunicorn.error

[logger_gunicorn.access]
level=INFO
handlers=console
propagate=0
qualname=gunicorn.access

[handler_console]
class=StreamHandler
formatter=generic
args=(sys.stderr, )

[formatter_generic]
format=%(asctime)s [%(process)d] [%(levelname)s] %(message)s
"""

#: (id, command line after the program name, environment, files) with
#: ``{port}`` for the port the case listens on.
CASES = [
    ("heroku-procfile", f"{APP}", {"PORT": "{port}"}, {}),
    ("bind-workers-timeout", f"--bind 0.0.0.0:{{port}} --workers 3 --timeout 120 {APP}", {}, {}),
    ("gthread-short-flags", f"-w 2 -k gthread --threads 8 -b :{{port}} {APP}", {}, {}),
    (
        "logs-to-stdout",
        f"{APP} -b 127.0.0.1:{{port}} --log-file - --access-logfile - --error-logfile -",
        {},
        {},
    ),
    (
        "equals-syntax",
        "--bind=0.0.0.0:{port} --worker-class=sync --workers=2 --keep-alive=5 "
        f"--max-requests=1000 --max-requests-jitter=50 --log-level=DEBUG {APP}",
        {},
        {},
    ),
    (
        "config-file-with-hooks",
        f"-c gunicorn.conf.py {APP}",
        {"PORT": "{port}"},
        {"gunicorn.conf.py": CONF_TYPICAL},
    ),
    ("conf-found-in-cwd", APP, {"PORT": "{port}"}, {"gunicorn.conf.py": CONF_TYPICAL}),
    (
        "factory-and-tmp-dir",
        "--worker-tmp-dir /dev/shm --workers 2 --threads 4 --worker-class gthread "
        "--log-level info --bind 0.0.0.0:{port} 'gunicorn_apps:create_app()'",
        {},
        {},
    ),
    ("module-only-w4", "gunicorn_apps -w4 -b 127.0.0.1:{port}", {}, {}),
    (
        "cmd-args-and-web-concurrency",
        APP,
        {"GUNICORN_CMD_ARGS": "--bind=127.0.0.1:{port} --timeout 90", "WEB_CONCURRENCY": "2"},
        {},
    ),
    (
        "preload-name-pid",
        "-c preload.conf.py -n myapp -p app.pid",
        {},
        {"preload.conf.py": CONF_PRELOAD},
    ),
    (
        "limits-and-backlog",
        "--limit-request-line 8190 --limit-request-fields 200 --limit-request-field_size 16380 "
        f"--graceful-timeout 30 --backlog 2048 -b 127.0.0.1:{{port}} {APP}",
        {},
        {},
    ),
    (
        "log-config-ini",
        f"--log-config logging.ini -b 127.0.0.1:{{port}} {APP}",
        {},
        {"logging.ini": LOGGING_INI},
    ),
    (
        "statsd-and-proc-name",
        f"--statsd-host localhost:8125 --statsd-prefix web --name web -b :{{port}} {APP}",
        {},
        {},
    ),
    (
        "old-ssl-and-parser-flags",
        "--forwarded-allow-ips='*' --strip-header-spaces --no-sendfile --reuse-port "
        f"--capture-output --enable-stdio-inheritance -b 127.0.0.1:{{port}} {APP}",
        {},
        {},
    ),
    ("gevent-worker", "-k gevent --worker-connections 1000 -b :{port} gevent_app:app", {}, {}),
    ("reload-in-development", f"--reload -b 127.0.0.1:{{port}} {APP}", {}, {}),
]


@pytest.mark.parametrize("name, argv, env, files", CASES, ids=[c[0] for c in CASES])
def test_gunicorn_deployment_serves(tmp_path, name, argv, env, files):
    port = free_port()
    for file, text in files.items():
        (tmp_path / file).write_text(textwrap.dedent(text).replace("{port}", str(port)))
    args = shlex.split(argv.format(port=port))
    environ = {k: v.format(port=port) for k, v in env.items()}
    if name == "gevent-worker":
        pytest.importorskip("gevent")
    srv = Server(cmd=base_command() + args, binds=[f"127.0.0.1:{port}"], cwd=tmp_path, env=environ)
    srv.start()
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=10) as r:
            assert r.status == 200, srv.stderr()
    finally:
        srv.cleanup()
