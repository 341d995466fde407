"""OTLP/HTTP protobuf at the collector (capture/otlp_proto.py).

The requests are encoded here by hand from the .proto definitions (open-telemetry/opentelemetry-proto:
collector/logs/v1 ExportLogsServiceRequest.resource_logs = 1; ResourceLogs.resource = 1, scope_logs = 2;
ScopeLogs.scope = 1, log_records = 2; LogRecord.time_unix_nano = 1 (fixed64), body = 5, attributes = 6,
observed_time_unix_nano = 11, event_name = 12; KeyValue.key = 1, value = 2; AnyValue.string_value = 1,
bool_value = 2, int_value = 3, double_value = 4, array_value = 5, kvlist_value = 6; Resource.attributes = 1;
Metric.name = 1, sum = 7, gauge = 5; Sum.data_points = 1; NumberDataPoint.start_time_unix_nano = 2,
time_unix_nano = 3, as_double = 4, as_int = 6 (sfixed64), attributes = 7), with the same content as the
JSON fixtures of test_capture_live, so both encodings must store the same events."""
import gzip
import io
import json
import random
import struct

import pytest

from nomira.capture import otlp_proto
from test_capture_live import (SECRET, api_request, app, call, claude_logs, codex_sse, events, raw_bodies,  # noqa: F401
                               token_metrics, user_prompt)


# --- a tiny protobuf encoder ---

def varint(n: int) -> bytes:
    n &= (1 << 64) - 1
    out = bytearray()
    while True:
        b, n = n & 0x7F, n >> 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def field(number: int, payload) -> bytes:
    """A length-delimited field (bytes/str/message) or a varint field (int)."""
    if isinstance(payload, int):
        return varint(number << 3) + varint(payload)
    if isinstance(payload, str):
        payload = payload.encode()
    return varint(number << 3 | 2) + varint(len(payload)) + payload


def fixed64(number: int, value: int) -> bytes:
    return varint(number << 3 | 1) + struct.pack("<Q", value)


def double(number: int, value: float) -> bytes:
    return varint(number << 3 | 1) + struct.pack("<d", value)


def any_value(v: dict) -> bytes:
    if "stringValue" in v:
        return field(1, v["stringValue"])
    if "boolValue" in v:
        return field(2, int(v["boolValue"]))
    if "intValue" in v:
        return field(3, int(v["intValue"]))
    if "doubleValue" in v:
        return double(4, v["doubleValue"])
    raise AssertionError(v)


def kv(item: dict) -> bytes:
    return field(1, item["key"]) + field(2, any_value(item["value"]))


def log_record(r: dict) -> bytes:
    out = b""
    if "timeUnixNano" in r:
        out += fixed64(1, int(r["timeUnixNano"]))
    if "body" in r:
        out += field(5, any_value(r["body"]))
    out += b"".join(field(6, kv(a)) for a in r.get("attributes", []))
    if "observedTimeUnixNano" in r:
        out += fixed64(11, int(r["observedTimeUnixNano"]))
    return out


def point(p: dict) -> bytes:
    out = b"".join(field(7, kv(a)) for a in p["attributes"])
    out += fixed64(3, int(p["timeUnixNano"]))
    if "startTimeUnixNano" in p:
        out += fixed64(2, int(p["startTimeUnixNano"]))
    return out + double(4, p["asDouble"])


def export(doc: dict) -> bytes:
    """A JSON-mapping export request (logs or metrics) in the protobuf wire format."""
    logs = "resourceLogs" in doc
    out = b""
    for res in doc["resourceLogs" if logs else "resourceMetrics"]:
        body = field(1, b"".join(field(1, kv(a)) for a in res["resource"]["attributes"]))
        for scope in res["scopeLogs" if logs else "scopeMetrics"]:
            inner = field(1, field(1, scope["scope"]["name"]))  # InstrumentationScope.name: skipped unread
            if logs:
                inner += b"".join(field(2, log_record(r)) for r in scope["logRecords"])
            else:
                for m in scope["metrics"]:
                    metric = field(1, m["name"]) + field(3, m["unit"])
                    metric += field(7, b"".join(field(1, point(p)) for p in m["sum"]["dataPoints"]) + field(2, 1))
                    inner += field(2, metric)
            body += field(2, inner)
        out += field(1, body)
    return out


