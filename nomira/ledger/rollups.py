"""Dashboard queries over `rollups` (part of the store layer: all SQL lives here or in store.py).

Each query reads the one grain that holds exactly the dimensions it groups and filters by.

Every query takes the tenant scope explicitly: None means all tenants (admin only);
a tenant viewer's scope is always their own tenant. Portable SQL only.
"""
from __future__ import annotations

import sqlite3
from datetime import date, datetime, timedelta, timezone

from nomira.ledger.engine import dialect_of
from nomira.ledger.store import GRAINS
from nomira.ledger.wire import TOKEN_FIELDS

PERIODS = {"today": 1, "7d": 7, "30d": 30, "90d": 90, "all": None}
DIMENSIONS = ("developer", "project", "model", "day", "regime", "tenant")
_BY_DIMS = {frozenset(dims): grain for grain, dims in GRAINS.items()}


def grain_for(*dims: str) -> str:
    wanted = frozenset(d for d in dims if d not in ("day", "tenant"))
    try:
        return _BY_DIMS[wanted]
    except KeyError:
        raise ValueError(f"no rollup grain for {sorted(wanted)}") from None
# TOTAL, not SUM: SUM raises "integer overflow" past 2**63 and one bad row would break every page.
SUMS = ", ".join(f"TOTAL({c})" for c in ("calls", *TOKEN_FIELDS, "cost_usd", "unpriced_calls"))
FIELDS = ("calls", *TOKEN_FIELDS, "cost_usd", "unpriced_calls")
MAX_DAILY_POINTS = 3 * 366  # a longer `all` trend is shown by month
MAX_MONTHLY_POINTS = 100 * 12


def since_day(period: str, today: date | None = None) -> str | None:
    days = PERIODS[period]
    if days is None:
        return None
    today = today or datetime.now(timezone.utc).date()
    return (today - timedelta(days=days - 1)).isoformat()


def _where(grain: str, tenant: str | None, since: str | None, **eq) -> tuple[str, list]:
    clauses, params = ["grain = ?"], [grain]
    if tenant is not None:
        clauses.append("tenant = ?")
        params.append(tenant)
    if since is not None:
        clauses.append("day >= ?")
        params.append(since)
    for col, value in eq.items():
        if col not in DIMENSIONS:
            raise ValueError(col)
        clauses.append(f"{col} = ?")
        params.append(value)
    return (" WHERE " + " AND ".join(clauses)) if clauses else "", params


def _row(values) -> dict:
    d = {f: (float(v or 0) if f == "cost_usd" else int(v or 0)) for f, v in zip(FIELDS, values)}
    prompt = d["input"] + d["cache_read"] + d["cache_write_5m"] + d["cache_write_1h"]
    d["tokens"] = prompt + d["output"]
    d["cache_reuse"] = d["cache_read"] / prompt if prompt else 0.0
    d["usd_per_call"] = d["cost_usd"] / d["calls"] if d["calls"] else 0.0
    return d


def totals(db: sqlite3.Connection, tenant: str | None, since: str | None, **eq) -> dict:
    where, params = _where(grain_for(*eq), tenant, since, **eq)
    return _row(db.execute(f"SELECT {SUMS} FROM rollups{where}", params).fetchone())


def by(db: sqlite3.Connection, dim: str, tenant: str | None, since: str | None, limit: int | None = None,
       **eq) -> list[dict]:
    if dim not in DIMENSIONS:
        raise ValueError(dim)
    where, params = _where(grain_for(dim, *eq), tenant, since, **eq)
    order = f"{dim}" if dim == "day" else "SUM(cost_usd) DESC, " + dim
    sql = f"SELECT {dim}, {SUMS} FROM rollups{where} GROUP BY {dim} ORDER BY {order}"
    if limit:
        sql += f" LIMIT {int(limit)}"
    return [{"name": r[0], **_row(r[1:])} for r in db.execute(sql, params)]


def fill_days(rows: list[dict]) -> list[dict]:
    """Daily rows with the missing days in between as zeros, so a trend is a true time axis."""
    if not rows:
        return rows
    have = {r["name"]: r for r in rows}
    day, last = date.fromisoformat(rows[0]["name"]), date.fromisoformat(rows[-1]["name"])
    out = []
    while day <= last:
        out.append(have.get(day.isoformat()) or {"name": day.isoformat(), **_row([0] * len(FIELDS))})
        day += timedelta(days=1)
    return out


def _merge(name: str, rows: list[dict]) -> dict:
    return {"name": name, **_row([sum(r[f] for r in rows) for f in FIELDS])}


def day_series(rows: list[dict], period: str, today: date | None = None) -> tuple[list[dict], int]:
    """(trend points, days spanned) for daily rows, never longer than the period asks.

    Days after tomorrow or before the period (a bad row already in a store) stay in the
    totals but not on the axis; `all` runs from the data's first day, by month when that
    is more than MAX_DAILY_POINTS days, and at most MAX_MONTHLY_POINTS months back."""
    today = today or datetime.now(timezone.utc).date()
    last_ok = today + timedelta(days=1)
    days = []
    for r in rows:
        try:
            d = date.fromisoformat(r["name"])
        except (TypeError, ValueError):
            continue
        if d <= last_ok:
            days.append((d, r))
    if PERIODS[period]:
        first_ok = today - timedelta(days=PERIODS[period] - 1)
        days = [(d, r) for d, r in days if d >= first_ok]
    if not days:
        return [], 0
    first, last = days[0][0], days[-1][0]
    span = (last - first).days + 1
    if span <= MAX_DAILY_POINTS:
        return fill_days([r for _, r in days]), span
    months: dict[str, list[dict]] = {}
    for d, r in days:
        months.setdefault(f"{d.year:04d}-{d.month:02d}", []).append(r)
    last_month = last.year * 12 + last.month - 1
    start = max(first.year * 12 + first.month - 1, last_month - MAX_MONTHLY_POINTS + 1)
    out = [_merge(f"{m // 12:04d}-{m % 12 + 1:02d}", months.get(f"{m // 12:04d}-{m % 12 + 1:02d}", []))
           for m in range(start, last_month + 1)]
    return out, span


def count_distinct(db: sqlite3.Connection, dim: str, tenant: str | None, since: str | None) -> int:
    if dim not in DIMENSIONS:
        raise ValueError(dim)
    where, params = _where(grain_for(dim), tenant, since)
    return db.execute(f"SELECT COUNT(DISTINCT {dim}) FROM rollups{where}", params).fetchone()[0]


def tenants(db: sqlite3.Connection) -> list[str]:
    names = {r[0] for r in db.execute("SELECT name FROM tenants")}
    names |= {r[0] for r in db.execute("SELECT DISTINCT tenant FROM rollups WHERE grain = 'day'")}
    return sorted(names)


def ingest_stats(db: sqlite3.Connection) -> dict:
    """Cheap at any size: raw ids are dense, the superseded count is kept by ingest."""
    raw = dialect_of(db).raw_count(db)
    row = db.execute("SELECT value FROM settings WHERE key = 'superseded_count'").fetchone()
    last = db.execute("SELECT r.received_at, e.occurred_at FROM raw_events r LEFT JOIN events e "
                      "ON e.dedup_key = r.dedup_key WHERE r.id = (SELECT MAX(id) FROM raw_events)").fetchone() \
        or (None, None)
    return {"raw_events": raw, "superseded": int(row[0]) if row else 0, "last_received_at": last[0],
            "last_occurred_at": last[1]}
