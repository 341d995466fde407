"""The metering gateway against a fake upstream on 127.0.0.1: forwarding, streaming, usage, privacy.

Upstream responses are in the providers' wire formats: Anthropic Messages (JSON `message`, SSE
`message_start` ... `message_delta` / `message_stop`), OpenAI Chat Completions (`chat.completion`, and
`chat.completion.chunk` with `stream_options.include_usage`: a last chunk with empty `choices` and the
usage, then `data: [DONE]`) and Responses (`response`, SSE `response.created` ... `response.completed`).
Expected dollars are computed by hand from the bundled rates (bundled:2026-11-24, per MTok):
claude-sonnet-4-5 $3 in / $15 out / $0.30 cache read / $3.75 5m write / $6 1h write;
gpt-4o-2024-08-06 $2.50 / $10 / $1.25 cached; gpt-5 $1.25 / $10 / $0.125 cached.
"""
from __future__ import annotations

import gzip
import http.client
import io
import json
import socket
import sqlite3
import threading
from argparse import Namespace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from nomira.commands.gateway import close, make_gateway

MARKER = "ZEBRA-QUILL-7731"  # in every prompt and every completion: must never reach disk or a log
SONNET = "claude-sonnet-4-5-20250929"


def sse(events: list[tuple[str | None, dict | str]]) -> list[bytes]:
    out = []
    for name, data in events:
        text = data if isinstance(data, str) else json.dumps(data)
        out.append(((f"event: {name}\n" if name else "") + f"data: {text}\n\n").encode())
    return out


ANTHROPIC_JSON = {
    "id": "msg_01Hq8yWv3gw", "type": "message", "role": "assistant", "model": SONNET,
    "content": [{"type": "text", "text": f"Done {MARKER}."}], "stop_reason": "end_turn", "stop_sequence": None,
    "usage": {"input_tokens": 12, "cache_creation_input_tokens": 700, "cache_read_input_tokens": 9000,
              "cache_creation": {"ephemeral_5m_input_tokens": 200, "ephemeral_1h_input_tokens": 500},
              "output_tokens": 340, "service_tier": "standard"}}
ANTHROPIC_SSE = sse([
    ("message_start", {"type": "message_start", "message": {
        "id": "msg_01StreamAbc", "type": "message", "role": "assistant", "content": [], "model": SONNET,
        "stop_reason": None, "stop_sequence": None,
        "usage": {"input_tokens": 25, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 100,
                  "output_tokens": 1}}}),
    ("content_block_start", {"type": "content_block_start", "index": 0,
                             "content_block": {"type": "text", "text": ""}}),
    ("ping", {"type": "ping"}),
    ("content_block_delta", {"type": "content_block_delta", "index": 0,
                             "delta": {"type": "text_delta", "text": f"Hello {MARKER} \"usage\": 99"}}),
    ("content_block_stop", {"type": "content_block_stop", "index": 0}),
    ("message_delta", {"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                       "usage": {"output_tokens": 15}}),
    ("message_stop", {"type": "message_stop"}),
])
CHAT_JSON = {
    "id": "chatcmpl-B9MHDbslfkBeAs8l4bebGdFOJ6PeG", "object": "chat.completion", "created": 1741570283,
    "model": "gpt-4o-2024-08-06",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": f"Hi {MARKER}", "refusal": None},
                 "logprobs": None, "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 2006, "completion_tokens": 300, "total_tokens": 2306,
              "prompt_tokens_details": {"cached_tokens": 1920, "audio_tokens": 0},
              "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0}},
    "service_tier": "default", "system_fingerprint": "fp_fc9f1d7035"}
_CHUNK = {"id": "chatcmpl-Stream123", "object": "chat.completion.chunk", "created": 1741570283,
          "model": "gpt-4o-2024-08-06", "system_fingerprint": "fp_fc9f1d7035"}
CHAT_SSE = sse([
    (None, {**_CHUNK, "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""},
                                   "finish_reason": None}], "usage": None}),
    (None, {**_CHUNK, "choices": [{"index": 0, "delta": {"content": f"Hi {MARKER}"}, "finish_reason": None}],
            "usage": None}),
    (None, {**_CHUNK, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}], "usage": None}),
    (None, {**_CHUNK, "choices": [], "usage": {"prompt_tokens": 50, "completion_tokens": 20, "total_tokens": 70,
                                               "prompt_tokens_details": {"cached_tokens": 0},
                                               "completion_tokens_details": {"reasoning_tokens": 0}}}),
    (None, "[DONE]"),
])
_RESP = {"id": "resp_67ccd2bed1ec8190b14f964abc0542670bb6a6b452d3795b", "object": "response",
         "created_at": 1741476542, "model": "gpt-5-2025-08-07", "output": []}
RESPONSES_USAGE = {"input_tokens": 36, "input_tokens_details": {"cached_tokens": 0}, "output_tokens": 87,
                   "output_tokens_details": {"reasoning_tokens": 64}, "total_tokens": 123}
RESPONSES_SSE = sse([
    ("response.created", {"type": "response.created", "sequence_number": 0,
                          "response": {**_RESP, "status": "in_progress", "usage": None}}),
    ("response.output_text.delta", {"type": "response.output_text.delta", "sequence_number": 1,
                                    "item_id": "msg_1", "output_index": 0, "content_index": 0,
                                    "delta": f"Hi {MARKER}"}),
    ("response.completed", {"type": "response.completed", "sequence_number": 2, "response": {
        **_RESP, "status": "completed", "usage": RESPONSES_USAGE,
        "output": [{"type": "message", "id": "msg_1", "role": "assistant",
                    "content": [{"type": "output_text", "text": f"Hi {MARKER}", "annotations": []}]}]}}),
])


