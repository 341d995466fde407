"""Subscription limit snapshots: how much of a plan's usage window is used, and when it resets.

Three places report them, each translated here into the one `LimitSnapshot`:
- Codex rollouts: `token_count` lines carry `rate_limits.primary/secondary` (parsed by
  `sources/codex.py` into `Allowance`; reused, never re-parsed);
- Claude Code's statusline payload (Claude Code >= 2.1.80): `rate_limits.five_hour/seven_day`
  `{used_percentage, resets_at (unix s)}`; `nomira statusline` records the latest in a small
  state file, since nothing else on disk carries Claude's limits;
- the agents' own usage endpoints (`nomira limits --fetch`, sources/usage_endpoints.py).

A snapshot is usage only: a percentage, a window, two instants and where it came from.
"""
from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterable, Mapping

STATE_FILE = "limits.json"
# Claude's windows as the statusline and the OAuth usage endpoint name them.
CLAUDE_WINDOWS = {"five_hour": 300, "seven_day": 10080, "seven_day_opus": 10080, "seven_day_sonnet": 10080,
                  "seven_day_oauth_apps": 10080}


@dataclass(frozen=True)
class LimitSnapshot:
    agent: str  # claude_code | codex
    window: str  # five_hour, seven_day (Claude); primary, secondary (Codex)
    used_percent: float  # 0-100
    window_minutes: int | None
    resets_at: datetime | None  # UTC
    source: str  # statusline | log | api
    observed_at: datetime  # UTC

    def as_dict(self) -> dict:
        d = asdict(self)
        for k in ("resets_at", "observed_at"):
            d[k] = d[k].isoformat() if d[k] is not None else None
        return d

    @classmethod
    def from_dict(cls, d: Mapping) -> "LimitSnapshot | None":
        try:
            resets = d.get("resets_at")
            return cls(agent=str(d["agent"]), window=str(d["window"]), used_percent=float(d["used_percent"]),
                       window_minutes=int(d["window_minutes"]) if d.get("window_minutes") is not None else None,
                       resets_at=_utc(datetime.fromisoformat(resets)) if resets else None, source=str(d["source"]),
                       observed_at=_utc(datetime.fromisoformat(d["observed_at"])))
        except (KeyError, TypeError, ValueError):
            return None


def _utc(dt: datetime) -> datetime:
    return dt.astimezone(timezone.utc) if dt.tzinfo else dt.replace(tzinfo=timezone.utc)


def _number(v) -> float | None:
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None


def _epoch(v) -> datetime | None:
    n = _number(v)
    if n is None or n <= 0:
        return None
    try:
        return datetime.fromtimestamp(n, timezone.utc)
    except (OverflowError, OSError, ValueError):
        return None


def from_allowance(observed: str | datetime, allowance, source: str = "log") -> list[LimitSnapshot]:
    """Codex `rate_limits` (an `events.Allowance`) observed at a rollout line's timestamp."""
    from nomira.ledger.events import parse_timestamp
    at = observed if isinstance(observed, datetime) else parse_timestamp(observed)
    if at is None:
        return []
    out = []
    for window in ("primary", "secondary"):
        used = _number(getattr(allowance, f"{window}_used_percent"))
        if used is None:
            continue
        minutes = getattr(allowance, f"{window}_window_minutes")
        out.append(LimitSnapshot("codex", window, used, minutes if isinstance(minutes, int) else None,
                                 _epoch(getattr(allowance, f"{window}_resets_at")), source, at))
    return out


def from_claude_windows(windows: Mapping, observed: datetime, source: str, resets_parser=_epoch) -> list[LimitSnapshot]:
    """Claude windows `{name: {used_percentage|utilization, resets_at}}` (statusline or usage endpoint)."""
    out = []
    if not isinstance(windows, Mapping):
        return out
    for name, minutes in CLAUDE_WINDOWS.items():
        w = windows.get(name)
        if not isinstance(w, Mapping):
            continue
        used = _number(w.get("used_percentage", w.get("utilization")))
        if used is None:
            continue
        out.append(LimitSnapshot("claude_code", name, used, minutes, resets_parser(w.get("resets_at")), source,
                                 observed))
    return out


# --- the local state file: the latest snapshot per (agent, window) -----------------

def state_path(env: Mapping[str, str] = os.environ) -> Path:
    from nomira.dirs import state_home
    return state_home(env) / STATE_FILE


def load_state(env: Mapping[str, str] = os.environ) -> list[LimitSnapshot]:
    try:
        doc = json.loads(state_path(env).read_text())
    except (OSError, ValueError):
        return []
    rows = doc.get("snapshots") if isinstance(doc, dict) else None
    snaps = (LimitSnapshot.from_dict(r) for r in rows if isinstance(r, dict)) if isinstance(rows, list) else ()
    return [s for s in snaps if s is not None]


def latest(snapshots: Iterable[LimitSnapshot]) -> list[LimitSnapshot]:
    """The newest snapshot of each (agent, window), sorted by agent then window."""
    best: dict[tuple[str, str], LimitSnapshot] = {}
    for s in snapshots:
        k = (s.agent, s.window)
        if k not in best or s.observed_at > best[k].observed_at:
            best[k] = s
    return [best[k] for k in sorted(best)]


def save_state(new: Iterable[LimitSnapshot], env: Mapping[str, str] = os.environ) -> None:
    """Merge `new` into the state file (newest per window wins); atomic: temp file then rename."""
    new = list(new)
    if not new:
        return
    merged = latest([*load_state(env), *new])
    path = state_path(env)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps({"snapshots": [s.as_dict() for s in merged]}, separators=(",", ":")))
    os.replace(tmp, path)
