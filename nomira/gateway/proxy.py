"""The metering reverse proxy: requests go upstream unchanged, responses come back chunk by chunk.

- Anthropic Messages (`/v1/messages`) and OpenAI Chat Completions / Responses (`/v1/chat/completions`,
  `/v1/responses`) are recorded: usage is read from the response as it passes (gateway/usage.py) and one
  usage-only event per call goes to the recorder after the client has the last byte. Every other path is
  forwarded without recording.
- Forwarded unchanged: method, path, query, body and headers, minus hop-by-hop headers and the
  `X-Nomira-*` tag headers. On recorded paths the gateway asks upstream for an uncompressed response
  (`Accept-Encoding: identity`); a gzip/deflate response is still read (through a decompressed copy),
  any other encoding is passed on but not recorded (counted).
- Each upstream read is written to the client as soon as it arrives (chunked transfer encoding when the
  upstream gave no length), before it is read for usage; nothing is buffered whole except a non-streamed
  JSON body's copy for parsing (bounded, memory only). A client that reads slower than upstream sends
  pauses the upstream reads (backpressure) instead of queueing its bytes. No body is logged or stored.
- Upstream errors (4xx/5xx, 429 with retry-after) pass through as they are; an unreachable upstream is a
  502, one that does not answer within the timeout a 504. A failure to record never touches the response.

One event loop per worker process (`selectors`, epoll on Linux) serves every connection: a relayed chunk
costs the readiness wake it shares with every other ready socket, one `recv` and one `send`, where a thread
per connection paid a thread wake and two interpreter-lock hand-offs per chunk, which at 50 streams was most
of the gateway's CPU. Only opening a new upstream connection (DNS, TCP, TLS handshake) runs on threads.
"""
from __future__ import annotations

import collections
import functools
import heapq
import json
import re
import selectors
import socket
import sys
import threading
import time
from datetime import datetime, timezone
from http import HTTPStatus

from nomira.gateway import upstream as _up
from nomira.gateway.http1 import (
    Chunked,
    ProtocolError,
    chunk,
    lookup,
    parse_head,
    split_head,
    tokens,
)
from nomira.gateway.record import Call, Metrics, Recorder
from nomira.gateway.upstream import Conn, Connector, Pool, Upstream
from nomira.gateway.usage import for_recorder, reader_for

RECORDED = {"/v1/messages": "anthropic", "/v1/chat/completions": "openai", "/v1/responses": "openai"}
HOP_BY_HOP = frozenset({"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "proxy-connection",
                        "te", "trailer", "trailers", "transfer-encoding", "upgrade"})
NOT_FORWARDED = HOP_BY_HOP | {"host", "content-length", "expect"}
STALE = (BrokenPipeError, ConnectionResetError, ConnectionAbortedError)  # a reused connection the upstream closed
CRLF = "\r\n"
CONTROL = re.compile("[\x00-\x1f\x7f]")  # in a request target: refused, never forwarded
REASONS = {s.value: s.phrase for s in HTTPStatus}
IDLE = 300.0  # an idle or stuck client connection is closed after this many seconds
CHUNK = 65536
MAX_HEAD = 64 * 1024
READ, WRITE = selectors.EVENT_READ, selectors.EVENT_WRITE
HEAD, BODY, BUSY = 0, 1, 2  # a client connection: reading a request head, its body, or forwarding it
HEAD_HOLD = 0.001  # an event stream's head waits this long at most for its first bytes, to go out with them


class Gateway:
    """What every connection shares: upstreams, the connection pool, the recorder, the counters."""

    def __init__(self, upstreams: dict[str, Upstream], recorder: Recorder, metrics: Metrics, log=sys.stderr,
                 timeout: float = 600.0):
        self.upstreams, self.recorder, self.metrics = upstreams, recorder, metrics
        self.log, self.timeout, self.pool = log, timeout, Pool()
        self.active = 0  # forwarded calls in flight (changed on the loop's thread only)

    def settle(self, timeout: float = 10.0) -> bool:
        """Wait until no call is in flight and every recorded event reached the sink (tests, shutdown); the
        loop runs on another thread meanwhile."""
        deadline = time.monotonic() + timeout
        while self.active:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.005)
        return self.recorder.drain(max(0.1, deadline - time.monotonic()))

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

    __slots__ = ("method", "target", "version", "headers", "h", "body", "close", "path", "started", "at")

    def __init__(self, method, target, version, headers):
        self.method, self.target, self.version, self.headers = method, target, version, headers
        self.h = lookup(headers)
        conn = tokens(self.h.get("connection", ""))
        self.close = "close" in conn or (version == "HTTP/1.0" and "keep-alive" not in conn)
        self.body: bytes | None = None
        self.path = target.split("?", 1)[0]
        self.started, self.at = time.perf_counter(), None


