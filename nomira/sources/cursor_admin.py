"""Cursor team usage from the Admin API: per-call tokens and charged cost, as wire events.

Local Cursor data has no per-call token counts, so Cursor's own record is the source:
`POST /teams/filtered-usage-events` (paginated; `tokenUsage` on token-based calls) and
`POST /teams/daily-usage-data` (per developer and day; no tokens, used to show coverage).
HTTP Basic auth with the admin key as username and an empty password.

What Cursor charged is the cost of record (`chargedCents`, else `tokenUsage.totalCents`),
never re-priced from our table. A request-priced call carries zero tokens and the charged
amount when Cursor states one (`requestsCosts` is request units, not money, so otherwise its
cost is unknown, not guessed). A model our table does not know stays `cursor/<raw name>`.
A failed endpoint is an error carrying Cursor's message, never an empty success.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Callable, Iterator

from nomira.ledger.events import TokenCounts, UsageEvent, parse_timestamp, provider_for_model

API = "https://api.cursor.com"
EVENTS_PATH = "/teams/filtered-usage-events"
DAILY_PATH = "/teams/daily-usage-data"
PAGE_SIZE = 500
WINDOW_MS = 30 * 86_400_000  # one request spans at most 30 days (the API refuses longer ranges)
MAX_PAGES = 10_000  # per window: a bound, far above any team's month
MAX_RETRIES = 5  # per request, for 429 and 5xx
MAX_WAIT = 60.0  # seconds, the longest single backoff (Retry-After included)
LOCAL_DATA_NOTE = (
    "local Cursor data carries no reliable per-call token counts (its state database holds conversations; "
    "the token counts in it are mostly zero), so Nomira does not read Cursor usage from this machine. "
    "Run `nomira cursor fetch` with NOMIRA_CURSOR_ADMIN_KEY set to a team Admin API key: it imports "
    "each call's tokens and the cost Cursor charged.")
_MODEL_CHARS = re.compile(r"[^A-Za-z0-9._:@+\-\[\]]+")


class CursorAPIError(Exception):
    """An endpoint failed; the message carries the HTTP status and Cursor's own words."""


@dataclass
class FetchStats:
    requests: int = 0
    retries: int = 0
    pages: int = 0
    rows: int = 0
    token_rows: int = 0
    request_rows: int = 0
    no_dollar_rows: int = 0  # request-priced rows Cursor gave no dollar figure for
    no_dollar_units: float = 0.0  # their request units (`requestsCosts`)
    unknown_models: set = field(default_factory=set)
    bad_rows: int = 0
    active_developer_days: int = 0
    covered_developer_days: int = 0


# --- HTTP ---

def _message(body: bytes) -> str:
    """Cursor's error text: a JSON `error`/`message` field, or the body's start."""
    text = body.decode("utf-8", "replace").strip()
    try:
        data = json.loads(text)
    except ValueError:
        return text[:300] or "(empty response)"
    if isinstance(data, dict):
        err = data.get("error")
        if isinstance(err, dict):
            err = err.get("message") or err.get("code")
        msg = err or data.get("message")
        if msg:
            return str(msg)[:300]
    return text[:300]


def post(base: str, path: str, key: str, body: dict, stats: FetchStats, sleep: Callable[[float], None] = time.sleep,
         timeout: float = 60.0) -> dict:
    """POST JSON; 429 and 5xx are retried with bounded backoff (Retry-After honoured)."""
    auth = base64.b64encode(f"{key}:".encode()).decode()
    data = json.dumps(body).encode()
    for attempt in range(MAX_RETRIES + 1):
        req = urllib.request.Request(base.rstrip("/") + path, data=data, method="POST", headers={
            "Authorization": f"Basic {auth}", "Content-Type": "application/json", "Accept": "application/json"})
        stats.requests += 1
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                raw = resp.read()
            try:
                parsed = json.loads(raw)
            except ValueError:
                raise CursorAPIError(f"{path}: response is not JSON: {_message(raw)}") from None
            if not isinstance(parsed, dict):
                raise CursorAPIError(f"{path}: unexpected response (not a JSON object)")
            return parsed
        except urllib.error.HTTPError as exc:
            status, msg = exc.code, _message(exc.read())
            retry_after = exc.headers.get("Retry-After") if exc.headers else None
        except (urllib.error.URLError, OSError) as exc:
            raise CursorAPIError(f"{path}: cannot reach {base}: {getattr(exc, 'reason', exc)}") from None
        if status in (401, 403):
            raise CursorAPIError(f"{path}: HTTP {status} (check NOMIRA_CURSOR_ADMIN_KEY): {msg}")
        if (status == 429 or status >= 500) and attempt < MAX_RETRIES:
            stats.retries += 1
            sleep(_backoff(attempt, retry_after))
            continue
        what = "rate limited" if status == 429 else f"HTTP {status}"
        tries = f" after {attempt + 1} tries" if attempt else ""
        raise CursorAPIError(f"{path}: {what}{tries}: {msg}")
    raise AssertionError("unreachable")


