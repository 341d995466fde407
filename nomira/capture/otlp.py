"""OTLP/HTTP (logs and metrics) from Claude Code's and Codex's telemetry -> usage events. Requests
are read in the proto3 JSON mapping; protobuf ones are decoded into it first (`otlp_proto`).

Only a fixed allowlist of attributes is ever read; every other attribute (prompts, tool
parameters, e-mail addresses, account ids) is dropped unread, and record kinds other than the
per-request usage events are skipped whole, so `claude_code.user_prompt` can never be stored.

- Claude Code (code.claude.com/docs/en/monitoring-usage): log event `claude_code.api_request`
  (body or `event.name`) with `model`, `input_tokens`, `output_tokens`, `cache_read_tokens`,
  `cache_creation_tokens`, `session.id`, `event.timestamp`, and in recent builds `request_id`
  (the API request id, the transcript's `requestId`). Cache writes are not split by TTL there:
  counted as 5-minute writes. Claude's own `cost_usd` is an estimate: Nomira prices the tokens.
- Codex (openai/codex PR #2103): log event `codex.sse_event` whose `event.kind` is
  `response.completed`, with `input_token_count` (includes cached), `cached_token_count`,
  `output_token_count` (includes reasoning), `reasoning_token_count`, `model`, `conversation.id`.
- Metrics (`claude_code.token.usage` by `type` input|output|cacheRead|cacheCreation and `model`,
  `claude_code.cost.usage`) are per-interval sums of the same requests the log events report one
  by one; storing both would double count, so they become events only when asked
  (`aggregate_metrics`), one per (session, model, interval), marked aggregated.
"""
from __future__ import annotations

from datetime import datetime, timezone

from nomira.ledger.events import TokenCounts, UsageEvent, parse_timestamp, provider_for_model, whole_count
from nomira.sources.calls import count as _count

CLAUDE_REQUEST = ("claude_code.api_request", "api_request")
CODEX_EVENT = ("codex.sse_event",)
# The only attributes ever read (record and resource). Everything else is dropped unread.
CLAUDE_ATTRS = ("event.name", "event.timestamp", "session.id", "model", "input_tokens", "output_tokens",
                "cache_read_tokens", "cache_creation_tokens", "request_id")
CODEX_ATTRS = ("event.name", "event.kind", "event.timestamp", "conversation.id", "model", "input_token_count",
               "output_token_count", "cached_token_count", "reasoning_token_count")
METRIC_ATTRS = ("session.id", "model", "type")
RESOURCE_ATTRS = ("service.name", "nomira.developer", "nomira.project")
TOKEN_METRIC = "claude_code.token.usage"
METRIC_TYPES = {"input": "input", "output": "output", "cacheRead": "cache_read", "cacheCreation": "cache_write_5m"}
MAX_RECORDS = 50_000  # per request: far above one export batch (Claude Code's default is 512)


class OTLPError(ValueError):
    """The body is not an OTLP/HTTP export request."""


def _value(v):
    """An OTLP AnyValue as a plain str/int/float/bool (None for arrays, maps, bytes: never read)."""
    if not isinstance(v, dict):
        return None
    if "stringValue" in v:
        return v["stringValue"] if isinstance(v["stringValue"], str) else None
    if "intValue" in v:  # int64 is a JSON string in the proto3 mapping
        try:
            return int(v["intValue"])
        except (TypeError, ValueError):
            return None
    if "doubleValue" in v:
        return v["doubleValue"] if isinstance(v["doubleValue"], (int, float)) else None
    if "boolValue" in v:
        return v["boolValue"] if isinstance(v["boolValue"], bool) else None
    return None


def attributes(items, allowed) -> dict:
    """The allowlisted attributes of an OTLP KeyValue list; the rest never leaves this function."""
    out = {}
    if isinstance(items, list):
        for kv in items:
            if isinstance(kv, dict) and kv.get("key") in allowed:
                out[kv["key"]] = _value(kv.get("value"))
    return out


def _when(attrs: dict, record: dict) -> datetime | None:
    at = parse_timestamp(attrs.get("event.timestamp") or "") if isinstance(attrs.get("event.timestamp"), str) else None
    if at is not None:
        return at
    for key in ("timeUnixNano", "observedTimeUnixNano"):
        try:
            ns = int(record.get(key) or 0)
        except (TypeError, ValueError):
            continue
        if ns > 0:
            try:
                return datetime.fromtimestamp(ns / 1e9, timezone.utc)
            except (OverflowError, OSError, ValueError):
                continue
    return None