class Client:
    """A client connection: requests one after another (keep-alive), each forwarded by an `Exchange`."""

    __slots__ = ("server", "g", "sock", "addr", "buf", "events", "out", "after", "state", "req", "exchange",
                 "last", "eof", "closed", "framing", "parts")

    def __init__(self, server: GatewayServer, sock: socket.socket, addr):
        self.server, self.g, self.sock, self.addr = server, server.gateway, sock, addr
        self.buf, self.events, self.out, self.after = bytearray(), 0, None, []
        self.state, self.req, self.exchange, self.framing, self.parts = HEAD, None, None, None, None
        self.last, self.eof, self.closed = server.now, False, False
        self.want(READ)

    def want(self, events: int) -> None:
        if events == self.events or self.closed:
            return
        sel = self.server.sel
        if not self.events:
            sel.register(self.sock, events, self.ready)
        elif not events:
            sel.unregister(self.sock)
        else:
            sel.modify(self.sock, events, self.ready)
        self.events = events

    def ready(self, mask: int) -> None:
        if self.closed:  # closed earlier in the same round of events
            return
        if mask & WRITE:
            self.flush()
        if mask & READ and not self.closed:
            self.readable()

    # -- reading requests

    def readable(self) -> None:
        try:
            data = self.sock.recv(CHUNK)
        except _up.WOULD_BLOCK:
            return
        except OSError:
            data = b""
        self.last = self.server.now
        if self.state == BUSY:  # the next request (pipelined) waits in the buffer; an end is noted
            if not data:
                self.eof = True
                self.want(self.events & ~READ)
            else:
                self.buf += data
                if len(self.buf) > MAX_HEAD:
                    self.want(self.events & ~READ)
            return
        if not data:
            if self.state == BODY:
                return self.bad_body()
            if self.buf.strip():
                return self.error(None, 400, "bad request head")
            return self.close()
        self.buf += data
        self.process()

    def process(self) -> None:
        """Take the buffered request(s): a head, then its body, then forward it."""
        while not self.closed:
            if self.state == HEAD:
                try:
                    head = split_head(self.buf)
                except ProtocolError:
                    return self.error(None, 400, "bad request head")
                if head is None:
                    return
                if not self.request(head):
                    return
            elif self.state == BODY:
                try:
                    body = self.body()
                except ProtocolError:
                    return self.bad_body()
                if body is not False:
                    self.req.body = body
                    self.state = BUSY
                    self.forward(self.req)
                return
            else:
                return

    def request(self, head: bytes) -> bool:
        """A request head arrived: True to go on reading (its body, or the next request)."""
        try:
            start, headers = parse_head(head)
        except ProtocolError:
            self.error(None, 400, "bad request head")
            return False
        method, target, version = start
        if not version.startswith("HTTP/1."):
            self.error(None, 505 if version.startswith("HTTP/") else 400, "HTTP/1.x only")
            return False
        req = Request(method, target, version, headers)
        if method == "GET" and target.startswith("/__nomira/"):
            self.own(req)
            return not req.close
        req.at = datetime.now(timezone.utc)
        self.g.metrics.add("requests")
        h = req.h
        chunked = "chunked" in h.get("transfer-encoding", "").lower()
        length = h.get("content-length")
        if (chunked or (length and length != "0")) and "100-continue" in h.get("expect", "").lower():
            self.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        self.req, self.state = req, BODY
        self.framing, self.parts = (Chunked(), []) if chunked else (None, None)
        return True

    def body(self):
        """The request body once it is all here: bytes, None (no body), False (more to come)."""
        h, buf = self.req.h, self.buf
        if self.framing is not None:
            if buf:
                data = bytes(buf)
                buf.clear()
                self.parts += self.framing.feed(data)
            if not self.framing.done:
                return False
            return b"".join(self.parts)  # (pipelined bytes after a chunked body are not kept)
        length = h.get("content-length")
        if length is None:
            return None
        if not length.isdigit():
            raise ProtocolError("bad Content-Length")
        n = int(length)
        if len(buf) < n:
            return False
        out = bytes(buf[:n])
        del buf[:n]
        return out

    def bad_body(self) -> None:
        self.req.close = True
        self.state = BUSY
        self.error(self.req, 400, "bad request body")
        self.done(self.req, counted=False)

    # -- forwarding

    def forward(self, req: Request) -> None:
        g = self.g
        if CONTROL.search(req.target) or not req.method.isalpha():
            g.metrics.add("requests_refused")
            self.error(req, 400, "request cannot be forwarded (invalid method or path)")
            return self.done(req, counted=False)
        g.active += 1
        provider = RECORDED.get(req.path) if req.method == "POST" else None
        up = g.upstream_for(req.path, req.h)
        named = tokens(req.h.get("connection", ""))
        lines = [f"{req.method} {up.prefix}{req.target} HTTP/1.1", f"Host: {up.netloc}"]
        lines += [f"{name}: {value}" for name, value in forward_headers(req.headers, named, provider is not None)]
        if req.body is not None or req.method in ("POST", "PUT", "PATCH"):
            lines.append(f"Content-Length: {len(req.body or b'')}")
        message = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + (req.body or b"")
        self.exchange = Exchange(self, req, up, provider, message)
        self.exchange.connect()

    def done(self, req: Request, counted: bool = True) -> None:
        """The request is answered (its last bytes handed to the socket or queued): on to the next one."""
        if counted:
            if self.exchange is None:  # already done (its answer failed to go, and that ended it first)
                return
            self.g.active -= 1
        self.exchange, self.req, self.framing, self.parts = None, None, None, None
        if self.closed:
            return
        if req.close or self.eof:
            self.state = BUSY  # what still arrives is not read
            return self.close_when_sent()
        self.state = HEAD
        self.want(self.events | READ)
        if self.buf:
            self.server.soon.append(self.process)

    # -- writing

    def write(self, data: bytes, then=None) -> bool:
        """Send what the socket takes now; the rest goes when it is writable, then `then()` runs. True when all
        went at once; False when some waits, or when the client is gone (it is then closed and its exchange
        ended)."""
        if self.closed:
            return False
        if self.out is None:
            try:
                n = self.sock.send(data)
            except _up.WOULD_BLOCK:
                n = 0
            except OSError:
                self.gone()
                return False
            if n == len(data):
                return True
            self.out = memoryview(data)[n:]
            self.last = self.server.now
            self.want(self.events | WRITE)
        else:
            self.out = memoryview(bytes(self.out) + data)
        if then is not None:
            self.after.append(then)
        return False

    def flush(self) -> None:
        try:
            n = self.sock.send(self.out)
        except _up.WOULD_BLOCK:
            return
        except OSError:
            return self.gone()
        self.last = self.server.now
        self.out = self.out[n:]
        if self.out:
            return
        self.out = None
        self.want(self.events & ~WRITE)
        after, self.after = self.after, []
        for then in after:
            then()

    def close_when_sent(self) -> None:
        if self.out is None:
            self.close()
        else:
            self.after.append(self.close)

    def gone(self) -> None:
        """The client went away (or stopped reading past IDLE): end its exchange, close."""
        exchange = self.exchange
        self.close()
        if exchange is not None:
            exchange.client_gone()

    def close(self) -> None:
        if self.closed:
            return
        if self.events:
            self.server.sel.unregister(self.sock)
        self.closed, self.events, self.out, self.after = True, 0, None, []
        try:
            self.sock.close()
        except OSError:
            pass
        self.server.closed_client(self)

    # -- answers of the gateway's own

    def own(self, req: Request) -> None:
        """The gateway's own endpoints: metrics and health, never forwarded."""
        if req.path == "/__nomira/metrics":
            body, status = json.dumps(self.g.metrics.snapshot()).encode(), "200 OK"
        elif req.path == "/__nomira/health":
            body, status = b'{"ok":true}', "200 OK"
        else:
            body, status = b'{"error":"not found"}', "404 Not Found"
        self.write(f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n"
                   f"{'Connection: close' + CRLF if req.close else ''}\r\n".encode() + body)
        if req.close:
            self.state = BUSY
            self.close_when_sent()

    def error(self, req: Request | None, status: int, message: str) -> None:
        """An answer of the gateway's own; without a request (a bad head) the connection closes after it."""
        body = json.dumps({"type": "error", "error": {"type": "nomira_gateway_error",
                                                      "message": f"nomira gateway: {message}"}}).encode()
        closing = req is None or req.close
        head = (f"HTTP/1.1 {status} {REASONS.get(status, 'Error')}\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(body)}\r\n{'Connection: close' + CRLF if closing else ''}\r\n")
        self.write(head.encode() + body)
        if req is not None:
            log_call(self.g, req.method, req.path, status, None)
        else:
            if self.g.log is not None:
                self.g.log.write(f"nomira gateway: {status} {message}\n")
            self.state = BUSY
            self.close_when_sent()


