"""Hour and sub-agent rollups (0019, issue 19): kept in step with `events` in the ingest transaction
(duplicates and superseding copies included), rebuilt by replay, backfilled by the migration; the
hourly `today` view and a project's sub-agent share read them, with the figures `events` gives."""
from nomira.ledger import store
from nomira.collector import queries
from nomira.ledger.wire import TOKEN_FIELDS
from test_ledger import call

SUMS = ", ".join(["COUNT(*)", *(f"SUM({t})" for t in TOKEN_FIELDS), "SUM(COALESCE(cost_usd, 0))",
                  "SUM(CASE WHEN cost_usd IS NULL THEN 1 ELSE 0 END)"])


def rows(db, table: str, keys: tuple[str, ...]) -> list[tuple]:
    """Every row: keys, calls and tokens as ints, cost rounded (engines sum floats apart); zero rows out."""
    return [(*r[:len(keys)], *(int(v) for v in r[len(keys):-2]), round(float(r[-2]), 9), int(r[-1]))
            for r in db.execute(f"SELECT {', '.join(keys + store.ROLLUP_COLS)} FROM {table} "
                                f"ORDER BY {', '.join(keys)}") if any(r[len(keys):])]


def both(db) -> tuple[list, list]:
    return rows(db, "hour_rollups", store.HOUR_KEYS), rows(db, "sidechain_rollups", store.SIDECHAIN_KEYS)


def rebuilt(db) -> tuple[list, list]:
    """What a recompute from today's canonical rows gives (rolled back: the store is left as it was)."""
    db.execute("BEGIN IMMEDIATE")
    try:
        store.rebuild_hour_sidechain(db)
        return both(db)
    finally:
        db.execute("ROLLBACK")


def history() -> list[dict]:
    tags = {"developer": "ana", "project": "shop", "feature": "search"}
    return [
        call(message_id="m1", tags=tags, occurred_at="2025-11-03T09:15:00Z"),
        call(message_id="m2", tags=tags, occurred_at="2025-11-03T09:45:00Z", is_sidechain=True),
        call(message_id="m3", tags=dict(tags, feature="billing"), cost_usd=None, model="gpt-5-codex",
             source="codex", provider="openai", occurred_at="2025-11-03T23:59:59.5Z", is_sidechain=True),
        call(message_id="m4", tags=dict(tags, developer="bo", project="api"), occurred_at="2025-11-03T00:00:01Z",
             is_sidechain=True),
        call(message_id="m5", tags=dict(tags, developer="bo"), occurred_at="2025-11-04T14:00:00Z"),
        call(message_id="m1", tags=tags, occurred_at="2025-11-03T09:15:00Z"),  # a duplicate: no change
        # a more complete copy of m4 (same priority) in another hour: it replaces the first
        call(message_id="m4", tags=dict(tags, developer="bo", project="api"), occurred_at="2025-11-03T10:00:01Z",
             tokens={"input": 12, "output": 900, "cache_read": 20480, "cache_write_5m": 512}, cost_usd=0.05,
             is_sidechain=True),
    ]


def test_ingest_keeps_hour_and_sidechain_rollups_equal_to_the_canonical_rows(store_target):
    db = store.open_db(store_target)
    events = history()
    store.ingest(db, events[:3])
    store.ingest(db, events[3:])
    got = both(db)
    assert got == rebuilt(db)
    hours, side = got
    assert {(r[0], r[6]): r[7] for r in hours} == {("2025-11-03", "09"): 2, ("2025-11-03", "23"): 1,
                                                   ("2025-11-03", "10"): 1, ("2025-11-04", "14"): 1}
    assert sum(r[5] for r in side) == 3 and sum(r[-1] for r in side) == 1  # m2, m3 (unpriced), m4's winner
    store.replay(db)
    assert both(db) == got


def test_migration_backfills_from_canonical_events(store_target):
    db = store.open_db(store_target)
    store.ingest(db, history())
    want = both(db)
    for table in ("hour_rollups", "sidechain_rollups"):  # a store made before 0019
        db.execute(f"DROP TABLE {table}")
    db.execute("DELETE FROM _nomira_migrations WHERE name = '0019_hour_sidechain_rollups'")
    db.close()
    db = store.open_db(store_target)
    assert both(db) == want


def test_hourly_view_and_sidechain_cost_equal_the_events_they_sum(store_target):
    """The rollup path and the events path give the same figures, filter by filter."""
    db = store.open_db(store_target)
    store.ingest(db, history())
    for eq in ((), (("developer", "bo"),), (("model", "gpt-5-codex"),), (("developer", "ana"), ("project", "shop")),
               (("feature", "search"),)):
        scope = queries.Scope(eq=eq)
        where = " AND ".join(["day = ?", *(f"{k} = ?" for k, _ in eq)])
        params = ["2025-11-03", *(v for _, v in eq)]
        want = {(f"{h}:00", m): (int(n), float(c)) for h, m, n, c in db.execute(
            f"SELECT substr(occurred_at, 12, 2), model, COUNT(*), SUM(COALESCE(cost_usd, 0)) FROM events "
            f"WHERE {where} GROUP BY 1, 2", params)}
        got = {(h, m): (v["calls"], v["cost_usd"]) for h, m, v in queries.hour_model(db, scope, "2025-11-03")}
        assert got.keys() == want.keys(), eq
        assert all(got[k][0] == want[k][0] and abs(got[k][1] - want[k][1]) < 1e-9 for k in want), eq
        side = db.execute(f"SELECT SUM(cost_usd) FROM events WHERE is_sidechain = 1"
                          f"{''.join(f' AND {k} = ?' for k, _ in eq)}", [v for _, v in eq]).fetchone()[0] or 0.0
        assert abs(queries.sidechain_cost(db, scope) - float(side)) < 1e-9, eq
        assert abs(queries.sidechain_cost(db, scope, ["ana", "bo"]) - float(side)) < 1e-9, eq
    assert queries.sidechain_cost(db, queries.Scope(eq=(("project", "api"),)), ["ana"]) == 0.0