BIG_EVENT = sse([("content_block_delta", {"type": "content_block_delta", "index": 0,
                                          "delta": {"type": "text_delta", "text": "x" * 65536}})])[0]


class FakeUpstream(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    script: dict  # set per server: the test's knobs and what the upstream saw

    def log_message(self, *args):
        pass

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.script["seen"].append((self.path, dict(self.headers), body))
        self.script.setdefault("peers", set()).add(self.client_address)
        path = self.path.split("?", 1)[0]
        streamed = json.loads(body or b"{}").get("stream")
        if self.script.get("sleep"):
            self.script["sleep"].wait(2)  # a stuck upstream, until the test lets it go
        if self.script.get("status") == 429:
            payload = json.dumps({"type": "error", "error": {"type": "rate_limit_error",
                                                            "message": "Number of requests exceeded"}}).encode()
            self.send_response(429)
            self.send_header("Content-Type", "application/json")
            self.send_header("retry-after", "7")
            self.send_header("anthropic-ratelimit-requests-remaining", "0")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
            return
        if streamed:
            events = {"/v1/messages": ANTHROPIC_SSE, "/v1/chat/completions": CHAT_SSE,
                      "/v1/responses": RESPONSES_SSE}[path]
            if self.script.get("big"):  # many large content events between the first and the last two
                events = events[:1] + [BIG_EVENT] * self.script["big"] + events[-2:]
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream; charset=utf-8")
            self.send_header("Transfer-Encoding", "chunked")
            self.send_header("request-id", "req_011CUkq3Zx9")
            self.end_headers()
            try:
                for i, event in enumerate(events):
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(event), event))
                    self.wfile.flush()
                    if i == 0 and self.script.get("hold"):
                        self.script["released"] = self.script["hold"].wait(3)
                self.wfile.write(b"0\r\n\r\n")
            except (BrokenPipeError, ConnectionResetError):
                # the gateway may close its upstream leg when its client leaves (a proxy's choice,
                # like nginx's default): the stream ends here either way, it never hangs
                self.script["aborted"] = True
            finally:
                self.script["finished"].set()
            return
        doc = {"/v1/messages": ANTHROPIC_JSON, "/v1/chat/completions": CHAT_JSON,
               "/v1/responses": {**_RESP, "status": "completed", "usage": RESPONSES_USAGE}}.get(path, {"ok": 1})
        payload = json.dumps(doc).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("x-request-id", "req_chat_42")
        if self.script.get("gzip"):
            payload = gzip.compress(payload)
            self.send_header("Content-Encoding", "gzip")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_POST


@pytest.fixture(autouse=True)
def no_sigpipe():
    """As `nomira gateway` does: a write to a socket the peer closed is an error, not the end of the process
    (other tests run `cli.main`, which restores the default SIGPIPE action for quiet CLI pipes)."""
    import signal
    old = signal.signal(signal.SIGPIPE, signal.SIG_IGN)
    yield
    signal.signal(signal.SIGPIPE, old)


def _serve(server) -> threading.Thread:
    t = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    t.start()
    return t


@pytest.fixture
def upstream():
    script = {"seen": [], "finished": threading.Event()}
    server = ThreadingHTTPServer(("127.0.0.1", 0), type("H", (FakeUpstream,), {"script": script}))
    server.daemon_threads = True
    _serve(server)
    script["url"] = f"http://127.0.0.1:{server.server_address[1]}"
    yield script
    server.shutdown()
    server.server_close()


class Log(io.StringIO):
    def __init__(self):
        super().__init__()
        self.lock = threading.Lock()

    def write(self, s):
        with self.lock:
            return super().write(s)


@pytest.fixture
def gateway(upstream, tmp_path):
    started = []

    def start(**overrides):
        args = Namespace(host="127.0.0.1", port=0, upstream_anthropic=upstream["url"], upstream_openai=upstream["url"],
                         db=tmp_path / "gw.db", remote=None, token=None, max_connections=64, timeout=10.0,
                         quiet=False)
        for k, v in overrides.items():
            setattr(args, k, v)
        log = Log()
        server, _ = make_gateway(args, env={"HOME": str(tmp_path / "home"), "XDG_STATE_HOME": str(tmp_path / "state")},
                                 log=log)
        _serve(server)
        g = server.gateway
        gw = Namespace(server=server, gateway=g, recorder=g.recorder, log=log, port=server.server_address[1],
                       metrics=g.metrics, db=args.db, settle=g.settle)
        started.append(gw)
        return gw
    yield start
    for gw in started:
        gw.server.shutdown()
        close(gw.server)


def call(port, path, body: dict, headers=None, method="POST"):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request(method, path, body=json.dumps(body).encode(), headers={
        "Content-Type": "application/json", **(headers or {})})
    resp = conn.getresponse()
    data = resp.read()
    conn.close()
    return resp, data


def rows(db_path):
    db = sqlite3.connect(db_path)
    db.row_factory = sqlite3.Row
    out = [dict(r) for r in db.execute("SELECT * FROM events ORDER BY message_id")]
    db.close()
    return out


ANTHROPIC_HEADERS = {"x-api-key": "sk-ant-test", "anthropic-version": "2023-06-01"}
PROMPT = {"model": SONNET, "max_tokens": 64, "messages": [{"role": "user", "content": f"Say {MARKER}"}]}


