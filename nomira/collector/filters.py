"""A page's filters, read from and written back to the URL, so every view is a link.

period (today/7d/30d/90d/all) or from/to dates, tenant (admin only), and one value per
filter dimension. Bad values are a 400 naming the field, never a guess.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from urllib.parse import urlencode

from nomira.collector.http import HTTPError
from nomira.collector.queries import FILTER_DIMS, Scope
from nomira.ledger.rollups import PERIODS

PERIOD_LABELS = {"today": "Today", "7d": "7 days", "30d": "30 days", "90d": "90 days", "all": "All time"}
MAX_VALUE = 200


@dataclass(frozen=True)
class Filters:
    period: str  # a PERIODS key, or "range" with start/end
    start: date | None
    end: date | None
    tenant: str | None
    eq: tuple[tuple[str, str], ...]
    today: date

    @property
    def hourly(self) -> bool:
        return self.period == "today" or (self.start is not None and self.start == self.end)

    def scope(self) -> Scope:
        return Scope(self.tenant, self.start.isoformat() if self.start else None,
                     self.end.isoformat() if self.end else None, self.eq)

    def params(self, admin: bool, **override) -> dict:
        """The URL parameters that reproduce this view (with overrides; None drops one)."""
        p = {"period": self.period} if self.period != "range" else {
            "from": self.start.isoformat() if self.start else None, "to": self.end.isoformat() if self.end else None}
        if admin and self.tenant:
            p["tenant"] = self.tenant
        p.update(dict(self.eq))
        if "period" in override:  # a period replaces a range and vice versa
            p.pop("from", None), p.pop("to", None)
        if "from" in override or "to" in override:
            p.pop("period", None)
        p.update(override)
        return {k: v for k, v in p.items() if v}

    def query(self, admin: bool, **override) -> str:
        q = urlencode(self.params(admin, **override))
        return f"?{q}" if q else ""

    def describe(self) -> str:
        if self.period != "range":
            return PERIOD_LABELS[self.period].lower()
        return f"{self.start or 'the start'} to {self.end or 'today'}"


def _date(query: dict, key: str) -> date | None:
    raw = (query.get(key) or "").strip()
    if not raw:
        return None
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise HTTPError(400, f"{key} must be a date like 2026-11-30", key) from None


def parse(query: dict, admin: bool, own_tenant: str | None, today: date | None = None) -> Filters:
    today = today or datetime.now(timezone.utc).date()
    start, end = _date(query, "from"), _date(query, "to")
    if start or end:
        if start and end and start > end:
            raise HTTPError(400, "from must not be after to", "from")
        period = "range"
    else:
        period = query.get("period") or "30d"
        if period not in PERIODS:
            raise HTTPError(400, f"period must be one of {', '.join(PERIODS)}", "period")
        if PERIODS[period]:
            start = today - timedelta(days=PERIODS[period] - 1)
    eq = []
    for dim in FILTER_DIMS:
        value = query.get(dim)
        if value is None or value == "":
            continue
        if len(value) > MAX_VALUE:
            raise HTTPError(400, f"{dim} longer than {MAX_VALUE} characters", dim)
        eq.append((dim, value))
    tenant = own_tenant if not admin else (query.get("tenant") or None)
    if admin and tenant is not None and len(tenant) > MAX_VALUE:
        raise HTTPError(400, f"tenant longer than {MAX_VALUE} characters", "tenant")
    return Filters(period, start, end, tenant, tuple(eq), today)
