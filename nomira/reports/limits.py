"""Limit windows: time to reset and when the current burn rate reaches 100%.

Projection rule (one rule for every window, from the snapshot alone):
    start   = resets_at - window_minutes            (when the window opened)
    elapsed = observed_at - start                   (how long usage has run in it)
    rate    = used_percent / elapsed                (% per second: the average burn so far)
    hit_at  = start + 100 / rate = start + elapsed * 100 / used_percent
    at_reset = used_percent * window / elapsed      (% reached at the reset if the rate holds)
It is "will hit" when hit_at is before resets_at, "won't hit" otherwise. No projection
("unknown") when resets_at or the window length is missing, or less than a minute of the
window has run (too little to call a rate). 0% used never hits; >= 100% is "reached". A
snapshot whose resets_at has passed is "reset": the window rolled over since it was taken.
The average since the window opened is used, not a recent slice: it is what the provider's
own percentage measures, needs no event history, and is the same for every source.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo

from nomira.ledger.limits import LimitSnapshot

MIN_ELAPSED = timedelta(minutes=1)


@dataclass(frozen=True)
class Projection:
    status: str  # reached | will_hit | wont_hit | unknown | reset
    hit_at: datetime | None = None
    at_reset_percent: float | None = None

    def as_dict(self) -> dict:
        return {"status": self.status, "hit_at": self.hit_at.isoformat() if self.hit_at else None,
                "at_reset_percent": self.at_reset_percent}


def project(s: LimitSnapshot, now: datetime) -> Projection:
    if s.resets_at is not None and s.resets_at <= now:
        return Projection("reset")
    if s.used_percent >= 100:
        return Projection("reached")
    if s.resets_at is None or not s.window_minutes:
        return Projection("unknown")
    window = timedelta(minutes=s.window_minutes)
    start = s.resets_at - window
    elapsed = s.observed_at - start
    if elapsed < MIN_ELAPSED:
        return Projection("unknown")
    if s.used_percent <= 0:
        return Projection("wont_hit", None, 0.0)
    hit_at = start + elapsed * (100 / s.used_percent)
    at_reset = s.used_percent * (window / elapsed)
    return Projection("will_hit" if hit_at < s.resets_at else "wont_hit", hit_at, at_reset)


MIN_RECENT = timedelta(minutes=5)


def recent_pace(s: LimitSnapshot, prev_used: float | None, prev_at: datetime | None, now: datetime) -> Projection | None:
    """The same projection at the recent pace: from an earlier snapshot of the same window period
    (`prev_*`, at least MIN_RECENT before `s`) to `s`, extended to 100% and to the reset.
    None when there is no such snapshot, the percentage went down, or the reset time is unknown."""
    if prev_used is None or prev_at is None or s.resets_at is None:
        return None
    span = (s.observed_at - prev_at).total_seconds()
    if span < MIN_RECENT.total_seconds() or s.used_percent < prev_used:
        return None
    if s.resets_at <= now:
        return Projection("reset")
    if s.used_percent >= 100:
        return Projection("reached")
    per_second = (s.used_percent - prev_used) / span
    at_reset = s.used_percent + per_second * (s.resets_at - s.observed_at).total_seconds()
    if per_second <= 0:
        return Projection("wont_hit", None, at_reset)
    hit_at = s.observed_at + timedelta(seconds=(100 - s.used_percent) / per_second)
    return Projection("will_hit" if hit_at < s.resets_at else "wont_hit", hit_at, at_reset)


def duration(td: timedelta) -> str:
    """'2 h 10 min', '3 d 4 h', '45 s': two units at most, for people."""
    secs = max(int(td.total_seconds()), 0)
    d, rem = divmod(secs, 86400)
    h, rem = divmod(rem, 3600)
    m, s = divmod(rem, 60)
    if d:
        return f"{d} d {h} h" if h else f"{d} d"
    if h:
        return f"{h} h {m} min" if m else f"{h} h"
    if m:
        return f"{m} min"
    return f"{s} s"


def window_label(s: LimitSnapshot) -> str:
    m = s.window_minutes
    span = "" if not m else (f"{m // 1440} d" if m % 1440 == 0 else f"{m // 60} h" if m % 60 == 0 else f"{m} min")
    name = {"five_hour": "5-hour", "seven_day": "weekly", "seven_day_opus": "weekly Opus",
            "seven_day_sonnet": "weekly Sonnet", "seven_day_oauth_apps": "weekly apps"}.get(s.window, s.window)
    return f"{'Claude' if s.agent == 'claude_code' else 'Codex'} {name}" + (f" ({span})" if span and
                                                                             s.agent == "codex" else "")


def describe(p: Projection, s: LimitSnapshot, tz: tzinfo) -> str:
    if p.status == "reset":
        return "window has reset since this snapshot"
    if p.status == "reached":
        return "limit reached"
    if p.status == "unknown":
        return "too early to project"
    if p.status == "will_hit":
        return (f"at this rate you reach 100% at {p.hit_at.astimezone(tz):%H:%M}, "
                f"{duration(s.resets_at - p.hit_at)} before the reset")
    return f"won't hit it at this rate (about {p.at_reset_percent:.0f}% at the reset)"


def rows(snapshots: list[LimitSnapshot], now: datetime) -> list[dict]:
    out = []
    for s in snapshots:
        p = project(s, now)
        out.append({**s.as_dict(), "resets_in_seconds": (s.resets_at - now).total_seconds() if s.resets_at else None,
                    "age_seconds": (now - s.observed_at).total_seconds(), "projection": p.as_dict()})
    return out


def render_text(snapshots: list[LimitSnapshot], now: datetime, tz: tzinfo) -> str:
    lines = []
    for s in snapshots:
        p = project(s, now)
        reset = (f"resets in {duration(s.resets_at - now)}" if s.resets_at and s.resets_at > now
                 else "reset time unknown" if s.resets_at is None else "reset")
        lines.append(f"{window_label(s):<22} {s.used_percent:5.1f}%  {reset}  "
                     f"(seen {duration(now - s.observed_at)} ago, {s.source})")
        lines.append(f"{'':<22} {describe(p, s, tz)}")
    return "\n".join(lines) + "\n"
