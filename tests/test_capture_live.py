"""Live capture, slices 2-4: OTLP/HTTP JSON at the collector, the OpenCode plugin endpoint and
`nomira opencode watch` (SSE), and cross-channel dedup.

Fixtures follow the exporters' real shapes: OTLP ExportLogsServiceRequest / ExportMetricsService-
Request in the proto3 JSON mapping (int64 as strings, AnyValue wrappers) with Claude Code's
attribute names (`claude_code.api_request` body, `event.name`, `session.id`, `prompt.id`,
`input_tokens`..., `request_id`; `claude_code.user_prompt` with its opt-in `prompt`) and Codex's
`codex.sse_event`; OpenCode bus events `{type, properties}` (`message.updated` with `info`,
`message.part.updated` with a `step-finish` part)."""
import gzip
import io
import json
import sqlite3
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from nomira.ledger import store
from nomira.commands.serve import make_app

FIX = Path(__file__).parent / "fixtures"
SECRET = "PLEASE-NEVER-STORE-THIS-PROMPT rm -rf /home/ana/secret.txt"


def s(k, v):
    return {"key": k, "value": {"stringValue": v}}


def i(k, v):
    return {"key": k, "value": {"intValue": str(v)}}


def claude_logs(*records, resource=()):
    return {"resourceLogs": [{"resource": {"attributes": [s("service.name", "claude-code"),
                                                          s("service.version", "2.0.37"), *resource]},
                              "scopeLogs": [{"scope": {"name": "com.anthropic.claude_code.events",
                                                       "version": "2.0.37"}, "logRecords": list(records)}]}]}


def api_request(request_id="req_011CUkq3Zx9", ts="2025-11-03T14:22:07.913Z", tokens=(4, 312, 41211, 1830)):
    return {"timeUnixNano": "1762179727913000000", "observedTimeUnixNano": "1762179727913000000",
            "body": {"stringValue": "claude_code.api_request"},
            "attributes": [s("event.name", "api_request"), s("event.timestamp", ts),
                           s("session.id", "3f9a6c2e-8b1d-4e7f-a0c4-5d6e7f8a9b0c"), s("prompt.id", "p-1"),
                           s("event.sequence", "7"), s("user.email", "ana@example.com"),
                           s("user.account_uuid", "acc-1"), s("organization.id", "org-1"),
                           s("terminal.type", "vscode"), s("model", "claude-sonnet-4-5-20250929"),
                           s("input_tokens", str(tokens[0])), s("output_tokens", str(tokens[1])),
                           s("cache_read_tokens", str(tokens[2])), s("cache_creation_tokens", str(tokens[3])),
                           s("cost_usd", "0.0213"), s("duration_ms", "5120"), s("request_id", request_id),
                           s("query_source", "repl_main_thread"),
                           s("prompt", SECRET)]}  # an attribute outside the allowlist: dropped unread


def user_prompt():
    return {"timeUnixNano": "1762179720000000000", "body": {"stringValue": "claude_code.user_prompt"},
            "attributes": [s("event.name", "user_prompt"), s("session.id", "3f9a6c2e-8b1d-4e7f-a0c4-5d6e7f8a9b0c"),
                           s("prompt_length", "61"), s("prompt", SECRET)]}


def codex_sse(kind="response.completed"):
    return {"timeUnixNano": "1762161331660000000",
            "attributes": [s("event.name", "codex.sse_event"), s("event.timestamp", "2025-11-03T09:15:31.660Z"),
                           s("event.kind", kind), s("conversation.id", "0199a3b2-7c4d-7e10-9f21-3a4b5c6d7e8f"),
                           s("app.version", "0.53.0"), s("auth_mode", "ChatGPT"), s("user.email", "ana@example.com"),
                           s("model", "gpt-5-codex"), i("input_token_count", 9120), i("output_token_count", 402),
                           i("cached_token_count", 8064), i("reasoning_token_count", 256), i("tool_token_count", 0)]}