def _backoff(attempt: int, retry_after: str | None) -> float:
    try:
        if retry_after is not None:
            return min(MAX_WAIT, max(0.0, float(retry_after)))
    except ValueError:
        pass
    return min(MAX_WAIT, 2.0 * 2 ** attempt)


def windows(start_ms: int, end_ms: int) -> list[tuple[int, int]]:
    out, at = [], start_ms
    while at < end_ms:
        out.append((at, min(end_ms, at + WINDOW_MS)))
        at += WINDOW_MS
    return out


def fetch_usage_events(key: str, start_ms: int, end_ms: int, stats: FetchStats, base: str = API,
                       page_size: int = PAGE_SIZE, sleep=time.sleep) -> Iterator[dict]:
    """Every usage event in [start, end), page after page, window after window."""
    for lo, hi in windows(start_ms, end_ms):
        for page in range(1, MAX_PAGES + 1):
            data = post(base, EVENTS_PATH, key, {"startDate": lo, "endDate": hi, "page": page,
                                                 "pageSize": page_size}, stats, sleep)
            rows = data.get("usageEvents")
            if not isinstance(rows, list):
                raise CursorAPIError(f"{EVENTS_PATH}: unexpected response (no usageEvents list): "
                                     f"{_message(json.dumps(data).encode())}")
            stats.pages += 1
            yield from rows
            pagination = data.get("pagination") if isinstance(data.get("pagination"), dict) else {}
            more = pagination.get("hasNextPage")
            if more is None:  # older shape: page counts only
                more = page < int(pagination.get("numPages") or 0)
            if not more or not rows:
                break
        else:
            raise CursorAPIError(f"{EVENTS_PATH}: more than {MAX_PAGES} pages in one window; narrow --from/--to")


def fetch_daily(key: str, start_ms: int, end_ms: int, stats: FetchStats, base: str = API,
                sleep=time.sleep) -> list[dict]:
    rows: list[dict] = []
    for lo, hi in windows(start_ms, end_ms):
        data = post(base, DAILY_PATH, key, {"startDate": lo, "endDate": hi}, stats, sleep)
        if not isinstance(data.get("data"), list):
            raise CursorAPIError(f"{DAILY_PATH}: unexpected response (no data list)")
        rows.extend(r for r in data["data"] if isinstance(r, dict))
    return rows


# --- rows -> events ---

