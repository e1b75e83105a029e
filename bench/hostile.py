#!/usr/bin/env python3
"""Does a well-behaved client still get served while hostile clients
attack the same worker? (Issue "hostile clients", docs/security.md.)

One worker serves ``bench/hostile_app.py``. A well-behaved client sends
``GET /`` on a keep-alive connection, one request after another (a new
connection after any failure), for ``--duration`` seconds, first with no
attack, then while each attack below runs against the same worker:

- ``pipelining``: 4 connections with a 4 KiB receive buffer pipeline
  ``GET /`` and never read;
- ``probe-flood``: the same with the ``--health-path`` probe;
- ``slow-readers``: 140 connections ask for an 8 MiB body and never read;
- ``slow-generator``: the same, the body made by a generator;
- ``h2-zero-window``: one h2c connection, 128 streams of the 8 MiB body,
  flow-control window 0 (needs the ``h2`` package);
- ``slowloris``: 500 connections send a request head one byte a second;
- ``slow-upload``: 50 connections send a 10 MB body at 1 KiB a second.

With ``--tls`` the worker serves TLS (a throw-away self-signed P-256
certificate), the well-behaved client and every attack above go through
TLS (``h2-zero-window`` with ALPN ``h2``), and two attacks on the
handshake itself are added:

- ``tls-slow-hello``: 500 connections send a ClientHello one byte a
  second (slowloris before the handshake);
- ``tls-handshakes``: 2 processes make full handshakes back to back and
  close each connection at once (a flood of the handshake's CPU). Processes,
  not threads beside the well-behaved client: a busy thread of its own
  process would hold the GIL and delay the client's own reads by up to
  Python's switch interval (5 ms), which measures the client, not Qiao;
  and at the lowest CPU priority (``nice`` 19), so that on a small machine
  they take the CPU the worker and the client leave, and the client's
  latency is the worker's doing, not the scheduler's.

For each it reports the client's success rate, median and p99 latency, the
p99 against the unattacked one (goal: 100 % and within 2x), and the
worker's resident memory after the attack ended (a burst must not leave
it tens of MB larger for good: the last line is its memory once the
threads the attacks started have ended, ``--settle`` seconds later).
Prints a Markdown table; ``--out`` also writes it with the date and
machine.

    PYTHONPATH=python python3 bench/hostile.py
    PYTHONPATH=python python3 bench/hostile.py --duration 10 --out bench/RESULTS-hostile.md
    PYTHONPATH=python python3 bench/hostile.py --server-args "--threads 1"
    PYTHONPATH=python python3 bench/hostile.py --tls --out bench/RESULTS-hostile-tls.md
"""

from __future__ import annotations

import argparse
import datetime
import multiprocessing
import os
import platform
import select
import shlex
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time

BENCH_DIR = os.path.dirname(os.path.abspath(__file__))
#: How long one request of the well-behaved client may take before it
#: counts as failed.
CLIENT_TIMEOUT = 5.0
#: Pause between two requests of the well-behaved client.
CLIENT_GAP = 0.005
SMALL_RCVBUF = 4096
REQUEST = b"GET / HTTP/1.1\r\nHost: bench\r\n\r\n"
#: Processes of the ``tls-handshakes`` attack.
HANDSHAKE_PROCESSES = 2

#: Set by ``--tls``: the client side of every connection (no verification:
#: the certificate is a throw-away one), and the same with ALPN ``h2``.
TLS: ssl.SSLContext | None = None
TLS_H2: ssl.SSLContext | None = None


def request(path: str, extra: bytes = b"") -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: bench\r\n".encode() + extra + b"\r\n"


def client_context(alpn: list[str] | None = None) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    if alpn:
        ctx.set_alpn_protocols(alpn)
    return ctx


def self_signed(work: str) -> list[str]:
    """A throw-away certificate and key in `work`, as qiao options."""
    cert, key = f"{work}/c.pem", f"{work}/k.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"]
        + ["-nodes", "-keyout", key, "-out", cert, "-days", "2", "-subj", "/CN=127.0.0.1"],
        check=True,
        capture_output=True,
    )
    return ["--certfile", cert, "--keyfile", key]


