"""The upstream side of the gateway: where calls go, and the connections that carry them.

Connections are non-blocking sockets owned by the worker's event loop (gateway/proxy.py) and pooled across
calls (keep-alive). A new one is connected (DNS, TCP, TLS handshake: blocking steps) on a small thread pool,
off the loop, and handed back to it; everything after that is the loop's.
"""
from __future__ import annotations

import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

WOULD_BLOCK: tuple = (BlockingIOError, InterruptedError)  # widened with the TLS "want" errors on first https use


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
    """One upstream connection: a non-blocking socket (TLS-wrapped for https), the bytes read past the last
    message, and who is using it (`owner`, None while idle in the pool)."""

    __slots__ = ("sock", "buf", "tls", "owner", "events", "deadline", "timed_out", "closed")

    def __init__(self, sock, tls: bool):
        self.sock, self.buf, self.tls = sock, bytearray(), tls
        self.owner, self.events, self.deadline, self.timed_out, self.closed = None, 0, 0.0, False, False


class Pool:
    """Idle keep-alive connections per upstream (the loop's thread only: no lock)."""

    def __init__(self, max_idle: int = 64):
        self.max_idle = max_idle
        self.idle: dict[Upstream, list[Conn]] = {}

    def get(self, up: Upstream) -> Conn | None:
        conns = self.idle.get(up)
        return conns.pop() if conns else None

    def put(self, up: Upstream, conn: Conn) -> bool:
        """False when the pool is full (the caller closes the connection)."""
        conns = self.idle.setdefault(up, [])
        if len(conns) >= self.max_idle:
            return False
        conns.append(conn)
        return True

    def discard(self, conn: Conn) -> None:
        for conns in self.idle.values():
            if conn in conns:
                conns.remove(conn)

    def all(self) -> list[Conn]:
        return [c for conns in self.idle.values() for c in conns]


class Connector:
    """Opens upstream connections on a few threads (the blocking steps), made on first use."""

    def __init__(self, timeout: float, threads: int = 64):  # (made as needed: an unreachable upstream that
        # holds some of them until the timeout leaves the others free for the reachable one)
        self.timeout, self.threads = timeout, threads
        self.executor = None
        self.tls = None  # the TLS context, made on the first https connection (verifies like the SDKs do)

    def submit(self, up: Upstream, done) -> None:
        """Connect in the background; `done(conn or the OSError)` is called on a connector thread."""
        if self.executor is None:
            from concurrent.futures import ThreadPoolExecutor
            self.executor = ThreadPoolExecutor(self.threads, thread_name_prefix="nomira-connect")
        self.executor.submit(self._open, up, done)

    def _open(self, up: Upstream, done) -> None:
        try:
            result = self.open(up)
        except OSError as exc:
            result = exc
        except Exception as exc:  # noqa: BLE001 - e.g. a TLS context that cannot be made: unreachable
            result = OSError(str(exc))
            result.__cause__ = exc
        done(result)

    def open(self, up: Upstream) -> Conn:
        """A connected, handshaken, non-blocking connection (OSError when it cannot be made)."""
        global WOULD_BLOCK
        sock = socket.create_connection((up.host, up.port), self.timeout)  # connect and handshake keep a timeout
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if up.scheme == "https":
                import ssl
                if self.tls is None:
                    tls = ssl.create_default_context()
                    tls.set_alpn_protocols(["http/1.1"])
                    self.tls = tls
                    WOULD_BLOCK = (BlockingIOError, InterruptedError, ssl.SSLWantReadError, ssl.SSLWantWriteError)
                sock = self.tls.wrap_socket(sock, server_hostname=up.host)
            sock.setblocking(False)
        except BaseException:
            sock.close()
            raise
        return Conn(sock, up.scheme == "https")

    def close(self) -> None:
        if self.executor is not None:
            self.executor.shutdown(wait=False, cancel_futures=True)