def _num(value) -> float | None:
    """A count or amount; Cursor sends some as numeric strings."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value) if value == value and value >= 0 else None
    if isinstance(value, str):
        try:
            v = float(value)
        except ValueError:
            return None
        return v if v == v and v >= 0 else None
    return None


def _count(obj: dict, key: str) -> int:
    v = _num(obj.get(key))
    return int(v) if v is not None else 0


def developer_tag(email: str, how: str, key: bytes) -> str:
    """`email` as it is, its local part (`name`), or a keyed hash (`hash`): the same person gets
    the same tag in one store, and the tag reveals nothing without the key."""
    email = (email or "").strip().lower()
    if not email:
        return ""
    if how == "name":
        return email.split("@", 1)[0][:64]
    if how == "hash":
        return "dev-" + hmac.new(key, email.encode(), hashlib.sha256).hexdigest()[:16]
    return email[:64]


def model_name(raw, table) -> tuple[str, str]:
    """(model, provider): the raw name when our table knows it, else `cursor/<raw>` (never mapped
    to a look-alike, so never priced by guess)."""
    raw = _MODEL_CHARS.sub("-", str(raw or "").strip()).strip("-") or "unknown"
    if table is not None and table.lookup(raw) is not None:
        return raw, table.lookup(raw).provider
    return f"cursor/{raw}", provider_for_model(raw, "cursor")


def to_event(row: dict, table, developer: str, ordinal: int = 0) -> tuple[dict, str]:
    """One usage-event row as a wire event, and its kind: 'token' or 'request'."""
    from nomira.ledger.wire import to_wire
    ms = _num(row.get("timestamp"))
    at = datetime.fromtimestamp(ms / 1000, timezone.utc) if ms is not None else parse_timestamp(row.get("timestamp"))
    if at is None:  # epoch ms (number or numeric string) as documented, or an ISO-8601 string
        raise ValueError("timestamp")
    usage = row.get("tokenUsage") if isinstance(row.get("tokenUsage"), dict) else None
    token_based = usage is not None and row.get("isTokenBasedCall") is not False
    tokens = TokenCounts()
    if token_based:
        tokens = TokenCounts(input=_count(usage, "inputTokens"), output=_count(usage, "outputTokens"),
                             cache_read=_count(usage, "cacheReadTokens"),
                             cache_write_5m=_count(usage, "cacheWriteTokens"))
        tokens.reported_input = tokens.input
    model, provider = model_name(row.get("model"), table)
    charged = _num(row.get("chargedCents"))
    cost, label = None, "cursor:request-priced"
    if charged is not None:
        cost, label = charged / 100, "cursor:chargedCents"
    elif token_based and _num(usage.get("totalCents")) is not None:
        cost, label = _num(usage["totalCents"]) / 100, "cursor:totalCents"
    if not token_based:
        label = "cursor:request-priced" + (":chargedCents" if cost is not None else "")
    kind = str(row.get("kind") or row.get("kindLabel") or "")
    regime = "subscription" if "included" in kind.lower() else "api"
    ident = json.dumps([row.get("timestamp"), row.get("userEmail"), row.get("model"), kind, usage,
                        row.get("requestsCosts"), row.get("chargedCents"), ordinal], sort_keys=True, default=str)
    event = UsageEvent(source="cursor", provider=provider, model=model, occurred_at=at, session_id="", project="",
                       tokens=tokens, message_id="cursor-" + hashlib.sha256(ident.encode()).hexdigest()[:32])
    wire = to_wire(event, None, regime, {"developer": developer})
    wire["cost_usd"], wire["cost_source"] = cost, label
    return wire, "token" if token_based else "request"


def events_from_rows(rows, table, developer_of: Callable[[str], str], stats: FetchStats) -> list[dict]:
    """Wire events of the rows; a row without a usable timestamp is counted and skipped."""
    out, seen = [], {}
    for row in rows:
        stats.rows += 1
        if not isinstance(row, dict):
            stats.bad_rows += 1
            continue
        fingerprint = json.dumps(row, sort_keys=True, default=str)
        ordinal = seen[fingerprint] = seen.get(fingerprint, -1) + 1  # identical rows stay distinct calls
        try:
            wire, kind = to_event(row, table, developer_of(str(row.get("userEmail") or "")), ordinal)
        except (ValueError, OverflowError, OSError):
            stats.bad_rows += 1
            continue
        if kind == "token":
            stats.token_rows += 1
        else:
            stats.request_rows += 1
            if wire["cost_usd"] is None:
                stats.no_dollar_rows += 1
                stats.no_dollar_units += _num(row.get("requestsCosts")) or 0.0
        if wire["model"].startswith("cursor/"):
            stats.unknown_models.add(wire["model"])
        out.append(wire)
    return out


def coverage(daily: list[dict], events: list[dict], developer_of: Callable[[str], str], stats: FetchStats) -> None:
    """Active developer-days (daily usage data) that have at least one usage event."""
    have = {(e["tags"].get("developer", ""), e["occurred_at"][:10]) for e in events}
    for row in daily:
        if not row.get("isActive"):
            continue
        ms = _num(row.get("date"))
        if ms is None:
            continue
        day = datetime.fromtimestamp(ms / 1000, timezone.utc).date().isoformat()
        stats.active_developer_days += 1
        stats.covered_developer_days += (developer_of(str(row.get("email") or "")), day) in have


def estimated_split(events: list[dict], table) -> dict[str, dict]:
    """Per model: the charged total split by token type in proportion to list rates. An estimate
    (Cursor states one amount per call), so it is labelled so; None for models we cannot price."""
    from nomira.pricing.engine import Pricer
    from nomira.ledger.wire import from_wire
    pricer = Pricer(table)
    out: dict[str, dict] = {}
    for e in events:
        if e["cost_usd"] is None or not any(e["tokens"].values()):
            continue
        entry = out.setdefault(e["model"], {"estimated": True, "charged_usd": 0.0, "by_type_usd": {}})
        entry["charged_usd"] += e["cost_usd"]
        cost = pricer(from_wire(e)) if not e["model"].startswith("cursor/") else None
        if cost is None or cost.total_usd <= 0:
            entry["by_type_usd"] = None
        elif entry["by_type_usd"] is not None:
            for t, usd in cost.by_type().items():
                entry["by_type_usd"][t] = entry["by_type_usd"].get(t, 0.0) + e["cost_usd"] * usd / cost.total_usd
    return out