def post(app, path, data: bytes, ctype="application/x-protobuf", headers=None):
    environ = {"REQUEST_METHOD": "POST", "PATH_INFO": path, "CONTENT_TYPE": ctype, "CONTENT_LENGTH": str(len(data)),
               "wsgi.input": io.BytesIO(data), "REMOTE_ADDR": "127.0.0.1", "HTTP_HOST": "127.0.0.1",
               **{f"HTTP_{k.upper().replace('-', '_')}": v for k, v in (headers or {}).items()}}
    got = []
    body = b"".join(app(environ, lambda st, h: got.append((int(st.split()[0]), dict(h)))))
    return got[0][0], got[0][1].get("Content-Type"), body


def decoded(buf: bytes) -> list[tuple[int, object]]:
    return [(n, v) for n, _w, v in otlp_proto.fields(buf)]


STORED = ("source", "model", "session_id", "request_id", "occurred_at", "input", "output", "cache_read",
          "cache_write_5m", "cache_write_1h", "cost_usd", "source_channel")


def test_a_protobuf_api_request_stores_what_its_json_twin_stores(app, tmp_path, monkeypatch):
    from nomira.commands.serve import make_app
    doc = claude_logs(api_request(), user_prompt(), api_request("req_2", "2025-11-03T14:23:00.000Z", (9, 20, 30, 40)),
                      codex_sse(), codex_sse("response.output_item.done"))
    status, ctype, body = post(app, "/v1/logs", export(doc))
    assert (status, ctype, body) == (200, "application/x-protobuf", b"")  # an empty ExportLogsServiceResponse
    twin = make_app(tmp_path / "json.db", "127.0.0.1")
    assert call(twin, "/v1/logs", doc)[0] == 200
    mine = [tuple(e[c] for c in STORED) for e in events(app)]
    assert len(mine) == 3 and mine == [tuple(e[c] for c in STORED) for e in events(twin)]
    assert sorted(e["source"] for e in events(app)) == ["claude_code", "claude_code", "codex"]
    assert not any(SECRET in b or "ana@example.com" in b for b in raw_bodies(app))  # the prompt attribute
    # gzip, as the exporters send with OTEL_EXPORTER_OTLP_COMPRESSION=gzip: the same request deduplicates
    status, _c, _b = post(app, "/v1/logs", gzip.compress(export(doc)), headers={"Content-Encoding": "gzip"})
    assert status == 200 and len(events(app)) == 3


def test_protobuf_metrics_are_answered_in_protobuf_and_stored_only_when_asked(app, monkeypatch):
    status, ctype, body = post(app, "/v1/metrics", export(token_metrics()))
    assert (status, ctype) == (200, "application/x-protobuf") and events(app) == []
    (one, partial), = decoded(body)  # ExportMetricsServiceResponse.partial_success = 1
    answer = dict(decoded(partial))
    assert one == 1 and answer[1] == 5 and b"not stored" in answer[2]  # rejected_data_points, error_message
    monkeypatch.setenv("NOMIRA_OTLP_METRICS", "1")
    assert post(app, "/v1/metrics", export(token_metrics()))[0] == 200
    (row,) = events(app)
    assert (row["input"], row["output"], row["cache_read"], row["cache_write_5m"]) == (4, 312, 41211, 1830)
    assert row["source_channel"] == "derived"


