"""Stored cost split by token type, for stacked charts.

The store keeps one cost per event (priced when it was read, by whatever rates were in force);
the split is that stored cost shared out in proportion to each token type's list-price weight
for the model (bundled table). Totals therefore always equal the stored cost; a model the table
does not know has no split, its cost shown as "unsplit".
"""
from __future__ import annotations

from functools import lru_cache

from nomira.pricing.engine import _rate
from nomira.pricing.table import load_bundled

PARTS = ("input", "output", "cache_read", "cache_write")
PART_LABELS = {"input": "input", "output": "output", "cache_read": "cache read", "cache_write": "cache write",
               "unsplit": "unsplit (model not in price table)"}
_TYPES = ("input", "output", "cache_read", "cache_write_5m", "cache_write_1h")


@lru_cache(maxsize=4096)
def _rates(model: str) -> tuple[float, ...] | None:
    price = load_bundled().lookup(model or "")
    if price is None:
        return None
    return tuple(_rate(price.base, t, price.provider)[0] for t in _TYPES)


def split(sums: dict, model: str) -> dict[str, float]:
    """{part: usd} summing to sums['cost_usd']."""
    cost = sums["cost_usd"]
    rates = _rates(model)
    weights = [sums[t] * (r or 0.0) for t, r in zip(_TYPES, rates)] if rates else []  # no published rate: no share
    total = sum(weights)
    if not cost:
        return {}
    if not total:
        return {"unsplit": cost}
    w = dict(zip(_TYPES, weights))
    w["cache_write"] = w.pop("cache_write_5m") + w.pop("cache_write_1h")
    return {p: cost * w[p] / total for p in PARTS if w[p]}


def by_bucket(rows: list[tuple[str, str, dict]]) -> dict[str, dict[str, float]]:
    """(bucket, model, sums) rows -> {bucket: {part: usd}}."""
    out: dict[str, dict[str, float]] = {}
    for bucket, model, sums in rows:
        acc = out.setdefault(bucket, {})
        for part, usd in split(sums, model).items():
            acc[part] = acc.get(part, 0.0) + usd
    return out


def regroup(split_by_day: dict[str, dict[str, float]], bucket) -> dict[str, dict[str, float]]:
    """Day splits merged into the buckets `bucket(day)` names (weeks, months)."""
    out: dict[str, dict[str, float]] = {}
    for day, parts in split_by_day.items():
        acc = out.setdefault(bucket(day), {})
        for part, usd in parts.items():
            acc[part] = acc.get(part, 0.0) + usd
    return out
