"""Pipeline health series for /metrics (issue 17): parse failures, per-source drops and the last
reconciliation's delta, next to the ingest counters and lag already served there."""
from __future__ import annotations

import json
import re

MAX_SOURCES = 64  # label values a hostile client could mint are bounded: the rest count as "other"
_LABEL = re.compile(r"[a-z0-9][a-z0-9_.-]{0,39}")


def source_label(item, known: dict) -> str:
    """The source an ingested item names, fit for a Prometheus label (never free text)."""
    src = item.get("source") if isinstance(item, dict) else None
    if isinstance(item, dict) and src is None and isinstance(item.get("payload"), dict):
        src = item.get("source_system")  # the /v1/usage/events envelope
    if not isinstance(src, str) or not _LABEL.fullmatch(src):
        return "unknown"
    return src if src in known or len(known) < MAX_SOURCES else "other"


def reconcile_delta_rate(db) -> float | None:
    """|billed - estimated| over billed, summed across the billed windows of the newest stored
    reconcile run; None when no run (or no billed window) is stored."""
    row = db.execute("SELECT body FROM reconcile_runs ORDER BY created_at DESC LIMIT 1").fetchone()
    if row is None:
        return None
    try:
        windows = json.loads(row[0])["built"]["windows"]
    except (ValueError, KeyError, TypeError):
        return None
    billed = [w for w in windows if w.get("billed_usd") is not None]
    total = sum(w["billed_usd"] for w in billed)
    if not billed or not total:
        return None
    return sum(abs(w["billed_usd"] - w["estimated_usd"]) for w in billed) / total


def ratio(part: float, whole: float) -> float:
    return part / whole if whole else 0.0