def test_fields_of_other_types_and_unknown_numbers_are_skipped():
    record = (fixed64(1, 1762179727913000000) + field(5, field(1, "claude_code.api_request"))
              + field(6, kv({"key": "model", "value": {"stringValue": "claude-sonnet-4-5-20250929"}}))
              + field(6, field(1, "input_tokens") + field(2, field(3, 12)))
              + field(6, field(1, "nested") + field(2, field(6, field(1, field(1, "k")))))  # kvlist: not read
              + field(6, field(1, "neg") + field(2, field(3, -5)))
              + field(2, 9) + field(9, b"\x01" * 16) + varint(8 << 3 | 5) + b"\x01\x00\x00\x00"  # severity, trace, flags
              + field(12, "claude_code.api_request") + field(99, b"future field"))
    doc = otlp_proto.logs_request(field(1, field(2, field(2, record))))
    (rec,) = doc["resourceLogs"][0]["scopeLogs"][0]["logRecords"]
    assert rec["timeUnixNano"] == "1762179727913000000" and rec["eventName"] == "claude_code.api_request"
    assert rec["body"] == {"stringValue": "claude_code.api_request"}
    assert [a["value"] for a in rec["attributes"]] == [
        {"stringValue": "claude-sonnet-4-5-20250929"}, {"intValue": "12"}, {}, {"intValue": "-5"}]


GOOD = field(1, field(2, field(2, field(6, field(1, "model") + field(2, field(1, "x"))))))


@pytest.mark.parametrize("body, why", [
    (b"\x0a", "truncated varint"),
    (b"\x0a\x80", "truncated varint"),
    (b"\x0a" + b"\xff" * 11, "longer than 10 bytes"),
    (b"\x0a\xff\xff\xff\xff\x0f", "length past the end"),  # a 4 GiB length in a few bytes
    (GOOD[:-1], "length past the end"),
    (b"\x0b\x0c", "wire type 3"),  # a group
    (b"\x0e", "wire type 6"),
    (b"\x00\x01", "field number 0"),
    (field(1, field(2, field(2, field(6, field(1, b"\xff\xfe"))))), "UTF-8"),
    (field(1, field(2, field(2, varint(1 << 3 | 0) + varint(5)))), "fixed64 time"),
    (field(1, b"".join(field(2, field(2, b"")) for _ in range(otlp_proto.MAX_NODES // 2 + 1))), "messages"),
])
def test_hostile_protobuf_is_a_400_with_a_status_never_a_5xx(app, body, why):
    status, ctype, answer = post(app, "/v1/logs", body)
    assert (status, ctype) == (400, "application/x-protobuf")
    code, message = decoded(answer)  # google.rpc.Status: code 1 (3 = INVALID_ARGUMENT), message 2
    assert code == (1, 3) and why.encode() in message[1]


def test_deep_nesting_is_never_descended_and_random_bytes_never_crash(app):
    deep = field(1, "x")
    for _ in range(5000):  # an AnyValue kvlist 5,000 levels deep: valid protobuf, skipped unread
        deep = field(6, field(1, field(1, "k") + field(2, deep)))
    status, _c, _b = post(app, "/v1/logs", field(1, field(2, field(2, field(6, field(1, "a") + field(2, deep))))))
    assert status == 200 and events(app) == []
    rng = random.Random(15)
    base = export(claude_logs(api_request()))
    for n in range(150):  # mutated and truncated real requests, and noise
        data = bytearray(base)
        for _ in range(rng.randint(1, 8)):
            data[rng.randrange(len(data))] = rng.randrange(256)
        sample = [bytes(data), base[:rng.randrange(len(base))], rng.randbytes(rng.randint(1, 300))][n % 3]
        assert post(app, "/v1/logs" if n % 2 else "/v1/metrics", sample)[0] in (200, 400)


def test_json_and_protobuf_content_types_only(app):
    status, ctype, body = post(app, "/v1/logs", export(claude_logs(api_request())), ctype="application/grpc")
    assert status == 415 and b"http/protobuf" in body