def token_metrics():
    def point(kind, value):
        return {"attributes": [s("session.id", "3f9a6c2e"), s("user.email", "ana@example.com"),
                               s("model", "claude-sonnet-4-5-20250929"), s("type", kind)],
                "startTimeUnixNano": "1762179660000000000", "timeUnixNano": "1762179720000000000",
                "asDouble": value}
    return {"resourceMetrics": [{"resource": {"attributes": [s("service.name", "claude-code")]},
                                 "scopeMetrics": [{"scope": {"name": "com.anthropic.claude_code"}, "metrics": [
                                     {"name": "claude_code.token.usage", "unit": "tokens", "sum": {
                                         "aggregationTemporality": 1, "isMonotonic": True, "dataPoints": [
                                             point("input", 4), point("output", 312), point("cacheRead", 41211),
                                             point("cacheCreation", 1830)]}},
                                     {"name": "claude_code.cost.usage", "unit": "USD", "sum": {
                                         "aggregationTemporality": 1, "isMonotonic": True, "dataPoints": [
                                             {"attributes": [s("model", "claude-sonnet-4-5-20250929")],
                                              "timeUnixNano": "1762179720000000000", "asDouble": 0.0213}]}}]}]}]}


@pytest.fixture
def app(tmp_path, monkeypatch):
    for k in ("NOMIRA_INGEST_TOKEN", "NOMIRA_DASHBOARD_PASSWORD", "NOMIRA_OTLP_METRICS"):
        monkeypatch.delenv(k, raising=False)
    return make_app(tmp_path / "collector.db", "127.0.0.1")


def call(app, path, body, ctype="application/json", headers=None, token=None):
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    environ = {"REQUEST_METHOD": "POST", "PATH_INFO": path, "CONTENT_TYPE": ctype, "CONTENT_LENGTH": str(len(data)),
               "wsgi.input": io.BytesIO(data), "REMOTE_ADDR": "127.0.0.1", "HTTP_HOST": "127.0.0.1",
               **{f"HTTP_{k.upper().replace('-', '_')}": v for k, v in (headers or {}).items()}}
    if token:
        environ["HTTP_AUTHORIZATION"] = f"Bearer {token}"
    status = []
    out = b"".join(app(environ, lambda st, h: status.append(int(st.split()[0]))))
    return status[0], json.loads(out)


def raw_bodies(app) -> list[str]:
    return [r[0] for r in store.open_db(app.db_path).execute("SELECT body FROM raw_events")]


def events(app) -> list[dict]:
    db = store.open_db(app.db_path)
    db.row_factory = sqlite3.Row
    return [dict(r) for r in db.execute("SELECT * FROM events ORDER BY occurred_at")]


def test_otlp_claude_api_request_becomes_one_priced_event_and_no_prompt_is_stored(app):
    status, body = call(app, "/v1/logs", claude_logs(user_prompt(), api_request()))
    assert status == 200 and body == {}
    [e] = events(app)
    assert (e["source"], e["model"], e["input"], e["output"], e["cache_read"], e["cache_write_5m"]) == \
        ("claude_code", "claude-sonnet-4-5-20250929", 4, 312, 41211, 1830)
    assert e["session_id"] == "3f9a6c2e-8b1d-4e7f-a0c4-5d6e7f8a9b0c" and e["request_id"] == "req_011CUkq3Zx9"
    assert e["occurred_at"].startswith("2025-11-03T14:22:07.913") and e["cost_usd"] > 0  # priced by Nomira
    stored = "\n".join(raw_bodies(app))
    for leaked in ("PLEASE-NEVER", "secret", "ana@example.com", "acc-1", "org-1", "p-1", "vscode", "prompt"):
        assert leaked not in stored, leaked
    # a second export of the same record is the same call
    assert call(app, "/v1/logs", claude_logs(api_request()))[0] == 200
    assert len(events(app)) == 1


