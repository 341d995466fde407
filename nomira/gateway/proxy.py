"""The metering reverse proxy: requests go upstream unchanged, responses come back chunk by chunk.

- Anthropic Messages (`/v1/messages`) and OpenAI Chat Completions / Responses (`/v1/chat/completions`,
  `/v1/responses`) are recorded: usage is read from the response as it passes (gateway/usage.py) and one
  usage-only event per call goes to the recorder after the client has the last byte. Every other path is
  forwarded without recording.
- Forwarded unchanged: method, path, query, body and headers, minus hop-by-hop headers and the
  `X-Nomira-*` tag headers. On recorded paths the gateway asks upstream for an uncompressed response
  (`Accept-Encoding: identity`); a gzip/deflate response is still read (through a decompressed copy),
  any other encoding is passed on but not recorded (counted).
- Each upstream chunk is written to the client as soon as it arrives (chunked transfer encoding when the
  upstream gave no length), before it is read for usage; nothing is buffered whole except a non-streamed
  JSON body's copy for parsing (bounded, memory only). No body is logged or stored.
- Upstream errors (4xx/5xx, 429 with retry-after) pass through as they are; an unreachable upstream is a
  502, one that does not answer within the timeout a 504. A failure to record never touches the response.
"""
from __future__ import annotations

import json
import socket
import socketserver
import struct
import sys
import threading
import time
from datetime import datetime, timezone
from http import HTTPStatus

from nomira.gateway.http1 import Chunked, ProtocolError, chunk, lookup, parse_head, read_head, tokens
from nomira.gateway.record import Call, Metrics, Recorder, tags_from_headers
from nomira.gateway.upstream import Pool, Upstream, Watchdog
from nomira.gateway.usage import reader_for

RECORDED = {"/v1/messages": "anthropic", "/v1/chat/completions": "openai", "/v1/responses": "openai"}
HOP_BY_HOP = frozenset({"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "proxy-connection",
                        "te", "trailer", "trailers", "transfer-encoding", "upgrade"})
NOT_FORWARDED = HOP_BY_HOP | {"host", "content-length", "expect"}
STALE = (BrokenPipeError, ConnectionResetError, ConnectionAbortedError)  # a reused connection the upstream closed
CRLF = "\r\n"
REASONS = {s.value: s.phrase for s in HTTPStatus}
IDLE = 300.0  # an idle or stuck client connection is closed after this many seconds
CHUNK = 65536


def kernel_timeouts(sock: socket.socket, seconds: float) -> None:
    """Blocking socket with SO_RCVTIMEO/SO_SNDTIMEO instead of Python's timeout mode, which polls before every
    send: one system call less per relayed chunk. An expired send or read raises OSError (EAGAIN), which on
    the client side means "close"."""
    if sys.platform == "win32" or not seconds:
        return
    tv = struct.pack("ll", int(seconds), int(seconds % 1 * 1e6))
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, tv)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, tv)
    sock.settimeout(None)


class Gateway:
    """What every handler shares: upstreams, the connection pool, the recorder, the counters."""

    def __init__(self, upstreams: dict[str, Upstream], recorder: Recorder, metrics: Metrics, log=sys.stderr,
                 timeout: float = 600.0):
        self.upstreams, self.recorder, self.metrics = upstreams, recorder, metrics
        self.log, self.pool, self.watchdog = log, Pool(timeout), Watchdog(timeout)
        self.active, self.settled = 0, threading.Condition()

    def enter(self) -> None:
        with self.settled:
            self.active += 1

    def leave(self) -> None:
        with self.settled:
            self.active -= 1
            if not self.active:
                self.settled.notify_all()

    def settle(self, timeout: float = 10.0) -> bool:
        """Wait until no call is in flight and every recorded event reached the sink (shutdown, tests)."""
        with self.settled:
            if not self.settled.wait_for(lambda: not self.active, timeout):
                return False
        return self.recorder.drain(timeout)

    def upstream_for(self, path: str, headers) -> Upstream:
        """Anthropic for its Messages path or any request carrying `anthropic-version`; OpenAI otherwise."""
        provider = RECORDED.get(path)
        if provider is None:
            provider = "anthropic" if headers.get("anthropic-version") else "openai"
        return self.upstreams[provider]


def forward_headers(headers: list[tuple[str, str]], named: set[str], recorded: bool) -> list[tuple[str, str]]:
    """Request headers minus hop-by-hop, those named in Connection, and the X-Nomira-* tags."""
    out = []
    for name, value in headers:
        low = name.lower()
        if low in NOT_FORWARDED or low in named or low.startswith("x-nomira-"):
            continue
        if recorded and low == "accept-encoding":
            continue
        out.append((name, value))
    if recorded:
        out.append(("Accept-Encoding", "identity"))
    return out


