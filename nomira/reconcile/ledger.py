"""Reconciliation's part of the store layer: all its SQL (tables from migration 0009_reconcile).

Bill lines are keyed per tenant/provider/account/day/model: a later import of the same
window replaces the figures it carries (a cost export and a usage export fill one row).
Adjustments are keyed per tenant/provider/day/model, so re-running reconcile updates the
one record instead of adding another; `store.replay` never touches either table.
"""
from __future__ import annotations

import json
import secrets
import sqlite3
from datetime import datetime, timezone

from nomira.reconcile.bills import BillLine

LINE_COLS = ("id", "tenant", "provider", "account", "day", "model", "cost_usd", "tokens", "requests", "source",
             "import_id", "row_ref")
ADJ_COLS = ("id", "tenant", "provider", "day", "model", "cost_usd", "tokens", "requests", "reason", "bill_line_ids",
            "bill_ref", "created_at", "updated_at")
_BILLED_TOKENS = "input + output + cache_read + cache_write_5m + cache_write_1h"  # reasoning is inside output


def _now() -> str:
    return datetime.now(timezone.utc).isoformat()


def _scope(tenant: str | None, since: str | None, until: str | None, prefix: str = "WHERE") -> tuple[str, list]:
    clauses, params = [], []
    for sql, value in (("tenant = ?", tenant), ("day >= ?", since), ("day <= ?", until)):
        if value is not None:
            clauses.append(sql)
            params.append(value)
    return (f" {prefix} " + " AND ".join(clauses)) if clauses else "", params


def save_lines(db: sqlite3.Connection, tenant: str, provider: str, source: str, lines: list[BillLine],
               summary: dict) -> dict:
    """Store one import's lines in one transaction; returns {import_id, inserted, replaced}."""
    import_id = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S") + "-" + secrets.token_hex(3)
    now = _now()
    db.execute("BEGIN IMMEDIATE")
    try:
        keys = {(ln.provider, ln.account, ln.day, ln.model) for ln in lines}
        existing = sum(1 for k in keys if db.execute(
            "SELECT 1 FROM bill_lines WHERE tenant = ? AND provider = ? AND account = ? AND day = ? AND model = ?",
            (tenant, *k)).fetchone())
        # the days this import bills, per account (any case), replace what earlier imports had there, at any
        # grouping: a day's total then its per-model lines (or the reverse) is one bill, never two
        windows = sorted({(ln.provider, ln.account.lower(), ln.day) for ln in lines})
        replaced_other = 0
        for provider, account, day in windows:
            here = [ln for ln in lines if (ln.provider, ln.account.lower(), ln.day) == (provider, account, day)]
            models, spellings = sorted({ln.model for ln in here}), sorted({ln.account for ln in here})
            cur = db.execute(  # (this import's own keys are upserted below, as before)
                f"DELETE FROM bill_lines WHERE tenant = ? AND provider = ? AND lower(account) = ? AND day = ? AND "
                f"NOT (model IN ({', '.join('?' * len(models))}) AND account IN ({', '.join('?' * len(spellings))}))",
                (tenant, provider, account, day, *models, *spellings))
            replaced_other += max(cur.rowcount, 0)
        db.executemany(
            "INSERT INTO bill_lines (tenant, provider, account, day, model, cost_usd, tokens, requests, source, "
            "import_id, row_ref, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (tenant, provider, account, day, model) DO UPDATE SET "
            "cost_usd = COALESCE(excluded.cost_usd, bill_lines.cost_usd), "
            "tokens = COALESCE(excluded.tokens, bill_lines.tokens), "
            "requests = COALESCE(excluded.requests, bill_lines.requests), source = excluded.source, "
            "import_id = excluded.import_id, row_ref = excluded.row_ref, updated_at = excluded.updated_at",
            [(tenant, ln.provider, ln.account, ln.day, ln.model, ln.cost_usd, ln.tokens, ln.requests, source,
              import_id, ln.row_ref, now) for ln in lines])
        db.execute("INSERT INTO bill_imports (id, tenant, provider, source, summary, created_at) "
                   "VALUES (?, ?, ?, ?, ?, ?)", (import_id, tenant, provider, source, json.dumps(summary), now))
        others = _other_accounts(db, tenant, lines)
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise
    return {"import_id": import_id, "inserted": len(keys) - existing, "replaced": existing + replaced_other,
            "other_accounts": others}


