"""How far each budget is into its current window, from priced events or a store.

A budget's percent is spent / usd (money budgets: the bill, or API-equivalent value on a
subscription) or the limit window's used % (limit budgets). Unpriced calls are never counted as
$0: they are reported beside the figure (`unpriced_calls`), and the percent is a floor.
"""
from __future__ import annotations

import getpass
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone, tzinfo

from nomira.alerts.budgets import Budget, window_bounds
from nomira.reports.periods import BLOCK

RECENT = 2 * BLOCK  # the events that can belong to the active 5-hour block


@dataclass
class Status:
    budget: Budget
    window_key: str
    start: datetime | None
    end: datetime | None
    spent: float  # USD, or the limit's used %
    unpriced_calls: int = 0
    note: str = ""  # why it could not be evaluated (then percent is None)

    @property
    def percent(self) -> float | None:
        if self.note:
            return None
        return self.spent if self.budget.limit else 100.0 * self.spent / self.budget.usd

    @property
    def crossed(self) -> list[int]:
        p = self.percent
        return [] if p is None else [t for t in self.budget.thresholds if p >= t]

    def as_dict(self) -> dict:
        b = self.budget
        return {"name": b.name, "scope": b.scope, "match": b.match, "window": b.limit or b.window,
                "window_key": self.window_key, "start": self.start.isoformat() if self.start else None,
                "end": self.end.isoformat() if self.end else None,
                **({"limit": b.limit, "used_percent": self.spent} if b.limit else {"budget_usd": b.usd,
                                                                                    "spent_usd": self.spent}),
                "percent": self.percent, "thresholds": list(b.thresholds), "crossed": self.crossed,
                "unpriced_calls": self.unpriced_calls, "note": self.note or None}


def text(s: Status) -> str:
    """One line: 'shop-monthly: $412.00 of $500.00 this month (82%, 80% reached)'."""
    from nomira.reports.render import usd
    b = s.budget
    if s.note:
        return f"budget {b.name}: {s.note}"
    if b.limit:
        head = f"budget {b.name}: {b.limit} limit {s.spent:.0f}% used"
    else:
        span = {"day": "today", "week": "this week", "month": "this month", "block": "this 5-hour block"}[b.window]
        head = f"budget {b.name}: {usd(s.spent)} of {usd(b.usd)} {span} ({s.percent:.0f}%)"
    if s.crossed:
        head += f", {s.crossed[-1]}% threshold reached"
    if s.unpriced_calls:
        head += f"; {s.unpriced_calls} unpriced call(s) not counted"
    return head


def _matches(b: Budget, tags: dict) -> bool:
    if b.scope == "all":
        return True
    if b.scope == "tag":
        key, _, value = b.match.partition("=")
        return tags.get(key) == value
    return tags.get(b.scope) == b.match


def from_events(budgets: list[Budget], priced, now: datetime, tz: tzinfo, limits=()) -> list[Status]:
    """Budgets over this machine's priced (event, cost) pairs. Local logs carry a project only: a
    developer budget counts them when it names this login; tenant and tag budgets need a store."""
    from nomira.reports.periods import blocks
    priced = list(priced)
    me = getpass.getuser()
    recent = [(e, c) for e, c in priced if e.occurred_at >= now - RECENT]
    active = [b for b in blocks(recent, tz) if b.is_active(now)]
    block_start = active[-1].start if active else None
    out = []
    for b in budgets:
        if b.limit:
            out.append(limit_status(b, limits, now))
            continue
        if b.scope in ("tenant", "tag"):
            out.append(Status(b, "", None, None, 0.0, note=f"a {b.scope} budget is counted from a store (--db)"))
            continue
        start, end, key = window_bounds(b.window, now, tz, block_start)
        spent, unpriced = 0.0, 0
        for e, c in priced:
            if not start <= e.occurred_at < end:
                continue
            if not _matches(b, {"project": e.project, "developer": me}):
                continue
            if c is None:
                unpriced += 1
            else:
                spent += c.total_usd
        out.append(Status(b, key, start, end, spent, unpriced))
    return out


def from_store(budgets: list[Budget], db, now: datetime, tz: tzinfo, limits=()) -> list[Status]:
    """Budgets over a store's events (every developer, tenant and tag the team shipped)."""
    from nomira.ledger import store
    from nomira.ledger.events import TokenCounts, UsageEvent
    from nomira.reports.periods import blocks
    out = []
    block_start = None
    if any(b.window == "block" and not b.limit for b in budgets):
        times = store.event_times(db, now - RECENT, now)
        evs = [(UsageEvent("", "", "", t, "", "", TokenCounts()), None) for t in times]
        active = [bl for bl in blocks(evs, tz) if bl.is_active(now)]
        block_start = active[-1].start if active else None
    for b in budgets:
        if b.limit:
            out.append(limit_status(b, limits, now))
            continue
        start, end, key = window_bounds(b.window, now, tz, block_start)
        column, value = (None, None) if b.scope == "all" else (
            b.match.partition("=")[::2] if b.scope == "tag" else (b.scope, b.match))
        spent, unpriced = store.window_spend(db, start, end, column, value)
        out.append(Status(b, key, start, end, spent, unpriced))
    return out


def limit_status(b: Budget, snapshots, now: datetime) -> Status:
    agent, _, window = b.limit.rpartition(":")
    agent = {"claude": "claude_code"}.get(agent, agent)
    live = [s for s in snapshots if s.window == window and (not agent or s.agent == agent)
            and (s.resets_at is None or s.resets_at > now)]
    if not live:
        return Status(b, "", None, None, 0.0, note=f"no current {b.limit} limit snapshot (see `nomira limits`)")
    s = max(live, key=lambda s: s.used_percent)
    start = s.resets_at - timedelta(minutes=s.window_minutes) if s.resets_at and s.window_minutes else None
    key = f"limit:{s.agent}:{s.window}:{s.resets_at.astimezone(timezone.utc):%Y-%m-%dT%H:%MZ}" if s.resets_at \
        else f"limit:{s.agent}:{s.window}"
    return Status(b, key, start, s.resets_at, s.used_percent)
