"""Aggregates shared by the terminal report, --json and (later) the dashboard.

Money is summed in float at full precision and rounded only for display.
"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from itertools import chain
from typing import Callable, Iterable, Sequence

from nomira.ledger.events import SUBSCRIPTION_SOURCES, TOKEN_TYPES, UsageEvent
from nomira.pricing.engine import Cost, unpriced_reason

REGIME_LABELS = {
    "subscription": "API-equivalent value",
    "api": "cost",
    # subscription agents next to API-key usage (e.g. OpenCode): never call the former a bill
    "mixed": "API-equivalent value + cost",
}
# column header for the money figure in each regime
MONEY_COLUMN = {"subscription": "Value", "api": "Cost", "mixed": "Value+Cost"}


class Tally:
    """Running sums for one group of events (tokens and USD by type)."""

    __slots__ = ("calls", "unpriced_calls", "tokens", "cost", "naive_usd", "sidechain_usd", "first", "last",
                 "unpriced_reasons", "unpriced_modifiers", "assumed_calls")

    def __init__(self) -> None:
        self.calls = 0
        self.unpriced_calls = 0
        self.tokens = [0, 0, 0, 0, 0, 0]  # TOKEN_TYPES + reasoning
        self.cost = [0.0, 0.0, 0.0, 0.0, 0.0]  # TOKEN_TYPES
        self.naive_usd = 0.0
        self.sidechain_usd = 0.0
        self.first = None
        self.last = None
        self.unpriced_reasons: dict[str, int] = {}  # why calls are unpriced -> calls (never counted as $0)
        # a modifier logged without a published rate (`speed=fast` on a model with none) -> the calls it was
        # on, priced at the standard rates: said beside the figure, never silently
        self.unpriced_modifiers: dict[str, int] = {}
        self.assumed_calls = 0  # calls whose agent logged no model: priced as its default (`model_is_fallback`)

    def add(self, event: UsageEvent, cost: Cost | None) -> None:
        self.calls += 1
        if event.model_is_fallback:
            self.assumed_calls += 1
        t, k = event.tokens, self.tokens
        k[0] += t.input
        k[1] += t.output
        k[2] += t.cache_read
        k[3] += t.cache_write_5m
        k[4] += t.cache_write_1h
        k[5] += t.reasoning
        at = event.occurred_at
        if self.first is None or at < self.first:
            self.first = at
        if self.last is None or at > self.last:
            self.last = at
        if cost is None:
            self.unpriced_calls += 1
            why = unpriced_reason(event)
            self.unpriced_reasons[why] = self.unpriced_reasons.get(why, 0) + 1
            return
        c = self.cost
        c[0] += cost.input_usd
        c[1] += cost.output_usd
        c[2] += cost.cache_read_usd
        c[3] += cost.cache_write_5m_usd
        c[4] += cost.cache_write_1h_usd
        self.naive_usd += cost.naive_usd
        if event.is_sidechain:
            self.sidechain_usd += cost.total_usd
        if cost.unpriced_modifiers:
            for m in cost.unpriced_modifiers:
                self.unpriced_modifiers[m] = self.unpriced_modifiers.get(m, 0) + 1

    def __reduce__(self):
        """Compact pickling: partial tallies travel back from fold workers by the thousand."""
        return from_state, (self.calls, self.unpriced_calls, self.tokens, self.cost, self.naive_usd,
                        self.sidechain_usd, self.first, self.last, self.unpriced_reasons, self.unpriced_modifiers,
                        self.assumed_calls)

    def merge(self, other: "Tally") -> "Tally":
        self.calls += other.calls
        self.assumed_calls += other.assumed_calls
        self.unpriced_calls += other.unpriced_calls
        if other.unpriced_reasons:
            _add_reasons(self.unpriced_reasons, other.unpriced_reasons)
        if other.unpriced_modifiers:
            _add_reasons(self.unpriced_modifiers, other.unpriced_modifiers)
        # (new lists of the sums, from unpacked items: fewer instructions than adding in place item by item)
        a0, a1, a2, a3, a4, a5 = self.tokens
        b0, b1, b2, b3, b4, b5 = other.tokens
        self.tokens = [a0 + b0, a1 + b1, a2 + b2, a3 + b3, a4 + b4, a5 + b5]
        a0, a1, a2, a3, a4 = self.cost
        b0, b1, b2, b3, b4 = other.cost
        self.cost = [a0 + b0, a1 + b1, a2 + b2, a3 + b3, a4 + b4]
        self.naive_usd += other.naive_usd
        self.sidechain_usd += other.sidechain_usd
        first, last = other.first, other.last
        if first is not None and (self.first is None or first < self.first):
            self.first = first
        if last is not None and (self.last is None or last > self.last):
            self.last = last
        return self

    def copy(self) -> "Tally":
        """A tally of the same figures (its own lists and reasons, so merging into it leaves this one as it is)."""
        t = Tally.__new__(Tally)
        t.calls, t.unpriced_calls, t.tokens, t.cost = self.calls, self.unpriced_calls, self.tokens[:], self.cost[:]
        t.naive_usd, t.sidechain_usd, t.first, t.last = self.naive_usd, self.sidechain_usd, self.first, self.last
        t.unpriced_reasons, t.unpriced_modifiers = dict(self.unpriced_reasons), dict(self.unpriced_modifiers)
        t.assumed_calls = self.assumed_calls
        return t

    @property
    def priced_calls(self) -> int:
        return self.calls - self.unpriced_calls

    @property
    def total_usd(self) -> float:
        return sum(self.cost)

    @property
    def cache_usd(self) -> float:
        return self.cost[2] + self.cost[3] + self.cost[4]

    @property
    def total_tokens(self) -> int:
        return sum(self.tokens[:5])

    def as_dict(self) -> dict:
        cost, tokens, first, last = self.cost, self.tokens, self.first, self.last
        total = sum(cost)  # (total_usd, cache_usd and total_tokens inline: one call per session row)
        return {
            "calls": self.calls,
            "unpriced_calls": self.unpriced_calls,
            "unpriced_reasons": dict(sorted(self.unpriced_reasons.items())) if self.unpriced_reasons else {},
            "unpriced_modifiers": sorted(self.unpriced_modifiers) if self.unpriced_modifiers else [],
            "model_assumed_calls": self.assumed_calls,
            "tokens": dict(zip(_TOKEN_KEYS, tokens), total=sum(tokens[:5])),
            "cost_usd": total,
            "cost_by_type_usd": dict(zip(TOKEN_TYPES, cost)),
            "cache_share_of_cost": ((cost[2] + cost[3] + cost[4]) / total) if total else 0.0,
            "naive_cost_usd": self.naive_usd,
            "sidechain_cost_usd": self.sidechain_usd,
            "first": first.isoformat() if first else None,
            "last": last.isoformat() if last else None,
        }


_TOKEN_KEYS = (*TOKEN_TYPES, "reasoning")


def _add_reasons(mine: dict, other: dict) -> None:
    for why, n in other.items():
        mine[why] = mine.get(why, 0) + n


_FEW = 8  # up to this many tallies, merging them in turn costs less than the columns' set-up


def merged(tallies: Sequence[Tally]) -> Tally:
    """A new tally of `tallies`: what merging each in turn into an empty one gives, each figure summed in
    their order (a few start from the first's copy: a -0.0 may stay -0.0; Python 3.12+'s `sum` compensates
    float rounding: as close or closer). Many (a model's thousands of fine tallies) are summed a column at
    a time (`sum` in C), without a merge call per tally."""
    n = len(tallies)
    if not n:
        return Tally()
    if n <= _FEW:
        out = tallies[0].copy()
        for i in range(1, n):
            out.merge(tallies[i])
        return out
    out = Tally()
    # (list comprehensions read a slot in a specialized instruction: cheaper than attrgetter's lookup)
    out.calls = sum([t.calls for t in tallies])
    out.assumed_calls = sum([t.assumed_calls for t in tallies])
    out.unpriced_calls = sum([t.unpriced_calls for t in tallies])
    for reasons in filter(None, [t.unpriced_reasons for t in tallies]):
        _add_reasons(out.unpriced_reasons, reasons)
    for modifiers in filter(None, [t.unpriced_modifiers for t in tallies]):
        _add_reasons(out.unpriced_modifiers, modifiers)
    tokens = list(chain.from_iterable([t.tokens for t in tallies]))
    cost = list(chain.from_iterable([t.cost for t in tallies]))
    if len(tokens) != 6 * n or len(cost) != 5 * n:
        raise ValueError("a tally without 6 token counts and 5 costs")
    out.tokens = [sum(tokens[i::6]) for i in range(6)]
    out.cost = [sum(cost[i::5], 0.0) for i in range(5)]
    out.naive_usd = sum([t.naive_usd for t in tallies], 0.0)
    out.sidechain_usd = sum([t.sidechain_usd for t in tallies], 0.0)
    # (min and max keep the first of equal times, as merge does; a time is never false, None is)
    out.first = min(filter(None, [t.first for t in tallies]), default=None)
    out.last = max(filter(None, [t.last for t in tallies]), default=None)
    return out


def from_state(*state) -> Tally:
    """A tally of (calls, unpriced_calls, tokens, cost, naive_usd, sidechain_usd, first, last,
    unpriced_reasons, unpriced_modifiers, assumed_calls): what it pickles as, and what a worker's packed
    fold is read back into."""
    t = Tally()
    (t.calls, t.unpriced_calls, t.tokens, t.cost, t.naive_usd, t.sidechain_usd, t.first, t.last,
     t.unpriced_reasons, t.unpriced_modifiers, t.assumed_calls) = state
    return t


def packed(t: Tally) -> tuple:
    """A tally as plain values (marshal's), exact: how a scan worker's fold of a file travels and is kept."""
    return (t.calls, t.unpriced_calls, t.tokens, t.cost, t.naive_usd, t.sidechain_usd, instant(t.first),
            instant(t.last), t.unpriced_reasons, t.unpriced_modifiers, t.assumed_calls)


def from_packed(state: tuple) -> Tally:
    """`packed`'s tally again."""
    calls, unpriced, tokens, cost, naive, side, first, last, reasons, modifiers, assumed = state
    return from_state(calls, unpriced, tokens, cost, naive, side, at_instant(first), at_instant(last), reasons,
                      modifiers, assumed)


_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_MICRO = timedelta(microseconds=1)


def instant(at: datetime | None):
    """An aware time as (microseconds since the epoch, its UTC offset in seconds): exact, and cheaper
    to make and read back than its ISO text."""
    if at is None:
        return None
    offset = at.utcoffset()
    return (at - _EPOCH) // _MICRO, offset // timedelta(seconds=1) if offset else 0


def at_instant(value) -> datetime | None:
    """`instant`'s time again (None for None)."""
    if value is None:
        return None
    micros, offset = value
    at = _EPOCH + timedelta(microseconds=micros)
    return at if not offset else at.astimezone(timezone(timedelta(seconds=offset)))


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


def merge_groups(a: dict[object, Tally], b: dict[object, Tally]) -> dict[object, Tally]:
    """Tallies of two parts of a history under the same keys, as one (into `a`)."""
    for k, tally in b.items():
        mine = a.get(k)
        if mine is None:
            a[k] = tally
        else:
            mine.merge(tally)
    return a


def rollup(groups: dict, key: Callable[[object], object]) -> dict[object, Tally]:
    """Merge already-grouped tallies under a coarser key."""
    out: dict[object, Tally] = {}
    for k, tally in groups.items():
        coarse = key(k)
        mine = out.get(coarse)
        if mine is None:
            mine = out[coarse] = Tally()
        mine.merge(tally)
    return out



def regime_of(sources: Iterable[str], override: str | None = None) -> str:
    if override in ("subscription", "api"):
        return override
    sources = set(sources)
    if sources <= SUBSCRIPTION_SOURCES:
        return "subscription"
    return "mixed" if sources & SUBSCRIPTION_SOURCES else "api"


def event_regime(source: str, override: str | None = None) -> str:
    """The regime a single event carries on the wire: its own source's, never "mixed" (a history of
    Claude Code beside OpenCode ships subscription value and API cost, each where it belongs)."""
    return regime_of((source,), override)
