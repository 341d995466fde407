"""Retention: raw events 30 days, canonical events 400 days, rollups forever (issue 17).

Pruning deletes rows only; rollups and serving views are never touched, so every total stays
what it was. Cutoffs are by UTC day: raw rows by the day they were received, canonical rows by
the day of the call. Raw rows are the one thing the database refuses to delete (0010); the
delete passes here because this transaction holds a row in `retention_in_progress` (0011).
"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from nomira.ledger.engine import dialect_of

RAW_DAYS, EVENTS_DAYS = 30, 400


def cutoffs(raw_days: int, events_days: int, now: datetime | None = None) -> tuple[str, str]:
    """First UTC day kept, for raw rows and for canonical rows (YYYY-MM-DD)."""
    today = (now or datetime.now(timezone.utc)).astimezone(timezone.utc).date()
    return (str(today - timedelta(days=raw_days)), str(today - timedelta(days=events_days)))


def check_days(raw_days: int, events_days: int) -> str | None:
    """Why these settings cannot be used, or None. Canonical rows must outlive their raw rows:
    replay keeps a day whose raw rows are gone only as long as its canonical rows are there."""
    if raw_days < 1 or events_days < 1:
        return "retention days must be at least 1"
    if events_days < raw_days:
        return f"canonical events ({events_days} days) must be kept at least as long as raw events ({raw_days} days)"
    return None


def prune(db, raw_days: int = RAW_DAYS, events_days: int = EVENTS_DAYS, now: datetime | None = None,
          dry_run: bool = False) -> dict:
    """Delete raw rows received before the raw cutoff and canonical rows dated before the events
    cutoff, in one transaction; with dry_run, only count them."""
    raw_cut, events_cut = cutoffs(raw_days, events_days, now)
    raw_where = "received_at < ?"
    events_where = "day < ?"
    db.execute("BEGIN IMMEDIATE")
    try:
        dialect_of(db).no_timeout(db)
        raw = db.execute(f"SELECT COUNT(*) FROM raw_events WHERE {raw_where}", (raw_cut,)).fetchone()[0]
        events = db.execute(f"SELECT COUNT(*) FROM events WHERE {events_where}", (events_cut,)).fetchone()[0]
        if not dry_run:
            from nomira.ledger.store import fold_in  # here: store imports this module
            # pending rows (0020) reach the tag grains first: a fold reads a row it does not hold back
            # through its raw row, and the events go below
            fold_in(db)
            db.execute("INSERT INTO retention_in_progress (id, started_at) VALUES (1, ?)",
                       (datetime.now(timezone.utc).isoformat(),))
            db.execute(f"DELETE FROM superseded_events WHERE raw_id IN (SELECT id FROM raw_events WHERE {raw_where})",
                       (raw_cut,))
            db.execute(f"DELETE FROM raw_events WHERE {raw_where}", (raw_cut,))
            db.execute("DELETE FROM retention_in_progress")
            db.execute(f"DELETE FROM events WHERE {events_where}", (events_cut,))
            # telemetry links (0013) of calls as old as the pruned events; the tenants' "fp" markers stay
            db.execute("DELETE FROM call_links WHERE occurred_at < ? AND link <> 'fp'", (events_cut,))
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise
    return {"raw_cutoff": raw_cut, "events_cutoff": events_cut, "raw_days": raw_days, "events_days": events_days,
            "raw_events_pruned": raw, "events_pruned": events, "dry_run": dry_run}


def lost_days(db) -> list[str]:
    """Days replay can no longer rebuild from raw rows: days in the rollups with no canonical rows
    left, or with a canonical row whose raw row was pruned."""
    # one pass over events (a primary-key probe each) and one index probe per rollup day
    return [r[0] for r in db.execute(
        "SELECT day FROM (SELECT e.day FROM events e WHERE NOT EXISTS "
        "(SELECT 1 FROM raw_events w WHERE w.id = e.raw_id) UNION SELECT r.day FROM rollups r "
        "WHERE r.grain = 'day' AND NOT EXISTS (SELECT 1 FROM events e WHERE e.tenant = r.tenant AND e.day = r.day)) "
        "AS lost ORDER BY day")]


def prune_loop(target, raw_days: int, events_days: int, stop, first_delay: float = 60.0,
               interval: float = 86400.0, log=None) -> None:
    """The collector's daily prune (a background thread of `nomira serve`): first run after
    `first_delay` seconds, then every `interval`, until `stop` (a threading.Event) is set. Each
    run opens its own connection; a failure is logged and retried at the next run, never raised."""
    import sys

    from nomira.ledger import engine, store
    log = log or (lambda line: print(line, file=sys.stderr, flush=True))
    wait = first_delay
    while not stop.wait(wait):
        wait = interval
        db = None
        try:
            db = store.open_db(target)
            r = prune(db, raw_days, events_days)
            log(f"nomira: retention pruned {r['raw_events_pruned']} raw event(s) before {r['raw_cutoff']} and "
                f"{r['events_pruned']} canonical event(s) before {r['events_cutoff']}")
        except Exception as exc:  # the server keeps serving; the next run tries again
            log(f"nomira: retention prune failed: {engine.first_line(exc)} (next try in {interval:.0f} s)")
        finally:
            if db is not None:
                db.close()