def test_otlp_prompt_only_export_stores_nothing(app):
    status, body = call(app, "/v1/logs", claude_logs(user_prompt(), user_prompt()))
    assert status == 200 and body == {} and raw_bodies(app) == []


def test_otlp_codex_sse_event_counts_cached_and_reasoning_once(app):
    assert call(app, "/v1/logs", claude_logs(codex_sse("response.created"), codex_sse()))[0] == 200
    [e] = events(app)
    assert (e["source"], e["model"], e["input"], e["cache_read"], e["output"], e["reasoning"]) == \
        ("codex", "gpt-5-codex", 9120 - 8064, 8064, 402, 256)
    assert e["session_id"] == "0199a3b2-7c4d-7e10-9f21-3a4b5c6d7e8f"


def test_otlp_metrics_are_acknowledged_not_double_counted_unless_asked(app, monkeypatch):
    status, body = call(app, "/v1/metrics", token_metrics())
    assert status == 200 and body["partialSuccess"]["rejectedDataPoints"] == 5
    assert "not stored" in body["partialSuccess"]["errorMessage"] and raw_bodies(app) == []
    monkeypatch.setenv("NOMIRA_OTLP_METRICS", "1")
    status, body = call(app, "/v1/metrics", token_metrics())
    assert status == 200 and body == {}
    [e] = events(app)
    assert (e["input"], e["output"], e["cache_read"], e["cache_write_5m"]) == (4, 312, 41211, 1830)
    assert "ana@example.com" not in "".join(raw_bodies(app))


def test_otlp_protobuf_bad_json_auth_gzip_and_limits(app, tmp_path):
    status, body = call(app, "/v1/logs", b"resourceLogs", ctype="text/plain")
    assert status == 415 and "http/protobuf or http/json" in body["error"]  # protobuf: test_capture_otlp_proto
    assert call(app, "/v1/logs", b'{"resourceLogs": [NaN]}')[0] == 400
    assert call(app, "/v1/logs", {"resourceLogs": "x"})[0] == 400
    gz = gzip.compress(json.dumps(claude_logs(api_request())).encode())
    assert call(app, "/v1/logs", gz, headers={"Content-Encoding": "gzip"})[0] == 200 and len(events(app)) == 1
    bomb = gzip.compress(b" " * (app.config.max_ingest_bytes + 10))
    assert call(app, "/v1/logs", bomb, headers={"Content-Encoding": "gzip"})[0] == 413
    key = store.create_tenant(store.open_db(app.db_path), "acme")  # keys exist now: open mode ends
    assert call(app, "/v1/logs", claude_logs(api_request("req_2")))[0] == 401
    assert call(app, "/v1/logs", claude_logs(api_request("req_2")), token="wrong")[0] == 401
    assert call(app, "/v1/logs", claude_logs(api_request("req_2", tokens=(1, 2, 3, 4))), token=key)[0] == 200
    assert json.loads(raw_bodies(app)[-1])["tags"]["tenant"] == "acme"


@pytest.mark.parametrize("body", [
    {"resourceLogs": [{"scopeLogs": 1}]}, {"resourceLogs": [{"scopeLogs": [{"logRecords": True}]}]},
    {"resourceMetrics": [{"scopeMetrics": 7}]}, {"resourceMetrics": [{"scopeMetrics": [{"metrics": -1}]}]},
    {"resourceMetrics": [{"scopeMetrics": [{"metrics": [{"name": "claude_code.token.usage", "sum": {
        "dataPoints": 5}}]}]}]}])
def test_otlp_arrays_that_are_not_arrays_are_no_records_not_a_server_error(app, monkeypatch, body):
    """A number or a map where OTLP has an array, at any depth: no records (nothing stored), never a 500."""
    monkeypatch.setenv("NOMIRA_OTLP_METRICS", "1")
    path = "/v1/logs" if "resourceLogs" in body else "/v1/metrics"
    status, _answer = call(app, path, body)
    assert status == 200 and raw_bodies(app) == []


