"""Filtered dashboard queries (store layer, read-only): `rollups` when a grain holds exactly the
dimensions asked for, `tag_rollups` (0012) for one business-tag filter or three rollup dimensions at
once, else `events` by its existing columns.

Developer, project and model filters stay on the rollups (days x one or two dimensions, whatever
the event count). One filter on source or a business tag (feature, workflow, customer, env), and
any mix of developer, project, model and regime, read `tag_rollups`: per (tenant, developer) with
calls in the period, one range of (tag, value, days) at the four rollup dimensions (0018). The hourly
`today` view reads `hour_rollups`, a project's sub-agent cost `sidechain_rollups`, and a model filter's
sessions `session_counts` (0019). Two tag filters at once, and a tag filter on the hourly view, the
sub-agent cost or beside a model filter's sessions, read `events`, bounded by the period's days.
Portable SQL only.
"""
from __future__ import annotations

import sqlite3
import threading
from dataclasses import dataclass, field
from datetime import date, timedelta

from nomira.ledger import engine, store
from nomira.ledger.engine import dialect_of
from nomira.ledger.rollups import FIELDS, MAX_DAILY_POINTS, MAX_MONTHLY_POINTS, _BY_DIMS, _merge, _row
from nomira.ledger.wire import TOKEN_FIELDS

# Covers every column the events path reads, led by day: a period or today's hours is a range of
# this index, never a scan of the wide `events` rows; then in the order a filtered view groups by
# (day, model, regime, developer, project), so that grouping streams without a sort. Created on the
# collector's start, outside the migrations (the ledger's schema is not this module's): IF NOT
# EXISTS, and skipped where it cannot be.
INDEX = "events_dashboard"
_FINE = ("day", "model", "regime", "developer", "project")
INDEX_SQL = (f"CREATE INDEX IF NOT EXISTS {INDEX} ON events ({', '.join(_FINE)}, tenant, source, feature, workflow, "
             "customer, env, occurred_at, input, output, cache_read, cache_write_5m, cache_write_1h, reasoning, "
             "cost_usd)")
# Sessions and sub-agent cost (compare, detail KPIs): a developer, or a (developer, project) pair, is one
# range of this narrow index, so a project page seeks its few developers' ranges and never reads the wide rows.
SESSION_INDEX = "events_sessions"
SESSION_INDEX_SQL = (f"CREATE INDEX IF NOT EXISTS {SESSION_INDEX} ON events (developer, project, session_id, day, "
                     "tenant, is_sidechain, cost_usd)")
ROLLUP_DIMS = ("developer", "project", "model", "regime")
TAG_DIMS = ("source", "feature", "workflow", "customer", "env")  # store.TAG_ROLLUPS, bar '' (every event)
FILTER_DIMS = ("developer", "project", "model", *TAG_DIMS)
GROUP_DIMS = (*FILTER_DIMS, "regime", "day", "tenant")
_EVENT_SUM_EXPRS = ["COUNT(*)", *(f"TOTAL({t})" for t in TOKEN_FIELDS), "TOTAL(cost_usd)",
                    "TOTAL(CASE WHEN cost_usd IS NULL THEN 1 ELSE 0 END)"]
_EVENT_SUMS = ", ".join(_EVENT_SUM_EXPRS)
_ROLLUP_SUMS = ", ".join(f"TOTAL({c})" for c in FIELDS)


@dataclass(frozen=True)
class Scope:
    """What a page looks at: tenant (None = all, admin only), days [since, until] (None = open), filters."""
    tenant: str | None = None
    since: str | None = None
    until: str | None = None
    eq: tuple[tuple[str, str], ...] = field(default=())

    def plus(self, **eq) -> "Scope":
        return Scope(self.tenant, self.since, self.until, tuple(sorted({**dict(self.eq), **eq}.items())))

    def days(self, since: str | None, until: str | None) -> "Scope":
        return Scope(self.tenant, since, until, self.eq)


def ensure_index(db: sqlite3.Connection) -> bool:
    """True when the dashboard index exists (built now if missing: ~6 s per million events, once)."""
    ok = True
    for name, sql in ((INDEX, INDEX_SQL), (SESSION_INDEX, SESSION_INDEX_SQL)):
        if dialect_of(db).has_index(db, name):
            continue
        try:
            db.execute(sql)
        except engine.errors():  # `events` not a table here (a later ledger may serve a view): slower, still right
            ok = False
    return ok


