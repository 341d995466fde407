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
    """A finite number, else None (a 400-digit integer or a NaN in a payload is no figure)."""
    if not isinstance(v, (int, float)) or isinstance(v, bool):
        return None
    try:
        f = float(v)
    except OverflowError:
        return None
    return f if f - f == 0.0 else None


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
    from nomira.dirs import limits_state
    return limits_state(env)


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
    from nomira.dirs import write_atomic
    write_atomic(state_path(env), json.dumps({"snapshots": [s.as_dict() for s in merged]}, separators=(",", ":")))


# --- the collector's side: each developer's current window (migration 0015) -------------
# One row per (tenant, developer, agent, window): the newest snapshot, plus an earlier one of the
# same window period (the anchor) for the recent pace. Bounded whatever is shipped; a snapshot
# not newer than the stored one changes nothing (re-shipping is idempotent, counted as deduped).
# Replay leaves it alone: these rows are not derived from raw events.

TABLE = "limit_windows"
ANCHOR_SPAN_SECONDS = 3600  # the anchor moves up to the last snapshot once it is older than this
SAME_PERIOD_SECONDS = 120  # two resets_at this close name the same window period (reported times drift)


def create_table(db) -> None:
    db.execute(f"""CREATE TABLE {TABLE} (tenant TEXT NOT NULL, developer TEXT NOT NULL, agent TEXT NOT NULL,
        limit_window TEXT NOT NULL, used_percent REAL NOT NULL, window_minutes INTEGER, resets_at TEXT,
        source TEXT NOT NULL, observed_at TEXT NOT NULL, received_at TEXT NOT NULL, prev_used_percent REAL,
        prev_observed_at TEXT, PRIMARY KEY (tenant, developer, agent, limit_window))""")


def _iso(value: str | None) -> str | None:
    """UTC, whole seconds: one fixed-width text per instant, so stored times compare as strings."""
    from nomira.ledger.events import parse_timestamp
    at = parse_timestamp(value) if value else None
    return at.astimezone(timezone.utc).isoformat(timespec="seconds") if at else None


def _seconds(a: str, b: str) -> float:
    return (datetime.fromisoformat(a) - datetime.fromisoformat(b)).total_seconds()


def _anchor(current: tuple | None, resets_at: str | None, observed_at: str) -> tuple:
    """(prev_used_percent, prev_observed_at) for a new snapshot, given the stored row
    (used, resets_at, observed_at, prev_used, prev_observed): kept while it is recent, else the
    stored snapshot; none when the window rolled over in between."""
    if current is None:
        return None, None
    used, old_resets, old_observed, prev_used, prev_observed = current
    same = (old_resets is None and resets_at is None) or (
        old_resets is not None and resets_at is not None and abs(_seconds(old_resets, resets_at)) <= SAME_PERIOD_SECONDS)
    if not same:
        return None, None
    if prev_observed is not None and _seconds(observed_at, prev_observed) <= ANCHOR_SPAN_SECONDS:
        return prev_used, prev_observed
    return used, old_observed


def store_snapshots(db, records: list[dict], tenant: str | None = None) -> list[tuple[bool, str]]:
    """Store validated wire limit snapshots (tenant forced when given, developer hashed when the
    store hashes identifiers); (deduped, key) per record, in order."""
    from nomira.ledger import engine
    from nomira.ledger.store import _now, scoped
    prepared = scoped(db, records, tenant)
    received = _now()
    return engine.write_transaction(db, lambda: [_upsert(db, r, received) for r in prepared])


def _upsert(db, r: dict, received: str) -> tuple[bool, str]:
    from nomira.ledger.wire import limit_key
    tags = r.get("tags") or {}
    who = (tags.get("tenant") or "", tags.get("developer") or "", r["agent"], r["window"])
    at, resets = _iso(r["observed_at"]), _iso(r.get("resets_at"))
    current = db.execute(f"SELECT used_percent, resets_at, observed_at, prev_used_percent, prev_observed_at "
                         f"FROM {TABLE} WHERE tenant = ? AND developer = ? AND agent = ? AND limit_window = ?",
                         who).fetchone()
    key = limit_key(r)
    if current is not None and current[2] >= at:
        return True, key  # this snapshot or a newer one is stored
    prev_used, prev_at = _anchor(current and tuple(current), resets, at)
    cols = ("tenant", "developer", "agent", "limit_window", "used_percent", "window_minutes", "resets_at", "source",
            "observed_at", "received_at", "prev_used_percent", "prev_observed_at")
    db.execute(f"INSERT INTO {TABLE} ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))}) "
               "ON CONFLICT (tenant, developer, agent, limit_window) DO UPDATE SET "
               + ", ".join(f"{c} = excluded.{c}" for c in cols[4:])
               + f" WHERE excluded.observed_at > {TABLE}.observed_at",
               (*who, float(r["used_percent"]), r.get("window_minutes"), resets, r["source"], at, received,
                prev_used, prev_at))
    return False, key


@dataclass(frozen=True)
class CurrentWindow:
    """A developer's newest snapshot of one window, as the collector holds it."""
    tenant: str
    developer: str
    snapshot: LimitSnapshot
    prev_used_percent: float | None = None
    prev_observed_at: datetime | None = None


def current(db, tenant: str | None) -> list[CurrentWindow]:
    """Every developer's current windows (one tenant, or all when None), sorted by tenant, developer,
    agent, window. Codex allowances carried on usage events (`current_limits`, no reset time) fill
    in windows no newer snapshot covers."""
    where, args = ("WHERE tenant = ?", (tenant,)) if tenant is not None else ("", ())
    out: dict[tuple, CurrentWindow] = {}
    for (t, dev, agent, window, used, minutes, resets, source, observed, prev_used,
         prev_at) in db.execute(f"SELECT tenant, developer, agent, limit_window, used_percent, window_minutes, "
                                f"resets_at, source, observed_at, prev_used_percent, prev_observed_at "
                                f"FROM {TABLE} {where}", args):
        snap = LimitSnapshot(agent, window, float(used), minutes, _utc(datetime.fromisoformat(resets)) if resets
                             else None, source, _utc(datetime.fromisoformat(observed)))
        out[(t, dev, agent, window)] = CurrentWindow(t, dev, snap, prev_used, _utc(datetime.fromisoformat(prev_at))
                                                     if prev_at else None)
    from nomira.ledger.events import parse_timestamp
    for t, dev, provider, occurred, *figures in db.execute(
            "SELECT tenant, developer, provider, occurred_at, primary_used_percent, primary_window_minutes, "
            f"secondary_used_percent, secondary_window_minutes FROM current_limits {where}", args):
        at = parse_timestamp(occurred)
        agent = "codex" if provider == "openai" else provider
        for window, used, minutes in (("primary", *figures[:2]), ("secondary", *figures[2:])):
            k = (t, dev, agent, window)
            if used is None or at is None or (k in out and out[k].snapshot.observed_at >= at):
                continue
            out[k] = CurrentWindow(t, dev, LimitSnapshot(agent, window, float(used), int(minutes) if minutes
                                                         else None, None, "event", at))
    return [out[k] for k in sorted(out)]


def from_codex_states(states: Iterable[dict]) -> list[LimitSnapshot]:
    """The newest `rate_limits` the Codex rollouts logged (their scan states, read once by the scan),
    including token_count lines that carry no usage."""
    from nomira.sources import codex
    found = codex.latest_allowance(states)
    return from_allowance(*found) if found else []