class Exchange:
    """One forwarded request on an upstream connection: send it, read the response head, relay the body."""

    __slots__ = ("client", "req", "up", "provider", "message", "conn", "reused", "attempt", "phase", "sent",
                 "framing", "remaining", "until_eof", "rechunk", "http10", "reader", "upstream_closes", "head",
                 "paused", "over", "h", "status")

    def __init__(self, client: Client, req: Request, up: Upstream, provider, message: bytes):
        self.client, self.req, self.up, self.provider, self.message = client, req, up, provider, message
        self.conn, self.reused, self.attempt, self.phase, self.sent = None, False, 0, "connect", 0
        self.framing, self.remaining, self.until_eof, self.rechunk, self.http10 = None, None, False, False, False
        self.reader, self.upstream_closes, self.head, self.paused, self.over = None, False, b"", False, False
        self.h, self.status = None, 0

    # -- the request

    def connect(self) -> None:
        g = self.client.g
        conn = g.pool.get(self.up)
        if conn is not None:
            self.reused = True
            return self.attach(conn)
        self.reused = False
        server = self.client.server
        server.connector.submit(self.up, functools.partial(server.call_soon_threadsafe, self.connected))

    def connected(self, result) -> None:
        server = self.client.server
        if isinstance(result, BaseException):
            if not self.over:
                self.fail(result, "timeout" if isinstance(result, socket.timeout) else "unreachable")
            return
        server.adopt(result)
        if self.over or self.client.closed:  # the client left meanwhile: keep the connection for the next call
            return server.release(self.up, result, True)
        self.attach(result)

    def attach(self, conn: Conn) -> None:
        self.conn, conn.owner = conn, self
        self.phase, self.sent = "send", 0
        conn.deadline = self.client.server.now + self.client.g.timeout
        self.send()

    def send(self) -> None:
        conn = self.conn
        try:
            n = conn.sock.send(memoryview(self.message)[self.sent:] if self.sent else self.message)
        except _up.WOULD_BLOCK:
            n = 0
        except OSError as exc:
            return self.exchange_failed(exc)
        self.sent += n
        if self.sent < len(self.message):
            self.client.server.conn_want(conn, READ | WRITE)
            return
        self.phase = "head"
        self.client.server.conn_want(conn, READ)

    def exchange_failed(self, exc: BaseException) -> None:
        """Sending the request or reading the response head failed: a reused connection the upstream had closed
        is retried once (a fresh one when the pool has no other); anything else is a 502, or a 504 on timeout."""
        conn, server = self.conn, self.client.server
        self.conn = None
        server.drop(conn)
        if conn.timed_out:
            return self.fail(exc, "timeout")
        if isinstance(exc, STALE) and self.reused and not self.attempt:
            self.attempt = 1
            return self.connect()
        self.fail(exc, "unreachable")

    def fail(self, exc: BaseException, kind: str) -> None:
        g, req = self.client.g, self.req
        self.over = True
        if kind == "timeout":
            g.metrics.add("upstream_timeouts")
            self.client.error(req, 504, "upstream timed out")
        else:
            g.metrics.add("upstream_unreachable")
            cause = exc.__cause__ if exc.__cause__ is not None else exc
            self.client.error(req, 502, f"upstream unreachable ({cause.__class__.__name__})")
        self.client.done(req)

    # -- the response

    def upstream_ready(self, mask: int) -> None:
        if self.phase == "send" and mask & WRITE:
            self.send()
            if self.over or self.phase == "send":
                return
        if mask & READ:
            self.readable()

    def readable(self) -> None:
        conn = self.conn
        while True:
            try:
                data = conn.sock.recv(CHUNK)
            except _up.WOULD_BLOCK:
                return
            except OSError as exc:
                if self.phase != "body":
                    return self.exchange_failed(exc)
                data = None
            conn.deadline = self.client.server.now + self.client.g.timeout
            if self.phase != "body":
                if not data:
                    return self.exchange_failed(ConnectionResetError("upstream closed the connection"))
                self.phase = "head"  # (an answer before the whole request went: the rest is not sent)
                conn.buf += data
                self.response_head()
            else:
                self.relay(data)
            if self.over or self.paused or not conn.tls or not conn.sock.pending():
                return

    def response_head(self) -> None:
        conn = self.conn
        while True:
            try:
                head = split_head(conn.buf)
                if head is None:
                    return
                start, headers = parse_head(head)
                status = int(start[1])
            except ValueError as exc:  # (ProtocolError too)
                return self.exchange_failed(exc)
            if status >= 200 or status == 101:
                break
            # an interim 1xx response: skip it, the final one follows
        self.respond(start[0], status, start[2], headers)

    def respond(self, version: str, status: int, reason: str, headers) -> None:
        """Status and headers to the client, in one send with the body's first bytes (an event stream's
        head waits HEAD_HOLD at most for them), then the body as it comes."""
        g, req, conn = self.client.g, self.req, self.conn
        self.phase, self.status = "body", status
        if status >= 400:
            g.metrics.add(f"upstream_{min(status // 100, 5)}xx")
        h = self.h = lookup(headers)
        if self.provider is not None and 200 <= status < 300:
            self.reader = reader_for(self.provider, h.get("content-type", ""), h.get("content-encoding", ""))
            if self.reader is None:
                g.metrics.add("unrecorded_compressed")
        named = tokens(h.get("connection", ""))
        no_body = req.method == "HEAD" or status in (204, 304) or status < 200
        framing = None if no_body else "chunked" in h.get("transfer-encoding", "").lower() and Chunked()
        length = None if no_body or framing else h.get("content-length")
        self.remaining = int(length) if length is not None and length.isdigit() else None
        self.upstream_closes = ("close" in named or status == 101
                                or (version == "HTTP/1.0" and "keep-alive" not in named))
        self.until_eof = not no_body and not framing and self.remaining is None
        self.http10 = req.version == "HTTP/1.0"
        if self.http10 and (framing or self.until_eof):  # no chunked encoding: the body ends with the connection
            req.close = True
        self.rechunk = self.until_eof and not self.http10
        self.framing = framing or None
        lines = [f"HTTP/1.1 {status} {reason}"]
        for name, value in headers:
            low = name.lower()
            if low in HOP_BY_HOP or low in named or (framing and low == "content-length"):
                continue
            lines.append(f"{name}: {value}")
        if (framing and not self.http10) or self.rechunk:
            lines.append("Transfer-Encoding: chunked")
        if req.close:
            lines.append("Connection: close")
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        if no_body or self.remaining == 0:
            return self.end(True, head)
        self.head = head
        if "event-stream" in h.get("content-type", "") and not conn.buf:
            self.client.server.call_later(HEAD_HOLD, self.head_now)
        if conn.buf:
            data = bytes(conn.buf)
            conn.buf.clear()
            self.relay(data)

    def head_now(self) -> None:
        """An event stream's first bytes did not come within HEAD_HOLD: its head goes alone."""
        if self.over or not self.head or self.paused:
            return
        head, self.head = self.head, b""
        if not self.client.write(head, self.resume) and not self.over:
            self.pause()

    def relay(self, data: bytes | None) -> None:
        """One upstream read (None: the read failed; b"": the upstream closed) on to the client."""
        conn = self.conn
        if data is None or conn.timed_out or (not data and not self.until_eof):
            g = self.client.g
            g.metrics.add("upstream_timeouts" if conn.timed_out else "upstream_broken_streams")
            self.req.close = True  # the client sees a truncated response, as upstream sent it
            return self.end(False, self.head)
        if not data:
            return self.end(True, self.head + (b"0\r\n\r\n" if self.rechunk else b""))
        reader = self.reader
        if self.framing is not None:
            try:
                payload = self.framing.feed(data)
            except ProtocolError:
                self.client.g.metrics.add("upstream_broken_streams")
                self.req.close = True
                return self.end(False, self.head)
            out = self.head + (b"".join(payload) if self.http10 else data)
            finished = self.framing.done
        else:
            if self.remaining is not None:
                if len(data) > self.remaining:  # more than it announced: that connection is not reused
                    self.upstream_closes = True
                data = data[:self.remaining]
                self.remaining -= len(data)
            payload = (data,)
            out = self.head + (chunk(data) if self.rechunk else data)
            finished = self.remaining == 0
        self.head = b""
        if finished:
            self.end(True, out, payload)
            return
        sent = self.client.write(out, self.resume)
        if self.over:  # the client is gone (and the exchange ended with it)
            return
        if reader is not None:
            for piece in payload:
                reader.feed(piece)
        if not sent:
            self.pause()

    def pause(self) -> None:
        """The client has not taken the last bytes yet: stop reading upstream until it has."""
        self.paused = True
        self.client.server.conn_want(self.conn, 0)

    def resume(self) -> None:
        if self.over or not self.paused:
            return
        self.paused = False
        conn = self.conn
        conn.deadline = self.client.server.now + self.client.g.timeout
        self.client.server.conn_want(conn, READ)
        if conn.tls and conn.sock.pending():
            self.client.server.soon.append(self.readable)

    def end(self, complete: bool, out: bytes, payload=()) -> None:
        """The response is over upstream: the connection back to the pool (or closed), the last bytes to the
        client, then the log line and the recorded call once they went."""
        self.over = True
        conn, self.conn = self.conn, None
        keep = complete and not self.upstream_closes and not self.until_eof and not conn.buf
        self.client.server.release(self.up, conn, keep)
        if out:
            sent = self.client.write(out, lambda: self.finish(complete))
            if self.reader is not None:
                for piece in payload:
                    self.reader.feed(piece)
            if not sent:
                return  # finish runs when the bytes went, or client_gone when they cannot
        self.finish(complete)

    def finish(self, complete: bool) -> None:
        g, req = self.client.g, self.req
        log_call(g, req.method, req.path, self.status, req.started)
        if self.reader is not None:
            try:
                h = self.h
                request_id = h.get("request-id") or h.get("x-request-id") or ""
                g.recorder.put(Call(for_recorder(self.reader), req.headers, req.at, request_id, complete))
            except Exception:  # noqa: BLE001 - recording never fails the user's request
                g.metrics.add("record_errors")
            self.reader = None
        self.client.done(req)

    def client_gone(self) -> None:
        """The client left while this exchange was answering it: the upstream leg is closed, what usage was seen
        is recorded as partial."""
        g = self.client.g
        g.metrics.add("client_disconnects")
        self.req.close = True
        if not self.over:
            self.over = True
            conn, self.conn = self.conn, None
            if conn is not None:
                self.client.server.drop(conn)
        if self.status:
            self.finish(False)
        else:
            self.client.done(self.req)

    def timed_out(self) -> None:
        """No upstream bytes for the timeout."""
        conn = self.conn
        conn.timed_out = True
        if self.phase == "body":
            self.relay(None)
        else:
            self.exchange_failed(TimeoutError("upstream timed out"))


