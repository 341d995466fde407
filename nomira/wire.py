"""The wire schema: what a usage event may carry between machines, and nothing else.

The privacy invariant is enforced here as an ALLOWLIST: an event with any key outside
the schema, or a tag value that is long or looks like a path, is rejected with an
error naming the field. There is deliberately no way to carry prompt, completion,
tool input or file content.
"""
from __future__ import annotations

import hashlib
import re
from datetime import datetime, timezone

from nomira.events import TOKEN_TYPES, TokenCounts, UsageEvent, parse_timestamp

SCHEMA_VERSION = 1
TOKEN_FIELDS = (*TOKEN_TYPES, "reasoning")  # reasoning is part of output, carried for display only
TAG_FIELDS = ("developer", "project", "feature", "workflow", "tier", "customer", "env", "tenant")
ALLOWANCE_FIELDS = ("primary_used_percent", "primary_window_minutes", "secondary_used_percent",
                    "secondary_window_minutes")
ID_FIELDS = ("session_id", "turn_id", "message_id", "request_id", "tool_call_id")
TOP_FIELDS = {
    "schema_version": int, "source": str, "provider": str, "model": str, "occurred_at": str,
    "tokens": dict, "cost_usd": (int, float, type(None)), "cost_source": (str, type(None)),
    "regime": str, "tags": dict, "is_sidechain": bool, "model_is_fallback": bool,
    "modifiers": dict, "allowance": (dict, type(None)),
    **{f: (str, type(None)) for f in ID_FIELDS},
}
REQUIRED = ("schema_version", "source", "provider", "model", "occurred_at", "tokens")
MAX_TAG = 64
MAX_ID = 128
MAX_NAME = 96
_NAME = re.compile(r"^[A-Za-z0-9._:@+\-\[\] ]+$")
_MODEL = re.compile(r"^[A-Za-z0-9._:@+/\-\[\] ]+$")  # provider-prefixed names ("openai/gpt-5") are not paths
_PATHLIKE = re.compile(r"[/\\]|^~|^\.\.?$|\.(py|js|ts|tsx|rs|go|java|rb|md|json|txt|env|pem|key)$", re.I)


class SchemaError(ValueError):
    """An event outside the wire schema; `field` names the offending key."""

    def __init__(self, field: str, reason: str):
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


def _check_str(field: str, value, limit: int, pattern=None) -> None:
    if not isinstance(value, str):
        raise SchemaError(field, "must be a string")
    if len(value) > limit:
        raise SchemaError(field, f"longer than {limit} characters (content is never allowed)")
    if "\n" in value or "\r" in value:
        raise SchemaError(field, "multi-line text is not allowed")
    if pattern is not None and value and not pattern.match(value):
        raise SchemaError(field, "contains characters outside the allowed set")


def assert_no_content(event: dict) -> None:
    """Raise SchemaError unless `event` is a usage-only event of the wire schema."""
    if not isinstance(event, dict):
        raise SchemaError("event", "must be a JSON object")
    for key, value in event.items():
        if key not in TOP_FIELDS:
            raise SchemaError(key, "not in the usage event schema (allowlist)")
        if not isinstance(value, TOP_FIELDS[key]) or (TOP_FIELDS[key] is int and isinstance(value, bool)):
            raise SchemaError(key, "wrong type")
    for key in REQUIRED:
        if key not in event:
            raise SchemaError(key, "required")
    if event["schema_version"] != SCHEMA_VERSION:
        raise SchemaError("schema_version", f"unsupported (this collector speaks {SCHEMA_VERSION})")
    for key in ("source", "provider", "regime", "cost_source"):
        if event.get(key) is not None:
            _check_str(key, event[key], MAX_NAME, _NAME)
    _check_str("model", event["model"], MAX_NAME, _MODEL)
    if parse_timestamp(event["occurred_at"]) is None or len(event["occurred_at"]) > 40:
        raise SchemaError("occurred_at", "not an ISO-8601 timestamp")
    for key in ID_FIELDS:
        if event.get(key) is not None:
            _check_str(key, event[key], MAX_ID, _NAME)
    _check_mapping("tokens", event["tokens"], TOKEN_FIELDS, _check_count)
    _check_mapping("tags", event.get("tags") or {}, TAG_FIELDS, _check_tag)
    _check_mapping("allowance", event.get("allowance") or {}, ALLOWANCE_FIELDS, _check_number)
    _check_mapping("modifiers", event.get("modifiers") or {}, ("speed", "service_tier", "inference_geo"),
                   lambda f, v: _check_str(f, v, 32, _NAME))


def _check_mapping(name: str, mapping: dict, allowed, check) -> None:
    for key, value in mapping.items():
        field = f"{name}.{key}"
        if key not in allowed:
            raise SchemaError(field, "not in the usage event schema (allowlist)")
        check(field, value)


def _check_count(field: str, value) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise SchemaError(field, "must be a non-negative integer")


def _check_number(field: str, value) -> None:
    if value is not None and (not isinstance(value, (int, float)) or isinstance(value, bool)):
        raise SchemaError(field, "must be a number")


def _check_tag(field: str, value) -> None:
    if value is None:
        return
    _check_str(field, value, MAX_TAG)
    if _PATHLIKE.search(value):
        raise SchemaError(field, "looks like a file path; tags carry labels only")


def billable_tokens(tokens: dict) -> int:
    """Total billed tokens of a wire event (reasoning is inside output): the completeness measure."""
    return sum(tokens.get(t, 0) for t in TOKEN_TYPES)


