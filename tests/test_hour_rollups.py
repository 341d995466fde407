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
    store.fold(db)  # the pending rows (0020), as a view does
    return rows(db, "hour_rollups", store.HOUR_KEYS), rows(db, "sidechain_rollups", store.SIDECHAIN_KEYS)


def rebuilt(db) -> tuple[list, list]:
    """What a recompute from today's canonical rows gives (rolled back: the store is left as it was)."""
    store.fold(db)
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


MODEL_SESSIONS = "SELECT tenant, developer, value, day, project, sessions FROM session_counts WHERE tag = 'model' " \
                 "ORDER BY 1, 2, 3, 4, 5"


def test_migration_backfills_from_canonical_events(store_target):
    db = store.open_db(store_target)
    store.ingest(db, history()[:6])  # (not m4's replacing copy: a session's first call stays as first received)
    want = both(db), db.execute(MODEL_SESSIONS).fetchall()
    assert want[1]
    for table in ("hour_rollups", "sidechain_rollups", "session_models"):  # a store made before 0019
        db.execute(f"DROP TABLE {table}")
    db.execute("DELETE FROM session_counts WHERE tag = 'model'")
    db.execute("DELETE FROM _nomira_migrations WHERE name = '0019_hour_sidechain_rollups'")
    db.close()
    db = store.open_db(store_target)
    assert (both(db), db.execute(MODEL_SESSIONS).fetchall()) == want


def test_sessions_under_a_model_filter_are_counted_on_their_first_call_of_it(store_target):
    """ana's s1 uses sonnet on day 3 and 4 and codex on day 4; s2 codex on day 4 (two batches, out of order)."""
    db = store.open_db(store_target)
    sonnet, codex = "claude-sonnet-4-5-20250929", "gpt-5-codex"
    ana = {"developer": "ana", "project": "shop"}
    store.ingest(db, [call(message_id="c", session_id="s1", model=codex, occurred_at="2025-11-04T11:00:00Z", tags=ana),
                      call(message_id="b", session_id="s1", occurred_at="2025-11-04T10:00:00Z", tags=ana)])
    store.ingest(db, [call(message_id="a", session_id="s1", occurred_at="2025-11-03T10:00:00Z", tags=ana),
                      call(message_id="d", session_id="s2", model=codex, occurred_at="2025-11-04T12:00:00Z", tags=ana),
                      call(message_id="e", session_id="s2", model=codex, occurred_at="2025-11-05T12:00:00Z",
                           tags=dict(ana, project="api"))])

    def count(model, **kw):
        return queries.sessions(db, "developer", queries.Scope(eq=(("model", model),), **kw))
    # all time: the distinct sessions with a call of that model, as `events` says (a session is one per
    # developer and project, as in usage_sessions since 0012: s2 ran in two projects)
    for model in (sonnet, codex):
        want = dict(db.execute("SELECT developer, COUNT(*) FROM (SELECT DISTINCT developer, project, session_id "
                               "FROM events WHERE model = ?) s GROUP BY developer", (model,)).fetchall())
        assert count(model) == want
    assert count(codex) == {"ana": 3} and count(sonnet) == {"ana": 1}
    # s1's day-4 sonnet call reached the store first, day 3's later: counted on the first received, as
    # usage_sessions counts a session (the backfill, seeing both, says day 3)
    assert count(sonnet, until="2025-11-03") == {} and count(sonnet, since="2025-11-04") == {"ana": 1}
    assert count(codex, since="2025-11-05") == {"ana": 1}  # s2 in api; s1 and s2 in shop used codex first on day 4
    assert count(codex, until="2025-11-04") == {"ana": 2}  # s1 and s2 in shop; s2 in api on day 5
    assert queries.sessions(db, "project", queries.Scope(eq=(("model", codex),))) == {"shop": 2, "api": 1}
    # a model and a tag filter: from `events` (the distinct sessions with such a call)
    both_ = queries.Scope(eq=(("model", codex), ("feature", "search")))
    assert queries.sessions(db, "developer", both_) == {}


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