def log_call(g: Gateway, method: str, path: str, status: int, started: float | None) -> None:
    """One line per call: method, path (never the query or a body), status, time."""
    if g.log is None:
        return
    ms = f" {(time.perf_counter() - started) * 1000:.1f}ms" if started is not None else ""
    g.log.write(f"nomira gateway: {method} {path} {status}{ms}\n")


class GatewayServer:
    """The worker's event loop: accepts clients (at most `max_threads` connections at once), relays their
    calls, enforces the timeouts. `serve_forever` runs it; `shutdown` (another thread) or `request_stop` (a
    signal handler) ends it; `drain` lets the calls in flight finish after that."""

    def __init__(self, address, gateway: Gateway, max_threads: int = 256, listener: socket.socket | None = None):
        """`listener`: a listening socket shared by several worker processes (made before they forked); it is
        non-blocking, so a worker whose accept lost the race to another goes back to waiting."""
        self.gateway, self.max_clients = gateway, max_threads
        if listener is None:
            listener = socket.create_server(address, backlog=128,
                                            family=socket.AF_INET6 if ":" in address[0] else socket.AF_INET)
        listener.setblocking(False)
        self.socket, self.server_address = listener, listener.getsockname()
        self.sel = selectors.DefaultSelector()
        self.wake_r, self.wake_w = socket.socketpair()
        self.wake_r.setblocking(False)
        self.wake_w.setblocking(False)
        self.sel.register(self.wake_r, READ, self._woken)
        self.sel.register(listener, READ, self._accept)
        self.accepting, self.listening = True, True
        self.clients: set[Client] = set()
        self.conns: set[Conn] = set()  # every open upstream connection (busy or pooled)
        self.soon: collections.deque = collections.deque()
        self.timers: list = []  # (when, n, fn), a heap
        self.timer_n = 0
        self.now = time.monotonic()
        self.period = max(0.05, min(1.0, gateway.timeout / 4))
        self.next_tick = self.now + self.period
        self.connector = Connector(gateway.timeout)
        self.stopping, self.stopped = False, threading.Event()
        self.stopped.set()

    # -- running

    def serve_forever(self, poll_interval: float = 0.5) -> None:
        self.stopping = False
        self.stopped.clear()
        try:
            while not self.stopping:
                self._once()
        finally:
            self.stopped.set()

    def _once(self) -> None:
        now = self.now = time.monotonic()
        if now >= self.next_tick:
            self._tick(now)
        wake = self.timers[0][0] if self.timers and self.timers[0][0] < self.next_tick else self.next_tick
        events = self.sel.select(0 if self.soon else max(0.0, wake - now))
        self.now = time.monotonic()
        for key, mask in events:
            try:
                key.data(mask)
            except Exception as exc:  # noqa: BLE001 - a bug in one connection never stops the others
                self._failed(key.data, exc)
        timers = self.timers
        while timers and timers[0][0] <= self.now:
            self.soon.append(heapq.heappop(timers)[2])
        soon = self.soon
        while soon:
            fn = soon.popleft()
            try:
                fn()
            except Exception as exc:  # noqa: BLE001
                self._failed(fn, exc)

    def call_later(self, delay: float, fn) -> None:
        """Run `fn()` on the loop after `delay` seconds (the loop's thread only)."""
        self.timer_n += 1
        heapq.heappush(self.timers, (self.now + delay, self.timer_n, fn))

    def call_soon_threadsafe(self, fn, *args) -> None:
        """Run `fn(*args)` on the loop (from another thread)."""
        self.soon.append(functools.partial(fn, *args))
        try:
            self.wake_w.send(b"\0")
        except OSError:
            pass

    def _woken(self, mask: int) -> None:
        try:
            self.wake_r.recv(4096)
        except OSError:
            pass

    def shutdown(self) -> None:
        """Stop `serve_forever` (running on another thread) and wait until it returned."""
        self.request_stop()
        self.stopped.wait()

    def request_stop(self) -> None:
        self.stopping = True
        try:
            self.wake_w.send(b"\0")
        except OSError:
            pass

    def server_close(self) -> None:
        """Stop accepting (the loop is not running)."""
        if self.listening:
            self.listening = False
            if self.accepting:
                self.sel.unregister(self.socket)
            self.accepting = False
            self.socket.close()

    def drain(self, timeout: float = 10.0) -> bool:
        """Run the loop until no call is in flight (after `server_close`), then close every connection."""
        self.server_close()
        deadline = time.monotonic() + timeout
        self.stopping = False
        while self.gateway.active and time.monotonic() < deadline:
            self._once()
        settled = not self.gateway.active
        for client in list(self.clients):
            client.close()
        for conn in list(self.conns):
            self.drop(conn)
        self.connector.close()
        return settled

    # -- clients

    def _accept(self, mask: int) -> None:
        try:
            sock, addr = self.socket.accept()
        except _up.WOULD_BLOCK:  # another worker took it
            return
        except OSError as exc:  # out of descriptors, or a connection reset before it was taken
            self.gateway.metrics.add("handler_errors")
            if self.gateway.log is not None:
                self.gateway.log.write(f"nomira gateway: accept failed: {type(exc).__name__}\n")
            return
        sock.setblocking(False)
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            pass
        self.clients.add(Client(self, sock, addr))
        if len(self.clients) >= self.max_clients and self.accepting:
            self.accepting = False
            self.sel.unregister(self.socket)

    def closed_client(self, client: Client) -> None:
        self.clients.discard(client)
        if not self.accepting and self.listening and len(self.clients) < self.max_clients:
            self.accepting = True
            self.sel.register(self.socket, READ, self._accept)

    def _failed(self, fn, exc: BaseException) -> None:
        """One line, never a traceback (and never a request's content); the connection involved is closed."""
        g = self.gateway
        g.metrics.add("handler_errors")
        if isinstance(fn, functools.partial):
            fn, owner = fn.func, (fn.args[0] if fn.args else None)
            if not isinstance(owner, Conn):
                owner = getattr(fn, "__self__", None)
        else:
            owner = getattr(fn, "__self__", None)
        client = owner if isinstance(owner, Client) else getattr(owner, "client", None)
        if isinstance(owner, Conn):
            client = owner.owner.client if owner.owner is not None else None
            self.drop(owner)
        if isinstance(client, Client):
            exchange = client.exchange
            if exchange is not None:
                exchange.over = True
                if exchange.conn is not None:
                    self.drop(exchange.conn)
            if not client.closed and client.state == BUSY and client.exchange is not None:
                g.active -= 1
            client.exchange = None
            client.close()
        if g.log is not None:
            who = f" from {client.addr[0]}" if isinstance(client, Client) and client.addr else ""
            g.log.write(f"nomira gateway: connection{who} failed: {type(exc).__name__}\n")

    # -- upstream connections

    def adopt(self, conn: Conn) -> None:
        self.conns.add(conn)

    def conn_want(self, conn: Conn, events: int) -> None:
        if events == conn.events or conn.closed:
            return
        if not conn.events:
            self.sel.register(conn.sock, events, functools.partial(self._conn_ready, conn))
        elif not events:
            self.sel.unregister(conn.sock)
        else:
            self.sel.modify(conn.sock, events, self.sel.get_key(conn.sock).data)
        conn.events = events

    def _conn_ready(self, conn: Conn, mask: int) -> None:
        owner = conn.owner
        if owner is not None:
            return owner.upstream_ready(mask)
        # idle in the pool: the upstream closed it (or sent what it should not have): it is not reused
        try:
            conn.sock.recv(1)
        except _up.WOULD_BLOCK:
            return
        except OSError:
            pass
        self.gateway.pool.discard(conn)
        self.drop(conn)

    def release(self, up: Upstream, conn: Conn, keep: bool) -> None:
        """A connection an exchange is done with: back to the pool (still watched, so an upstream that closes
        it is noticed), or closed."""
        conn.owner = None
        if keep and not conn.closed and self.gateway.pool.put(up, conn):
            self.conn_want(conn, READ)
            return
        self.drop(conn)

    def drop(self, conn: Conn) -> None:
        if conn.closed:
            return
        if conn.events:
            self.sel.unregister(conn.sock)
        conn.closed, conn.events, conn.owner = True, 0, None
        self.conns.discard(conn)
        try:
            conn.sock.close()
        except OSError:
            pass

    # -- time

    def _tick(self, now: float) -> None:
        """Timeouts: an upstream that sent nothing for the timeout, a client idle (or not reading) for IDLE."""
        self.next_tick = now + self.period
        for conn in list(self.conns):
            owner = conn.owner
            if owner is not None and not owner.paused and now > conn.deadline and not owner.over:
                owner.timed_out()
        for client in list(self.clients):
            if now - client.last > IDLE and (client.state != BUSY or client.out is not None):
                client.gone() if client.state == BUSY else client.close()
