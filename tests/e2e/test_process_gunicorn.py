"""gunicorn's signals and process settings, against real servers: SIGUSR2
(binary upgrade), SIGWINCH, SIGHUP re-reading the configuration,
--daemon, --user/--group/--umask, --name, --reuse-port, --paste, and the
exit statuses of failures. Where the behaviour is gunicorn's, the test runs
under gunicorn too (``QIAO_TEST_SERVER=gunicorn``).

Waiting is done with request loops bounded in count, or by polling a
condition: never by sleeping for a guessed time.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import signal
import socket
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import E2E_DIR, IS_GUNICORN, base_command, free_port, server_command, server_env
from rawhttp import wait_for

APP = "procx_apps:app"
KIND = "gunicorn" if IS_GUNICORN else "qiao"
#: Upper bound of the request loops that wait for a switch to happen.
MAX_REQUESTS = 5000
NOBODY, NOGROUP = 65534, 65534


def get(port: int, path: str = "/pid", timeout: float = 10.0) -> str:
    """One request on a new connection; the body (raises if refused)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path, headers={"Connection": "close"})
        response = conn.getresponse()
        assert response.status == 200, response.status
        return response.read().decode()
    finally:
        conn.close()


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")


def children(pid: int) -> set[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return set()
    return {int(p) for p in text.split() if alive(int(p))}


def status_fields(pid: int) -> dict[str, str]:
    lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    return {k: v.strip() for k, _, v in (line.partition(":") for line in lines)}


def read_pid(path: Path) -> int | None:
    with contextlib.suppress(OSError, ValueError):
        return int(path.read_text().strip())
    return None


def terminate(pid: int | None) -> None:
    """Stops a supervisor this test started outside its process group."""
    if pid and alive(pid):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        if not wait_for(lambda: not alive(pid), 10):
            os.kill(pid, signal.SIGKILL)


# -- SIGUSR2 -----------------------------------------------------------------------
def test_usr2_upgrade_then_term_old_refuses_nothing(start_server, tmp_path):
    pidfile = tmp_path / "app.pid"
    srv = start_server(APP, options=["--workers", "1", "--pid", str(pidfile)])
    old = srv.proc.pid
    assert wait_for(lambda: read_pid(pidfile) == old)
    get(srv.port)  # serving: the signals are handled
    os.kill(old, signal.SIGUSR2)
    new = None
    for _ in range(MAX_REQUESTS):  # until a worker of the new supervisor answers
        ppid = int(get(srv.port, "/ppid"))
        if ppid != old:
            new = ppid
            break
    assert new, f"no new supervisor answered in {MAX_REQUESTS} requests:\n{srv.stderr()}"
    if IS_GUNICORN:  # gunicorn 27: the new one writes PIDFILE.2 until promoted
        assert read_pid(Path(f"{pidfile}.2")) == new
    else:
        assert read_pid(pidfile) == new
        assert read_pid(Path(f"{pidfile}.oldbin")) == old
    os.kill(old, signal.SIGTERM)
    served = 0
    for _ in range(MAX_REQUESTS):  # while the old one stops: nothing refused
        get(srv.port, "/ppid")
        served += 1
        if srv.proc.poll() is not None:
            break
    assert srv.proc.wait(10) == 0, srv.stderr()
    answers = {int(get(srv.port, "/ppid")) for _ in range(20)}
    assert answers == {new}, srv.stderr()
    assert wait_for(lambda: read_pid(pidfile) == new), srv.stderr()
    assert not Path(f"{pidfile}.oldbin").exists()
    terminate(new)


@pytest.mark.qiao_only  # gunicorn 27 never renames its pid file (PIDFILE.2 instead)
def test_usr2_new_supervisor_dies_old_takes_its_pid_file_back(start_server, tmp_path):
    pidfile = tmp_path / "app.pid"
    srv = start_server(APP, options=["--workers", "1", "--pid", str(pidfile)])
    old = srv.proc.pid
    assert wait_for(lambda: read_pid(pidfile) == old)
    get(srv.port)  # serving: the signals are handled
    os.kill(old, signal.SIGUSR2)
    assert wait_for(lambda: read_pid(pidfile) not in (None, old)), srv.stderr()
    new = read_pid(pidfile)
    for _ in range(MAX_REQUESTS):
        if int(get(srv.port, "/ppid")) == new:
            break
    os.kill(new, signal.SIGTERM)  # a failed upgrade: back to the old one
    assert wait_for(lambda: read_pid(pidfile) == old), srv.stderr()
    assert not Path(f"{pidfile}.oldbin").exists()
    for _ in range(20):  # the shared sockets were not shut down by the new one
        assert int(get(srv.port, "/ppid")) == old
    assert "New supervisor" in srv.stderr()


# -- SIGWINCH and --daemon -------------------------------------------------------------
def start_daemon(tmp_path: Path, options=()) -> tuple[int, int]:
    """Starts ``APP`` with --daemon; (port, daemon pid) once it serves."""
    port, pidfile = free_port(), tmp_path / "daemon.pid"
    cmd = server_command(APP, [f"127.0.0.1:{port}"], ["-D", "--pid", str(pidfile), *options])
    done = subprocess.run(cmd, cwd=E2E_DIR, env=server_env(), timeout=20, capture_output=True)
    assert done.returncode == 0, done.stderr
    assert wait_for(lambda: read_pid(pidfile) and alive(read_pid(pidfile))), "no pid file"
    pid = read_pid(pidfile)
    assert wait_for(lambda: _serves(port)), "the daemon does not serve"
    return port, pid


def _serves(port: int) -> bool:
    try:
        get(port, timeout=2)
    except OSError:
        return False
    return True


def test_daemon_detaches_and_its_pid_file_names_the_server(tmp_path):
    port, pid = start_daemon(tmp_path, ["--workers", "2"])
    try:
        assert int(get(port, "/ppid")) == pid
        fields = status_fields(pid)
        assert int(fields["PPid"]) != os.getpid()  # detached: not our child
        assert os.getsid(pid) != os.getsid(0)
    finally:
        terminate(pid)


def test_winch_stops_the_workers_of_a_daemon(tmp_path):
    port, pid = start_daemon(tmp_path, ["--workers", "2"])
    try:
        assert wait_for(lambda: len(children(pid)) == 2)
        os.kill(pid, signal.SIGWINCH)
        assert wait_for(lambda: not children(pid)), children(pid)
        assert alive(pid)
        os.kill(pid, signal.SIGTTIN)  # the supervisor still manages workers
        assert wait_for(lambda: len(children(pid)) == 1)
        assert int(get(port, "/ppid")) == pid
    finally:
        terminate(pid)


def test_winch_is_ignored_without_daemon(start_server):
    srv = start_server(APP, options=["--workers", "2"])
    pid = srv.proc.pid
    get(srv.port)  # serving: the signals are handled
    assert wait_for(lambda: len(children(pid)) == 2)
    before = children(pid)
    os.kill(pid, signal.SIGWINCH)
    os.kill(pid, signal.SIGTTIN)  # handled after WINCH: one more worker
    assert wait_for(lambda: len(children(pid)) == 3), srv.stderr()
    assert before <= children(pid)


# -- SIGHUP: the configuration is read again -----------------------------------------------
def write_config(path: Path, workers: int, mark: str, timeout: int) -> None:
    path.write_text(f"workers = {workers}\nraw_env = ['PROC_MARK={mark}']\ntimeout = {timeout}\n")


def test_hup_reads_the_config_file_again(start_server, tmp_path):
    conf = tmp_path / "conf.py"
    write_config(conf, 1, "one", 30)
    srv = start_server(APP, options=["-c", str(conf)])
    pid = srv.proc.pid
    assert get(srv.port, "/env?PROC_MARK") == "one"
    assert wait_for(lambda: len(children(pid)) == 1)
    write_config(conf, 2, "two", 1)
    os.kill(pid, signal.SIGHUP)
    marks, seen = [], set()
    for _ in range(MAX_REQUESTS):  # until both new workers answer
        conn_pid, mark = get(srv.port, "/pid"), get(srv.port, "/env?PROC_MARK")
        marks.append(mark)
        if mark == "two":
            seen.add(conn_pid)
        if len(seen) == 2 and len(children(pid)) == 2:
            break
    assert len(children(pid)) == 2, srv.stderr()
    assert "two" in marks
    if not IS_GUNICORN:  # gthread workers heartbeat while a request sleeps
        with pytest.raises((OSError, http.client.HTTPException, AssertionError)):
            get(srv.port, "/sleep")  # killed after the new --timeout 1


@pytest.mark.qiao_only  # gunicorn's master exits on a config file that fails on reload
def test_hup_with_a_broken_config_keeps_the_settings(start_server, tmp_path):
    conf = tmp_path / "conf.py"
    write_config(conf, 1, "one", 30)
    srv = start_server(APP, options=["-c", str(conf)])
    assert get(srv.port, "/env?PROC_MARK") == "one"  # serving: the signals are handled
    conf.write_text("workers = (\n")
    mark = srv.stderr_mark()
    os.kill(srv.proc.pid, signal.SIGHUP)
    assert wait_for(lambda: "keeping the previous one" in srv.stderr()[mark:]), srv.stderr()
    assert get(srv.port, "/env?PROC_MARK") == "one"
    assert srv.alive()


@pytest.mark.qiao_only  # gunicorn re-binds on HUP; Qiao asks for a restart
def test_hup_logs_a_setting_that_needs_a_restart(start_server, tmp_path):
    conf = tmp_path / "conf.py"
    conf.write_text("workers = 1\nbacklog = 64\n")
    srv = start_server(APP, options=["-c", str(conf)])
    get(srv.port)  # serving: the signals are handled
    conf.write_text("workers = 1\nbacklog = 128\n")
    os.kill(srv.proc.pid, signal.SIGHUP)
    assert wait_for(lambda: "Restart needed for backlog" in srv.stderr()), srv.stderr()


# -- user, group, umask -----------------------------------------------------------------
def test_workers_run_as_user_and_group(start_server, tmp_path):
    sock_path = tmp_path / "s.sock"
    tmp_path.chmod(0o755)
    srv = start_server(
        APP,
        binds=[f"127.0.0.1:{free_port()}", f"unix:{sock_path}"],
        options=["--user", "nobody", "--group", "nogroup", "--umask", "0o27", "--workers", "1"],
    )
    worker = int(get(srv.port, "/pid"))
    fields = status_fields(worker)
    assert fields["Uid"].split() == [str(NOBODY)] * 4, fields["Uid"]
    assert fields["Gid"].split() == [str(NOGROUP)] * 4, fields["Gid"]
    assert status_fields(srv.proc.pid)["Uid"].split()[0] == "0"  # the supervisor stays root
    st = os.stat(sock_path)
    assert (st.st_uid, st.st_gid) == (NOBODY, NOGROUP)
    assert stat.S_IMODE(st.st_mode) == 0o750  # bound under --umask
    if not IS_GUNICORN:  # gunicorn's umask covers its files only, not the app's
        assert fields["Umask"] == "0027"
        assert fields["Groups"] == ""


# -- --name ------------------------------------------------------------------------------
def cmdline(pid: int) -> str:
    return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode().strip()


@pytest.mark.parametrize("name", ["myname", None])
def test_process_titles(start_server, name):
    pytest.importorskip("setproctitle")
    options = ["--workers", "1"] + (["--name", name] if name else [])
    srv = start_server(APP, options=options)
    worker = int(get(srv.port, "/pid"))
    shown = name or APP  # gunicorn's default_proc_name: the application as given
    assert cmdline(srv.proc.pid) == f"{KIND}: master [{shown}]"
    assert cmdline(worker) == f"{KIND}: worker [{shown}]"


@pytest.mark.qiao_only
def test_title_without_setproctitle_is_the_thread_name():
    code = (
        "import sys; sys.modules['setproctitle'] = None\n"
        "from qiao.process import set_title; set_title('master', 'x')\n"
        "print(open('/proc/self/comm').read().strip())"
    )
    out = subprocess.run([sys.executable, "-c", code], env=server_env(), capture_output=True)
    assert out.stdout.decode().strip() == "qiao: master [x", out.stderr  # 15 bytes


# -- --reuse-port ----------------------------------------------------------------------
def test_reuse_port_lets_two_servers_share_a_port(start_server):
    bind = [f"127.0.0.1:{free_port()}"]
    one = start_server(APP, binds=bind, options=["--reuse-port", "--workers", "1"])
    two = start_server(APP, binds=bind, options=["--reuse-port", "--workers", "1"])
    masters = {one.proc.pid, two.proc.pid}
    seen = set()
    for _ in range(MAX_REQUESTS):  # new connections are spread by the kernel
        seen.add(int(get(one.port, "/ppid")))
        if seen == masters:
            break
    assert seen == masters


def test_without_reuse_port_the_second_server_cannot_bind(start_server):
    bind = [f"127.0.0.1:{free_port()}"]
    start_server(APP, binds=bind, options=["--workers", "1"])
    cmd = server_command(APP, bind, ["--workers", "1"])
    done = subprocess.run(cmd, cwd=E2E_DIR, env=server_env(), timeout=60, capture_output=True)
    assert done.returncode == 1, done.stderr


# -- --paste ---------------------------------------------------------------------------
PASTE_INI = """\
[DEFAULT]
greeting = hello

[app:main]
use = call:procx_apps:make_app
word = %(greeting)s-%(extra)s

[app:other]
use = call:procx_apps:make_app
word = other
"""


@pytest.mark.parametrize("section, word", [("", "hello-world"), ("#other", "other")])
def test_paste_app(start_server, tmp_path, section, word):
    pytest.importorskip("paste.deploy")
    ini = tmp_path / "app.ini"
    ini.write_text(PASTE_INI)
    port = free_port()
    cmd = base_command() + ["-b", f"127.0.0.1:{port}", "--workers", "1"]
    cmd += ["--paste", f"{ini}{section}", "--paste-global", "extra=world"]
    srv = start_server(binds=[f"127.0.0.1:{port}"], cmd=cmd)
    assert get(srv.port, "/") == word


def test_paste_check_config(tmp_path):
    pytest.importorskip("paste.deploy")
    ini = tmp_path / "app.ini"
    ini.write_text(PASTE_INI)
    cmd = base_command() + ["--check-config", "--paste", str(ini), "--paste-global", "extra=x"]
    done = subprocess.run(cmd, cwd=E2E_DIR, env=server_env(), timeout=60, capture_output=True)
    assert done.returncode == 0, done.stderr
    ini.write_text(PASTE_INI.replace("procx_apps:make_app", "procx_apps:no_such_factory"))
    done = subprocess.run(cmd, cwd=E2E_DIR, env=server_env(), timeout=60, capture_output=True)
    assert done.returncode == 1, done.stderr


# -- exit statuses -------------------------------------------------------------------------
@pytest.mark.parametrize(
    "args, status",
    [
        (["no_such_module:app"], 3),  # the worker cannot boot (gunicorn's WORKER_BOOT_ERROR)
        (["proc_broken:app"], 3),
        (["procx_apps:no_such_attribute"], 4),  # gunicorn's APP_LOAD_ERROR
        (["--workers", "abc", APP], 2),  # usage
        (["-c", "/nonexistent/conf.py", APP], 1),
        (["--user", "no-such-user", APP], 1),
        (["--group", "no-such-group", APP], 1),
        (["--paste", "/nonexistent/app.ini"], 1),
        (["--check-config", "no_such_module:app"], 1),
        (["--preload", "no_such_module:app"], 1),
    ],
)
def test_exit_status(args, status):
    cmd = base_command() + ["-b", f"127.0.0.1:{free_port()}", *args]
    done = subprocess.run(cmd, cwd=E2E_DIR, env=server_env(), timeout=60, capture_output=True)
    assert done.returncode == status, done.stderr.decode(errors="replace")[-2000:]


def test_exit_status_of_a_bind_failure():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        cmd = base_command() + ["-b", f"127.0.0.1:{port}", APP]
        done = subprocess.run(cmd, cwd=E2E_DIR, env=server_env(), timeout=60, capture_output=True)
    assert done.returncode == 1, done.stderr
