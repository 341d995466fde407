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

import http.client
import json
import socket
import struct
import sys
import threading
import time
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from nomira.gateway.record import Call, Metrics, Recorder, tags_from_headers
from nomira.gateway.upstream import Pool, Upstream, Watchdog
from nomira.gateway.usage import reader_for

RECORDED = {"/v1/messages": "anthropic", "/v1/chat/completions": "openai", "/v1/responses": "openai"}
HOP_BY_HOP = frozenset({"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "proxy-connection",
                        "te", "trailer", "trailers", "transfer-encoding", "upgrade"})
NOT_FORWARDED = HOP_BY_HOP | {"host", "content-length", "expect"}
STALE = (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError, ConnectionAbortedError)
IDLE = 300.0  # an idle or stuck client connection is closed after this many seconds
CHUNK = 65536


def kernel_timeouts(sock: socket.socket, seconds: float) -> None:
    """Blocking socket with SO_RCVTIMEO/SO_SNDTIMEO instead of Python's timeout mode, which polls before every
    send: one system call less per relayed chunk. An expired send raises OSError (EAGAIN); an expired read
    looks like EOF to a buffered reader, so this is for the client side only, where EOF means "close"."""
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


def forward_headers(headers, recorded: bool) -> list[tuple[str, str]]:
    """Request headers minus hop-by-hop, those named in Connection, and the X-Nomira-* tags."""
    named = {h.strip().lower() for h in headers.get("Connection", "").split(",")}
    out = []
    for name, value in headers.items():
        low = name.lower()
        if low in NOT_FORWARDED or low in named or low.startswith("x-nomira-"):
            continue
        if recorded and low == "accept-encoding":
            continue
        out.append((name, value))
    if recorded:
        out.append(("Accept-Encoding", "identity"))
    return out


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    server_version = "nomira-gateway"
    gateway: Gateway  # set on the subclass the server builds

    def setup(self):
        super().setup()
        kernel_timeouts(self.connection, IDLE)

    def do_GET(self):
        if self.path.startswith("/__nomira/"):
            return self._own()
        self.forward()

    def do_POST(self):
        self.forward()

    do_PUT = do_PATCH = do_DELETE = do_OPTIONS = do_HEAD = do_POST

    def _own(self) -> None:
        """The gateway's own endpoints: metrics and health, never forwarded."""
        path = self.path.split("?", 1)[0]
        if path == "/__nomira/metrics":
            body, status = json.dumps(self.gateway.metrics.snapshot()).encode(), 200
        elif path == "/__nomira/health":
            body, status = b'{"ok":true}', 200
        else:
            body, status = b'{"error":"not found"}', 404
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _read(self, n: int) -> bytes:
        data = self.rfile.read(n)
        if len(data) != n:  # the client went away or stalled past IDLE: never forward a truncated body
            raise ValueError("short body")
        return data

    def _body(self) -> bytes | None:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            parts = []
            while True:
                line = self.rfile.readline(1024)
                if not line.endswith(b"\n"):
                    raise ValueError("short chunked body")
                size = int(line.split(b";", 1)[0].strip(), 16)
                if size == 0:
                    while self.rfile.readline(1024).strip():  # trailers
                        pass
                    return b"".join(parts)
                parts.append(self._read(size))
                self._read(2)
        length = self.headers.get("Content-Length")
        return self._read(int(length)) if length else None

    def forward(self) -> None:
        self.gateway.enter()
        try:
            self._forward()
        finally:
            self.gateway.leave()

    def _forward(self) -> None:
        g, started = self.gateway, time.perf_counter()
        occurred_at = datetime.now(timezone.utc)
        path = self.path.split("?", 1)[0]
        provider = RECORDED.get(path) if self.command == "POST" else None
        g.metrics.add("requests")
        try:
            body = self._body()
        except (ValueError, OSError):
            self.close_connection = True
            return self._error(400, "bad request body")
        up = g.upstream_for(path, self.headers)
        headers = forward_headers(self.headers, provider is not None)
        try:
            conn, resp = self._send(up, headers, body)
        except socket.timeout:
            g.metrics.add("upstream_timeouts")
            return self._error(504, "upstream timed out")
        except ValueError:  # a header value or path http.client refuses to put on the wire
            g.metrics.add("requests_refused")
            return self._error(400, "request cannot be forwarded (invalid header or path)")
        except (OSError, http.client.HTTPException) as exc:
            g.metrics.add("upstream_unreachable")
            return self._error(502, f"upstream unreachable ({type(exc).__name__})")
        if resp.status >= 400:
            g.metrics.add(f"upstream_{resp.status // 100}xx")
        reader = None
        if provider is not None and 200 <= resp.status < 300:
            reader = self._reader(provider, resp)
        complete = self._relay(up, conn, resp, reader)
        self._log(path, resp.status, started)
        if reader is not None:
            self._record(reader, complete, occurred_at, resp)

    def _send(self, up: Upstream, headers, body):
        """Send the request upstream; a reused connection the upstream had closed is retried once, fresh."""
        watchdog = self.gateway.watchdog
        for attempt in (0, 1):
            conn, reused = self.gateway.pool.get(up)
            watchdog.arm(conn)
            try:
                conn.putrequest(self.command, up.prefix + self.path, skip_host=True, skip_accept_encoding=True)
                conn.putheader("Host", up.netloc)
                for name, value in headers:
                    conn.putheader(name, value)
                if body is not None or self.command in ("POST", "PUT", "PATCH"):
                    conn.putheader("Content-Length", str(len(body or b"")))
                conn.endheaders(body)
                return conn, conn.getresponse()
            except BaseException as exc:
                watchdog.disarm(conn)
                conn.close()
                if conn.timed_out:
                    raise socket.timeout("upstream timed out") from exc
                if not (isinstance(exc, STALE) and reused and not attempt):
                    raise

    def _reader(self, provider: str, resp):
        reader = reader_for(provider, resp.getheader("Content-Type") or "", resp.getheader("Content-Encoding") or "")
        if reader is None:
            self.gateway.metrics.add("unrecorded_compressed")
        return reader

    def _relay(self, up: Upstream, conn, resp, reader) -> bool:
        """Status, headers, then each chunk as it arrives. True when the whole response got through."""
        self.send_response_only(resp.status, resp.reason)
        for name, value in resp.getheaders():
            if name.lower() not in HOP_BY_HOP:
                self.send_header(name, value)
        no_body = self.command == "HEAD" or resp.status in (204, 304) or 100 <= resp.status < 200
        chunked = not no_body and resp.getheader("Content-Length") is None
        if chunked and self.request_version == "HTTP/1.0":  # no chunked encoding: the end of the body is EOF
            chunked, self.close_connection = False, True
        if chunked:
            self.send_header("Transfer-Encoding", "chunked")
        if self.close_connection:
            self.send_header("Connection", "close")
        self._headers_buffer.append(b"\r\n")
        head = b"".join(self._headers_buffer)
        self._headers_buffer = []
        complete = False
        try:
            write = self.wfile.write
            # An event stream's headers go at once; any other body's go out with its first bytes (one send).
            if no_body or "event-stream" in (resp.getheader("Content-Type") or ""):
                write(head)
                head = b""
            if no_body:
                complete = True
                return True
            arm = self.gateway.watchdog.arm
            while True:
                try:
                    arm(conn)
                    data = resp.read1(CHUNK)
                    if not data:
                        resp.read()  # marks a Content-Length body as done (closes the response, not the socket)
                except (OSError, http.client.HTTPException):
                    data = None
                if data is None or conn.timed_out:
                    self.gateway.metrics.add("upstream_timeouts" if conn.timed_out else "upstream_broken_streams")
                    self.close_connection = True  # the client sees a truncated response, as upstream sent it
                    if head:
                        write(head)
                    return False
                if not data:
                    break
                write(head + (b"%x\r\n%s\r\n" % (len(data), data) if chunked else data))
                head = b""
                if reader is not None:
                    reader.feed(data)
            if head or chunked:
                write(head + (b"0\r\n\r\n" if chunked else b""))
            complete = True
            return True
        except OSError:
            self.gateway.metrics.add("client_disconnects")
            self.close_connection = True
            return False
        finally:
            self.gateway.watchdog.disarm(conn)
            if complete and not resp.will_close and resp.isclosed():
                self.gateway.pool.put(up, conn)
            else:
                conn.close()

    def _record(self, reader, complete: bool, occurred_at: datetime, resp) -> None:
        """Hand the call's usage fields to the recorder; pricing and writing happen on its thread."""
        g = self.gateway
        try:
            request_id = resp.getheader("request-id") or resp.getheader("x-request-id") or ""
            g.recorder.put(Call(reader.finish(), tags_from_headers(self.headers), occurred_at, request_id, complete))
        except Exception:  # noqa: BLE001 - recording never fails the user's request
            g.metrics.add("record_errors")

    def _error(self, status: int, message: str) -> None:
        body = json.dumps({"type": "error", "error": {"type": "nomira_gateway_error",
                                                      "message": f"nomira gateway: {message}"}}).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        except OSError:
            self.close_connection = True
        self._log(self.path.split("?", 1)[0], status, None)

    def _log(self, path: str, status: int, started: float | None) -> None:
        """One line per call: method, path (never the query or a body), status, time."""
        if self.gateway.log is None:
            return
        ms = f" {(time.perf_counter() - started) * 1000:.1f}ms" if started is not None else ""
        self.gateway.log.write(f"nomira gateway: {self.command} {path} {status}{ms}\n")

    def log_message(self, format, *args):  # noqa: A002 - BaseHTTPRequestHandler's signature
        if self.gateway.log is not None:
            self.gateway.log.write("nomira gateway: %s\n" % (format % args))

    def log_request(self, code="-", size="-"):
        pass  # _log writes the one line per call


class GatewayServer(ThreadingHTTPServer):
    """A thread per client connection, at most `max_threads` at once (the accept loop waits for a slot)."""

    daemon_threads = True
    block_on_close = False
    request_queue_size = 128

    def __init__(self, address, gateway: Gateway, max_threads: int = 256):
        self.slots = threading.BoundedSemaphore(max_threads)
        handler = type("BoundHandler", (Handler,), {"gateway": gateway})
        super().__init__(address, handler)

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
