"""The wire schema: what a usage event may carry between machines, and nothing else.

The privacy invariant is enforced here as an ALLOWLIST: an event with any key outside
the schema, a value outside its field's character allowlist (ids, model names), a tag
that looks like a path or file name, a control/format character, an out-of-range count,
cost or date is rejected with an error naming the field. There is deliberately no way to carry prompt, completion,
tool input or file content.
"""
from __future__ import annotations

import hashlib
import json
import math
import re
import unicodedata
from datetime import datetime, timedelta, timezone
from functools import lru_cache

from nomira.ledger import events
from nomira.ledger.events import TOKEN_TYPES, TokenCounts, UsageEvent, parse_timestamp

SCHEMA_VERSION = 1
TOKEN_FIELDS = (*TOKEN_TYPES, "reasoning")  # reasoning is part of output, carried for display only
TAG_FIELDS = ("developer", "project", "feature", "workflow", "tier", "customer", "env", "tenant")
# Tags with their own rule: a git branch ("feature/login" has a slash, and is no path). Stored in
# their own columns (store migration 0016), so TAG_FIELDS keeps its order and meaning.
BRANCH_TAG = "branch"
WIRE_TAGS = (*TAG_FIELDS, BRANCH_TAG)
ALLOWANCE_FIELDS = ("primary_used_percent", "primary_window_minutes", "secondary_used_percent",
                    "secondary_window_minutes")
ID_FIELDS = ("session_id", "turn_id", "message_id", "request_id", "tool_call_id", "account_id", "workspace_id")
MODIFIER_FIELDS = ("speed", "service_tier", "inference_geo")  # price modifiers a call may name
# The ledger's optional fields (issue 24): how the event arrived and what kind of usage it is.
CHANNEL_PRIORITY = {  # lower wins when one call arrives by several channels
    "hook": 1, "sse": 1, "otlp": 1, "sdk": 1, "gateway": 1, "api": 1,  # agent-native, explicit usage
    "jsonl": 2, "import": 2,  # transcripts and logs (an export is a copy of them)
    "derived": 3, "estimate": 3,  # reconstructed, not reported
}
EVENT_TYPES = ("turn_completed", "message_usage", "tool_usage", "limit_snapshot", "reconcile_adjustment")
STATUSES = ("ok", "error", "aborted", "unknown")
REGIMES = ("subscription", "api", "mixed")  # (mixed: an older client's whole history, filed under its source's)
LEDGER_FIELDS = {"source_channel": CHANNEL_PRIORITY, "event_type": EVENT_TYPES, "status": STATUSES}
TOP_FIELDS = {
    "schema_version": int, "source": str, "provider": str, "model": str, "occurred_at": str,
    "tokens": dict, "cost_usd": (int, float, type(None)), "cost_source": (str, type(None)),
    "regime": str, "tags": dict, "is_sidechain": bool, "model_is_fallback": bool,
    "modifiers": dict, "allowance": (dict, type(None)),
    **{f: (str, type(None)) for f in ID_FIELDS},
    **{f: (str, type(None)) for f in LEDGER_FIELDS},
    "source_schema_version": (str, type(None)), "tool_name": (str, type(None)), "agent": (str, type(None)),
    "requests": (int, type(None)), "total_tokens": (int, type(None)),
}
REQUIRED = ("schema_version", "source", "provider", "model", "occurred_at", "tokens")
MAX_TAG = 64
MAX_ID = 128
MAX_NAME = 96
MAX_COUNT = events.MAX_COUNT  # tokens in one call
MAX_COST_USD = 10 ** 7  # one call's cost
MAX_PERCENT = 1000.0
MAX_WINDOW_MINUTES = 10 ** 7
EARLIEST = datetime(2020, 1, 1, tzinfo=timezone.utc)  # before any coding agent logged usage
FUTURE_SLACK = timedelta(days=1)  # clock skew; a later date would stretch every per-day series
# Per-field character allowlists (whole value, fullmatch: `$` would let a trailing newline through)
_NAME = re.compile(r"[A-Za-z0-9._:@+\-\[\] ]+")
_ID = re.compile(r"[A-Za-z0-9._:\-]+")
_BRANCH = re.compile(r"[A-Za-z0-9._/+\-]+")
_MODEL = re.compile(r"[A-Za-z0-9._:@+/\-\[\]]+")  # provider-prefixed names ("openai/gpt-5") are not paths
_MAX_MODEL_SEGMENTS = 4  # "openrouter/anthropic/claude-3.5-sonnet" has 3
_SLASHES = "/\\\u2044\u2215\u2216\u29f5\u29f8\u29f9\ufe68\uff0f\uff3c"  # ASCII and look-alike (back)slashes
_FILE_EXT = (r"\.(py|pyc|ipynb|js|mjs|cjs|jsx|ts|tsx|rs|go|java|kt|swift|rb|php|pl|c|h|cc|cpp|hpp|cs|sh|bash|zsh|"
             r"ps1|bat|sql|md|rst|txt|log|json|jsonl|yaml|yml|toml|ini|cfg|conf|env|xml|html?|csv|tsv|docx?|xlsx?|"
             r"pptx?|odt|ods|rtf|pdf|pages|numbers|key|pem|crt|cer|der|p12|pfx|pub|asc|gpg|kdbx|ppk|ovpn|sqlite3?|"
             r"db|lock|zip|tar|gz|tgz|bak|swp)$")