def test_otlp_token_count_of_hundreds_of_digits_is_refused_not_a_server_error(app):
    """A count no call can have (400 digits, which no float holds) is refused with the call, never priced
    into an overflow (a 500); the other calls of the export are stored."""
    huge = api_request("req_huge")
    huge["attributes"] = [a if a["key"] != "input_tokens" else {"key": "input_tokens", "value": {"intValue": "9" * 400}}
                          for a in huge["attributes"]]
    status, _answer = call(app, "/v1/logs", claude_logs(huge, api_request("req_ok")))
    assert status in (200, 400)
    assert [e["request_id"] for e in events(app)] == ["req_ok"]


# --- OpenCode: SSE stream, plugin POSTs, storage: one call each ---

MSG = "msg_9c1f2a3b4001"
SES = "ses_9c1f29e0a7ff"


def oc_info(completed=True, tokens=(812, 344, 30112, 1450), msg=MSG):
    info = {"id": msg, "sessionID": SES, "role": "assistant",
            "time": {"created": 1762161307000, **({"completed": 1762161319412} if completed else {})},
            "parentID": "msg_9c1f2a3a0001", "modelID": "claude-sonnet-4-5", "providerID": "anthropic",
            "mode": "build", "agent": "build", "path": {"cwd": "/home/ana/src/shop", "root": "/home/ana/src/shop"},
            "cost": 0.0213, "tokens": {"input": tokens[0], "output": tokens[1], "reasoning": 0,
                                       "cache": {"read": tokens[2], "write": tokens[3]}},
            "summary": {"title": SECRET}}
    return {"type": "message.updated", "properties": {"info": info}}


def oc_step(part_id, tokens, msg=MSG):
    return {"type": "message.part.updated", "properties": {"part": {
        "id": part_id, "sessionID": SES, "messageID": msg, "type": "step-finish", "reason": "tool-calls",
        "snapshot": "4b825dc6", "cost": 0.01, "tokens": {"input": tokens[0], "output": tokens[1], "reasoning": 0,
                                                         "cache": {"read": tokens[2], "write": tokens[3]}}}}}


def oc_text():
    return {"type": "message.part.updated", "properties": {"part": {
        "id": "prt_text1", "sessionID": SES, "messageID": MSG, "type": "text", "text": SECRET},
        "delta": SECRET}}


STREAM = [
    {"type": "server.connected", "properties": {}},
    oc_info(completed=False, tokens=(0, 0, 0, 0)), oc_text(),
    oc_step("prt_9c1f2a3b5001", (500, 120, 20000, 1450)), oc_info(completed=False),
    oc_step("prt_9c1f2a3b5002", (812, 344, 30112, 0)),
    oc_info(), oc_info(),  # message.updated fires again once complete: still one message
    oc_info(msg="msg_9c1f2a3b4002", tokens=(10, 20, 0, 0)),  # a one-step message: no step parts
]


@pytest.fixture
def sse_server():
    """A local OpenCode-like server: GET /event streams `STREAM` as SSE, then closes."""
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            if self.path != "/event":
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.end_headers()
            for ev in STREAM:
                self.wfile.write(b"data: " + json.dumps(ev).encode() + b"\n\n")
            self.wfile.flush()

        def log_message(self, *a):
            pass
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_port}"
    httpd.shutdown()
    httpd.server_close()


def _legacy_storage(root: Path) -> Path:
    """The same two messages as OpenCode's storage (legacy JSON layout) writes them."""
    base = root / "opencode" / "storage"
    for ev in (oc_info(), oc_info(msg="msg_9c1f2a3b4002", tokens=(10, 20, 0, 0))):
        info = ev["properties"]["info"]
        (base / "message" / SES).mkdir(parents=True, exist_ok=True)
        (base / "message" / SES / f"{info['id']}.json").write_text(json.dumps(info))
    for ev in STREAM:
        part = ev["properties"].get("part")
        if part:
            (base / "part" / MSG).mkdir(parents=True, exist_ok=True)
            (base / "part" / MSG / f"{part['id']}.json").write_text(json.dumps(part))
    return root / "opencode"


