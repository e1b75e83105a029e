"""Inherited listening sockets: systemd socket activation (``LISTEN_PID`` /
``LISTEN_FDS``, started through ``cfg_launch.py`` as systemd would) and
``--bind fd://N``. Real sockets made here are passed to a real ``qiao``
(``pass_fds``); the tests check that it serves them, binds nothing else,
hides the variables from its workers, and leaves the sockets to their owner
when it stops.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess

import pytest
from conftest import E2E_DIR, Server, base_command, free_port, server_env
from rawhttp import Conn, wait_for

pytestmark = pytest.mark.qiao_only

LAUNCHER = str(E2E_DIR / "cfg_launch.py")


def tcp_listener() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    return sock


def unix_listener(path) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.bind(str(path))
    sock.listen(64)
    return sock


def listening_ports(pid: int) -> set[int]:
    """The TCP ports process ``pid`` has listening sockets on (from /proc)."""
    inodes = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    ports = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as f:
            for row in f.read().splitlines()[1:]:
                cols = row.split()
                if cols[3] == "0A" and cols[9] in inodes:  # 0A: LISTEN
                    ports.add(int(cols[1].rsplit(":", 1)[1], 16))
    return ports


@pytest.fixture
def launch():
    """launch(args, fds, systemd=True, other_pid=False) -> a running qiao that
    inherited ``fds`` (as systemd would pass them, or as they are)."""
    started = []

    def start(args, fds, systemd=True, other_pid=False) -> Server:
        cmd = base_command() + list(args)
        if systemd:
            pid = ["--pid", "other"] if other_pid else []
            cmd = [base_command()[0], LAUNCHER, *pid, ",".join(map(str, fds)), "--", *cmd]
        srv = Server(cmd=cmd, binds=[f"127.0.0.1:{free_port()}"])  # binds: unused
        started.append(srv)
        srv.proc = subprocess.Popen(
            srv.cmd,
            cwd=srv.cwd,
            env=srv.env,
            stdin=subprocess.DEVNULL,
            stdout=srv._out,
            stderr=srv._log,
            start_new_session=True,
            pass_fds=fds,
        )
        assert wait_for(lambda: "Booting worker" in srv.stderr() or not srv.alive()), srv.stderr()
        assert srv.alive(), srv.stderr()
        return srv

    yield start
    for srv in started:
        srv.cleanup()


def get_env(**where) -> dict:
    with Conn(**where) as c:
        resp = c.request("GET", "/env")
        assert resp.status == 200
        return json.loads(resp.body)


def test_systemd_socket_activation_tcp(launch):
    lsock = tcp_listener()
    port = lsock.getsockname()[1]
    srv = launch(["cfg_apps:app"], [lsock.fileno()])  # no --bind: would be 127.0.0.1:8000
    lsock.close()  # only qiao holds it now
    seen = get_env(port=port)
    assert seen["listen"] == {}, "the worker must not see LISTEN_* (they were for the supervisor)"
    assert f"Listening at: http://127.0.0.1:{port} ({srv.proc.pid}), inherited fd 3" in srv.stderr()
    assert listening_ports(srv.proc.pid) == {port}, "qiao bound a socket of its own"
    assert listening_ports(seen["pid"]) == {port}


def test_systemd_tcp_and_unix_are_left_to_their_owner(launch, tmp_path):
    path = tmp_path / "app.sock"
    tcp, unix = tcp_listener(), unix_listener(path)
    port = tcp.getsockname()[1]
    srv = launch(["--workers", "2", "cfg_apps:app"], [tcp.fileno(), unix.fileno()])
    with Conn(port=port) as c:
        assert c.request("GET", "/").body == b"hello"
    with Conn(unix_path=str(path)) as c:
        assert c.request("GET", "/").body == b"hello"
    assert get_env(unix_path=str(path))["listen"] == {}
    assert "inherited fd 4" in srv.stderr() and f"unix:{path}" in srv.stderr()
    srv.proc.send_signal(signal.SIGTERM)
    assert srv.proc.wait(10) == 0
    # systemd still holds both sockets: they still listen (new clients queue
    # for the next start), and the Unix socket's file is still there.
    assert path.exists()
    for where in ({"port": port}, {"unix_path": str(path)}):
        with Conn(**where, timeout=2) as c:
            c.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")  # queued, not refused
    tcp.close()
    unix.close()


def test_systemd_reload_keeps_serving_inherited_socket(launch):
    lsock = tcp_listener()
    port = lsock.getsockname()[1]
    srv = launch(["cfg_apps:app"], [lsock.fileno()])
    lsock.close()
    first = get_env(port=port)["pid"]
    srv.proc.send_signal(signal.SIGHUP)
    assert wait_for(lambda: get_env(port=port)["pid"] != first, timeout=10), srv.stderr()
    assert listening_ports(srv.proc.pid) == {port}


def test_listen_pid_of_another_process_is_ignored(launch):
    lsock = tcp_listener()
    port = free_port()
    srv = launch(["--bind", f"127.0.0.1:{port}", "cfg_apps:app"], [lsock.fileno()], other_pid=True)
    assert get_env(port=port)["listen"] == {}
    # fd 3 stays open (it is not Qiao's to close) but is not served.
    listening = [line for line in srv.stderr().splitlines() if "Listening at" in line]
    assert len(listening) == 1 and f"127.0.0.1:{port}" in listening[0], srv.stderr()
    assert "inherited" not in srv.stderr()
    lsock.close()


def test_bind_fd_tcp_unix_and_address_together(launch, tmp_path):
    path = tmp_path / "fd.sock"
    tcp, unix = tcp_listener(), unix_listener(path)
    tcp_port, own_port = tcp.getsockname()[1], free_port()
    args = ["--bind", f"fd://{tcp.fileno()}", "--bind", f"fd://{unix.fileno()}"]
    args += ["--bind", f"127.0.0.1:{own_port}", "cfg_apps:app"]
    srv = launch(args, [tcp.fileno(), unix.fileno()], systemd=False)
    tcp.close()
    unix.close()
    for where in ({"port": tcp_port}, {"port": own_port}, {"unix_path": str(path)}):
        with Conn(**where) as c:
            assert c.request("GET", "/").body == b"hello"
    assert listening_ports(srv.proc.pid) == {tcp_port, own_port}
    srv.stop()
    assert path.exists(), "the file of an inherited Unix socket is not Qiao's to remove"


def run_with_fds(args, fds):
    return subprocess.run(
        base_command() + list(args),
        cwd=E2E_DIR,
        env=server_env(),
        capture_output=True,
        text=True,
        timeout=30,
        pass_fds=fds,
    )


@pytest.mark.parametrize("kind", ["closed", "file", "bound-only", "udp", "garbage", "twice"])
def test_bad_inherited_descriptor(kind, tmp_path):
    keep = []
    if kind == "closed":
        fd = 99
    elif kind == "file":
        fd = os.open(tmp_path / "f", os.O_CREAT | os.O_RDWR)
    elif kind == "udp":
        keep.append(socket.socket(socket.AF_INET, socket.SOCK_DGRAM))
        fd = keep[-1].fileno()
    elif kind == "twice":
        keep.append(tcp_listener())
        fd = keep[-1].fileno()
    else:
        keep.append(socket.socket())
        keep[-1].bind(("127.0.0.1", 0))
        fd = keep[-1].fileno()
    bind = "fd://x3" if kind == "garbage" else f"fd://{fd}"
    args = ["--bind", bind, "cfg_apps:app"]
    if kind == "twice":
        args = ["--bind", bind, *args]
    proc = run_with_fds(args, [] if kind == "closed" else [fd])
    expected = {
        "closed": "not a socket",
        "file": "not a socket",
        "bound-only": "not listening",
        "udp": "not a stream socket",
        "garbage": "expected fd://N",
        "twice": "already served",
    }[kind]
    assert proc.returncode == 1, proc.stderr
    assert expected in proc.stderr and bind in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    for sock in keep:
        sock.close()
    if kind == "file":
        os.close(fd)
