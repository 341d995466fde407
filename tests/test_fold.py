"""Deferred tag grains (0020, issue 24): an ingest files its canonical rows in `rollup_pending` and the fold
sums them into tag_rollups, hour_rollups, sidechain_rollups, usage_sessions, session_models and
session_counts. Folding late must give exactly what folding after every batch gives (the old inline write),
and what a recompute from `events` gives; a view, replay, prune and a long queue fold."""
from datetime import datetime, timezone

import pytest

from nomira.collector import queries
from nomira.ledger import retention, store
from test_ledger import call

TABLES = {"tag_rollups": store.TAG_ROLLUP_KEYS, "hour_rollups": store.HOUR_KEYS,
          "sidechain_rollups": store.SIDECHAIN_KEYS, "usage_sessions": store.SESSION_COLS,
          "session_models": store.SESSION_MODEL_COLS, "session_counts": (*store.SESSION_COUNT_KEYS, "sessions")}


def tables(db) -> dict[str, list[tuple]]:
    """Every row of the tables the fold feeds (sums: ints, cost rounded; rows of zeros left by a replaced
    copy out, as the views skip them)."""
    out = {}
    for table, keys in TABLES.items():
        sums = store.ROLLUP_COLS if table.endswith("rollups") else ()
        got = []
        for r in db.execute(f"SELECT {', '.join(keys + sums)} FROM {table} ORDER BY {', '.join(keys)}"):
            if sums:
                v = [int(x) for x in r[len(keys):-2]] + [round(float(r[-2]), 9), int(r[-1])]
                if not any(v):
                    continue
                r = (*r[:len(keys)], *v)
            got.append(tuple(int(x) if table == "session_counts" and i == len(keys) - 1 else x
                             for i, x in enumerate(r)))
        out[table] = got
    return out


def recomputed(db) -> dict[str, list[tuple]]:
    """The same tables recomputed from today's canonical rows (rolled back)."""
    db.execute("BEGIN IMMEDIATE")
    try:
        store.rebuild_tag_rollups(db)
        store.rebuild_hour_sidechain(db)
        store.rebuild_sessions(db)
        store.rebuild_session_models(db)
        return tables(db)
    finally:
        db.execute("ROLLBACK")


def pending(db) -> int:
    return db.execute("SELECT COUNT(*) FROM rollup_pending").fetchone()[0]


ANA = {"developer": "ana", "project": "shop", "feature": "search", "env": "prod"}
BO = {"developer": "bo", "project": "api", "workflow": "review", "customer": "acme"}


def batches() -> list[list[dict]]:
    """New calls, a winning copy of a call still pending (b), then of one folded before (a, when the
    caller folds between batches), a duplicate, sub-agent calls, two models in one session."""
    more = {"input": 40, "output": 900, "cache_read": 30000, "cache_write_5m": 700}
    return [
        [call(message_id="a", session_id="s1", occurred_at="2025-11-03T10:00:00Z", tags=ANA),
         call(message_id="b", session_id="s1", occurred_at="2025-11-03T11:30:00Z", tags=ANA, is_sidechain=True),
         call(message_id="c", session_id="s2", occurred_at="2025-11-04T09:00:00Z", tags=BO, cost_usd=None,
              model="gpt-5-codex", source="codex", provider="openai")],
        [call(message_id="b", session_id="s1", occurred_at="2025-11-03T11:30:00Z", tags=ANA, is_sidechain=True,
              tokens=more, cost_usd=0.09),
         call(message_id="d", session_id="s1", occurred_at="2025-11-03T12:00:00Z", tags=dict(ANA, env="ci"),
              model="gpt-5-codex", source="codex", provider="openai")],
        [call(message_id="a", session_id="s1", occurred_at="2025-11-03T10:00:00Z", tags=ANA, tokens=more,
              cost_usd=0.07),
         call(message_id="c", session_id="s2", occurred_at="2025-11-04T09:00:00Z", tags=BO, cost_usd=None,
              model="gpt-5-codex", source="codex", provider="openai"),  # a duplicate: no change
         call(message_id="e", session_id="s3", occurred_at="2025-11-05T23:59:00Z", tags=dict(BO, customer=None))],
    ]