def test_opencode_sse_plugin_and_storage_copies_count_once(app, sse_server, tmp_path, capsys):
    from nomira.cli import main
    db = app.db_path
    assert main(["opencode", "watch", "--url", sse_server, "--once", "--db", str(db), "--developer", "ana"]) == 0
    rows = [(e["message_id"], e["request_id"], e["input"], e["output"], e["cache_read"], e["cache_write_5m"])
            for e in events(app)]
    # each step-finish part is one API call: both steps of the first message are kept (a step's id
    # joins its message's id, so the store's key by message id does not fold them into one)
    assert sorted(rows) == [(f"{MSG}:prt_9c1f2a3b5001", "prt_9c1f2a3b5001", 500, 120, 20000, 1450),
                            (f"{MSG}:prt_9c1f2a3b5002", "prt_9c1f2a3b5002", 812, 344, 30112, 0),
                            ("msg_9c1f2a3b4002", None, 10, 20, 0, 0)]
    raw_after_sse = raw_bodies(app)
    assert SECRET not in "".join(raw_after_sse) and "/home/ana" not in "".join(raw_after_sse)

    # the plugin forwards the same bus events (twice: a retried POST) -> deduplicated, nothing added
    for _ in range(2):
        status, body = call(app, "/v1/opencode/events", {"developer": "ana", "events": STREAM})
        assert status == 200 and body["rejected"] == 0
    assert sorted((e["message_id"], e["request_id"], e["input"]) for e in events(app)) == \
        sorted((r[0], r[1], r[2]) for r in rows)
    totals = store.open_db(db).execute("SELECT SUM(input), SUM(output), COUNT(*) FROM events").fetchone()
    assert totals == (500 + 812 + 10, 120 + 344 + 20, 3)  # both steps of the first message, and the second

    # and OpenCode's own storage, shipped from the logs, adds nothing either
    capsys.readouterr()
    assert main(["ship", "--path", str(_legacy_storage(tmp_path / "data")), "--db", str(db), "--developer", "ana",
                 "--json"]) == 0
    assert store.open_db(db).execute("SELECT SUM(input), SUM(output), COUNT(*) FROM events").fetchone() == totals
    assert SECRET not in "".join(raw_bodies(app))


def test_opencode_watch_json_lines_validate_against_the_ship_schema(tmp_path, sse_server, capsys):
    """`opencode watch --json` prints one ship-style delivery result per finished message."""
    from jsonschema_lite import errors, load, validate
    from nomira.cli import main
    capsys.readouterr()
    assert main(["opencode", "watch", "--url", sse_server, "--once", "--json", "--db", str(tmp_path / "w.db"),
                 "--developer", "ana"]) == 0
    docs = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.strip()]
    assert docs and sum(d["new_events"] for d in docs) == 3  # the three calls of the fake stream
    for doc in docs:
        validate(doc, "ship.schema.json")
    schema = load("ship.schema.json")
    assert errors({k: v for k, v in docs[0].items() if k != "schema_version"}, schema, schema)


def test_opencode_plugin_template_is_usage_only_and_filled_safely():
    from nomira.capture.install import PLUGIN_MARKER, plugin_text
    text = plugin_text("http://127.0.0.1:8787", 'k"; evil()', "ana")
    assert PLUGIN_MARKER in text and '"http://127.0.0.1:8787"' in text and '"k\\"; evil()"' in text
    assert "__NOMIRA_" not in text
    for forwarded in ('"message.updated"', '"step-finish"', "/v1/opencode/events", "time.completed"):
        assert forwarded in text
    body = text.split("const info = {", 1)[1].split("}", 1)[0]
    assert "text" not in body and "summary" not in body  # the message fields it forwards: ids, model, tokens


