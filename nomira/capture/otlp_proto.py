"""OTLP/HTTP protobuf (`application/x-protobuf`) -> the proto3 JSON mapping `capture.otlp` reads.

A small decoder of the protobuf wire format for the two export requests Nomira takes, reading only
the fields it needs (field numbers from open-telemetry/opentelemetry-proto: collector/logs/v1,
collector/metrics/v1, logs/v1, metrics/v1, common/v1, resource/v1); every other field is skipped by
its wire type. The result has the JSON mapping's shape (camelCase names, 64-bit integers as
strings, AnyValue wrappers), so one reader serves both encodings and one allowlist applies.

Hostile input is a `ProtoError` (a 400), never a crash: truncated varints or fields, lengths past
the end, varints longer than 10 bytes, group wire types, invalid UTF-8. Depth is bounded by the
schema (arrays and maps inside an AnyValue are never descended into), and so is the work: at most
MAX_NODES messages per request.
"""
from __future__ import annotations

import struct

MAX_NODES = 200_000  # messages decoded per request (a 10 MB body of empty records is 5 million)


class ProtoError(ValueError):
    """The body is not a well-formed protobuf export request."""


class _Budget:
    __slots__ = ("left",)

    def __init__(self):
        self.left = MAX_NODES

    def take(self) -> None:
        self.left -= 1
        if self.left < 0:
            raise ProtoError(f"more than {MAX_NODES} messages in one request")


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    for n in range(10):
        if pos >= len(buf):
            raise ProtoError("truncated varint")
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, pos
        shift += 7
    raise ProtoError("varint longer than 10 bytes")


def fields(buf: bytes):
    """(field number, wire type, value) of each field of one message: an int for varint (0) and
    fixed (1: 64-bit, 5: 32-bit) fields, bytes for length-delimited ones (2)."""
    pos, end = 0, len(buf)
    while pos < end:
        tag, pos = _varint(buf, pos)
        number, wire = tag >> 3, tag & 7
        if number == 0:
            raise ProtoError("field number 0")
        if wire == 0:
            value, pos = _varint(buf, pos)
        elif wire == 1 or wire == 5:
            size = 8 if wire == 1 else 4
            if pos + size > end:
                raise ProtoError("truncated fixed-width field")
            value = int.from_bytes(buf[pos:pos + size], "little")
            pos += size
        elif wire == 2:
            size, pos = _varint(buf, pos)
            if size > end - pos:
                raise ProtoError("length past the end of the message")
            value = buf[pos:pos + size]
            pos += size
        else:  # 3, 4: groups (deprecated, never in OTLP); 6, 7: not wire types
            raise ProtoError(f"unsupported wire type {wire}")
        yield number, wire, value


def _text(value, wire: int) -> str:
    if wire != 2:
        raise ProtoError("a string field with a non-length wire type")
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        raise ProtoError("a string field that is not UTF-8") from None


def _int64(value: int) -> int:
    value &= (1 << 64) - 1  # a 10-byte varint carries 70 bits: protobuf keeps the low 64
    return value - (1 << 64) if value >= 1 << 63 else value


def _double(value: int) -> float:
    return struct.unpack("<d", value.to_bytes(8, "little"))[0]


def _message(value, wire: int, budget: _Budget) -> bytes:
    if wire != 2:
        raise ProtoError("a message field with a non-length wire type")
    budget.take()
    return value


def _any_value(buf: bytes, budget: _Budget) -> dict:
    """AnyValue: string 1, bool 2, int64 3, double 4; arrays (5), maps (6), bytes (7) are never read."""
    out = {}
    for number, wire, value in fields(buf):
        if number == 1:
            out = {"stringValue": _text(value, wire)}
        elif number == 2 and wire == 0:
            out = {"boolValue": bool(value)}
        elif number == 3 and wire == 0:
            out = {"intValue": str(_int64(value))}
        elif number == 4 and wire == 1:
            out = {"doubleValue": _double(value)}
        elif number in (5, 6, 7):
            out = {}
    return out


def _attributes(buf: bytes, budget: _Budget) -> dict:
    """KeyValue: key 1, value 2."""
    kv = {}
    for number, wire, value in fields(buf):
        if number == 1:
            kv["key"] = _text(value, wire)
        elif number == 2:
            kv["value"] = _any_value(_message(value, wire, budget), budget)
    return kv