def test_priced_events_for_both_providers_streamed_and_not(gateway, upstream):
    gw = gateway()
    calls = [("/v1/messages", PROMPT, ANTHROPIC_HEADERS), ("/v1/messages?beta=true", {**PROMPT, "stream": True},
                                                           ANTHROPIC_HEADERS),
             ("/v1/chat/completions", {"model": "gpt-4o", "messages": [{"role": "user", "content": MARKER}]}, {}),
             ("/v1/chat/completions", {"model": "gpt-4o", "stream": True, "stream_options": {"include_usage": True},
                                       "messages": [{"role": "user", "content": MARKER}]}, {}),
             ("/v1/responses", {"model": "gpt-5", "stream": True, "input": MARKER}, {}),
             ("/v1/responses", {"model": "gpt-5", "input": MARKER}, {})]
    for path, body, headers in calls:
        resp, data = call(gw.port, path, body, {**headers, "X-Nomira-Developer": "ana", "X-Nomira-Feature": "search"})
        assert resp.status == 200
        assert MARKER.encode() in data or path == "/v1/responses"  # the client got the content, unchanged
    assert gw.settle()
    got = {r["message_id"]: r for r in rows(gw.db)}
    expected = {  # message id: (model, input, output, cache read, 5m write, 1h write, dollars by hand)
        "msg_01Hq8yWv3gw": (SONNET, 12, 340, 9000, 200, 500, (12 * 3 + 340 * 15 + 9000 * .3 + 200 * 3.75 + 500 * 6)),
        "msg_01StreamAbc": (SONNET, 25, 15, 100, 0, 0, 25 * 3 + 15 * 15 + 100 * .3),
        "chatcmpl-B9MHDbslfkBeAs8l4bebGdFOJ6PeG": ("gpt-4o-2024-08-06", 86, 300, 1920, 0, 0,
                                                   86 * 2.5 + 300 * 10 + 1920 * 1.25),
        "chatcmpl-Stream123": ("gpt-4o-2024-08-06", 50, 20, 0, 0, 0, 50 * 2.5 + 20 * 10),
        _RESP["id"]: ("gpt-5-2025-08-07", 36, 87, 0, 0, 0, 36 * 1.25 + 87 * 10),
    }
    assert set(got) == set(expected)
    for mid, (model, i, o, cr, w5, w1, micro_usd) in expected.items():
        r = got[mid]
        assert (r["model"], r["input"], r["output"], r["cache_read"], r["cache_write_5m"], r["cache_write_1h"]) == \
            (model, i, o, cr, w5, w1)
        assert r["cost_usd"] == pytest.approx(micro_usd / 1e6, rel=1e-9)
        assert (r["source"], r["regime"], r["developer"], r["feature"]) == ("gateway", "api", "ana", "search")
        assert r["provider"] == ("anthropic" if model.startswith("claude") else "openai")
    # the streamed and the non-streamed Responses call share an id: one call, deduplicated by the store
    assert gw.metrics.snapshot()["calls_recorded"] == 6
    assert got[_RESP["id"]]["reasoning"] == 64
    assert got["msg_01StreamAbc"]["request_id"] == "req_011CUkq3Zx9"


def test_first_streamed_bytes_reach_the_client_before_upstream_finishes(gateway, upstream):
    gw = gateway()
    upstream["hold"] = threading.Event()
    conn = http.client.HTTPConnection("127.0.0.1", gw.port, timeout=10)
    conn.request("POST", "/v1/messages", body=json.dumps({**PROMPT, "stream": True}), headers=ANTHROPIC_HEADERS)
    resp = conn.getresponse()
    first = resp.read1(65536)
    assert first.startswith(b"event: message_start")
    assert not upstream["finished"].is_set()  # the upstream is still waiting for us
    upstream["hold"].set()
    rest = resp.read()
    conn.close()
    assert upstream["released"] is True  # the upstream was released by the test, not by its timeout
    assert first + rest == b"".join(ANTHROPIC_SSE)
    assert resp.getheader("Transfer-Encoding") == "chunked"
    assert gw.settle()
    assert [r["output"] for r in rows(gw.db)] == [15]


def test_429_passes_through_with_headers_and_body(gateway, upstream):
    gw = gateway()
    upstream["status"] = 429
    resp, data = call(gw.port, "/v1/messages", PROMPT, ANTHROPIC_HEADERS)
    assert resp.status == 429
    assert resp.getheader("retry-after") == "7"
    assert resp.getheader("anthropic-ratelimit-requests-remaining") == "0"
    assert json.loads(data)["error"]["type"] == "rate_limit_error"
    assert gw.settle()
    assert rows(gw.db) == []
    assert gw.metrics.snapshot()["upstream_4xx"] == 1


def test_forwarded_unchanged_without_nomira_headers(gateway, upstream):
    gw = gateway()
    body = {**PROMPT, "metadata": {"user_id": "u1"}}
    resp, _ = call(gw.port, "/v1/messages?beta=true", body, {**ANTHROPIC_HEADERS, "X-Nomira-Developer": "ana",
                                                            "X-Nomira-Customer": "acme", "X-Custom": "kept",
                                                            "Accept-Encoding": "br"})
    assert resp.status == 200
    path, headers, sent = upstream["seen"][-1]
    assert path == "/v1/messages?beta=true"
    assert sent == json.dumps(body).encode()
    low = {k.lower(): v for k, v in headers.items()}
    assert not [k for k in low if k.startswith("x-nomira")]
    assert (low["x-api-key"], low["anthropic-version"], low["x-custom"]) == ("sk-ant-test", "2023-06-01", "kept")
    assert low["accept-encoding"] == "identity"  # a recorded path asks for a readable response
    # an unrecorded path: forwarded, headers kept as sent (compression too), nothing recorded
    resp, data = call(gw.port, "/v1/models", {}, {"Authorization": "Bearer sk-test", "Accept-Encoding": "gzip"},
                      method="GET")
    path, headers, _ = upstream["seen"][-1]
    assert (resp.status, json.loads(data), path, headers["Accept-Encoding"]) == (200, {"ok": 1}, "/v1/models", "gzip")
    assert gw.settle()
    assert [r["customer"] for r in rows(gw.db)] == ["acme"]