def test_opencode_watch_unreachable_server_is_one_line(capsys):
    from nomira.cli import main
    assert main(["opencode", "watch", "--url", "http://127.0.0.1:9", "--once"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("nomira: cannot read http://127.0.0.1:9/event") and "Traceback" not in err
    assert main(["opencode", "watch", "--url", "ftp://x"]) == 2


# --- one call, three channels ---

def test_a_call_seen_by_hook_log_and_otlp_is_one_event(app, tmp_path, monkeypatch, capsys):
    import shutil

    from nomira.cli import main
    projects = tmp_path / "claude" / "projects"
    shutil.copytree(FIX / "claude" / "projects", projects)
    transcript = projects / "-home-ana-src-shop" / "3f9a6c2e-8b1d-4e7f-a0c4-5d6e7f8a9b0c.jsonl"
    monkeypatch.setenv("NOMIRA_DB", str(app.db_path))
    # 1. the Stop hook ships the session's calls (msg_A1/req_A1: 4 in, 300 out, 1000 5m cache writes)
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(json.dumps({
        "session_id": "3f9a6c2e-8b1d-4e7f-a0c4-5d6e7f8a9b0c", "transcript_path": str(transcript),
        "cwd": "/home/ana/src/shop", "permission_mode": "default", "hook_event_name": "Stop",
        "stop_hook_active": False}).encode())))
    assert main(["hook", "claude"]) == 0
    calls = len(events(app))
    hooked = [e for e in events(app) if e["request_id"] == "req_A1"]
    assert len(hooked) == 1 and hooked[0]["message_id"] == "msg_A1"
    # 2. Claude Code's telemetry reports the same request (request id, no message id)
    status, body = call(app, "/v1/logs", claude_logs(api_request("req_A1", "2025-11-03T14:22:08.050Z",
                                                                 (4, 300, 0, 1000))))
    assert status == 200 and body == {}
    # 3. and the transcript itself arrives again through `nomira export` -> /ingest
    capsys.readouterr()
    assert main(["export", "-", "--path", str(transcript)]) == 0
    logged = json.loads(capsys.readouterr().out)["events"]
    assert call(app, "/ingest", {"events": logged})[0] == 200
    rows = [e for e in events(app) if e["request_id"] == "req_A1"]
    assert len(rows) == 1 and len(events(app)) == calls  # one event per call, whatever the channels
    assert (rows[0]["input"], rows[0]["output"], rows[0]["cache_write_5m"]) == (4, 300, 1000)
    copies = [json.loads(b) for b in raw_bodies(app) if '"req_A1"' in b]
    assert len(copies) == 3  # every copy kept as a raw row; one canonical
    assert {c.get("message_id") for c in copies} == {"msg_A1"}
    assert sorted(c.get("source_channel") or "jsonl" for c in copies) == ["hook", "jsonl", "otlp"]
    db = store.open_db(app.db_path)
    key = db.execute("SELECT dedup_key FROM events WHERE request_id = 'req_A1'").fetchone()[0]
    losers = db.execute("SELECT reason FROM superseded_events WHERE dedup_key = ?", (key,)).fetchall()
    assert len(losers) == 2  # the two other copies, kept as superseded raw rows
    # source priority: agent-native (hook/otlp) over the transcript copy shipped from the log
    assert rows[0]["source_channel"] in ("hook", "otlp") and ("lower_priority",) in losers