def _source(dims: tuple[str, ...], scope: Scope) -> tuple[str, object]:
    """Where a grouping by `dims` in `scope` is answered: ("rollups", grain) when a grain holds these
    dimensions, ("tag_rollups", (tag, value)) for at most one tag filter over the rollup dimensions
    (tag '' = every event), else ("events", None)."""
    wanted = frozenset(d for d in (*dims, *dict(scope.eq)) if d not in ("day", "tenant"))
    if wanted <= set(ROLLUP_DIMS) and wanted in _BY_DIMS:
        return "rollups", _BY_DIMS[wanted]
    tags = _tag_rows(scope)
    if tags is not None and wanted - {k for k, _ in tags} <= set(ROLLUP_DIMS) and not set(dims) & set(TAG_DIMS):
        return "tag_rollups", tags[0] if tags else ("", "")
    return "events", None


def _tag_rows(scope: Scope) -> list[tuple[str, str]] | None:
    """The scope's tag filters when tag_rollups and session_counts hold their rows (at most one, and
    set: 0018 keeps no rows for an unset tag), else None."""
    tags = [(k, v) for k, v in scope.eq if k in TAG_DIMS]
    return tags if len(tags) <= 1 and all(v for _k, v in tags) else None


def _folded(db: sqlite3.Connection) -> None:
    """The tag, hour and sub-agent grains and session counts with every stored call in them: an ingest
    leaves its calls pending (0020) and the first view to read these tables folds them (in `nomira serve`
    a background thread usually has). A store this connection cannot write (read-only, locked past the
    timeout) is read as it is: the figures then lack the pending calls until a fold runs, never a 5xx."""
    try:
        store.fold(db)
    except engine.errors():
        pass


def on_rollups(dims: tuple[str, ...], scope: Scope) -> bool:
    return _source(dims, scope)[0] == "rollups"


def _where(scope: Scope, source: tuple[str, object] = ("events", None)) -> tuple[str, list]:
    table, key = source
    clauses, params = [], []
    if table == "rollups":
        clauses.append("grain = ?")
        params.append(key)
    elif table == "tag_rollups":
        clauses.append("tag = ? AND value = ?")
        params += list(key)
    if scope.tenant is not None:
        clauses.append("tenant = ?")
        params.append(scope.tenant)
    if scope.since is not None:
        clauses.append("day >= ?")
        params.append(scope.since)
    if scope.until is not None:
        clauses.append("day <= ?")
        params.append(scope.until)
    for col, value in scope.eq:
        if col not in FILTER_DIMS:
            raise ValueError(col)
        if table == "tag_rollups" and col == key[0]:
            continue
        clauses.append(f"{col} = ?")
        params.append(value)
    if table == "tag_rollups":
        pairs, more = _pairs(scope)
        clauses.append(pairs)
        params += more
    return (" WHERE " + " AND ".join(clauses)) if clauses else "", params


def _pairs(scope: Scope) -> tuple[str, list]:
    """tag_rollups and session_counts lead with (tenant, developer) (0018): the pairs with calls in the
    scope's days, from the developer grain (a range of days x developers), so a read is one seek per
    pair into a range of (tag, value, days), never a scan of the table."""
    clauses, params = ["grain = 'developer'"], []
    for col, op, value in (("tenant", "=", scope.tenant), ("day", ">=", scope.since), ("day", "<=", scope.until),
                           ("developer", "=", dict(scope.eq).get("developer"))):
        if value is not None:
            clauses.append(f"{col} {op} ?")
            params.append(value)
    return (f"(tenant, developer) IN (SELECT DISTINCT tenant, developer FROM rollups WHERE "
            f"{' AND '.join(clauses)})"), params


def group(db: sqlite3.Connection, dims: tuple[str, ...], scope: Scope) -> list[tuple[tuple, dict]]:
    """[(dimension values, sums)] grouped by `dims` (none: one total row)."""
    for d in dims:
        if d not in GROUP_DIMS:
            raise ValueError(d)
    source = _source(dims, scope)
    if source[0] == "tag_rollups":
        _folded(db)
    if source[0] != "rollups":
        for i, cube in enumerate(_CUBES_DIMS):
            if set(dims) <= set(cube):
                return _from_cube(_cubes(db, scope, source)[i], cube, dims)
    where, params = _where(scope, source)
    sums = _EVENT_SUMS if source[0] == "events" else _ROLLUP_SUMS
    cols = ", ".join(dims)
    sql = f"SELECT {cols + ', ' if dims else ''}{sums} FROM {source[0]}{where}"
    if dims:
        sql += f" GROUP BY {cols}"
    n = len(dims)
    return [(tuple(r[:n]), _row(r[n:])) for r in db.execute(sql, params)]