def _name(record: dict, attrs: dict) -> str | None:
    body = _value(record.get("body"))
    for name in (record.get("eventName"), body, attrs.get("event.name")):
        if isinstance(name, str) and name:
            if name in CLAUDE_REQUEST or name in CODEX_EVENT:
                return name
    return None


def _str(v) -> str | None:
    return v if isinstance(v, str) and v else None


class BadCount(ValueError):
    """A record's token count is no count a call can have: the record is refused, said in the answer."""


def _strict(v) -> int:
    """A token count as an OTLP attribute carries it (Claude Code's are strings, "312"); absent is 0. A
    negative, a fraction, "inf", words or past `MAX_COUNT` refuse the record (`BadCount`), never a 0."""
    if v is None:
        return 0
    if isinstance(v, str):
        try:
            v = int(v)
        except ValueError:
            try:
                v = float(v)
            except ValueError:
                raise BadCount(v) from None
    n = whole_count(v)
    if n is None:
        raise BadCount(v)
    return n


def _claude(attrs: dict, at: datetime, resource: dict) -> UsageEvent | None:
    model = _str(attrs.get("model"))
    tokens = TokenCounts(input=_strict(attrs.get("input_tokens")), output=_strict(attrs.get("output_tokens")),
                         cache_read=_strict(attrs.get("cache_read_tokens")),
                         cache_write_5m=_strict(attrs.get("cache_creation_tokens")),
                         reported_input=_strict(attrs.get("input_tokens")))
    if model is None or not (tokens.input or tokens.output or tokens.cache_read or tokens.cache_write_5m):
        return None
    return UsageEvent("claude_code", provider_for_model(model), model, at, _str(attrs.get("session.id")) or "",
                      _str(resource.get("nomira.project")) or "", tokens,
                      request_id=_str(attrs.get("request_id")))


def _codex(attrs: dict, at: datetime, resource: dict) -> UsageEvent | None:
    if attrs.get("event.kind") != "response.completed":
        return None
    model = _str(attrs.get("model"))
    inp, cached = _strict(attrs.get("input_token_count")), _strict(attrs.get("cached_token_count"))
    cached = min(cached, inp)
    out = _strict(attrs.get("output_token_count"))
    if model is None or not (inp or out):
        return None
    return UsageEvent("codex", provider_for_model(model, default="openai"), model, at,
                      _str(attrs.get("conversation.id")) or "", _str(resource.get("nomira.project")) or "",
                      TokenCounts(input=inp - cached, output=out, cache_read=cached,
                                  reasoning=_strict(attrs.get("reasoning_token_count")), reported_input=inp))


def _resources(doc, key: str, scope_key: str, items_key: str):
    """(resource attributes, item) for every record/metric of an export request, bounded."""
    if not isinstance(doc, dict) or not isinstance(doc.get(key, []), list):
        raise OTLPError(f"not an OTLP export request (expected a {key!r} list)")
    n = 0
    for res in doc.get(key) or []:
        if not isinstance(res, dict):
            continue
        resource = attributes((res.get("resource") or {}).get("attributes") if isinstance(res.get("resource"), dict)
                              else None, RESOURCE_ATTRS)
        for scope in _list(res.get(scope_key)):
            for item in _list(scope.get(items_key) if isinstance(scope, dict) else None):
                n += 1
                if n > MAX_RECORDS:
                    raise OTLPError(f"more than {MAX_RECORDS} records in one request")
                if isinstance(item, dict):
                    yield resource, item


def _list(v) -> list | tuple:
    """`v` when it is a list, else nothing (a number or a map where OTLP has an array: no records)."""
    return v if isinstance(v, list) else ()