_FILE_NAME = re.compile(_FILE_EXT, re.I)
_PATHLIKE = re.compile(r"^~|^\.|\.\.|" + _FILE_EXT + r"|^(id_(rsa|dsa|ecdsa|ed25519)(_sk)?(-cert)?|authorized_keys"
                       r"|known_hosts)$|[" + re.escape(_SLASHES) + "]", re.I)
# A project label is a folder name ("next.js", "socket.io", ".dotfiles" are real repositories), so it
# is refused only for what no folder name needs: separators, `..`, `~`, key-file names and the
# extensions of documents, keys and data files.
_PROJECT_PATHLIKE = re.compile(
    r"^~|\.\.|\.(docx?|xlsx?|pptx?|odt|ods|rtf|pdf|pages|numbers|key|pem|crt|cer|der|p12|pfx|pub|asc|gpg|kdbx|"
    r"ppk|ovpn|sqlite3?|db|env|csv|tsv|log|bak|swp|zip|tar|gz|tgz)$|^(id_(rsa|dsa|ecdsa|ed25519)(_sk)?(-cert)?"
    r"|authorized_keys|known_hosts)$|[" + re.escape(_SLASHES) + "]", re.I)
_PATH_ROOTS = {"", "home", "users", "root", "tmp", "var", "etc", "usr", "opt", "mnt", "private", "volumes", "srv",
               "proc", "dev", "workspace", "workspaces", "src"}
# Credential-like strings, refused in every string field (ids and tags included) before anything is
# stored, spooled or exported: a key pasted into a tag must never reach a collector's disk.
_CREDENTIAL = re.compile(
    r"sk-(?:ant|proj|svcacct|admin)-[A-Za-z0-9_\-]{16,}"  # Anthropic, OpenAI project/service/admin keys
    r"|(?<![A-Za-z0-9])sk-[A-Za-z0-9]{32,}"  # OpenAI legacy user keys
    r"|(?:ghp|gho|ghu|ghs|ghr)_[A-Za-z0-9]{20,}|github_pat_[A-Za-z0-9_]{20,}"  # GitHub tokens
    r"|(?<![A-Za-z0-9])(?:AKIA|ASIA)[0-9A-Z]{16}(?![A-Za-z0-9])"  # AWS access key ids
    r"|(?i:bearer)\s+[A-Za-z0-9._~+/\-]{8,}"  # an Authorization header value
    r"|eyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}\."  # a JWT (header.payload.signature)
    r"|[A-Za-z0-9_.\-]+=[^;\s]+;")  # a cookie (name=value;)
def _maybe_credential(v: str) -> bool:
    """A cheap test every credential pattern above passes (the regex then decides): most strings
    are ids and names checked per event, and this is 7x faster than the regex."""
    return ("sk-" in v or "gh" in v or "github_pat_" in v or "AKIA" in v or "ASIA" in v or "earer" in v
            or "EARER" in v or "eyJ" in v or "=" in v)


_BAD_CATEGORIES = {"Cc", "Cf", "Cs", "Zl", "Zp"}  # controls, format (bidi, zero-width), surrogates, line breaks