def test_gzip_response_is_passed_on_compressed_and_still_read(gateway, upstream):
    gw = gateway()
    upstream["gzip"] = True
    resp, data = call(gw.port, "/v1/chat/completions", {"model": "gpt-4o", "messages": []})
    assert resp.getheader("Content-Encoding") == "gzip"
    assert json.loads(gzip.decompress(data))["id"] == CHAT_JSON["id"]
    assert gw.settle()
    assert [r["output"] for r in rows(gw.db)] == [300]


def test_no_body_text_in_store_logs_or_spool(gateway, upstream, tmp_path):
    local = gateway()
    remote = gateway(db=None, remote="http://127.0.0.1:9/", token="t")  # a collector that is down: events wait
    for gw in (local, remote):
        for path, body in (("/v1/messages", {**PROMPT, "stream": True}), ("/v1/messages", PROMPT),
                           ("/v1/chat/completions", {"model": "gpt-4o", "stream": True,
                                                     "messages": [{"role": "user", "content": MARKER}]}),
                           ("/v1/responses", {"model": "gpt-5", "stream": True, "input": MARKER})):
            call(gw.port, path, body, {**ANTHROPIC_HEADERS, "X-Nomira-Project": "shop"}
                 if path == "/v1/messages" else {"X-Nomira-Project": "shop"})
        assert gw.settle()
    assert len(rows(local.db)) == 4
    spooled = list((tmp_path / "state" / "nomira" / "gateway-spool").rglob("*"))
    assert any(p.name.startswith("batch-") for p in spooled)
    written = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert any(p.name == "gw.db" for p in written)
    for p in written:
        assert MARKER.encode() not in p.read_bytes(), p
    for gw in (local, remote):
        assert "POST /v1/messages 200" in gw.log.getvalue()
        assert MARKER not in gw.log.getvalue()
    assert remote.metrics.snapshot()["delivery_errors"] >= 1


def test_a_failed_recording_never_fails_the_request(gateway, upstream):
    gw = gateway()

    def broken(events):
        raise OSError("disk full")
    gw.recorder.sink.write = broken
    resp, data = call(gw.port, "/v1/messages", PROMPT, ANTHROPIC_HEADERS)
    assert resp.status == 200 and json.loads(data)["id"] == ANTHROPIC_JSON["id"]
    assert gw.settle()
    gw.recorder.pricer = None  # pricing now raises on the recorder's thread
    resp, _ = call(gw.port, "/v1/messages", PROMPT, ANTHROPIC_HEADERS)
    assert resp.status == 200
    assert gw.settle()
    conn = http.client.HTTPConnection("127.0.0.1", gw.port, timeout=10)
    conn.request("GET", "/__nomira/metrics")
    metrics = json.loads(conn.getresponse().read())
    conn.close()
    assert metrics["events_write_errors"] == 1 and metrics["record_errors"] == 1


def test_bad_tag_is_dropped_not_the_call_and_unreachable_upstream_is_502(gateway, upstream):
    gw = gateway()
    resp, _ = call(gw.port, "/v1/messages", PROMPT, {**ANTHROPIC_HEADERS, "X-Nomira-Project": "/home/ana/src/shop",
                                                     "X-Nomira-Env": "prod"})
    assert resp.status == 200
    assert gw.settle()
    [r] = rows(gw.db)
    assert (r["project"], r["env"]) == ("", "prod")
    assert gw.metrics.snapshot()["fields_dropped"] == 1
    down = gateway(upstream_anthropic="http://127.0.0.1:9")
    resp, data = call(down.port, "/v1/messages", PROMPT, ANTHROPIC_HEADERS)
    assert resp.status == 502 and "upstream unreachable" in json.loads(data)["error"]["message"]