def _other_accounts(db: sqlite3.Connection, tenant: str, lines: list[BillLine]) -> list[dict]:
    """Other accounts' lines on the days this import bills ({account, source}): two accounts' bills of
    one day are right when they are two accounts, and the same spend twice when one is another's name
    for it (a `fetch` under a workspace id, a console CSV under `default`), which only the user knows."""
    from nomira.ledger.store import _in_lists
    found: dict[tuple, None] = {}
    for provider in sorted({ln.provider for ln in lines}):
        mine = sorted({ln.account.lower() for ln in lines if ln.provider == provider})
        for chunk, marks in _in_lists(sorted({ln.day for ln in lines if ln.provider == provider}), 400):
            for account, src in db.execute(
                    f"SELECT DISTINCT account, source FROM bill_lines WHERE tenant = ? AND provider = ? AND day IN "
                    f"({marks}) AND lower(account) NOT IN ({', '.join('?' * len(mine))})",
                    (tenant, provider, *chunk, *mine)):
                found[(account, src)] = None
    return [{"account": a, "source": src} for a, src in sorted(found)]


def bill_lines(db: sqlite3.Connection, tenant: str | None, since: str | None = None,
               until: str | None = None) -> list[dict]:
    where, params = _scope(tenant, since, until)
    return [dict(zip(LINE_COLS, r)) for r in db.execute(
        f"SELECT {', '.join(LINE_COLS)} FROM bill_lines{where} ORDER BY tenant, provider, day, model, account",
        params)]


def imports(db: sqlite3.Connection, tenant: str | None, limit: int = 20) -> list[dict]:
    where, params = _scope(tenant, None, None)
    return [{"id": i, "tenant": t, "provider": p, "source": s, "summary": json.loads(m), "created_at": c}
            for i, t, p, s, m, c in db.execute(
                f"SELECT id, tenant, provider, source, summary, created_at FROM bill_imports{where} "
                f"ORDER BY created_at DESC LIMIT {int(limit)}", params)]


def observed(db: sqlite3.Connection, tenant: str | None, since: str | None, until: str | None) -> list[dict]:
    """Event-derived calls, tokens and cost per tenant/provider/day/model/regime/developer/source.

    Reads `events` (rollups carry neither provider, source nor model x regime): one grouped
    scan of the reconciled days serves both the windows and the who-went-silent question.
    """
    utc_day = "substr(occurred_at, 1, 10)"  # (occurred_at is UTC ISO text: bills are per UTC day, and an
    # event's `day` is its developer's local one, up to a day apart: that bound kept for the index)
    where, params = _scope(tenant, _shift(since, -1), _shift(until, 1))
    for sql, value in ((f"{utc_day} >= ?", since), (f"{utc_day} <= ?", until)):
        if value is not None:
            where += f" {'AND' if where else 'WHERE'} {sql}"
            params.append(value)
    keys = ("tenant", "provider", "day", "model", "regime", "developer", "source")
    cols = [utc_day if k == "day" else k for k in keys]
    return [{**dict(zip(keys, r[:7])), "calls": r[7], "tokens": r[8] or 0, "cost_usd": r[9] or 0.0,
             "unpriced_calls": r[10] or 0}
            for r in db.execute(
                f"SELECT {', '.join(cols)}, COUNT(*), SUM({_BILLED_TOKENS}), SUM(COALESCE(cost_usd, 0)), "
                f"SUM(CASE WHEN cost_usd IS NULL THEN 1 ELSE 0 END) FROM events{where} "
                f"GROUP BY {', '.join(cols)}", params)]


def _shift(day: str | None, days: int) -> str | None:
    """`day` (YYYY-MM-DD) moved by `days`; None stays None."""
    if day is None:
        return None
    from datetime import date, timedelta
    return (date.fromisoformat(day) + timedelta(days=days)).isoformat()