class SchemaError(ValueError):
    """An event outside the wire schema; `field` names the offending key."""

    def __init__(self, field: str, reason: str):
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


def loads(data: bytes | str):
    """Strict JSON: NaN/Infinity literals and absurd nesting are ValueErrors (a 400), never stored or a 500."""
    try:
        return json.loads(data, parse_constant=_no_constant)
    except RecursionError:
        raise ValueError("JSON nested too deeply") from None


def _no_constant(name: str):
    raise ValueError(f"{name} is not valid JSON")


def _check_str(field: str, value, limit: int, pattern=None) -> None:
    if not isinstance(value, str):
        raise SchemaError(field, "must be a string")
    problem = _str_problem(value, limit, pattern)
    if problem:
        raise SchemaError(field, problem)


def _str_problem(value: str, limit: int, pattern) -> str | None:
    if _maybe_credential(value) and _CREDENTIAL.search(value):  # first: a key is named for what it is, never echoed
        return "looks like a credential (API key, token or cookie); credentials are never stored"
    if len(value) > limit:
        return f"longer than {limit} characters (content is never allowed)"
    if not (value.isascii() and value.isprintable()) and any(
            unicodedata.category(ch) in _BAD_CATEGORIES for ch in value):
        return "control, format or line-break characters are not allowed"
    if pattern is not None and value and not pattern.fullmatch(value):
        return "contains characters outside the allowed set"
    return None


def _check_label(field: str, value, kind: str) -> None:
    if not isinstance(value, str):
        raise SchemaError(field, "must be a string")
    problem = _label_problem(value, kind)
    if problem:
        raise SchemaError(field, problem)


@lru_cache(maxsize=8192)
def _label_problem(value: str, kind: str) -> str | None:
    """Why a name, model or tag is refused (None: accepted). Cached: these repeat across a batch."""
    if kind in ("tag", "project"):
        problem = _str_problem(value, MAX_TAG, None)
        rule = _PROJECT_PATHLIKE if kind == "project" else _PATHLIKE
        if not problem and (rule.search(value) or rule.search(unicodedata.normalize("NFKC", value))):
            problem = "looks like a file path or file name; tags carry labels only"
        return problem
    if kind == "branch":  # git ref names: segments joined by `/`, never a path (root, `..`, dot-files, files)
        segments = value.split("/")
        return _str_problem(value, MAX_NAME, _BRANCH) or (
            "looks like a file path or file name, not a git branch"
            if (value.startswith(("/", "~", ".")) or ".." in value or any(not s or s.startswith(".") for s in segments)
                or (len(segments) > 1 and segments[0].lower() in _PATH_ROOTS) or _FILE_NAME.search(value))
            else None)
    if kind != "model":
        return _str_problem(value, MAX_NAME if kind == "name" else 32, _NAME)
    # provider model names ("us.anthropic.claude-...-v1:0", "openrouter/anthropic/claude-3.5-sonnet"), not paths
    segments = value.split("/")
    return _str_problem(value, MAX_NAME, _MODEL) or (
        "looks like a file path or file name, not a model name"
        if (value.startswith(("/", "~", ".")) or ".." in value or len(segments) > _MAX_MODEL_SEGMENTS
            or any(not s or s.startswith(".") for s in segments) or segments[0].lower() in _PATH_ROOTS
            or _FILE_NAME.search(value) or _PATHLIKE.fullmatch(segments[-1])) else None)