def dedup_key(event: dict) -> str:
    """Stable identity of one API call, whatever ships it and however it is priced.

    Priority: tool_call_id > message_id > turn_id > fingerprint of timestamp, model and
    token tuple. Cost is never part of it (re-pricing must not duplicate); tenant and
    developer are (two people's identical calls are two calls).
    """
    tags = event.get("tags") or {}
    if event.get("tool_call_id"):
        ident = "tool:" + event["tool_call_id"]
    elif event.get("message_id"):
        ident = "msg:" + event["message_id"]
    elif event.get("turn_id"):
        ident = "turn:" + event["turn_id"]
    else:
        t = event.get("tokens") or {}
        at = parse_timestamp(event.get("occurred_at", ""))
        stamp = at.isoformat() if at else event.get("occurred_at", "")
        ident = "fp:" + "|".join([stamp, event.get("model", ""), *(str(t.get(k, 0)) for k in TOKEN_FIELDS)])
    raw = "|".join(["v1", tags.get("tenant") or "", tags.get("developer") or "", ident])
    return hashlib.sha256(raw.encode()).hexdigest()[:32]


def to_wire(event: UsageEvent, cost=None, regime: str = "subscription", tags: dict | None = None) -> dict:
    """A UsageEvent (and its cost) as a wire event. Only schema fields are ever copied."""
    t = event.tokens
    wire = {
        "schema_version": SCHEMA_VERSION, "source": event.source, "provider": event.provider,
        "model": event.model, "occurred_at": event.occurred_at.astimezone(timezone.utc).isoformat(),
        "tokens": {"input": t.input, "output": t.output, "cache_read": t.cache_read,
                   "cache_write_5m": t.cache_write_5m, "cache_write_1h": t.cache_write_1h,
                   "reasoning": t.reasoning},
        "cost_usd": cost.total_usd if cost is not None else None,
        "cost_source": cost.rate_source if cost is not None else None,
        "regime": regime, "tags": {k: v for k, v in (tags or {}).items() if v},
        "session_id": event.session_id, "message_id": event.message_id, "request_id": event.request_id,
        "is_sidechain": event.is_sidechain, "model_is_fallback": event.model_is_fallback,
        "modifiers": dict(event.modifiers),
    }
    wire["tags"].setdefault("project", event.project)
    a = event.allowance
    if a is not None:
        wire["allowance"] = {k: getattr(a, k) for k in ALLOWANCE_FIELDS}
    return wire


def from_wire(wire: dict) -> UsageEvent:
    t = wire["tokens"]
    tags = wire.get("tags") or {}
    return UsageEvent(
        source=wire["source"], provider=wire["provider"], model=wire["model"],
        occurred_at=parse_timestamp(wire["occurred_at"]) or datetime.now(timezone.utc),
        session_id=wire.get("session_id") or "", project=tags.get("project") or "",
        tokens=TokenCounts(input=t.get("input", 0), output=t.get("output", 0), cache_read=t.get("cache_read", 0),
                           cache_write_5m=t.get("cache_write_5m", 0), cache_write_1h=t.get("cache_write_1h", 0),
                           reasoning=t.get("reasoning", 0), reported_input=t.get("input", 0)),
        message_id=wire.get("message_id"), request_id=wire.get("request_id"),
        is_sidechain=bool(wire.get("is_sidechain")), model_is_fallback=bool(wire.get("model_is_fallback")),
        modifiers=tuple(sorted((wire.get("modifiers") or {}).items())),
    )


# --- limit snapshots: a second, separate kind of wire record -----------------------
# Subscription windows (nomira/limits.py): a percentage, a window, two instants, where it
# came from, and who. Checked by its own allowlist; never mixed into a usage event.
LIMIT_KIND = "limit_snapshot"
LIMIT_FIELDS = {
    "kind": str, "schema_version": int, "agent": str, "window": str, "used_percent": (int, float),
    "window_minutes": (int, type(None)), "resets_at": (str, type(None)), "source": str, "observed_at": str,
    "tags": dict,
}
LIMIT_TAGS = ("developer", "tenant", "env")


def limit_to_wire(snapshot, tags: dict | None = None) -> dict:
    d = snapshot.as_dict()
    return {"kind": LIMIT_KIND, "schema_version": SCHEMA_VERSION, **{k: d[k] for k in LIMIT_FIELDS if k in d},
            "tags": {k: v for k, v in (tags or {}).items() if k in LIMIT_TAGS and v}}


def assert_limit_snapshot(record: dict) -> None:
    """Raise SchemaError unless `record` is a usage-only limit snapshot (allowlist, as for events)."""
    if not isinstance(record, dict):
        raise SchemaError("record", "must be a JSON object")
    for key, value in record.items():
        if key not in LIMIT_FIELDS:
            raise SchemaError(key, "not in the limit snapshot schema (allowlist)")
        if not isinstance(value, LIMIT_FIELDS[key]) or isinstance(value, bool):
            raise SchemaError(key, "wrong type")
    for key in ("kind", "schema_version", "agent", "window", "used_percent", "source", "observed_at"):
        if key not in record:
            raise SchemaError(key, "required")
    if record["kind"] != LIMIT_KIND:
        raise SchemaError("kind", f"must be {LIMIT_KIND!r}")
    if record["schema_version"] != SCHEMA_VERSION:
        raise SchemaError("schema_version", f"unsupported (this collector speaks {SCHEMA_VERSION})")
    for key in ("agent", "window", "source"):
        _check_str(key, record[key], 32, _NAME)
    if not 0 <= record["used_percent"] <= 1000:
        raise SchemaError("used_percent", "out of range")
    for key in ("observed_at", "resets_at"):
        if record.get(key) is not None and (len(record[key]) > 40 or parse_timestamp(record[key]) is None):
            raise SchemaError(key, "not an ISO-8601 timestamp")
    _check_mapping("tags", record.get("tags") or {}, LIMIT_TAGS, _check_tag)
