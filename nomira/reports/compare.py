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
            "usd_per_1k_output": usd_per_1k_output(cost, t.tokens[1]),
            # share of prompt tokens served from the cache (higher is cheaper)
            "cache_reuse": t.tokens[2] / prompt if prompt else 0.0,
            "unpriced_calls": t.unpriced_calls,
            "unpriced_reasons": dict(sorted(t.unpriced_reasons.items())),
        })
    rows.sort(key=lambda r: (-r["cost_usd"], str(r["name"])))
    return rows


def usd_per_1k_output(cost: float, output: int) -> float | None:
    return cost / output * 1000 if output else None


def headline(rows: list[dict], noun: str = "") -> str | None:
    """One line, when two or more spent anything: how the costliest compares with the cheapest,
    and who paid the most per unit of output (rows carry name, cost_usd, usd_per_1k_output)."""
    priced = sorted((r for r in rows if r["cost_usd"] > 0), key=lambda r: (-r["cost_usd"], str(r["name"])))
    if len(priced) < 2:
        return None
    top, low = priced[0], priced[-1]
    who = (lambda r: f"{noun} {r['name']}") if noun else (lambda r: str(r["name"]))
    ratio = top["cost_usd"] / low["cost_usd"]
    if f"{ratio:.1f}" == "1.0":
        line = f"{who(top)} and {who(low)} spent about the same ({usd(top['cost_usd'])} vs {usd(low['cost_usd'])})"
    else:
        line = (f"{who(top)} spent {ratio:.1f}× more than {who(low)} "
                f"({usd(top['cost_usd'])} vs {usd(low['cost_usd'])})")
    per = sorted((r for r in priced if r.get("usd_per_1k_output") is not None),
                 key=lambda r: (-r["usd_per_1k_output"], str(r["name"])))
    if len(per) >= 2 and usd(per[0]["usd_per_1k_output"]) != usd(per[-1]["usd_per_1k_output"]):
        worst = per[0]
        line += f"; least efficient per output: {who(worst)} ({usd(worst['usd_per_1k_output'])}/1k output)"
    return line