def assert_no_content(event: dict, now: datetime | None = None) -> None:
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
    for key in ("source", "provider", "regime", "cost_source", "tool_name", "agent"):
        if event.get(key) is not None:
            _check_label(key, event[key], "name")
    # (a regime outside its three was stored as it came: its money in neither the API cost nor the value)
    for key, allowed in (*LEDGER_FIELDS.items(), ("regime", REGIMES)):
        if event.get(key) is not None and event[key] not in allowed:
            raise SchemaError(key, f"must be one of {', '.join(allowed)}")
    if event.get("source_schema_version") is not None:
        _check_str("source_schema_version", event["source_schema_version"], 32, _ID)
    for key in ("requests", "total_tokens"):
        if event.get(key) is not None:
            _check_count(key, event[key])
    _check_label("model", event["model"], "model")
    _check_time("occurred_at", event["occurred_at"], now or datetime.now(timezone.utc))
    for key in ID_FIELDS:
        if event.get(key) is not None:
            _check_str(key, event[key], MAX_ID, _ID)
    if event.get("cost_usd") is not None:
        _check_number("cost_usd", event["cost_usd"], MAX_COST_USD)
    tokens = event["tokens"]
    if not all(type(v) is int and 0 <= v <= MAX_COUNT for v in tokens.values()) or not _TOKEN_KEYS.issuperset(tokens):
        _check_mapping("tokens", tokens, TOKEN_FIELDS, _check_count)  # names the bad one
    tags = event.get("tags")
    if tags:
        try:
            _check_tags_cached(tuple(tags.items()))
        except TypeError:  # an unhashable value (a list): not a label either
            _check_mapping("tags", tags, WIRE_TAGS, _check_tag)
    _check_mapping("allowance", event.get("allowance") or {}, ALLOWANCE_FIELDS, _check_allowance)
    _check_mapping("modifiers", event.get("modifiers") or {}, MODIFIER_FIELDS,
                   lambda f, v: _check_label(f, v, "modifier"))


# The design's ingest envelope (POST /v1/usage/events): provenance and ids outside, usage inside `payload`.
ENVELOPE_FIELDS = {
    "source_system": str, "source_channel": str, "source_schema_version": (str, int), "occurred_at": str,
    "provider_id": str, "agent": (str, type(None)), "payload": dict,
    **{f: (str, type(None)) for f in ("workspace_id", "session_id", "turn_id", "message_id", "tool_call_id",
                                      "request_id", "account_id")},
}
ENVELOPE_REQUIRED = ("source_system", "source_channel", "source_schema_version", "occurred_at", "provider_id",
                     "payload")
PAYLOAD_FIELDS = ("model", "tokens", "cost_usd", "cost_source", "regime", "tags", "event_type", "status", "tool_name",
                  "requests", "total_tokens", "allowance", "is_sidechain", "model_is_fallback", "modifiers")
_PASSED_ON = ("workspace_id", "session_id", "turn_id", "message_id", "tool_call_id", "request_id", "account_id",
              "agent")
_ENVELOPE_NAMES = {"source": "source_system", "provider": "provider_id", "schema_version": "source_schema_version"}


def is_envelope(item) -> bool:
    return isinstance(item, dict) and ("payload" in item or "source_system" in item)


def from_envelope(doc: dict, now: datetime | None = None) -> dict:
    """The wire event an envelope describes, validated; SchemaError names the envelope's field
    (`payload.tokens.input`, `workspace_id`). Everything is checked by the wire allowlist."""
    for key, value in doc.items():
        if key not in ENVELOPE_FIELDS:
            raise SchemaError(key, "not in the usage event envelope (allowlist)")
        if not isinstance(value, ENVELOPE_FIELDS[key]) or isinstance(value, bool):
            raise SchemaError(key, "wrong type")
    for key in ENVELOPE_REQUIRED:
        if key not in doc:
            raise SchemaError(key, "required")
    payload = doc["payload"]
    for key in payload:
        if key not in PAYLOAD_FIELDS:
            raise SchemaError(f"payload.{key}", "not in the usage payload (allowlist)")
    wire = {"schema_version": SCHEMA_VERSION, "source": doc["source_system"], "source_channel": doc["source_channel"],
            "source_schema_version": str(doc["source_schema_version"]), "provider": doc["provider_id"],
            "occurred_at": doc["occurred_at"], **payload, **{k: doc[k] for k in _PASSED_ON if k in doc}}
    tags = payload.get("tags")
    from_workspace = bool(doc.get("workspace_id")) and (tags is None or isinstance(tags, dict)
                                                         and not tags.get("project"))
    if from_workspace:
        wire["tags"] = dict(tags or {}, project=doc["workspace_id"])  # the design's workspace: Nomira's project
    try:
        assert_no_content(wire, now)
    except SchemaError as exc:
        top = exc.field.split(".")[0]
        if exc.field == "tags.project" and from_workspace:
            field = "workspace_id"
        elif top in _ENVELOPE_NAMES:
            field = _ENVELOPE_NAMES[top]
        elif top in PAYLOAD_FIELDS:
            field = "payload." + exc.field
        else:
            field = exc.field
        raise SchemaError(field, exc.reason) from None
    return wire