class Request:
    """One client request: its start line, headers (as sent) and body."""

    __slots__ = ("method", "target", "version", "headers", "h", "body", "close")

    def __init__(self, method, target, version, headers):
        self.method, self.target, self.version, self.headers = method, target, version, headers
        self.h = lookup(headers)
        conn = tokens(self.h.get("connection", ""))
        self.close = "close" in conn or (version == "HTTP/1.0" and "keep-alive" not in conn)
        self.body: bytes | None = None


class Upstreamed(Exception):
    """The upstream failed before sending a response (kind: 'timeout', 'unreachable')."""


class Handler(socketserver.BaseRequestHandler):
    """A client connection: requests one after another (keep-alive), each relayed upstream and back."""

    gateway: Gateway  # set on the subclass the server builds

    def setup(self):
        self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        kernel_timeouts(self.request, IDLE)
        self.buf = bytearray()

    def handle(self):
        sock, buf = self.request, self.buf
        while True:
            try:
                head = read_head(sock, buf)
            except ProtocolError:
                return self._error(None, 400, "bad request head")
            except OSError:  # the client went away, or was idle past IDLE
                return
            if head is None:
                return
            try:
                start, headers = parse_head(head)
            except ProtocolError:
                return self._error(None, 400, "bad request head")
            method, target, version = start
            if not version.startswith("HTTP/1."):
                return self._error(None, 505 if version.startswith("HTTP/") else 400, "HTTP/1.x only")
            req = Request(method, target, version, headers)
            if method == "GET" and target.startswith("/__nomira/"):
                self._own(req)
            else:
                self.gateway.enter()
                try:
                    self.forward(req)
                finally:
                    self.gateway.leave()
            if req.close:
                return

    def _send(self, data: bytes, req: Request) -> bool:
        try:
            self.request.sendall(data)
            return True
        except OSError:
            req.close = True
            return False

    def _own(self, req: Request) -> None:
        """The gateway's own endpoints: metrics and health, never forwarded."""
        path = req.target.split("?", 1)[0]
        if path == "/__nomira/metrics":
            body, status = json.dumps(self.gateway.metrics.snapshot()).encode(), "200 OK"
        elif path == "/__nomira/health":
            body, status = b'{"ok":true}', "200 OK"
        else:
            body, status = b'{"error":"not found"}', "404 Not Found"
        self._send(f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n"
                   f"{'Connection: close' + CRLF if req.close else ''}\r\n".encode() + body, req)

    def _read(self, n: int) -> bytes:
        """Exactly n body bytes (buffered first); a client that leaves or stalls past IDLE is a short body."""
        buf = self.buf
        while len(buf) < n:
            data = self.request.recv(max(65536, n - len(buf)))
            if not data:
                raise ProtocolError("short body")
            buf += data
        out = bytes(buf[:n])
        del buf[:n]
        return out

    def _body(self, req: Request) -> bytes | None:
        h = req.h
        chunked = "chunked" in h.get("transfer-encoding", "").lower()
        length = h.get("content-length")
        if (chunked or (length and length != "0")) and "100-continue" in h.get("expect", "").lower():
            self.request.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
        if chunked:
            framing, parts, buf = Chunked(), [], self.buf
            while True:
                if not buf:
                    data = self.request.recv(65536)
                    if not data:
                        raise ProtocolError("short chunked body")
                    buf += data
                data = bytes(buf)
                buf.clear()
                parts += framing.feed(data)
                if framing.done:
                    return b"".join(parts)  # (pipelined bytes after a chunked body are not kept)
        if length is None:
            return None
        if not length.isdigit():
            raise ProtocolError("bad Content-Length")
        return self._read(int(length))

    def forward(self, req: Request) -> None:
        g, started = self.gateway, time.perf_counter()
        occurred_at = datetime.now(timezone.utc)
        path = req.target.split("?", 1)[0]
        provider = RECORDED.get(path) if req.method == "POST" else None
        g.metrics.add("requests")
        try:
            req.body = self._body(req)
        except (ValueError, OSError):
            req.close = True
            return self._error(req, 400, "bad request body")
        if any(c < " " or c == "\x7f" for c in req.target) or not req.method.isalpha():
            g.metrics.add("requests_refused")
            return self._error(req, 400, "request cannot be forwarded (invalid method or path)")
        up = g.upstream_for(path, req.h)
        named = tokens(req.h.get("connection", ""))
        lines = [f"{req.method} {up.prefix}{req.target} HTTP/1.1", f"Host: {up.netloc}"]
        lines += [f"{name}: {value}" for name, value in forward_headers(req.headers, named, provider is not None)]
        if req.body is not None or req.method in ("POST", "PUT", "PATCH"):
            lines.append(f"Content-Length: {len(req.body or b'')}")
        message = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + (req.body or b"")
        try:
            conn, version, status, reason, headers = self._exchange(up, message)
        except Upstreamed as exc:
            if str(exc) == "timeout":
                g.metrics.add("upstream_timeouts")
                return self._error(req, 504, "upstream timed out")
            g.metrics.add("upstream_unreachable")
            return self._error(req, 502, f"upstream unreachable ({exc.__cause__.__class__.__name__})")
        if status >= 400:
            g.metrics.add(f"upstream_{min(status // 100, 5)}xx")
        h = lookup(headers)
        reader = None
        if provider is not None and 200 <= status < 300:
            reader = reader_for(provider, h.get("content-type", ""), h.get("content-encoding", ""))
            if reader is None:
                g.metrics.add("unrecorded_compressed")
        complete = self._relay(req, up, conn, version, status, reason, headers, h, reader)
        self._log(req.method, path, status, started)
        if reader is not None:
            self._record(req, reader, complete, occurred_at, h)

    def _exchange(self, up: Upstream, message: bytes):
        """Send the request, read the response head: (conn, version, status, reason, headers). A reused connection the
        upstream had closed (nothing came back) is retried once, fresh."""
        g = self.gateway
        for attempt in (0, 1):
            try:
                conn, reused = g.pool.get(up)
            except OSError as exc:
                raise Upstreamed("timeout" if isinstance(exc, socket.timeout) else "unreachable") from exc
            g.watchdog.arm(conn)
            try:
                conn.sock.sendall(message)
                while True:
                    head = read_head(conn.sock, conn.buf)
                    if head is None:
                        raise ConnectionResetError("upstream closed the connection")
                    start, headers = parse_head(head)
                    status = int(start[1])
                    if status >= 200 or status == 101:
                        return conn, start[0], status, start[2], headers
                    # an interim 1xx response: skip it, the final one follows
            except (OSError, ValueError) as exc:
                g.watchdog.disarm(conn)
                conn.close()
                if conn.timed_out:
                    raise Upstreamed("timeout") from exc
                if not (isinstance(exc, STALE) and reused and not attempt):
                    raise Upstreamed("unreachable") from exc

    def _relay(self, req: Request, up: Upstream, conn, version: str, status: int, reason: str, headers, h,
               reader) -> bool:
        """Status, headers, then each upstream read as it arrives, passed on as it came (a chunked body keeps
        its framing). True when the whole response got through."""
        g = self.gateway
        named = tokens(h.get("connection", ""))
        no_body = req.method == "HEAD" or status in (204, 304) or status < 200
        framing = None if no_body else "chunked" in h.get("transfer-encoding", "").lower() and Chunked()
        length = None if no_body or framing else h.get("content-length")
        remaining = int(length) if length is not None and length.isdigit() else None
        upstream_closes = "close" in named or status == 101 or (version == "HTTP/1.0" and "keep-alive" not in named)
        until_eof = not no_body and not framing and remaining is None
        http10 = req.version == "HTTP/1.0"
        if http10 and (framing or until_eof):  # no chunked encoding: the end of the body is the end of the connection
            req.close = True
        rechunk = until_eof and not http10
        lines = [f"HTTP/1.1 {status} {reason}"]
        for name, value in headers:
            low = name.lower()
            if low in HOP_BY_HOP or low in named or (framing and low == "content-length"):
                continue
            lines.append(f"{name}: {value}")
        if (framing and not http10) or rechunk:
            lines.append("Transfer-Encoding: chunked")
        if req.close:
            lines.append("Connection: close")
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        sock, buf, client = conn.sock, conn.buf, self.request
        complete = False
        try:
            # An event stream's head goes at once; any other body's goes out with its first bytes (one send).
            if no_body or remaining == 0 or "event-stream" in h.get("content-type", ""):
                client.sendall(head)
                head = b""
            if no_body or remaining == 0:
                complete = True
                return True
            arm = g.watchdog.arm
            while True:
                if buf:
                    data = bytes(buf)
                    buf.clear()
                else:
                    try:
                        arm(conn)
                        data = sock.recv(CHUNK)
                    except OSError:
                        data = None
                    if data is None or conn.timed_out or (not data and not until_eof):
                        g.metrics.add("upstream_timeouts" if conn.timed_out else "upstream_broken_streams")
                        req.close = True  # the client sees a truncated response, as upstream sent it
                        if head:
                            client.sendall(head)
                        return False
                    if not data:
                        break
                if framing:
                    payload = framing.feed(data)
                    client.sendall(head + (b"".join(payload) if http10 else data))
                    if reader is not None:
                        for piece in payload:
                            reader.feed(piece)
                    if framing.done:
                        break
                else:
                    if remaining is not None:
                        data = data[:remaining]
                        remaining -= len(data)
                    client.sendall(head + (chunk(data) if rechunk else data))
                    if reader is not None:
                        reader.feed(data)
                    if remaining == 0:
                        break
                head = b""
            if rechunk:
                client.sendall(b"0\r\n\r\n")
            complete = True
            return True
        except ProtocolError:
            g.metrics.add("upstream_broken_streams")
            req.close = True
            return False
        except OSError:
            g.metrics.add("client_disconnects")
            req.close = True
            return False
        finally:
            g.watchdog.disarm(conn)
            if complete and not upstream_closes and not until_eof and not conn.buf:
                g.pool.put(up, conn)
            else:
                conn.close()

    def _record(self, req: Request, reader, complete: bool, occurred_at: datetime, h: dict) -> None:
        """Hand the call's usage fields to the recorder; pricing and writing happen on its thread."""
        g = self.gateway
        try:
            request_id = h.get("request-id") or h.get("x-request-id") or ""
            g.recorder.put(Call(reader.finish(), tags_from_headers(req.headers), occurred_at, request_id, complete))
        except Exception:  # noqa: BLE001 - recording never fails the user's request
            g.metrics.add("record_errors")

    def _error(self, req: Request | None, status: int, message: str) -> None:
        body = json.dumps({"type": "error", "error": {"type": "nomira_gateway_error",
                                                      "message": f"nomira gateway: {message}"}}).encode()
        closing = req is None or req.close
        head = (f"HTTP/1.1 {status} {REASONS.get(status, 'Error')}\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(body)}\r\n{'Connection: close' + CRLF if closing else ''}\r\n")
        try:
            self.request.sendall(head.encode() + body)
        except OSError:
            pass
        if req is not None:
            self._log(req.method, req.target.split("?", 1)[0], status, None)
        elif self.gateway.log is not None:
            self.gateway.log.write(f"nomira gateway: {status} {message}\n")

    def _log(self, method: str, path: str, status: int, started: float | None) -> None:
        """One line per call: method, path (never the query or a body), status, time."""
        if self.gateway.log is None:
            return
        ms = f" {(time.perf_counter() - started) * 1000:.1f}ms" if started is not None else ""
        self.gateway.log.write(f"nomira gateway: {method} {path} {status}{ms}\n")