# The events and tag_rollups paths answer a view's ten or so groupings from one scan, grouped by _FINE
# (events: as the index streams), then summed two ways: by (day, model, regime) for totals, regimes,
# days and days x models, and by (developer, project, regime) for developers, projects and seats (a few
# hundred rows each). Kept until the store changes.
_CUBES_DIMS = (("day", "model", "regime"), ("developer", "project", "regime"))
_MEMO: dict[tuple, tuple] = {}
_LOCK = threading.Lock()
MAX_MEMO = 32


def _version(db: sqlite3.Connection) -> tuple:
    """Changes whenever any connection commits to the store (data_version), this one does, or an
    event arrives (raw ids only grow)."""
    return (dialect_of(db).data_version(db), db.total_changes,
            db.execute("SELECT MAX(id) FROM raw_events").fetchone()[0])


def _cubes_sql(scope: Scope, source: tuple[str, object]) -> tuple[str, list]:
    where, params = _where(scope, source)
    a, b = (", ".join(c) for c in _CUBES_DIMS)
    if source[0] == "tag_rollups":  # already fine rows: read once, each sum straight from them (PostgreSQL
        # scanned the table twice when each arm read it: 0.7 s at 10M events, 0.35 s read once)
        cols = ", ".join(dict.fromkeys((*_CUBES_DIMS[0], *_CUBES_DIMS[1], *FIELDS)))
        return (f"WITH fine AS MATERIALIZED (SELECT {cols} FROM tag_rollups{where}) "
                f"SELECT 0, {a}, {_ROLLUP_SUMS} FROM fine GROUP BY {a} "
                f"UNION ALL SELECT 1, {b}, {_ROLLUP_SUMS} FROM fine GROUP BY {b}"), params
    inner = ", ".join(f"{e} AS s{i}" for i, e in enumerate(_EVENT_SUM_EXPRS))
    outer = ", ".join(f"TOTAL(s{i})" for i in range(len(_EVENT_SUM_EXPRS)))
    fine = ", ".join(_FINE)
    return (f"WITH fine AS MATERIALIZED (SELECT {fine}, {inner} FROM events{where} GROUP BY {fine}) "
            f"SELECT 0, {a}, {outer} FROM fine GROUP BY {a} "
            f"UNION ALL SELECT 1, {b}, {outer} FROM fine GROUP BY {b}"), params


def _memo(db: sqlite3.Connection, key: tuple, compute):
    """compute(), kept per connection and key until the store changes (bounded, oldest out first)."""
    key = (id(db), *key)
    version = _version(db)
    with _LOCK:
        hit = _MEMO.get(key)
    if hit is not None and hit[0] == version:
        return hit[1]
    value = compute()
    with _LOCK:
        _MEMO.pop(key, None)
        while len(_MEMO) >= MAX_MEMO:
            _MEMO.pop(next(iter(_MEMO)))
        _MEMO[key] = (version, value)
    return value


def _cubes(db: sqlite3.Connection, scope: Scope, source: tuple[str, object]) -> tuple[list[tuple], list[tuple]]:
    def compute():
        rows = db.execute(*_cubes_sql(scope, source)).fetchall()
        return [r[1:] for r in rows if r[0] == 0], [r[1:] for r in rows if r[0] == 1]
    return _memo(db, ("cubes", scope, source), compute)


def _from_cube(rows: list[tuple], cube: tuple[str, ...], dims: tuple[str, ...]) -> list[tuple[tuple, dict]]:
    at = [cube.index(d) for d in dims]
    n = len(cube)
    acc: dict[tuple, list] = {}
    for r in rows:
        k = tuple(r[i] for i in at)
        a = acc.get(k)
        if a is None:
            acc[k] = list(r[n:])
        else:
            for i, v in enumerate(r[n:]):
                a[i] += v
    if not dims and not acc:
        acc[()] = [0] * len(FIELDS)
    return [(k, _row(v)) for k, v in acc.items()]


def totals(db: sqlite3.Connection, scope: Scope) -> dict:
    return group(db, (), scope)[0][1]


def by(db: sqlite3.Connection, dim: str, scope: Scope, limit: int | None = None) -> list[dict]:
    """Rows named by `dim`, costliest first (days in order)."""
    rows = [{"name": k[0], **v} for k, v in group(db, (dim,), scope)]
    rows.sort(key=(lambda r: r["name"]) if dim == "day" else (lambda r: (-r["cost_usd"], r["name"])))
    return rows[:limit] if limit else rows