def event_of(item, now: datetime | None = None) -> dict:
    """A received item as a validated wire event: an envelope is converted, a wire event checked."""
    if is_envelope(item):
        return from_envelope(item, now)
    assert_no_content(item, now)
    return item


BATCH_OPTIONS = ("day_zone", "repin_day_zone")  # a batch's members beside its events (docs/API.md)
BATCH_FIELDS = frozenset(("events", *BATCH_OPTIONS))  # every member a batch may have: an allowlist too


def batch_day_zone(doc: dict) -> tuple[str | None, bool]:
    """(day_zone, repin_day_zone) of a batch {"events": [...]}, validated; SchemaError names the field.
    `day_zone` is the IANA zone of the machine that shipped it: it pins the day boundary of the
    batch's developers at the collector (store.pin_day_zones); `repin_day_zone` moves the pin."""
    from nomira.dates import zone_name
    zone, repin = doc.get("day_zone"), doc.get("repin_day_zone", False)
    if zone is not None:
        try:
            zone = zone_name(zone)
        except ValueError:  # the value is not echoed: whatever was sent, it is no zone
            raise SchemaError("day_zone", "not a known IANA timezone name (such as Europe/Paris or UTC)") from None
    if not isinstance(repin, bool):
        raise SchemaError("repin_day_zone", "must be true or false")
    if repin and zone is None:
        raise SchemaError("repin_day_zone", "needs day_zone, the zone to pin")
    return zone, repin


def _check_time(field: str, value, now: datetime) -> None:
    # (printable ASCII only: Python's fromisoformat takes a trailing NUL, which would reach the raw store)
    at = parse_timestamp(value) if isinstance(value, str) and len(value) <= 40 and value.isascii() \
        and value.isprintable() else None
    if at is None:
        raise SchemaError(field, "not an ISO-8601 timestamp")
    if not EARLIEST <= at <= now + FUTURE_SLACK:
        raise SchemaError(field, f"outside {EARLIEST.date()} .. now + 1 day")


_TOKEN_KEYS = frozenset(TOKEN_FIELDS)


@lru_cache(maxsize=4096)
def _check_tags_cached(items: tuple) -> None:
    """Tags repeat across a batch (one developer, project, tenant): each set is checked once.
    Only success is cached (an lru_cache does not keep a call that raised)."""
    _check_mapping("tags", dict(items), WIRE_TAGS, _check_tag)


def check_tags(tags: dict) -> None:
    """The tags alone (what a user sets with --developer, --tag): SchemaError naming the field."""
    _check_mapping("tags", tags, WIRE_TAGS, _check_tag)


def _check_mapping(name: str, mapping: dict, allowed, check) -> None:
    for key, value in mapping.items():
        field = f"{name}.{key}"
        if key not in allowed:
            raise SchemaError(field, "not in the usage event schema (allowlist)")
        check(field, value)


def _check_count(field: str, value) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= MAX_COUNT:
        raise SchemaError(field, f"must be an integer from 0 to {MAX_COUNT}")


def _check_number(field: str, value, limit: float) -> None:
    """A finite number from 0 to `limit` (a negative cost would cancel someone else's spend)."""
    if (not isinstance(value, (int, float)) or isinstance(value, bool)
            or not (isinstance(value, int) or math.isfinite(value)) or not 0 <= value <= limit):
        raise SchemaError(field, f"must be a finite number from 0 to {limit:g}")


def _check_allowance(field: str, value) -> None:
    if value is not None:
        _check_number(field, value, MAX_PERCENT if field.endswith("percent") else MAX_WINDOW_MINUTES)


def _check_tag(field: str, value) -> None:
    if value is not None:
        _check_label(field, value, {"tags.project": "project", "tags.branch": "branch"}.get(field, "tag"))


def billable_tokens(tokens: dict) -> int:
    """Total billed tokens of a wire event (reasoning is inside output): the completeness measure."""
    return sum(tokens.get(t, 0) for t in TOKEN_TYPES)


def channel_of(event: dict) -> str:
    """How an event arrived: its `source_channel`, else what its source name says (`claude_code_hook`
    is a hook); Nomira's own shipped events are read from transcripts (jsonl)."""
    return event.get("source_channel") or _channel_of_source(event.get("source") or "")