class GatewayServer(socketserver.ThreadingTCPServer):
    """A thread per client connection, at most `max_threads` at once (the accept loop waits for a slot)."""

    daemon_threads = True
    allow_reuse_address = True
    block_on_close = False
    request_queue_size = 128

    def __init__(self, address, gateway: Gateway, max_threads: int = 256, listener: socket.socket | None = None):
        """`listener`: a listening socket shared by several worker processes (made before they forked); it is
        non-blocking, so a worker whose accept lost the race to another goes back to waiting."""
        self.slots = threading.BoundedSemaphore(max_threads)
        handler = type("BoundHandler", (Handler,), {"gateway": gateway})
        super().__init__(address, handler, bind_and_activate=listener is None)
        if listener is not None:
            self.socket.close()
            self.socket = listener
            self.server_address = listener.getsockname()

    def process_request(self, request, client_address):
        self.slots.acquire()
        try:
            super().process_request(request, client_address)
        except BaseException:
            self.slots.release()
            raise

    def handle_error(self, request, client_address):
        """One line, never a traceback (and never a request's content)."""
        log = self.RequestHandlerClass.gateway.log
        exc = sys.exc_info()[1]
        self.RequestHandlerClass.gateway.metrics.add("handler_errors")
        if log is not None:
            log.write(f"nomira gateway: connection from {client_address[0]} failed: {type(exc).__name__}\n")

    def process_request_thread(self, request, client_address):
        try:
            super().process_request_thread(request, client_address)
        finally:
            self.slots.release()
