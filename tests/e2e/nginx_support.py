"""A real nginx for the tests that put it in front of Qiao (uwsgi_pass,
proxy_pass, scale-out): one foreground process on loopback, every path in
a temporary directory, stopped by the caller."""

from __future__ import annotations

import os
import shutil
import subprocess
import textwrap
from pathlib import Path

#: The nginx binary, if installed (scripts/test.sh installs nginx-light).
NGINX = shutil.which("nginx") or ("/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx") else None)


def start_nginx(work: Path, http_block: str) -> subprocess.Popen:
    """Starts nginx in the foreground with ``http_block`` (upstreams and
    servers, already indented or not) inside its ``http {}``; temp files,
    pid and error log go under ``work``."""
    assert NGINX is not None, "nginx is not installed"
    conf = work / "nginx.conf"
    conf.write_text(
        textwrap.dedent(
            f"""
            daemon off;
            master_process off;
            worker_processes 1;
            pid {work}/nginx.pid;
            error_log {work}/error.log warn;
            events {{ worker_connections 512; }}
            http {{
                access_log off;
                client_body_temp_path {work}/body;
                proxy_temp_path {work}/proxy;
                fastcgi_temp_path {work}/fastcgi;
                uwsgi_temp_path {work}/uwsgi;
                scgi_temp_path {work}/scgi;
            """
        )
        + textwrap.indent(textwrap.dedent(http_block), "    ")
        + "}\n"
    )
    return subprocess.Popen(
        [NGINX, "-c", str(conf), "-p", str(work)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