def test_otlp_odd_counts_and_times_are_skipped_not_a_500(app):
    rec = api_request("req_odd")
    rec["attributes"] = [a for a in rec["attributes"] if a["key"] not in ("input_tokens", "event.timestamp")]
    rec["attributes"] += [s("input_tokens", "inf"), {"key": "output_tokens", "value": {"doubleValue": 1e300}}]
    rec["timeUnixNano"] = "99999999999999999999999"
    no_time = api_request("req_none")
    no_time["attributes"] = [a for a in no_time["attributes"] if a["key"] != "event.timestamp"]
    del no_time["timeUnixNano"], no_time["observedTimeUnixNano"]
    status, body = call(app, "/v1/logs", claude_logs(rec, no_time, "junk", {"attributes": "x"}))
    # no time at all: skipped; an output count beyond the schema's range: refused and said, never a 500
    assert status == 200 and body["partialSuccess"]["rejectedLogRecords"] == 1 and events(app) == []
    rec["attributes"] = [a for a in rec["attributes"] if a["key"] != "output_tokens"]
    status, body = call(app, "/v1/logs", claude_logs(rec))  # "inf" is no count: refused and said, never a 0
    assert status == 200 and body["partialSuccess"]["rejectedLogRecords"] == 1 and events(app) == []
    assert "token count no call can have" in body["partialSuccess"]["errorMessage"]
    rec["attributes"] = [a for a in rec["attributes"] if a["key"] != "input_tokens"]  # (absent: 0)
    assert call(app, "/v1/logs", claude_logs(rec)) == (200, {})
    [e] = events(app)
    assert (e["request_id"], e["input"], e["output"], e["cache_read"]) == ("req_odd", 0, 0, 41211)
    assert e["occurred_at"].startswith("2025-11-03T14:22:07")  # observedTimeUnixNano, the sane one


def _plugin_as_js(ts: str) -> str:
    """The plugin template with its few TypeScript annotations removed, for Node (no TS runtime here)."""
    import re
    lines = [l for l in ts.splitlines() if not l.startswith(("import type ", "type "))]
    js = "\n".join(lines)
    for pattern in (r": \{ event: any \}", r": any\[\]", r": Tokens \| undefined", r": any", r": Plugin",
                    r"<string, any\[\]>", r"<string>"):
        js = re.sub(pattern, "", js)
    return js


def test_the_opencode_plugin_itself_posts_usage_only_and_dedupes(app, tmp_path, monkeypatch):
    """Runs the real plugin file under Node against the collector on loopback, fed OpenCode bus events."""
    import shutil
    import subprocess
    import threading
    from wsgiref.simple_server import WSGIRequestHandler, make_server

    from nomira.capture.install import plugin_text
    from nomira.commands.serve import ThreadingWSGIServer
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed")

    class Quiet(WSGIRequestHandler):
        def log_message(self, *a):
            pass
    httpd = make_server("127.0.0.1", 0, app, server_class=ThreadingWSGIServer, handler_class=Quiet)
    threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    try:
        plugin = tmp_path / "nomira.mjs"
        plugin.write_text(_plugin_as_js(plugin_text(f"http://127.0.0.1:{httpd.server_port}", "", "ana")))
        runner = tmp_path / "run.mjs"
        runner.write_text(
            "import { NomiraUsage } from './nomira.mjs';\n"
            "const hooks = await NomiraUsage({ directory: '/home/ana/src/shop' });\n"
            f"const stream = {json.dumps(STREAM)};\n"
            "for (const event of [...stream, ...stream]) await hooks.event({ event });\n")
        p = subprocess.run([node, str(runner)], capture_output=True, timeout=60, cwd=tmp_path)
        assert p.returncode == 0, p.stderr.decode()[-2000:]
    finally:
        httpd.shutdown()
        httpd.server_close()
    rows = sorted((e["message_id"], e["request_id"], e["input"], e["developer"], e["project"]) for e in events(app))
    assert rows == [(f"{MSG}:prt_9c1f2a3b5001", "prt_9c1f2a3b5001", 500, "ana", "shop"),
                    (f"{MSG}:prt_9c1f2a3b5002", "prt_9c1f2a3b5002", 812, "ana", "shop"),
                    ("msg_9c1f2a3b4002", None, 10, "ana", "shop")]
    bodies = "".join(raw_bodies(app))
    assert SECRET not in bodies and "/home/ana" not in bodies
