"""The upstream side of the gateway: where calls go, and the connections that carry them.

Connections are raw sockets pooled across handler threads (keep-alive); a request's head and body go in
one send, and a connection blocks without Python's per-call poll once connected: the Watchdog enforces
the timeout instead.
"""
from __future__ import annotations

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


class Conn:
    """One upstream connection: a socket (TLS-wrapped for https) and the bytes read past the last message.

    Blocking once connected: the Watchdog enforces the timeout, so no poll runs before every recv."""

    __slots__ = ("sock", "buf", "timed_out")

    def __init__(self, sock):
        self.sock, self.buf, self.timed_out = sock, bytearray(), False  # timed_out: the Watchdog cut it

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
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
        self.idle: dict[Upstream, list[Conn]] = {}
        self.lock = threading.Lock()
        self.tls = None  # the TLS context, made on the first https connection (verifies like the SDKs do)

    def get(self, up: Upstream) -> tuple[Conn, bool]:
        """(a connection, whether it was reused); a new one is connected here (OSError when it cannot be)."""
        with self.lock:
            conns = self.idle.get(up)
            if conns:
                return conns.pop(), True
        sock = socket.create_connection((up.host, up.port), self.timeout)  # connect and handshake keep a timeout
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if up.scheme == "https":
                if self.tls is None:
                    import ssl
                    self.tls = ssl.create_default_context()
                    self.tls.set_alpn_protocols(["http/1.1"])
                sock = self.tls.wrap_socket(sock, server_hostname=up.host)
            sock.settimeout(None)
        except BaseException:
            sock.close()
            raise
        return Conn(sock), False

    def put(self, up: Upstream, conn: Conn) -> None:
        with self.lock:
            conns = self.idle.setdefault(up, [])
            if len(conns) < self.max_idle:
                conns.append(conn)
                return
        conn.close()