@lru_cache(maxsize=1024)
def _channel_of_source(source: str) -> str:
    for c in ("hook", "sse", "otlp", "sdk", "gateway", "derived", "estimate"):
        if source == c or source.endswith("_" + c):
            return c
    return "jsonl"


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
    if event.branch and not _label_problem(event.branch, "branch"):  # an odd ref name stays local, never a 400
        wire["tags"].setdefault(BRANCH_TAG, event.branch)
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
        session_id=wire.get("session_id") or "", project=tags.get("project") or "", branch=tags.get(BRANCH_TAG),
        tokens=TokenCounts(input=t.get("input", 0), output=t.get("output", 0), cache_read=t.get("cache_read", 0),
                           cache_write_5m=t.get("cache_write_5m", 0), cache_write_1h=t.get("cache_write_1h", 0),
                           reasoning=t.get("reasoning", 0), reported_input=t.get("input", 0)),
        message_id=wire.get("message_id"), request_id=wire.get("request_id"),
        is_sidechain=bool(wire.get("is_sidechain")), model_is_fallback=bool(wire.get("model_is_fallback")),
        modifiers=tuple(sorted((wire.get("modifiers") or {}).items())),
    )


# --- limit snapshots: a second, separate kind of wire record -----------------------
# Subscription windows (nomira/ledger/limits.py): a percentage, a window, two instants, where it
# came from, and who. Checked by its own allowlist; never mixed into a usage event.
LIMIT_KIND = "limit_snapshot"
RESET_SPAN = timedelta(days=731)
LIMIT_FIELDS = {
    "kind": str, "schema_version": int, "agent": str, "window": str, "used_percent": (int, float),
    "window_minutes": (int, type(None)), "resets_at": (str, type(None)), "source": str, "observed_at": str,
    "tags": dict,
}
LIMIT_TAGS = ("developer", "tenant", "env")
LIMIT_SOURCES = ("log", "statusline", "api")  # where a snapshot was read (`ledger.limits.LimitSnapshot.source`)


def limit_to_wire(snapshot, tags: dict | None = None) -> dict:
    d = snapshot.as_dict()
    return {"kind": LIMIT_KIND, "schema_version": SCHEMA_VERSION, **{k: d[k] for k in LIMIT_FIELDS if k in d},
            "tags": {k: v for k, v in (tags or {}).items() if k in LIMIT_TAGS and v}}


def is_limit_snapshot(item) -> bool:
    """A received item of the second kind: it says so (an event never carries `kind`)."""
    return isinstance(item, dict) and item.get("kind") == LIMIT_KIND


def limit_key(record: dict) -> str:
    """Stable identity of one limit snapshot: who, which window, when it was observed. Re-shipping
    the same snapshot gives the same key (the ship ledger skips it; the collector counts it deduped)."""
    tags = record.get("tags") or {}
    at = parse_timestamp(record.get("observed_at") or "")
    stamp = at.astimezone(timezone.utc).isoformat(timespec="seconds") if at else record.get("observed_at", "")
    raw = "|".join(["limit-v1", tags.get("tenant") or "", tags.get("developer") or "", record.get("agent", ""),
                    record.get("window", ""), stamp])
    return hashlib.sha256(raw.encode()).hexdigest()[:32]


def assert_limit_snapshot(record: dict, now: datetime | None = None) -> None:
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
    if record["source"] not in LIMIT_SOURCES:
        raise SchemaError("source", f"must be one of {', '.join(LIMIT_SOURCES)}")
    for key in ("observed_at", "resets_at"):
        if record.get(key) is not None and (len(record[key]) > 40 or parse_timestamp(record[key]) is None):
            raise SchemaError(key, "not an ISO-8601 timestamp")
    _check_time("observed_at", record["observed_at"], now or datetime.now(timezone.utc))
    if record.get("resets_at") is not None and abs(parse_timestamp(record["resets_at"])
                                                   - parse_timestamp(record["observed_at"])) > RESET_SPAN:
        raise SchemaError("resets_at", "more than two years from observed_at: no limit window is that long")
    if record.get("window_minutes") is not None:
        _check_number("window_minutes", record["window_minutes"], MAX_WINDOW_MINUTES)
    _check_mapping("tags", record.get("tags") or {}, LIMIT_TAGS, _check_tag)