def test_a_slow_client_gets_the_whole_stream_and_one_that_leaves_is_counted(gateway, upstream, monkeypatch):
    """Backpressure: a client that reads slower than upstream sends pauses the upstream reads (its bytes are
    not queued in the gateway) and still gets every byte; a client that leaves mid-stream ends the upstream
    leg, is counted, and the usage seen so far is recorded."""
    from nomira.gateway import proxy
    waited = []
    flush = proxy.Client.flush
    monkeypatch.setattr(proxy.Client, "flush", lambda self: (waited.append(len(self.out)), flush(self))[1])
    gw = gateway()
    upstream["big"] = 128  # 8 MB of content events
    body = json.dumps({**PROMPT, "stream": True}).encode()
    head = "".join(f"{k}: {v}\r\n" for k, v in ANTHROPIC_HEADERS.items())
    request = f"POST /v1/messages HTTP/1.1\r\n{head}Content-Length: {len(body)}\r\n\r\n".encode() + body
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.settimeout(10)
        s.connect(("127.0.0.1", gw.port))
        s.sendall(request)
        threading.Event().wait(0.5)  # not reading: the gateway's send buffer to us fills up
        resp = http.client.HTTPResponse(s)
        resp.begin()
        data = resp.read()
    expected = ANTHROPIC_SSE[:1] + [BIG_EVENT] * 128 + ANTHROPIC_SSE[-2:]
    assert resp.status == 200 and data == b"".join(expected)
    assert waited  # the gateway did wait for this client to take its bytes
    assert gw.settle()
    assert [(r["input"], r["output"]) for r in rows(gw.db)] == [(25, 15)]

    upstream["hold"], upstream["finished"] = threading.Event(), threading.Event()
    with socket.create_connection(("127.0.0.1", gw.port), 10) as s:
        s.sendall(request)
        got = b""
        while b"event: message_start" not in got:
            got += s.recv(65536)
    upstream["hold"].set()  # the rest (8 MB) meets a closed client
    assert upstream["finished"].wait(10)
    assert gw.settle()
    snap = gw.metrics.snapshot()
    assert (snap["client_disconnects"], snap["calls_recorded_partial"], snap["calls_recorded"]) == (1, 1, 2)
    assert upstream.get("aborted") is True  # the gateway closed its upstream leg


def test_an_event_stream_head_goes_on_alone_when_its_first_bytes_are_late(gateway):
    """The head of an event stream waits at most HEAD_HOLD for the first event (to go out in one send with
    it): a client of an upstream slow to its first token still gets the status and headers at once."""
    import time
    listener = socket.create_server(("127.0.0.1", 0))

    def serve():
        c, _ = listener.accept()
        with c:
            buf = b""
            while b"\r\n\r\n" not in buf:
                buf += c.recv(65536)
            c.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n")
            time.sleep(0.6)  # the first token is slow
            for event in ANTHROPIC_SSE:
                c.sendall(b"%x\r\n%s\r\n" % (len(event), event))
            c.sendall(b"0\r\n\r\n")
    t = threading.Thread(target=serve, daemon=True)
    t.start()
    gw = gateway(upstream_anthropic=f"http://127.0.0.1:{listener.getsockname()[1]}")
    conn = http.client.HTTPConnection("127.0.0.1", gw.port, timeout=10)
    started = time.monotonic()
    conn.request("POST", "/v1/messages", body=json.dumps({**PROMPT, "stream": True}), headers=ANTHROPIC_HEADERS)
    resp = conn.getresponse()
    assert resp.status == 200 and time.monotonic() - started < 0.4  # the head did not wait for the events
    assert resp.read() == b"".join(ANTHROPIC_SSE)
    conn.close()
    t.join(5)
    listener.close()
    assert gw.settle()
    assert [(r["input"], r["output"]) for r in rows(gw.db)] == [(25, 15)]


def test_connections_past_max_connections_wait_to_be_accepted(gateway):
    gw = gateway(max_connections=2)
    health = b"GET /__nomira/health HTTP/1.1\r\nHost: x\r\n\r\n"
    first, second = (socket.create_connection(("127.0.0.1", gw.port), 10) for _ in range(2))
    for s in (first, second):
        s.sendall(health)
        assert s.recv(4096).endswith(b'{"ok":true}')  # both served, both kept open
    third = socket.create_connection(("127.0.0.1", gw.port), 10)  # (the kernel's backlog takes it)
    third.sendall(health)
    third.settimeout(0.5)
    with pytest.raises(socket.timeout):
        third.recv(4096)  # not accepted while two are open
    first.close()
    third.settimeout(10)
    assert third.recv(4096).endswith(b'{"ok":true}')
    second.close()
    third.close()


def test_a_json_body_is_parsed_by_the_recorder_unless_large():
    from nomira.gateway.usage import DEFER_HELD, Finished, for_recorder, reader_for
    small, large = reader_for("anthropic", "application/json"), reader_for("anthropic", "application/json")
    doc = json.dumps(ANTHROPIC_JSON).encode()
    small.feed(doc)
    padded = json.dumps({**ANTHROPIC_JSON, "content": [{"type": "text", "text": "x" * DEFER_HELD}]}).encode()
    large.feed(padded)
    assert for_recorder(small) is small  # held until the recorder finishes it
    done = for_recorder(large)
    assert isinstance(done, Finished) and large.held is None  # parsed now, the body released
    for reader in (small, done):
        found = reader.finish()
        assert (found.model, found.usage["output_tokens"]) == (SONNET, 340)


