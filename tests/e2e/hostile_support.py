"""Helpers of ``test_hostile.py``: an upstream that records the exact bytes
a proxy sends and answers whatever a test scripts (a status below 100, an
unasked ``101``, a broken chunked body), and the proxies under test.

A hand-written upstream rather than a real server: the defects are about
bytes on the wire (a second ``Content-Length`` line, a path outside the
base, a field name with ``_``) that a real server would either hide by
normalising or answer with a 400 that says little; and an upstream that
misbehaves on purpose is what a real server cannot be made to be.
"""

from __future__ import annotations

import socket
import threading

from conftest import free_port

#: Seconds the recording upstream waits for a request's bytes.
UPSTREAM_TIMEOUT = 10.0
#: The answer of the recording upstream unless a test sets another.
OK_REPLY = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"


class Recorded:
    """One request as the upstream received it."""

    def __init__(self, head: bytes, body: bytes):
        self.head, self.body = head, body
        lines = head.decode("latin-1").split("\r\n")
        self.request_line = lines[0]
        self.target = lines[0].split(" ")[1]
        self.fields = [tuple(x.strip() for x in ln.split(":", 1)) for ln in lines[1:] if ln]

    def values(self, name: str) -> list[str]:
        return [v for n, v in self.fields if n.lower() == name.lower()]

    def names(self) -> list[str]:
        return [n for n, _ in self.fields]


class RecordingUpstream:
    """Accepts connections on loopback, records each request (head and the
    body its first ``Content-Length`` or chunked framing says), answers
    :attr:`reply` and closes."""

    def __init__(self, reply: bytes = OK_REPLY):
        self.reply = reply
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.requests: list[Recorded] = []
        self.arrived = threading.Condition()
        self.sock = socket.create_server(("127.0.0.1", self.port))
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                conn.settimeout(UPSTREAM_TIMEOUT)
                try:
                    recorded = self._read(conn)
                except (OSError, ValueError):
                    continue
                with self.arrived:
                    self.requests.append(recorded)
                    self.arrived.notify_all()
                try:
                    conn.sendall(self.reply)
                    conn.shutdown(socket.SHUT_WR)
                    # Let the peer read everything before the close.
                    while conn.recv(65536):
                        pass
                except OSError:
                    pass

    @staticmethod
    def _read(conn: socket.socket) -> Recorded:
        buf = b""
        while b"\r\n\r\n" not in buf:
            data = conn.recv(65536)
            if not data:
                raise ValueError("closed before a head")
            buf += data
        head, _, body = buf.partition(b"\r\n\r\n")
        rec = Recorded(head, b"")
        if "chunked" in ",".join(rec.values("transfer-encoding")).lower():
            while not body.endswith(b"0\r\n\r\n"):
                body += conn.recv(65536)
        else:
            lengths = rec.values("content-length")
            want = int(lengths[0].split(",")[0]) if lengths else 0
            while len(body) < want:
                data = conn.recv(65536)
                if not data:
                    break
                body += data
        rec.body = body
        return rec

    def last(self) -> Recorded:
        with self.arrived:
            self.arrived.wait_for(lambda: self.requests, UPSTREAM_TIMEOUT)
            return self.requests[-1]

    def close(self):
        self.sock.close()


def proxy_server(kind: str, start_server, prefix: str, url: str):
    """A Qiao proxying ``prefix`` to ``url``: natively (``--proxy``) or by the
    portable ``qiao.middleware.Proxy`` mounted at ``prefix``."""
    if kind == "native":
        return start_server("mw_apps:content", options=[f"--proxy={prefix}={url}"])
    env = {"HOSTILE_PREFIX": prefix, "HOSTILE_UPSTREAM": url}
    return start_server("hostile_apps:mounted_proxy()", env=env)