def log_events(doc) -> tuple[list[tuple[UsageEvent, dict]], int]:
    """(usage event, tags from the resource) per api_request / response.completed record, and how many
    such records were refused (a token count no call can have: `BadCount`). Any other record (user
    prompts, tool results, decisions) is skipped unread."""
    out, refused = [], 0
    for resource, record in _resources(doc, "resourceLogs", "scopeLogs", "logRecords"):
        probe = attributes(record.get("attributes"), ("event.name",))
        name = _name(record, probe)
        if name is None:
            continue
        claude = name in CLAUDE_REQUEST
        attrs = attributes(record.get("attributes"), CLAUDE_ATTRS if claude else CODEX_ATTRS)
        at = _when(attrs, record)
        if at is None:
            continue
        try:
            event = _claude(attrs, at, resource) if claude else _codex(attrs, at, resource)
        except BadCount:
            refused += 1
            continue
        if event is not None:
            out.append((event, _tags(resource)))
    return out, refused


def _tags(resource: dict) -> dict:
    dev = _str(resource.get("nomira.developer"))
    return {"developer": dev} if dev else {}


def metric_points(doc) -> int:
    """How many data points an export request carries (what a 'not stored' answer reports)."""
    n = 0
    for _resource, metric in _resources(doc, "resourceMetrics", "scopeMetrics", "metrics"):
        for kind in ("sum", "gauge", "histogram"):
            points = (metric.get(kind) or {}).get("dataPoints") if isinstance(metric.get(kind), dict) else None
            n += len(points) if isinstance(points, list) else 0
    return n


def aggregate_metrics(doc) -> list[tuple[UsageEvent, dict]]:
    """`claude_code.token.usage` delta sums -> one aggregated event per (session, model, interval end)."""
    groups: dict[tuple, dict] = {}
    for resource, metric in _resources(doc, "resourceMetrics", "scopeMetrics", "metrics"):
        if metric.get("name") != TOKEN_METRIC or not isinstance(metric.get("sum"), dict):
            continue
        for point in _list(metric["sum"].get("dataPoints")):
            if not isinstance(point, dict):
                continue
            attrs = attributes(point.get("attributes"), METRIC_ATTRS)
            field = METRIC_TYPES.get(attrs.get("type"))
            model = _str(attrs.get("model"))
            at = _when({}, point)
            if field is None or model is None or at is None:
                continue
            key = (_str(attrs.get("session.id")) or "", model, at, tuple(sorted(_tags(resource).items())),
                   _str(resource.get("nomira.project")) or "")
            g = groups.setdefault(key, {})
            g[field] = g.get(field, 0) + _count(point.get("asInt", point.get("asDouble")))
    out = []
    for (session, model, at, tags, project), t in groups.items():
        if any(t.values()):
            out.append((UsageEvent("claude_code", provider_for_model(model), model, at, session, project,
                                   TokenCounts(reported_input=t.get("input", 0), **t), aggregated=True), dict(tags)))
    return out


def link_logged(db, found: list[tuple[UsageEvent, dict]], tenant: str | None) -> list[tuple[UsageEvent, dict]]:
    """Claude Code telemetry has the API request id but no message id, the transcript has both: an
    api_request whose request id a stored transcript (hook or log) copy already carries takes that
    copy's message id, developer, project and its cache-write split by TTL (telemetry sends one
    count), so the telemetry copy is attributed and priced as the transcript copy.

    This only fills in what telemetry lacks; that the copies count once, in either arrival order,
    is the store's doing (`store._link_copies`)."""
    from dataclasses import replace
    from datetime import timedelta
    from nomira.ledger import store
    out, hashed = [], None  # a store that keys developers by hash cannot be given the name again
    for event, tags in found:
        if event.message_id is None and event.request_id:
            days = sorted({(event.occurred_at + timedelta(days=d)).date().isoformat() for d in (-1, 0, 1)})
            row = db.execute(
                "SELECT message_id, developer, project, cache_write_5m, cache_write_1h FROM events WHERE tenant = ? "
                "AND day IN (?, ?, ?) AND request_id = ? AND message_id IS NOT NULL AND source = ? LIMIT 1",
                (tenant or "", *days, event.request_id, event.source)).fetchone()
            if row is not None and hashed is None:
                hashed = store.setting_value(db, "hash_identifiers") == "1"
            if row is not None and not hashed and tags.get("developer") in (None, "", row[1]):
                t = event.tokens
                if row[3] + row[4] == t.cache_write_5m + t.cache_write_1h:
                    t = replace(t, cache_write_5m=row[3], cache_write_1h=row[4])
                event = replace(event, message_id=row[0], project=row[2] or event.project, tokens=t)
                tags = dict(tags, developer=row[1]) if row[1] else tags
        out.append((event, tags))
    return out