def test_folding_late_equals_folding_every_batch_and_the_events(store_target, tmp_path):
    inline = store.open_db(tmp_path / "inline.db")
    late = store.open_db(store_target)
    for batch in batches():
        store.ingest(inline, batch)
        store.fold(inline)
        assert pending(inline) == 0
        store.ingest(late, batch)
    assert pending(late) == 5  # a, b's winner, c, d, e: one row per canonical call
    assert store.fold(late) == 5 and pending(late) == 0
    got = tables(late)
    assert got == tables(inline) == recomputed(late)
    assert sum(r[8] for r in got["tag_rollups"] if r[2] == "") == 5  # every call under tag '' once
    assert [r[:4] for r in got["usage_sessions"]] == [("", "ana", "shop", "s1"), ("", "bo", "api", "s2"),
                                                      ("", "bo", "api", "s3")]
    # replay rebuilds the same (it folds what is pending before and after)
    store.ingest(late, [call(message_id="f", session_id="s3", occurred_at="2025-11-06T08:00:00Z", tags=BO)])
    assert pending(late) == 1
    before = recomputed(late)
    store.replay(late)
    assert pending(late) == 0 and tables(late) == before


def test_a_view_folds_before_it_reads(store_target):
    db = store.open_db(store_target)
    for batch in batches():
        store.ingest(db, batch)
    assert pending(db) > 0
    scope = queries.Scope(eq=(("feature", "search"),))
    assert queries._source(("developer",), scope)[0] == "tag_rollups"
    assert queries.totals(db, scope)["calls"] == 3  # a, b, d (d: env ci, feature search)
    assert pending(db) == 0
    store.ingest(db, [call(message_id="g", session_id="s9", occurred_at="2025-11-07T08:00:00Z", tags=ANA)])
    queries._MEMO.clear()
    assert queries.sessions(db, "developer", queries.Scope(eq=(("feature", "search"),))) == {"ana": 2}
    assert pending(db) == 0


def test_an_ingest_folds_a_long_queue(store_target, monkeypatch):
    db = store.open_db(store_target)
    monkeypatch.setattr(store, "FOLD_AFTER", 4)
    first, second, third = batches()
    store.ingest(db, first)
    assert pending(db) == 3  # raw ids 1-3: a span of 2 < 4
    store.ingest(db, second)
    assert pending(db) == 0  # raw ids 1-5: folded after the commit
    store.ingest(db, third)
    assert pending(db) == 2 and tables(db) != recomputed(db)
    store.fold(db)
    assert tables(db) == recomputed(db)


def test_prune_folds_first(store_target, monkeypatch):
    db = store.open_db(store_target)
    monkeypatch.setattr(store, "_now", lambda: "2026-01-01T09:00:00+00:00")
    store.ingest(db, [call(occurred_at="2025-01-10T08:00:00Z", message_id="old", tags={"feature": "search"}),
                      call(occurred_at="2025-12-31T23:00:00Z", message_id="dec", tags={"feature": "billing"})])
    want = recomputed(db)
    assert pending(db) == 2
    retention.prune(db, 30, 400, now=datetime(2026, 3, 1, 12, tzinfo=timezone.utc))
    assert pending(db) == 0 and tables(db) == want  # the pruned call stays in every grain


@pytest.mark.parametrize("n", [0, 1])
def test_fold_with_nothing_pending_writes_nothing(store_target, n):
    db = store.open_db(store_target)
    if n:
        store.ingest(db, batches()[0])
        store.fold(db)
    changes = db.total_changes
    assert store.fold(db) == 0 and db.total_changes == changes


def test_the_collectors_fold_loop_folds_in_the_background(store_target):
    import threading
    db = store.open_db(store_target)
    store.ingest(db, batches()[0])
    stop, lines = threading.Event(), []
    t = threading.Thread(target=store.fold_loop, args=(store_target, stop, 0.05, lines.append))
    t.start()
    try:
        for _ in range(200):
            if not pending(db):
                break
            stop.wait(0.05)
    finally:
        stop.set()
        t.join(10)
    assert pending(db) == 0 and not lines and not t.is_alive()
    assert tables(db) == recomputed(db)


def test_a_view_that_cannot_fold_reads_what_is_folded(tmp_path, monkeypatch):
    """A store the view cannot write (read-only file, a lock held past the timeout): no error, the
    figures without the pending calls."""
    import sqlite3
    db = store.open_db(tmp_path / "s.db")
    first, second, _ = batches()
    store.ingest(db, first)
    store.fold(db)
    store.ingest(db, second)

    def locked(_db):
        raise sqlite3.OperationalError("database is locked")
    monkeypatch.setattr(store, "fold", locked)
    queries._MEMO.clear()
    # a; b's first copy taken back at once when its winner came (folded before), the winner and d pending
    assert queries.totals(db, queries.Scope(eq=(("feature", "search"),)))["calls"] == 1
    assert pending(db) == 2