def hourly(hour_models: list[tuple[str, str, dict]]) -> list[dict]:
    """24 UTC hour rows for one day, from `hour_model`'s rows."""
    have: dict[str, list[dict]] = {}
    for hour, _model, sums in hour_models:
        have.setdefault(hour, []).append(sums)
    return [_merge(f"{h:02d}:00", have.get(f"{h:02d}:00", [])) for h in range(24)]


def span(db: sqlite3.Connection, scope: Scope) -> tuple[str | None, str | None]:
    """First and last day with data in this scope's tenant and filters, over all time."""
    source = _source(("day",), scope)
    where, params = _where(scope.days(None, None), source)
    return db.execute(f"SELECT MIN(day), MAX(day) FROM {source[0]}{where}", params).fetchone()


def nearest_day(db: sqlite3.Connection, scope: Scope) -> str | None:
    """The day with data nearest to (outside) the scope's days, for an empty page's hint."""
    source = _source(("day",), scope)
    table = source[0]
    best = []
    if scope.since:
        where, params = _where(scope.days(None, None), source)
        row = db.execute(f"SELECT MAX(day) FROM {table}{where} AND day < ?", params + [scope.since]).fetchone()
        if row[0]:
            best.append((date.fromisoformat(scope.since) - _day(row[0]), row[0]))
    if scope.until:
        where, params = _where(scope.days(None, None), source)
        row = db.execute(f"SELECT MIN(day) FROM {table}{where} AND day > ?", params + [scope.until]).fetchone()
        if row[0]:
            best.append((_day(row[0]) - date.fromisoformat(scope.until), row[0]))
    return min(best)[1] if best else None


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except (TypeError, ValueError):
        return date.min


def series(rows: list[dict], first: date | None, last: date) -> list[dict]:
    """Day rows on a true time axis from `first` (None: the first day with data) to `last`, zeros
    where no data; by month past MAX_DAILY_POINTS days, at most MAX_MONTHLY_POINTS months back.
    Rows off the axis (a bad stored day) stay in the totals only."""
    have = {}
    for r in rows:
        d = _day(r["name"])
        if d != date.min and (first is None or first <= d) and d <= last:
            have[d] = r
    if first is None:
        if not have:
            return []
        first = min(have)
    if (last - first).days + 1 <= MAX_DAILY_POINTS:
        out, d = [], first
        while d <= last:
            out.append(have.get(d) or {"name": d.isoformat(), **_row([0] * len(FIELDS))})
            d += timedelta(days=1)
        return out
    months: dict[str, list[dict]] = {}
    for d, r in have.items():
        months.setdefault(f"{d.year:04d}-{d.month:02d}", []).append(r)
    end = last.year * 12 + last.month - 1
    out = []
    for m in range(max(first.year * 12 + first.month - 1, end - MAX_MONTHLY_POINTS + 1), end + 1):
        name = f"{m // 12:04d}-{m % 12 + 1:02d}"
        out.append(_merge(name, months.get(name, [])))
    return out


MAX_DAY_BARS = 92  # past this a trend is drawn by week: bars stay wider than a hairline


def week_of(day: str) -> str:
    """The Monday starting `day`'s week (a day name that is not a date stays as is)."""
    d = _day(day)
    return (d - timedelta(days=d.weekday())).isoformat() if d != date.min else day


def weeks(rows: list[dict]) -> list[dict]:
    """Daily rows (in order) merged by week, each named by its Monday."""
    out: dict[str, list[dict]] = {}
    for r in rows:
        out.setdefault(week_of(r["name"]), []).append(r)
    return [_merge(name, group) for name, group in out.items()]


def day_model(db: sqlite3.Connection, scope: Scope) -> list[tuple[str, str, dict]]:
    """(day, model, sums): what the cost-by-token-type split prices."""
    return [(k[0], k[1], v) for k, v in group(db, ("day", "model"), scope)]


def hour_model(db: sqlite3.Connection, scope: Scope, day: str) -> list[tuple[str, str, dict]]:
    """(hour, model, sums) for one UTC day: from `hour_rollups` (0019, one range of the day's rows) under
    developer, project and model filters; with a tag filter from that day's `events` (occurred_at is
    stored as UTC ISO text: hour at chars 12-13)."""
    if set(dict(scope.eq)) <= set(ROLLUP_DIMS):
        _folded(db)
        where, params = _where(scope.days(day, day), ("hour_rollups", None))
        sql = f"SELECT hour, model, {_ROLLUP_SUMS} FROM hour_rollups{where} GROUP BY hour, model"
    else:
        where, params = _where(scope.days(day, day))
        sql = f"SELECT substr(occurred_at, 12, 2), model, {_EVENT_SUMS} FROM events{where} GROUP BY 1, 2"
    # a replaced copy leaves a row of zeros behind in the rollups (as in `rollups`): not an hour with calls
    return [(f"{r[0]}:00", r[1], _row(r[2:])) for r in db.execute(sql, params) if r[2]]


