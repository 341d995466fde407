"""The upstream side of the gateway: where calls go, and the connections that carry them.

Connections are pooled across handler threads (keep-alive), send a request's head and body in one packet,
and block without Python's per-call poll once connected; the Watchdog enforces the timeout instead.
"""
from __future__ import annotations

import http.client
import socket
import threading
import time
from dataclasses import dataclass
from urllib.parse import urlsplit


@dataclass(frozen=True)
class Upstream:
    scheme: str
    host: str
    port: int
    prefix: str  # a path prefix put before every request path ("" for an API origin)

    @classmethod
    def parse(cls, url: str) -> "Upstream":
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"upstream must be an http(s) URL: {url!r}")
        port = parts.port or (443 if parts.scheme == "https" else 80)
        return cls(parts.scheme, parts.hostname, port, parts.path.rstrip("/"))

    @property
    def netloc(self) -> str:
        default = 443 if self.scheme == "https" else 80
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port == default else f"{host}:{self.port}"


class _OneSend:
    """Request head and body in one send (http.client sends them apart: two packets per call), and a blocking
    socket once connected: the Watchdog enforces the timeout, so no poll runs before every recv."""

    timed_out = False  # set by the Watchdog when it cut this connection

    def connect(self):
        super().connect()  # the connect and TLS handshake keep Python's timeout
        self.sock.settimeout(None)

    def _send_output(self, message_body=None, encode_chunked=False):
        if isinstance(message_body, bytes) and not encode_chunked:
            self._buffer.extend((b"", message_body))
            msg = b"\r\n".join(self._buffer)
            del self._buffer[:]
            self.send(msg)
            return
        super()._send_output(message_body, encode_chunked)


class HTTPConnection(_OneSend, http.client.HTTPConnection):
    pass


class HTTPSConnection(_OneSend, http.client.HTTPSConnection):
    pass


class Watchdog:
    """Ends any upstream wait longer than the timeout by shutting the socket down; the handler then sees
    `conn.timed_out`. Arming is one dict store per read, far cheaper than Python's per-call poll."""

    def __init__(self, timeout: float):
        self.timeout = timeout
        self.deadlines: dict = {}
        threading.Thread(target=self._run, name="nomira-upstream-watchdog", daemon=True).start()

    def arm(self, conn) -> None:
        self.deadlines[conn] = time.monotonic() + self.timeout

    def disarm(self, conn) -> None:
        self.deadlines.pop(conn, None)

    def _run(self) -> None:
        period = max(0.05, min(1.0, self.timeout / 4))
        while True:
            time.sleep(period)
            now = time.monotonic()
            for conn, deadline in self.deadlines.copy().items():
                if now > deadline and self.deadlines.get(conn) == deadline:
                    conn.timed_out = True
                    sock = conn.sock
                    if sock is not None:
                        try:
                            sock.shutdown(socket.SHUT_RDWR)
                        except OSError:
                            pass


class Pool:
    """Idle keep-alive connections per upstream, shared by all handler threads."""

    def __init__(self, timeout: float, max_idle: int = 64):
        self.timeout, self.max_idle = timeout, max_idle
        self.idle: dict[Upstream, list] = {}
        self.lock = threading.Lock()

    def get(self, up: Upstream) -> tuple[http.client.HTTPConnection, bool]:
        with self.lock:
            conns = self.idle.get(up)
            if conns:
                return conns.pop(), True
        cls = HTTPSConnection if up.scheme == "https" else HTTPConnection
        return cls(up.host, up.port, timeout=self.timeout), False

    def put(self, up: Upstream, conn) -> None:
        with self.lock:
            conns = self.idle.setdefault(up, [])
            if len(conns) < self.max_idle:
                conns.append(conn)
                return
        conn.close()