def _resource(buf: bytes, budget: _Budget) -> dict:
    """Resource: attributes 1."""
    return {"attributes": [_attributes(_message(v, w, budget), budget) for n, w, v in fields(buf) if n == 1]}


def _nanos(value, wire: int) -> str:
    if wire != 1:
        raise ProtoError("a fixed64 time with another wire type")
    return str(value)


def _log_record(buf: bytes, budget: _Budget) -> dict:
    """LogRecord: time_unix_nano 1, body 5, attributes 6, observed_time_unix_nano 11, event_name 12."""
    record: dict = {"attributes": []}
    for number, wire, value in fields(buf):
        if number == 1:
            record["timeUnixNano"] = _nanos(value, wire)
        elif number == 11:
            record["observedTimeUnixNano"] = _nanos(value, wire)
        elif number == 5:
            record["body"] = _any_value(_message(value, wire, budget), budget)
        elif number == 6:
            record["attributes"].append(_attributes(_message(value, wire, budget), budget))
        elif number == 12:
            record["eventName"] = _text(value, wire)
    return record


def _point(buf: bytes, budget: _Budget) -> dict:
    """NumberDataPoint: start 2, time 3, as_double 4, as_int 6 (sfixed64), attributes 7."""
    point: dict = {"attributes": []}
    for number, wire, value in fields(buf):
        if number == 7:
            point["attributes"].append(_attributes(_message(value, wire, budget), budget))
        elif number == 2:
            point["startTimeUnixNano"] = _nanos(value, wire)
        elif number == 3:
            point["timeUnixNano"] = _nanos(value, wire)
        elif number == 4 and wire == 1:
            point["asDouble"] = _double(value)
        elif number == 6 and wire == 1:
            point["asInt"] = str(_int64(value))
    return point


def _metric(buf: bytes, budget: _Budget) -> dict:
    """Metric: name 1, gauge 5, sum 7, histogram 9 (data_points 1 in each; histogram points only counted)."""
    metric: dict = {}
    for number, wire, value in fields(buf):
        if number == 1:
            metric["name"] = _text(value, wire)
        elif number in (5, 7, 9):
            kind = {5: "gauge", 7: "sum", 9: "histogram"}[number]
            points = metric.setdefault(kind, {"dataPoints": []})["dataPoints"]
            for n, w, v in fields(_message(value, wire, budget)):
                if n == 1:
                    raw = _message(v, w, budget)
                    points.append(_point(raw, budget) if number != 9 else {})
    return metric


def _export(buf: bytes, outer: str, scopes: str, items: str, item) -> dict:
    """Export*ServiceRequest: resource_* 1 -> {resource 1, scope_* 2 -> {items 2}}."""
    budget = _Budget()
    resources = []
    for number, wire, value in fields(buf):
        if number != 1:
            continue
        res: dict = {scopes: []}
        for n, w, v in fields(_message(value, wire, budget)):
            if n == 1:
                res["resource"] = _resource(_message(v, w, budget), budget)
            elif n == 2:
                scope = {items: [item(_message(iv, iw, budget), budget)
                                 for i, iw, iv in fields(_message(v, w, budget)) if i == 2]}
                res[scopes].append(scope)
        resources.append(res)
    return {outer: resources}


def logs_request(buf: bytes) -> dict:
    """An ExportLogsServiceRequest as its JSON mapping (the fields Nomira reads)."""
    return _export(buf, "resourceLogs", "scopeLogs", "logRecords", _log_record)


def metrics_request(buf: bytes) -> dict:
    """An ExportMetricsServiceRequest as its JSON mapping (the fields Nomira reads)."""
    return _export(buf, "resourceMetrics", "scopeMetrics", "metrics", _metric)


# --- the answer: Export*ServiceResponse {partial_success 1 {rejected 1 (int64), error_message 2}} ---

def _put_varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _put(number: int, payload: bytes | int) -> bytes:
    if isinstance(payload, int):
        return _put_varint(number << 3) + _put_varint(payload)
    return _put_varint(number << 3 | 2) + _put_varint(len(payload)) + payload


def response(rejected: int = 0, message: str = "") -> bytes:
    """An Export*ServiceResponse; empty (all defaults) when everything was accepted."""
    if not rejected and not message:
        return b""
    return _put(1, _put(1, rejected) + _put(2, message.encode()))


def status(code: int, message: str) -> bytes:
    """A google.rpc.Status {code 1, message 2}: the body OTLP/HTTP gives a 4xx in protobuf."""
    return _put(1, code) + _put(2, message.encode())