def seats(db: sqlite3.Connection, scope: Scope) -> int:
    """Developers with subscription usage in scope (the plan line's seat count)."""
    return len([1 for k, v in group(db, ("developer", "regime"), scope) if k[1] == "subscription" and v["calls"]])


def _within(scope: Scope, developers: list[str] | None, extra: str = "", table: str = "events") -> tuple[str, list]:
    """The scope's WHERE, narrowed to `developers` (a project's, from the rollups: index seeks, not a scan)."""
    where, params = _where(scope, (table, None))
    clauses = [where[7:]] if where else []
    if developers is not None:
        clauses.append(f"developer IN ({', '.join('?' * len(developers)) or 'NULL'})")
        params += list(developers)
    if extra:
        clauses.append(extra)
    return (" WHERE " + " AND ".join(clauses)) if clauses else "", params


def sessions(db: sqlite3.Connection, dim: str, scope: Scope, developers: list[str] | None = None) -> dict[str, int]:
    """Sessions per developer or project in scope (a session id is unique per agent run). With at most
    one tag or model filter beside developer and project: the sessions that started in scope (a session
    is counted on its first call, with that call's tags; under a model filter on its first call of that
    model), summed from `session_counts` (0012; model rows 0019). A tag and a model filter, or two tag
    filters: the distinct sessions with a call in scope, counted from `events`."""
    if dim not in ("developer", "project"):
        raise ValueError(dim)
    tags = _tag_rows(scope)
    eq = dict(scope.eq)
    if "model" in eq and tags == []:
        tags = [("model", eq["model"])]
    if tags is not None and set(eq) - {k for k, _ in tags} <= {"developer", "project"}:
        _folded(db)
        where, params = _where(scope, ("tag_rollups", tags[0] if tags else ("", "")))
        sql = f"SELECT {dim}, TOTAL(sessions) FROM session_counts{where} GROUP BY {dim}"
        return {k: int(n) for k, n in db.execute(sql, params) if n}
    where, params = _within(scope, developers)
    sql = f"SELECT {dim}, COUNT(DISTINCT session_id) FROM events{where} GROUP BY {dim}"
    return _memo(db, ("sessions", sql, tuple(params)), lambda: dict(db.execute(sql, params).fetchall()))


def sidechain_cost(db: sqlite3.Connection, scope: Scope, developers: list[str] | None = None) -> float:
    """Cost of sub-agent (sidechain) calls in scope: from `sidechain_rollups` (0019) under developer,
    project and model filters, from `events` with a tag filter."""
    if set(dict(scope.eq)) <= set(ROLLUP_DIMS):
        _folded(db)
        where, params = _within(scope, developers, table="sidechain_rollups")
        return db.execute(f"SELECT TOTAL(cost_usd) FROM sidechain_rollups{where}", params).fetchone()[0] or 0.0
    where, params = _within(scope, developers, "is_sidechain = 1")
    sql = f"SELECT TOTAL(cost_usd) FROM events{where}"
    return _memo(db, ("sidechain", sql, tuple(params)), lambda: db.execute(sql, params).fetchone()[0] or 0.0)


def spread(db: sqlite3.Connection, dim: str, other: str, scope: Scope) -> dict[str, int]:
    """How many distinct `other` values (projects, developers) each `dim` value has in scope."""
    out: dict[str, int] = {}
    for (a, _b), v in group(db, (dim, other), scope):
        if v["calls"]:
            out[a] = out.get(a, 0) + 1
    return out


def names(db: sqlite3.Connection, dim: str, scope: Scope, limit: int = 200) -> list[str]:
    """Values a filter can take (for the form's suggestions), from the rollups only."""
    if dim not in ROLLUP_DIMS:
        return []
    where, params = _where(Scope(scope.tenant), ("rollups", _BY_DIMS[frozenset((dim,))]))
    sql = f"SELECT DISTINCT {dim} FROM rollups{where} ORDER BY 1 LIMIT {int(limit)}"
    return _memo(db, ("names", sql, tuple(params)), lambda: [r[0] for r in db.execute(sql, params)])
