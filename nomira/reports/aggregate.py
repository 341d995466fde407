"""Aggregates shared by the terminal report, --json and (later) the dashboard.

Money is summed in float at full precision and rounded only for display.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Iterable

from nomira.events import TOKEN_TYPES, UsageEvent
from nomira.pricing.engine import Cost

REGIME_LABELS = {
    "subscription": "API-equivalent value",
    "api": "cost",
}
SUBSCRIPTION_SOURCES = {"claude_code", "codex"}


@dataclass
class Tally:
    calls: int = 0
    priced_calls: int = 0
    unpriced_calls: int = 0
    tokens: dict = field(default_factory=lambda: {t: 0 for t in (*TOKEN_TYPES, "reasoning")})
    cost: dict = field(default_factory=lambda: {t: 0.0 for t in TOKEN_TYPES})
    naive_usd: float = 0.0
    sidechain_usd: float = 0.0
    first: object = None
    last: object = None

    def add(self, event: UsageEvent, cost: Cost | None) -> None:
        self.calls += 1
        t = event.tokens
        for name in self.tokens:
            self.tokens[name] += getattr(t, name)
        if self.first is None or event.occurred_at < self.first:
            self.first = event.occurred_at
        if self.last is None or event.occurred_at > self.last:
            self.last = event.occurred_at
        if cost is None:
            self.unpriced_calls += 1
            return
        self.priced_calls += 1
        for name, usd in cost.by_type().items():
            self.cost[name] += usd
        self.naive_usd += cost.naive_usd
        if event.is_sidechain:
            self.sidechain_usd += cost.total_usd

    @property
    def total_usd(self) -> float:
        return sum(self.cost.values())

    @property
    def cache_usd(self) -> float:
        return self.cost["cache_read"] + self.cost["cache_write_5m"] + self.cost["cache_write_1h"]

    @property
    def total_tokens(self) -> int:
        return sum(v for k, v in self.tokens.items() if k != "reasoning")

    def as_dict(self) -> dict:
        total = self.total_usd
        return {
            "calls": self.calls,
            "unpriced_calls": self.unpriced_calls,
            "tokens": dict(self.tokens, total=self.total_tokens),
            "cost_usd": total,
            "cost_by_type_usd": dict(self.cost),
            "cache_share_of_cost": (self.cache_usd / total) if total else 0.0,
            "naive_cost_usd": self.naive_usd,
            "sidechain_cost_usd": self.sidechain_usd,
            "first": self.first.isoformat() if self.first else None,
            "last": self.last.isoformat() if self.last else None,
        }


Priced = list[tuple[UsageEvent, Cost | None]]


def group(priced: Iterable[tuple[UsageEvent, Cost | None]],
          key: Callable[[UsageEvent, Cost | None], object]) -> dict[object, Tally]:
    out: dict[object, Tally] = {}
    for event, cost in priced:
        k = key(event, cost)
        tally = out.get(k)
        if tally is None:
            tally = out[k] = Tally()
        tally.add(event, cost)
    return out


def total(priced: Iterable[tuple[UsageEvent, Cost | None]]) -> Tally:
    tally = Tally()
    for event, cost in priced:
        tally.add(event, cost)
    return tally


def regime_of(sources: Iterable[str], override: str | None = None) -> str:
    if override in REGIME_LABELS:
        return override
    return "subscription" if set(sources) <= SUBSCRIPTION_SOURCES else "api"
