"""Efficiency comparison across sessions or projects: who spends how much per unit of work."""
from __future__ import annotations

from nomira.reports.aggregate import Tally
from nomira.reports.render import usd


def efficiency_rows(groups: dict[object, Tally], label) -> list[dict]:
    rows = []
    for key, t in groups.items():
        prompt = t.tokens[0] + t.tokens[2] + t.tokens[3] + t.tokens[4]
        cost = t.total_usd
        rows.append({
            "name": label(key), "calls": t.calls, "cost_usd": cost,
            "usd_per_call": cost / t.priced_calls if t.priced_calls else 0.0,  # unpriced calls are not $0 calls
            "usd_per_1k_output": cost / t.tokens[1] * 1000 if t.tokens[1] else None,
            # share of prompt tokens served from the cache (higher is cheaper)
            "cache_reuse": t.tokens[2] / prompt if prompt else 0.0,
            "unpriced_calls": t.unpriced_calls,
            "unpriced_reasons": dict(sorted(t.unpriced_reasons.items())),
        })
    rows.sort(key=lambda r: (-r["cost_usd"], str(r["name"])))
    return rows


def headline(rows: list[dict], noun: str) -> str | None:
    """One line: how the most expensive compares with the cheapest (non-zero) one."""
    priced = [r for r in rows if r["cost_usd"] > 0]
    if len(priced) < 2:
        return None
    top, low = priced[0], priced[-1]
    return (f"{noun} {top['name']} cost {top['cost_usd'] / low['cost_usd']:.1f}x {noun} {low['name']} "
            f"({usd(top['cost_usd'])} vs {usd(low['cost_usd'])})")
