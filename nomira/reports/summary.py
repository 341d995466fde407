"""The Stage 0 report: per session, per model and total, as one dict (rendered or dumped as JSON)."""
from __future__ import annotations

from nomira import __version__
from nomira.reports.aggregate import REGIME_LABELS, Priced, Tally, group, rollup

def model_rows(priced: Priced, fine: dict) -> list[dict]:
    info: dict[str, dict] = {}
    for event, cost in priced:
        row = info.setdefault(event.model, {
            "model": event.model, "provider": event.provider, "priced": cost is not None,
            "price_key": None, "rate_source": None, "verified": True,
            "unpriced_modifiers": set(), "model_assumed": False, "long_context_calls": 0,
        })
        row["model_assumed"] |= event.model_is_fallback
        if cost is None:
            row["verified"] = False
            continue
        row["price_key"], row["rate_source"] = cost.price_key, cost.rate_source
        row["verified"] &= cost.verified
        row["unpriced_modifiers"].update(cost.unpriced_modifiers)
        row["long_context_calls"] += cost.tier_above is not None
    tallies = rollup(fine, lambda k: k[3])
    rows = []
    for model, tally in tallies.items():
        row = info[model]
        row["unpriced_modifiers"] = sorted(row["unpriced_modifiers"])
        rows.append({**row, **tally.as_dict()})
    rows.sort(key=lambda r: (-r["cost_usd"], r["model"]))
    return rows


def session_rows(fine: dict) -> list[dict]:
    tallies = rollup(fine, lambda k: k[:3])
    models: dict[tuple, set] = {}
    for k in fine:
        models.setdefault(k[:3], set()).add(k[3])
    rows = [{"source": s, "session_id": sid, "project": proj, "models": sorted(models[(s, sid, proj)]),
             **t.as_dict()} for (s, sid, proj), t in tallies.items()]
    rows.sort(key=lambda r: (r["last"] or "", r["session_id"]))
    return rows


def build(priced: Priced, regime: str, stats: dict, allowance=None, table_generated: str = "") -> dict:
    fine = group(priced, lambda e, c: (e.source, e.session_id, e.project, e.model))
    tot = rollup(fine, lambda k: None).get(None, Tally())
    sources = sorted({k[0] for k in fine})
    return {
        "nomira_version": __version__,
        "regime": regime,
        "value_label": REGIME_LABELS[regime],
        "sources": sources,
        "price_table": table_generated,
        "totals": tot.as_dict(),
        "models": model_rows(priced, fine),
        "sessions": session_rows(fine),
        "allowance": allowance,
        "scan": stats,
    }