def adjustments(db: sqlite3.Connection, tenant: str | None, since: str | None = None,
                until: str | None = None) -> list[dict]:
    where, params = _scope(tenant, since, until)
    out = []
    for r in db.execute(f"SELECT {', '.join(ADJ_COLS)} FROM reconcile_adjustments{where} "
                        "ORDER BY tenant, provider, day, model", params):
        d = dict(zip(ADJ_COLS, r))
        d["bill_line_ids"] = json.loads(d["bill_line_ids"])
        out.append({"kind": "reconcile_adjustment", **d})
    return out


def sync_adjustments(db: sqlite3.Connection, wanted: list[dict], tenant: str | None, since: str | None,
                     until: str | None) -> dict:
    """Make the recorded adjustments in scope exactly `wanted` (keyed per window): one record per
    over-tolerance window, updated in place when its figures change, withdrawn when it is back within."""
    now = _now()
    counts = {"created": 0, "updated": 0, "unchanged": 0, "withdrawn": 0}
    db.execute("BEGIN IMMEDIATE")
    try:
        have = {(a["tenant"], a["provider"], a["day"], a["model"]): a for a in adjustments(db, tenant, since, until)}
        for w in wanted:
            key = (w["tenant"], w["provider"], w["day"], w["model"])
            old = have.pop(key, None)
            values = (w["cost_usd"], w["tokens"], w["requests"], w["reason"], json.dumps(w["bill_line_ids"]),
                      w["bill_ref"])
            if old is None:
                db.execute("INSERT INTO reconcile_adjustments (tenant, provider, day, model, cost_usd, tokens, "
                           "requests, reason, bill_line_ids, bill_ref, created_at, updated_at) "
                           "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", (*key, *values, now, now))
                counts["created"] += 1
            elif (old["cost_usd"], old["tokens"], old["requests"], old["reason"], json.dumps(old["bill_line_ids"]),
                  old["bill_ref"]) == values:
                counts["unchanged"] += 1
            else:
                db.execute("UPDATE reconcile_adjustments SET cost_usd = ?, tokens = ?, requests = ?, reason = ?, "
                           "bill_line_ids = ?, bill_ref = ?, updated_at = ? WHERE id = ?", (*values, now, old["id"]))
                counts["updated"] += 1
        for old in have.values():
            db.execute("DELETE FROM reconcile_adjustments WHERE id = ?", (old["id"],))
            counts["withdrawn"] += 1
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise
    return counts


def save_run(db: sqlite3.Connection, scope: str, since: str | None, until: str | None, body: dict) -> None:
    """Keep the last run per scope; `raw_watermark` tells a reader whether events arrived since."""
    raw = db.execute("SELECT MAX(id) FROM raw_events").fetchone()[0] or 0
    db.execute("INSERT INTO reconcile_runs (scope, since, until, raw_watermark, body, created_at) "
               "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (scope) DO UPDATE SET since = excluded.since, "
               "until = excluded.until, raw_watermark = excluded.raw_watermark, body = excluded.body, "
               "created_at = excluded.created_at", (scope, since, until, raw, json.dumps(body), _now()))


def load_run(db: sqlite3.Connection, tenant: str | None) -> dict | None:
    """The newest run that covers `tenant` (None: every tenant): its own scope or the all-tenant one."""
    scopes = ["*"] if tenant is None else ["*", tenant]
    row = db.execute(f"SELECT scope, since, until, raw_watermark, body, created_at FROM reconcile_runs WHERE scope "
                     f"IN ({', '.join('?' * len(scopes))}) ORDER BY created_at DESC LIMIT 1", scopes).fetchone()
    if row is None:
        return None
    scope, since, until, raw, body, created = row
    return {"scope": scope, "since": since, "until": until, "raw_watermark": raw, "built": json.loads(body),
            "created_at": created}


def freshness(db: sqlite3.Connection, tenant: str | None) -> dict:
    """Cheap markers a stored run is compared with: newest raw event id and newest bill import."""
    where, params = _scope(tenant, None, None)
    return {"raw_watermark": db.execute("SELECT MAX(id) FROM raw_events").fetchone()[0] or 0,
            "last_import_at": db.execute(f"SELECT MAX(created_at) FROM bill_imports{where}", params).fetchone()[0]}
