"""Per-turn forensics and waste signals.

A *cache rebuild* is a call that wrote most of its prompt to the cache again after
the previous call of the same session was longer ago than the cache lives (5 minutes,
or 1 hour once the session writes 1-hour cache): the context had expired and was
paid for again at the cache-write rate. Only turns where that write dominates the
call's cost are reported, with the dollars.
"""
from __future__ import annotations

from collections import defaultdict
from datetime import timedelta
from typing import Iterable

from nomira.ledger.events import UsageEvent
from nomira.pricing.engine import Cost

TTL_5M = timedelta(minutes=5)
TTL_1H = timedelta(hours=1)
MIN_PROMPT = 10_000  # small prompts are cheap to rebuild; not worth a signal


def by_session(priced: Iterable[tuple[UsageEvent, Cost | None]]) -> dict[tuple, list]:
    out: dict[tuple, list] = defaultdict(list)
    for event, cost in priced:
        out[(event.source, event.session_id, event.project)].append((event, cost))
    for calls in out.values():
        calls.sort(key=lambda p: p[0].occurred_at)
    return out


def turn_rows(calls: list[tuple[UsageEvent, Cost | None]]) -> list[dict]:
    """One row per call of a session, in time order, with its waste flags."""
    rows, prev, uses_1h = [], None, False
    for event, cost in calls:
        t = event.tokens
        gap = event.occurred_at - prev if prev is not None else None
        ttl = TTL_1H if uses_1h else TTL_5M
        write_usd = (cost.cache_write_5m_usd + cost.cache_write_1h_usd) if cost else 0.0
        total_usd = cost.total_usd if cost else 0.0
        rebuild = (gap is not None and gap > ttl and t.prompt_total >= MIN_PROMPT
                   and t.cache_write >= 0.5 * t.prompt_total and total_usd > 0 and write_usd >= 0.5 * total_usd)
        flags = [name for name, on in (("cache_rebuild", rebuild), ("sidechain", event.is_sidechain),
                                       ("long_context", bool(cost and cost.tier_above)),
                                       ("unpriced", cost is None)) if on]
        rows.append({
            "at": event.occurred_at.isoformat(), "model": event.model,
            "gap_minutes": gap.total_seconds() / 60 if gap is not None else None,
            "tokens": {"input": t.input, "output": t.output, "cache_read": t.cache_read,
                       "cache_write_5m": t.cache_write_5m, "cache_write_1h": t.cache_write_1h},
            "cost_usd": total_usd, "cache_write_usd": write_usd, "flags": flags,
        })
        uses_1h = uses_1h or t.cache_write_1h > 0
        prev = event.occurred_at
    return rows


def waste(priced: Iterable[tuple[UsageEvent, Cost | None]], top: int = 10) -> dict:
    sessions = by_session(priced)
    rebuilds, total, side = [], 0.0, 0.0
    for (source, session, project), calls in sessions.items():
        for row in turn_rows(calls):
            total += row["cost_usd"]
            if "sidechain" in row["flags"]:
                side += row["cost_usd"]
            if "cache_rebuild" in row["flags"]:
                rebuilds.append(dict(row, session_id=session, project=project, source=source))
    rebuilds.sort(key=lambda r: -r["cache_write_usd"])
    rebuild_usd = sum(r["cache_write_usd"] for r in rebuilds)
    return {
        "total_cost_usd": total,
        "cache_rebuilds": {"count": len(rebuilds), "cache_write_usd": rebuild_usd,
                           "share_of_cost": rebuild_usd / total if total else 0.0, "top": rebuilds[:top]},
        "sidechain": {"cost_usd": side, "share_of_cost": side / total if total else 0.0},
    }
