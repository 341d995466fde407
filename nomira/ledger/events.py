"""The one seam: every source emits UsageEvent, every consumer reads it.

An event carries usage only: who/what/when and token counts by type. No prompt,
completion, tool input or file path ever enters it; the project is a label.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from datetime import datetime, timezone

TOKEN_TYPES = ("input", "output", "cache_read", "cache_write_5m", "cache_write_1h")
# Sources whose usage is paid by a plan by default (its dollars are API-equivalent value, not a bill).
SUBSCRIPTION_SOURCES = {"claude_code", "codex"}
SUBSCRIPTION_SOURCES |= {"gemini_cli", "qwen_code", "copilot_cli", "kimi_cli", "droid"}  # issue 22 agents whose default sign-in is a plan
SUBSCRIPTION_SOURCES |= {"kimi_code"}  # issue 27: Kimi CLI's format and sign-in
SUBSCRIPTION_SOURCES |= {"kimi_work", "claude_cowork", "qoder", "vscode_copilot"}  # issue 27: Kimi desktop, Claude Cowork, Qoder: plans
SUBSCRIPTION_SOURCES |= {"visualstudio_copilot"}  # issue 27, s27c: Copilot plans (premium requests)
# Tokens in one call: far above any context window, far below SQLite's 2**63. A log's count past it
# (or negative, or not an integer) is no call's: its line is counted and skipped, never priced.
MAX_COUNT = 10 ** 12


def plausible_count(v) -> bool:
    return type(v) is int and 0 <= v <= MAX_COUNT


def whole_count(v) -> int | None:
    """A logged token count as an int: an integer, or a float of whole value (JSON has one number type:
    `12.0` is the count 12), in 0..`MAX_COUNT`; None for anything else (a fraction, a string, a bool,
    a negative, NaN)."""
    if type(v) is int:
        return v if 0 <= v <= MAX_COUNT else None
    if type(v) is float and 0 <= v <= MAX_COUNT and v.is_integer():
        return int(v)
    return None


def plausible(t: "TokenCounts") -> bool:
    """Whether every count of an event could be a call's (`MAX_COUNT`)."""
    return all(map(plausible_count, (t.input, t.output, t.cache_read, t.cache_write_5m, t.cache_write_1h,
                                     t.reasoning)))


# Hot-path types are slots dataclasses but not frozen: frozen __init__ costs ~4x, and a
# history holds hundreds of thousands of events. Treat them as immutable all the same.
@dataclass(slots=True)
class TokenCounts:
    """Billable token counts, each priced at its own rate.

    `input` is *uncached* input for every provider (sources translate: Codex/OpenAI
    report input including cached, so the source subtracts). `output` includes
    reasoning; `reasoning` is the part of output that was reasoning, for display
    only, never billed twice. `reported_input` is the raw input field as the agent
    logged it, kept so the report can show what a cache-blind tool would have billed.
    """

    input: int = 0
    output: int = 0
    cache_read: int = 0
    cache_write_5m: int = 0
    cache_write_1h: int = 0
    reasoning: int = 0
    reported_input: int = 0

    @property
    def cache_write(self) -> int:
        return self.cache_write_5m + self.cache_write_1h

    @property
    def prompt_total(self) -> int:
        """All input-side tokens of the request (the long-context threshold counts these)."""
        return self.input + self.cache_read + self.cache_write_5m + self.cache_write_1h

    @property
    def total(self) -> int:
        return self.prompt_total + self.output


@dataclass(frozen=True, slots=True)
class Allowance:
    """Subscription allowance snapshot (Codex `rate_limits`)."""

    primary_used_percent: float | None = None
    primary_window_minutes: int | None = None
    primary_resets_at: int | None = None
    secondary_used_percent: float | None = None
    secondary_window_minutes: int | None = None
    secondary_resets_at: int | None = None
    plan_type: str | None = None


@dataclass(slots=True)
class UsageEvent:
    source: str  # claude_code | codex
    provider: str  # anthropic | openai | google
    model: str
    occurred_at: datetime  # UTC, tz-aware
    session_id: str
    project: str
    tokens: TokenCounts
    message_id: str | None = None
    request_id: str | None = None
    is_sidechain: bool = False
    model_is_fallback: bool = False
    # Price modifiers logged by the agent (speed=fast, service_tier, inference_geo).
    modifiers: tuple[tuple[str, str], ...] = field(default=())
    allowance: Allowance | None = None
    # The agent's own cost figure for the call (USD), where it logs one: shown beside the
    # computed cost, never used as it.
    agent_cost_usd: float | None = None
    # True when the agent logs only a total (per session or per run), not each request: such
    # an event is many requests, so a per-request rule (a long-context tier) does not apply to it.
    aggregated: bool = False
    # The git branch the agent logged for the session (Claude Code `gitBranch`): a label, never a path.
    branch: str | None = None


FAST = ("speed", "fast")


def model_label(event: "UsageEvent") -> str:
    """The model a report lists a call under: fast mode (billed at a multiple of the model's rates) apart,
    as `<model>-fast` (ccusage's name for it); the model itself still prices the call."""
    return event.model + "-fast" if event.modifiers and FAST in event.modifiers else event.model


def parse_timestamp(ts: str, fromiso=datetime.fromisoformat, utc=timezone.utc) -> datetime | None:
    """ISO-8601 (with `Z`) -> aware UTC datetime; None when unparseable, or in datetime's first or last
    year (`usable_time`: no log is, and a time zone's conversion there overflows)."""
    try:
        dt = fromiso(ts)
        tz = dt.tzinfo
        if tz is not utc:  # (`Z` and +00:00 parse to this one object; astimezone would return dt itself)
            dt = dt.astimezone(utc) if tz else dt.replace(tzinfo=utc)
    except (TypeError, ValueError, OverflowError):  # year 1 / 9999 with an offset overflows
        return None
    return dt if 1 < dt.year < 9999 else None


def usable_time(dt: datetime | None) -> bool:
    """A time every report can show in any time zone: not in datetime's first or last year."""
    return dt is not None and 1 < dt.year < 9999


@lru_cache(maxsize=4096)
def provider_for_model(model: str, default: str = "other") -> str:
    m = model.lower()
    if "claude" in m:
        return "anthropic"
    if m.startswith(("gpt", "o1", "o3", "o4", "codex")) or "/gpt" in m:
        return "openai"
    if "gemini" in m:
        return "google"
    return default