def test_many_concurrent_streams(gateway, upstream):
    gw = gateway()
    results = []

    def one(i):
        resp, data = call(gw.port, "/v1/chat/completions", {"model": "gpt-4o", "stream": True, "messages": []})
        results.append((resp.status, data == b"".join(CHAT_SSE)))
    threads = [threading.Thread(target=one, args=(i,)) for i in range(40)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    assert results == [(200, True)] * 40
    assert gw.settle()
    assert gw.metrics.snapshot()["calls_recorded"] == 40
    assert len(rows(gw.db)) == 1  # one id, one call: the fake upstream answers every call with the same id


@pytest.fixture
def collector(tmp_path):
    """The real collector app (store team.db) on plain wsgiref on 127.0.0.1."""
    from wsgiref.simple_server import WSGIRequestHandler, make_server

    from nomira.commands.serve import make_app

    class Quiet(WSGIRequestHandler):
        def log_message(self, *args):
            pass
    httpd = make_server("127.0.0.1", 0, make_app(tmp_path / "team.db", "127.0.0.1"), handler_class=Quiet)
    _serve(httpd)
    yield httpd
    httpd.shutdown()
    httpd.server_close()


def test_remote_mode_delivers_to_a_real_collector(gateway, upstream, tmp_path, collector):
    gw = gateway(db=None, remote=f"http://127.0.0.1:{collector.server_port}")
    for body in ({**PROMPT, "stream": True}, PROMPT):
        assert call(gw.port, "/v1/messages", body, {**ANTHROPIC_HEADERS, "X-Nomira-Developer": "ana"})[0].status \
            == 200
    assert gw.settle()
    assert gw.metrics.snapshot()["events_delivered"] == 2
    got = rows(tmp_path / "team.db")
    assert [(r["developer"], r["source"], r["output"]) for r in got] == [("ana", "gateway", 340),
                                                                       ("ana", "gateway", 15)]
    assert not list((tmp_path / "state" / "nomira" / "gateway-spool" / "pending").glob("batch-*"))


def test_sse_reader_any_chunking_crlf_and_content_that_mentions_usage():
    from nomira.gateway.usage import reader_for
    whole = b"".join(ANTHROPIC_SSE).replace(b"\n", b"\r\n")
    for size in (1, 7, 64, len(whole)):
        reader = reader_for("anthropic", "text/event-stream; charset=utf-8")
        for i in range(0, len(whole), size):
            reader.feed(whole[i:i + size])
        found = reader.finish()
        t = found.tokens()
        assert (found.model, found.response_id, t.input, t.cache_read, t.output) == \
            (SONNET, "msg_01StreamAbc", 25, 100, 15)
        assert found.problems == []
    # a Chat Completions stream without stream_options.include_usage has no usage: nothing is made up
    plain = b"".join(e for e in CHAT_SSE if b'"usage": {' not in e)
    reader = reader_for("openai", "text/event-stream")
    reader.feed(plain)
    assert reader.finish().tokens() is None
    assert reader_for("openai", "application/json", "br") is None


def test_command_serves_and_records_until_sigterm(upstream, tmp_path):
    import os
    import signal
    import subprocess
    import sys
    from pathlib import Path
    root = Path(__file__).resolve().parent.parent
    env = dict(os.environ, PYTHONPATH=str(root))
    proc = subprocess.Popen([sys.executable, "-m", "nomira", "gateway", "--port", "0", "--db", str(tmp_path / "c.db"),
                             "--upstream-anthropic", upstream["url"], "--upstream-openai", upstream["url"]],
                            cwd=root, env=env, stderr=subprocess.PIPE, text=True)
    try:
        banner = proc.stderr.readline()
        assert "metering gateway on http://127.0.0.1:" in banner, banner
        port = int(banner.split("http://127.0.0.1:")[1].split("/")[0])
        # a client that leaves mid-stream: the gateway's next write hits a closed socket, and it lives on
        upstream["hold"] = threading.Event()
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        conn.request("POST", "/v1/messages", body=json.dumps({**PROMPT, "stream": True}), headers=ANTHROPIC_HEADERS)
        assert conn.getresponse().read1(65536).startswith(b"event: message_start")
        conn.sock.shutdown(socket.SHUT_RDWR)
        conn.close()
        upstream["hold"].set()
        assert upstream["finished"].wait(30)  # a loaded CI box
        assert call(port, "/v1/chat/completions", {"model": "gpt-4o", "messages": []})[0].status == 200
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(20) == 0
    finally:
        proc.kill()
    assert [r["message_id"] for r in rows(tmp_path / "c.db")] == [CHAT_JSON["id"], "msg_01StreamAbc"]
    stderr = proc.stderr.read()
    assert "POST /v1/chat/completions 200" in stderr and MARKER not in stderr


def test_a_stuck_upstream_is_a_504_after_the_timeout(gateway, upstream):
    gw = gateway(timeout=0.3)
    upstream["sleep"] = threading.Event()
    try:
        resp, data = call(gw.port, "/v1/messages", PROMPT, ANTHROPIC_HEADERS)
    finally:
        upstream["sleep"].set()
    assert resp.status == 504 and "timed out" in json.loads(data)["error"]["message"]
    assert gw.metrics.snapshot()["upstream_timeouts"] == 1


def test_chunked_request_body_is_forwarded_whole(gateway, upstream):
    gw = gateway()
    conn = http.client.HTTPConnection("127.0.0.1", gw.port, timeout=10)
    body = json.dumps(PROMPT).encode()
    conn.request("POST", "/v1/messages", body=iter([body[:10], body[10:]]), encode_chunked=True,
                 headers={**ANTHROPIC_HEADERS, "Transfer-Encoding": "chunked"})
    resp = conn.getresponse()
    resp.read()
    conn.close()
    _, headers, sent = upstream["seen"][-1]
    assert resp.status == 200 and sent == body and headers["Content-Length"] == str(len(body))
    assert "Transfer-Encoding" not in headers


def test_a_stream_that_stalls_past_the_timeout_is_cut_and_its_usage_so_far_recorded(gateway, upstream):
    gw = gateway(timeout=0.3)
    upstream["hold"] = threading.Event()
    conn = http.client.HTTPConnection("127.0.0.1", gw.port, timeout=10)
    try:
        conn.request("POST", "/v1/messages", body=json.dumps({**PROMPT, "stream": True}), headers=ANTHROPIC_HEADERS)
        resp = conn.getresponse()
        assert resp.read1(65536).startswith(b"event: message_start")
        with pytest.raises(http.client.IncompleteRead):  # truncated, never passed off as a complete stream
            resp.read()
    finally:
        upstream["hold"].set()
        conn.close()
    assert gw.settle()
    snap = gw.metrics.snapshot()
    assert (snap["upstream_timeouts"], snap["calls_recorded_partial"]) == (1, 1)
    assert [(r["input"], r["output"]) for r in rows(gw.db)] == [(25, 1)]  # message_start's counts


def test_https_upstream_with_pooled_connections(gateway, upstream, tmp_path, monkeypatch):
    import shutil
    import ssl
    import subprocess
    if not shutil.which("openssl"):
        pytest.skip("openssl not available to make a test certificate")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                    "-keyout", str(key), "-out", str(cert), "-days", "1", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1"], check=True, capture_output=True, timeout=30)
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))  # the gateway verifies the upstream as it would api.anthropic.com
    script = {"seen": [], "finished": threading.Event()}
    tls = ThreadingHTTPServer(("127.0.0.1", 0), type("H", (FakeUpstream,), {"script": script}))
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    tls.socket = ctx.wrap_socket(tls.socket, server_side=True)
    tls.daemon_threads = True
    _serve(tls)
    try:
        gw = gateway(upstream_anthropic=f"https://127.0.0.1:{tls.server_address[1]}")
        for body in (PROMPT, {**PROMPT, "stream": True}, PROMPT):
            assert call(gw.port, "/v1/messages", body, ANTHROPIC_HEADERS)[0].status == 200
        assert gw.settle()
        assert gw.metrics.snapshot()["calls_recorded"] == 3
        assert len(script["peers"]) == 1  # one TLS connection, kept alive and reused for all three calls
    finally:
        tls.shutdown()
        tls.server_close()