class Server:
    def __init__(self, port: int, args: list[str]):
        cmd = [sys.executable, "-m", "qiao", "hostile_app:app", "--bind", f"127.0.0.1:{port}"]
        cmd += ["--workers", "1", "--io-timeout", "30", "--health-path", "/healthz", *args]
        # The server runs in bench/: a relative PYTHONPATH (the docstring's
        # `python`) is made absolute first, or the installed qiao would be
        # measured instead of the tree's.
        given = os.environ.get("PYTHONPATH", "").split(os.pathsep)
        given = [os.path.abspath(p) for p in given if p]
        path = os.pathsep.join([BENCH_DIR, *given])
        env = dict(os.environ, PYTHONPATH=path)
        self.port = port
        self.proc = subprocess.Popen(cmd, cwd=BENCH_DIR, env=env)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.1)
        raise SystemExit("the server did not start")

    def worker_rss_mib(self) -> float:
        """Resident memory of the (one) worker process."""
        children = open(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children").read().split()
        for pid in children:
            for line in open(f"/proc/{pid}/status"):
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
        return float("nan")

    def stop(self):
        self.proc.terminate()
        self.proc.wait(15)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def connect(port: int, rcvbuf: int | None = None, ctx: ssl.SSLContext | None = None):
    """A connection to the worker, through TLS with ``--tls`` (`ctx`
    overrides the context)."""
    s = socket.socket()
    if rcvbuf:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    s.connect(("127.0.0.1", port))
    ctx = ctx or TLS
    return ctx.wrap_socket(s) if ctx else s


# -- attacks: each runs until `stop` is set, then closes its sockets ------------------


def pipelining(port, stop, path="/"):
    socks = [connect(port, SMALL_RCVBUF) for _ in range(4)]
    chunk = request(path) * 2000
    for s in socks:
        s.setblocking(False)
    while not stop.is_set():
        _, writable, _ = select.select([], socks, [], 0.2)
        for s in writable:
            try:
                s.send(chunk)
            except OSError:
                pass
    return socks


def probe_flood(port, stop):
    return pipelining(port, stop, "/healthz")


def slow_readers(port, stop, path="/big", n=140):
    socks = []
    for _ in range(n):
        s = connect(port, SMALL_RCVBUF)
        s.sendall(request(path))
        socks.append(s)
    stop.wait()
    return socks


def slow_generator(port, stop):
    return slow_readers(port, stop, "/gen")


def h2_zero_window(port, stop):
    import h2.config
    import h2.connection
    import h2.settings

    conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
    conn.initiate_connection()
    conn.update_settings({h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 0})
    scheme = "https" if TLS else "http"
    head = [(":method", "GET"), (":scheme", scheme), (":path", "/big"), (":authority", "bench")]
    for i in range(128):
        conn.send_headers(1 + 2 * i, head, end_stream=True)
    s = connect(port, ctx=TLS_H2)
    s.sendall(conn.data_to_send())
    s.settimeout(0.2)
    while not stop.is_set():
        try:
            data = s.recv(65536)
        except socket.timeout:
            continue
        if not data:
            break
        conn.receive_data(data)  # window updates are never sent
        s.sendall(conn.data_to_send())
    return [s]


def trickle(socks, data: bytes, stop, held_back: int):
    """Sends `data` to every socket a byte a second until `stop`, never
    its last `held_back` bytes (the message stays incomplete)."""
    at = 0
    while not stop.wait(1.0) and at < len(data) - held_back:
        for s in socks:
            try:
                s.send(data[at : at + 1])
            except OSError:
                pass
        at += 1
    return socks


def slowloris(port, stop, n=500):
    socks = [connect(port) for _ in range(n)]
    return trickle(socks, request("/", b"X-Slow: " + b"a" * 64 + b"\r\n"), stop, 4)


def slow_upload(port, stop, n=50):
    socks = []
    for _ in range(n):
        s = connect(port)
        s.sendall(request("/upload", b"Content-Length: 10000000\r\n"))
        socks.append(s)
    while not stop.wait(1.0):
        for s in socks:
            try:
                s.send(b"u" * 1024)
            except OSError:
                pass
    return socks


def client_hello() -> bytes:
    """The bytes of a TLS ClientHello, made by Python's own client."""
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = client_context().wrap_bio(incoming, outgoing)
    try:
        tls.do_handshake()
    except ssl.SSLWantReadError:
        pass
    return outgoing.read()


def tls_slow_hello(port, stop, n=500):
    socks = []
    for _ in range(n):
        s = socket.socket()
        s.connect(("127.0.0.1", port))
        socks.append(s)
    return trickle(socks, client_hello(), stop, 1)


def handshake_flood(port: int, done) -> None:
    """One process of ``tls-handshakes``: handshakes until terminated,
    counted in `done`."""
    os.nice(19)
    ctx = client_context()
    while True:
        try:
            connect(port, ctx=ctx).close()
        except OSError:
            continue
        with done.get_lock():
            done.value += 1


def tls_handshakes(port, stop):
    spawn = multiprocessing.get_context("spawn")
    done = spawn.Value("q", 0)
    procs = [
        spawn.Process(target=handshake_flood, args=(port, done), daemon=True)
        for _ in range(HANDSHAKE_PROCESSES)
    ]
    started = time.monotonic()
    for p in procs:
        p.start()
    stop.wait()
    for p in procs:
        p.terminate()
        p.join(5)
    rate = done.value / (time.monotonic() - started)
    print(f"tls-handshakes: {rate:.0f} handshakes a second", file=sys.stderr, flush=True)
    return []


#: Attacks that only make sense against a TLS port.
TLS_ONLY = {"tls-slow-hello", "tls-handshakes"}

ATTACKS = {
    "none": None,
    "pipelining": pipelining,
    "probe-flood": probe_flood,
    "slow-readers": slow_readers,
    "slow-generator": slow_generator,
    "h2-zero-window": h2_zero_window,
    "slowloris": slowloris,
    "slow-upload": slow_upload,
    "tls-slow-hello": tls_slow_hello,
    "tls-handshakes": tls_handshakes,
}


# -- the well-behaved client ------------------------------------------------------------


def well_behaved(port: int, duration: float) -> tuple[int, list[float]]:
    """(requests tried, latencies of those answered in time, seconds)."""
    tried, latencies = 0, []
    s = None
    until = time.monotonic() + duration
    while time.monotonic() < until:
        tried += 1
        t0 = time.monotonic()
        try:
            if s is None:
                s = socket.create_connection(("127.0.0.1", port), timeout=CLIENT_TIMEOUT)
                if TLS:
                    s = TLS.wrap_socket(s)
            s.sendall(REQUEST)
            data = b""
            while not data.endswith(b"\r\n\r\nok"):
                more = s.recv(4096)
                if not more:
                    raise ConnectionError("closed")
                data += more
            latencies.append(time.monotonic() - t0)
        except OSError:
            if s is not None:
                s.close()
            s = None
        time.sleep(CLIENT_GAP)
    if s is not None:
        s.close()
    return tried, latencies


def run_one(server: Server, name: str, duration: float) -> dict:
    attack = ATTACKS[name]
    stop = threading.Event()
    held: list = []
    thread = None
    if attack is not None:

        def attacking():
            held.extend(attack(server.port, stop) or [])

        thread = threading.Thread(target=attacking, daemon=True)
        thread.start()
        time.sleep(1.0)  # let the attack take hold before measuring
    tried, lat = well_behaved(server.port, duration)
    stop.set()
    if thread is not None:
        thread.join(10)
    for s in held:
        s.close()
    time.sleep(1.5)  # the worker sees the closes and frees what they held
    lat.sort()
    return {
        "attack": name,
        "tried": tried,
        "ok": len(lat),
        "p50": statistics.median(lat) * 1000 if lat else float("nan"),
        "p99": lat[min(len(lat) - 1, int(len(lat) * 0.99))] * 1000 if lat else float("nan"),
        "rss": server.worker_rss_mib(),
    }


def table(rows: list[dict], base_rss: float, settle: float, settled_rss: float) -> str:
    base = rows[0]["p99"]
    out = [
        f"Worker RSS before any attack: {base_rss:.1f} MiB.",
        "",
        "| attack | requests | success | p50 ms | p99 ms | p99 / unattacked "
        "| worker RSS after, MiB |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        rate = 100.0 * r["ok"] / max(1, r["tried"])
        out.append(
            f"| {r['attack']} | {r['tried']} | {rate:.1f} % | {r['p50']:.2f} | {r['p99']:.2f} "
            f"| {r['p99'] / base:.2f}x | {r['rss']:.1f} |"
        )
    out += ["", f"Worker RSS {settle:g} s after the last attack: {settled_rss:.1f} MiB."]
    return "\n".join(out)


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--duration", type=float, default=5.0, help="seconds measured per attack")
    ap.add_argument("--server-args", default="", help="more options for qiao")
    ap.add_argument(
        "--attacks",
        help="comma-separated, 'none' first (default: all; the tls- ones need --tls)",
    )
    ap.add_argument("--tls", action="store_true", help="serve and attack over TLS")
    ap.add_argument("--out", help="also write the table (with date and machine) here")
    ap.add_argument(
        "--settle",
        type=float,
        default=35.0,
        help="seconds to wait after the attacks before the last memory reading "
        "(idle serving threads end after 30 s)",
    )
    args = ap.parse_args()
    global TLS, TLS_H2
    server_args = shlex.split(args.server_args)
    if args.tls:
        TLS, TLS_H2 = client_context(), client_context(["h2"])
        server_args += self_signed(tempfile.mkdtemp(prefix="qiao-hostile-"))
    default = [a for a in ATTACKS if args.tls or a not in TLS_ONLY]
    names = [a for a in args.attacks.split(",") if a] if args.attacks else default
    if not args.tls and TLS_ONLY & set(names):
        raise SystemExit(f"{', '.join(sorted(TLS_ONLY & set(names)))} need --tls")
    if names[0] != "none":
        names.insert(0, "none")
    server = Server(free_port(), server_args)
    try:
        well_behaved(server.port, 1.0)  # warm up
        base_rss = server.worker_rss_mib()
        rows = []
        for name in names:
            rows.append(run_one(server, name, args.duration))
            print(rows[-1], file=sys.stderr, flush=True)
        time.sleep(args.settle)
        settled_rss = server.worker_rss_mib()
    finally:
        server.stop()
    text = table(rows, base_rss, args.settle, settled_rss)
    print(text)
    if args.out:
        with open(args.out, "w") as f:
            f.write(f"# Hostile clients against one worker ({datetime.date.today()})\n\n")
            f.write(f"`python3 bench/hostile.py --duration {args.duration:g}")
            f.write(" --tls" if args.tls else "")
            f.write(f" --server-args {shlex.quote(args.server_args)}`" if args.server_args else "`")
            machine = f"{platform.node()}, {os.cpu_count()} CPUs"
            f.write(f" on {machine}, Python {platform.python_version()}.\n\n")
            f.write(text + "\n")


if __name__ == "__main__":
    main()
