"""A tally's JSON as `render_json` writes `Tally.as_dict()` stamped (micro-dollars beside the dollars),
made without the dicts: a report of thousands of rows (the JSON report's sessions, `session --json`'s,
each with its models) spent most of its time making, stamping and encoding them (issue 21).

Anything these do not cover (a value of an unexpected type, a reason named like an amount) returns
None, and the caller writes that row the generic way; tests/test_report_speed.py holds the two equal."""
from __future__ import annotations

from datetime import datetime, timezone
from json import dumps
from json.encoder import encode_basestring_ascii as q

from nomira.reports.money import micros

_TWO_DIGITS = [f"{n:02}" for n in range(100)]


def isoformat(t) -> str:
    """t.isoformat(), for a UTC time with microseconds from year 1000 on (what the logs hold) at 60% of its
    cost: two per row, and isoformat's C formats each field with sprintf. Any other time (or type) by
    its own isoformat."""
    if t.__class__ is datetime and t.tzinfo is timezone.utc:
        us, y, d = t.microsecond, t.year, _TWO_DIGITS
        if us and y >= 1000:
            return f"{y}-{d[t.month]}-{d[t.day]}T{d[t.hour]}:{d[t.minute]}:{d[t.second]}.{str(us + 1_000_000)[1:]}+00:00"
    return t.isoformat()


def string(value) -> str:
    """`value`'s JSON when it is a str, else "" (its row goes the generic way)."""
    return q(value) if value.__class__ is str else ""


def strings(names) -> str:
    """The JSON list of `names` sorted, when each is a str, else "" (its row goes the generic way)."""
    names = sorted(names)
    return f"[{', '.join(map(q, names))}]" if all(n.__class__ is str for n in names) else ""


def fields(t, last: str | None = None) -> tuple[str, str] | None:
    """(the members of `t.as_dict()`, from "calls" to "last", as JSON text; the members with their
    micro-dollars, "cost_micro_usd" to "sidechain_cost_micro_usd"), or None when a value is not of a
    type written here. `last`: `isoformat(t.last)` when the caller has it."""
    k, cost, first = t.tokens, t.cost, t.first
    total = sum(cost)
    naive, side = t.naive_usd, t.sidechain_usd
    reasons = t.unpriced_reasons
    if reasons:  # {reason: calls}, as as_dict sorts it (a reason named like an amount: the generic way)
        if any(r.__class__ is not str or r.endswith("_usd") or n.__class__ is not int for r, n in reasons.items()):
            return None
        reasons = "{" + ", ".join(f"{q(r)}: {n}" for r, n in sorted(reasons.items())) + "}"
    else:
        reasons = "{}"
    modifiers = t.unpriced_modifiers
    if modifiers:  # [modifier], sorted as as_dict writes them
        if any(m.__class__ is not str for m in modifiers):
            return None
        modifiers = "[" + ", ".join(q(m) for m in sorted(modifiers)) + "]"
    else:
        modifiers = "[]"
    # (each type checked in turn, no generator: this runs for every row; the floats are finite when
    # their sum is, since an inf or nan makes any sum inf or nan; a sum that overflows goes the
    # generic way, which is right for every row; an exact int, float or datetime is written as its
    # repr or isoformat, which has nothing to escape)
    if (k[0].__class__ is not int or k[1].__class__ is not int or k[2].__class__ is not int
            or k[3].__class__ is not int or k[4].__class__ is not int or k[5].__class__ is not int
            or len(k) != 6 or t.calls.__class__ is not int or t.unpriced_calls.__class__ is not int
            or t.assumed_calls.__class__ is not int
            or cost[0].__class__ is not float or cost[1].__class__ is not float
            or cost[2].__class__ is not float or cost[3].__class__ is not float
            or cost[4].__class__ is not float or len(cost) != 5 or naive.__class__ is not float
            or side.__class__ is not float or (every := total + naive + side) - every != 0.0
            or (first is not None and first.__class__ is not datetime)
            or (t.last is not None and t.last.__class__ is not datetime)):
        return None
    share = ((cost[2] + cost[3] + cost[4]) / total) if total else 0.0
    if last is None and t.last is not None:
        last = isoformat(t.last)
    first = f'"{isoformat(first)}"' if first is not None else "null"
    last = f'"{last}"' if last is not None else "null"
    return (f'"calls": {t.calls}, "unpriced_calls": {t.unpriced_calls}, '
            f'"unpriced_reasons": {reasons}, "unpriced_modifiers": {modifiers}, '
            f'"model_assumed_calls": {t.assumed_calls}, "tokens": {{"input": {k[0]}, "output": {k[1]}, "cache_read": '
            f'{k[2]}, "cache_write_5m": {k[3]}, "cache_write_1h": {k[4]}, "reasoning": {k[5]}, '
            f'"total": {k[0] + k[1] + k[2] + k[3] + k[4]}}}, "cost_usd": {total}, "cost_by_type_usd": '
            f'{{"input": {cost[0]}, "output": {cost[1]}, "cache_read": {cost[2]}, "cache_write_5m": '
            f'{cost[3]}, "cache_write_1h": {cost[4]}}}, "cache_share_of_cost": {share if share - share == 0.0 else dumps(share)}, '
            f'"naive_cost_usd": {naive}, "sidechain_cost_usd": {side}, "first": {first}, "last": {last}',
            f'"cost_micro_usd": {micros(total)}, "cost_by_type_micro_usd": {{"input": {micros(cost[0])}, "output": '
            f'{micros(cost[1])}, "cache_read": {micros(cost[2])}, "cache_write_5m": {micros(cost[3])}, '
            f'"cache_write_1h": {micros(cost[4])}}}, '
            f'"naive_cost_micro_usd": {micros(naive)}, "sidechain_cost_micro_usd": {micros(side)}')