def test_spooled_batches_go_only_to_the_collector_and_key_they_were_spooled_for(gateway, upstream, tmp_path,
                                                                               collector):
    from nomira.gateway.record import Metrics, SpoolSink
    pending = tmp_path / "state" / "nomira" / "gateway-spool" / "pending"
    away = gateway(db=None, remote="http://127.0.0.1:9")  # a collector that is down: its batch stays queued
    assert call(away.port, "/v1/messages", PROMPT, {**ANTHROPIC_HEADERS, "X-Nomira-Developer": "old"})[0].status \
        == 200
    assert away.settle()
    assert len(list(pending.glob("batch-*"))) == 1
    # restarted for another collector: the old batch is kept for its own collector, never sent here
    gw = gateway(db=None, remote=f"http://127.0.0.1:{collector.server_port}")
    assert gw.metrics.snapshot()["spool_batches_other_destination"] == 1
    assert "1 spooled batches are for another collector" in gw.log.getvalue()
    assert call(gw.port, "/v1/messages", PROMPT, {**ANTHROPIC_HEADERS, "X-Nomira-Developer": "new"})[0].status \
        == 200
    assert gw.settle()
    assert gw.metrics.snapshot()["events_delivered"] == 1
    assert [r["developer"] for r in rows(tmp_path / "team.db")] == ["new"]
    [left] = pending.glob("batch-*")
    assert json.loads(left.read_text())["destination"]["url"] == "http://127.0.0.1:9/v1/usage/events"

    class Post:  # the same collector URL under two keys (two tenants): each batch goes with its own key only
        def __init__(self, key, status):
            self.destination, self.status, self.got = {"url": "http://c/v1/usage/events", "credential_sha256": key}, status, []

        def __call__(self, events):
            self.got.append(events)
            return self.status, ""
    event = {"source": "gateway", "provider": "anthropic", "model": SONNET}
    a, b = Post("a" * 64, 503), Post("b" * 64, 200)
    spool_dir = tmp_path / "two-keys"
    SpoolSink(spool_dir, a, Metrics()).write([{**event, "developer": "a"}])
    sink_b = SpoolSink(spool_dir, b, Metrics())
    assert sink_b.others() == 1
    sink_b.write([{**event, "developer": "b"}])
    assert b.got == [[{**event, "developer": "b"}]] and len(a.got) == 1
    assert sink_b.others() == 1 and sink_b.metrics.snapshot()["spool_batches_other_destination"] == 1


def _raw(port: int, data: bytes, until_close: bool = True) -> bytes:
    with socket.create_connection(("127.0.0.1", port), 10) as s:
        s.sendall(data)
        out = b""
        while until_close:
            got = s.recv(65536)
            if not got:
                break
            out += got
        return out


def test_http_framing_edges_http10_head_expect_bad_head_eof_body_and_stale_connection(gateway, upstream, tmp_path):
    """The raw HTTP/1.1 relay: what http.server and http.client used to handle for the gateway."""
    gw = gateway()
    stream = json.dumps({**PROMPT, "stream": True}).encode()
    head = "".join(f"{k}: {v}\r\n" for k, v in ANTHROPIC_HEADERS.items())
    # an HTTP/1.0 client gets a chunked upstream stream de-chunked, ended by the end of the connection
    got = _raw(gw.port, f"POST /v1/messages HTTP/1.0\r\n{head}Content-Length: {len(stream)}\r\n\r\n".encode() + stream)
    status, _, body = got.partition(b"\r\n\r\n")
    assert status.startswith(b"HTTP/1.1 200") and b"Transfer-Encoding" not in status and b"Connection: close" in status
    assert body == b"".join(ANTHROPIC_SSE)
    # Expect: 100-continue is answered by the gateway; a HEAD has no body and the connection stays usable
    with socket.create_connection(("127.0.0.1", gw.port), 10) as s:
        s.sendall(f"POST /v1/messages HTTP/1.1\r\n{head}Expect: 100-continue\r\nContent-Length: {len(stream)}\r\n\r\n"
                  .encode())
        assert s.recv(100) == b"HTTP/1.1 100 Continue\r\n\r\n"
        s.sendall(stream)
        resp = http.client.HTTPResponse(s)
        resp.begin()
        assert resp.status == 200 and resp.read() == b"".join(ANTHROPIC_SSE)
        assert "Expect" not in upstream["seen"][-1][1]
    conn = http.client.HTTPConnection("127.0.0.1", gw.port, timeout=10)
    conn.request("HEAD", "/v1/models", headers={"anthropic-version": "2023-06-01"})
    resp = conn.getresponse()
    assert resp.status == 501 and resp.read() == b""  # http.server's answer to HEAD, passed on
    conn.request("GET", "/__nomira/health")
    assert conn.getresponse().read() == b'{"ok":true}'
    conn.close()
    # a malformed head is a 400 and the connection closes
    assert _raw(gw.port, b"POST /v1/messages HTTP/1.1\r\n bad fold\r\n\r\n").startswith(b"HTTP/1.1 400 ")
    assert _raw(gw.port, b"GARBAGE\r\n\r\n").startswith(b"HTTP/1.1 400 ")

    # an upstream that ends its body by closing, and one that closes a kept-alive connection between calls
    served = []
    listener = socket.create_server(("127.0.0.1", 0))

    def serve():
        for i in range(2):
            c, _ = listener.accept()
            with c:
                buf = b""
                while b"\r\n\r\n" not in buf:
                    buf += c.recv(65536)
                head_, _, rest = buf.partition(b"\r\n\r\n")
                n = int(head_.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
                while len(rest) < n:
                    rest += c.recv(65536)
                served.append(i)
                if i == 0:  # a keep-alive response, then a close without saying so: a stale pooled connection
                    doc = json.dumps(ANTHROPIC_JSON).encode()
                    c.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
                              % (len(doc), doc))
                else:  # an HTTP/1.0 stream with no length: its end is the end of the connection
                    c.sendall(b"HTTP/1.0 200 OK\r\nContent-Type: text/event-stream\r\n\r\n" + b"".join(ANTHROPIC_SSE))
    t = threading.Thread(target=serve, daemon=True)
    t.start()
    eof = gateway(upstream_anthropic=f"http://127.0.0.1:{listener.getsockname()[1]}")
    for body in (PROMPT, {**PROMPT, "stream": True}):
        resp, data = call(eof.port, "/v1/messages", body, ANTHROPIC_HEADERS)
        assert resp.status == 200
    assert data == b"".join(ANTHROPIC_SSE) and resp.getheader("Transfer-Encoding") == "chunked"
    t.join(5)
    listener.close()
    assert served == [0, 1]  # the second call found the pooled connection closed and went out on a fresh one
    assert eof.settle()
    assert eof.metrics.snapshot()["calls_recorded"] == 2


def test_workers_share_one_port_one_counter_table_and_stop_cleanly(upstream, tmp_path):
    import os
    import signal
    import subprocess
    import sys
    import time
    from pathlib import Path
    root = Path(__file__).resolve().parent.parent
    proc = subprocess.Popen([sys.executable, "-m", "nomira", "gateway", "--port", "0", "--workers", "2", "--quiet",
                             "--db", str(tmp_path / "w.db"), "--upstream-anthropic", upstream["url"],
                             "--upstream-openai", upstream["url"]],
                            cwd=root, env=dict(os.environ, PYTHONPATH=str(root)), stderr=subprocess.PIPE, text=True)
    try:
        banner = proc.stderr.readline()
        assert "2 worker processes" in banner, banner
        port = int(banner.split("http://127.0.0.1:")[1].split("/")[0])
        bodies = [(PROMPT, ANTHROPIC_HEADERS), ({**PROMPT, "stream": True}, ANTHROPIC_HEADERS),
                  ({"model": "gpt-4o", "messages": []}, {})]
        for body, headers in bodies * 4:  # a new connection each: the two workers take them as they race
            assert call(port, "/v1/messages" if headers else "/v1/chat/completions", body, headers)[0].status == 200
        deadline = time.monotonic() + 10
        while json.loads(call(port, "/__nomira/metrics", {}, method="GET")[1]).get("events_recorded", 0) < 12:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        for _ in range(4):  # every worker answers with the sum of all workers' counters
            metrics = json.loads(call(port, "/__nomira/metrics", {}, method="GET")[1])
            assert metrics["requests"] == 12 and metrics["calls_recorded"] == 12 and metrics["cpu_s"] > 0
        pids = subprocess.run(["pgrep", "-P", str(proc.pid)], capture_output=True, text=True).stdout.split()
        assert len(pids) == 2
        os.kill(int(pids[0]), signal.SIGKILL)  # a worker that dies is started again
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            now = subprocess.run(["pgrep", "-P", str(proc.pid)], capture_output=True, text=True).stdout.split()
            if len(now) == 2 and pids[0] not in now:
                break
            time.sleep(0.05)
        assert len(now) == 2 and pids[0] not in now
        proc.send_signal(signal.SIGTERM)  # at once: the restarted worker may still be starting
        assert proc.wait(20) == 0
    finally:
        proc.kill()
    stderr = proc.stderr.read()
    assert "worker 0 exited" in stderr or "worker 1 exited" in stderr
    assert {r["message_id"] for r in rows(tmp_path / "w.db")} == {ANTHROPIC_JSON["id"], "msg_01StreamAbc", CHAT_JSON["id"]}
