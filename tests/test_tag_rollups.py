"""Tag rollups (0012, issue 13): per business-tag value, kept in step with `events` in the ingest
transaction (duplicates and superseding copies included), rebuilt by replay, untouched by prune,
backfilled by the migration; the filtered pages read them instead of `events`."""
from datetime import datetime, timezone

from nomira.ledger import retention, store
from nomira.collector import queries
from nomira.ledger.wire import TOKEN_FIELDS
from test_ledger import call

COLS = ", ".join(store.TAG_ROLLUP_KEYS + store.ROLLUP_COLS)


def rows(db) -> list[tuple]:
    """Every tag rollup row: 8 keys, calls and tokens as ints, cost rounded (engines sum floats apart)."""
    return [(*r[:8], *(int(v) for v in r[8:15]), round(float(r[15]), 9), int(r[16]))
            for r in db.execute(f"SELECT {COLS} FROM tag_rollups ORDER BY {', '.join(store.TAG_ROLLUP_KEYS)}")
            if any(r[8:])]  # a replaced copy leaves a row of zeros behind, as in `rollups`


def rebuilt(db) -> list[tuple]:
    """What a recompute from today's canonical rows gives (rolled back: the store is left as it was)."""
    db.execute("BEGIN IMMEDIATE")
    try:
        store.rebuild_tag_rollups(db)
        return rows(db)
    finally:
        db.execute("ROLLBACK")


def history() -> list[dict]:
    tags = {"developer": "ana", "project": "shop", "feature": "search", "env": "prod", "customer": "acme"}
    return [
        call(message_id="m1", tags=tags),
        call(message_id="m2", tags=dict(tags, feature="billing"), cost_usd=None, model="gpt-5-codex",
             source="codex", provider="openai"),
        call(message_id="m3", tags=dict(tags, developer="bo", workflow="review"), occurred_at="2025-11-04T09:00:00Z"),
        call(message_id="m1", tags=tags),  # a duplicate: no change
        # a more complete copy of m3 (same priority) with other tags: it replaces the first, tags and all
        call(message_id="m3", tags=dict(tags, developer="bo", workflow="tests"), occurred_at="2025-11-04T09:00:00Z",
             tokens={"input": 12, "output": 900, "cache_read": 20480, "cache_write_5m": 512}, cost_usd=0.05),
    ]


def test_ingest_keeps_tag_rollups_equal_to_the_canonical_rows(store_target):
    db = store.open_db(store_target)
    events = history()
    store.ingest(db, events[:3])
    store.ingest(db, events[3:])
    got = rows(db)
    assert got == rebuilt(db)
    by_tag = {}
    for r in got:
        by_tag.setdefault(r[0], {}).setdefault(r[1], 0)
        by_tag[r[0]][r[1]] += r[8]
    # three canonical calls under every tag; m3's winning copy says workflow=tests, not review
    assert by_tag[""] == {"": 3}
    assert by_tag["workflow"] == {"": 2, "tests": 1}
    assert by_tag["feature"] == {"search": 2, "billing": 1}
    assert by_tag["source"] == {"claude_code": 2, "codex": 1}
    assert by_tag["customer"] == {"acme": 3} and by_tag["env"] == {"prod": 3}
    unpriced = sum(r[16] for r in got if r[0] == "feature" and r[1] == "billing")
    assert unpriced == 1
    # replay rebuilds the same rows from the raw events
    store.replay(db)
    assert rows(db) == got


def test_migration_backfills_from_canonical_events(store_target):
    db = store.open_db(store_target)
    # (not the last copy: a session keeps the tags of its first call as first received, and the backfill
    # sees only the winning copy)
    store.ingest(db, history()[:4])
    want = rows(db)
    # a store made before 0012: no tag_rollups, the migration not recorded
    sessions = db.execute("SELECT * FROM session_counts ORDER BY tag, value, day, tenant, developer, project").fetchall()
    for table in ("tag_rollups", "usage_sessions", "session_counts"):
        db.execute(f"DROP TABLE {table}")
    db.execute("DELETE FROM _nomira_migrations WHERE name = '0012_tag_rollups'")
    db.close()
    db = store.open_db(store_target)
    assert rows(db) == want
    assert db.execute("SELECT * FROM session_counts ORDER BY tag, value, day, tenant, developer, project").fetchall() \
        == sessions


def test_prune_keeps_every_tag_total(store_target, monkeypatch):
    db = store.open_db(store_target)
    monkeypatch.setattr(store, "_now", lambda: "2026-01-01T09:00:00+00:00")
    store.ingest(db, [call(occurred_at="2025-01-10T08:00:00Z", message_id="old", tags={"feature": "search"}),
                      call(occurred_at="2025-12-31T23:00:00Z", message_id="dec", tags={"feature": "billing"})])
    before = rows(db)
    r = retention.prune(db, 30, 400, now=datetime(2026, 3, 1, 12, tzinfo=timezone.utc))
    assert (r["raw_events_pruned"], r["events_pruned"]) == (2, 1)
    assert rows(db) == before
    # and the filtered view still counts the pruned day's call
    scope = queries.Scope(eq=(("feature", "search"),))
    assert queries.totals(db, scope)["calls"] == 1


def test_filtered_views_equal_the_events_they_sum(store_target):
    """Whatever path answers (rollups, tag_rollups, events), the numbers are the events' own sums."""
    db = store.open_db(store_target)
    store.ingest(db, history())
    sums = ", ".join(["COUNT(*)", *(f"SUM({t})" for t in TOKEN_FIELDS), "SUM(COALESCE(cost_usd, 0))"])
    for eq in ((), (("feature", "search"),), (("source", "codex"),), (("developer", "bo"), ("workflow", "tests")),
               (("developer", "ana"), ("model", "gpt-5-codex"), ("project", "shop")),
               (("env", "prod"), ("feature", "search"))):
        scope = queries.Scope(since="2025-11-01", eq=eq)
        where = " AND ".join(["day >= ?", *(f"{k} = ?" for k, _ in eq)])
        want = db.execute(f"SELECT {sums} FROM events WHERE {where}", ["2025-11-01", *(v for _, v in eq)]).fetchone()
        got = queries.totals(db, scope)
        assert [got["calls"], *(got[t] for t in TOKEN_FIELDS)] == [int(v) for v in want[:-1]], eq
        assert abs(got["cost_usd"] - float(want[-1])) < 1e-9, eq
        devs = {r["name"]: r["calls"] for r in queries.by(db, "developer", scope) if r["calls"]}
        want_devs = dict(db.execute(f"SELECT developer, COUNT(*) FROM events WHERE {where} GROUP BY developer",
                                    ["2025-11-01", *(v for _, v in eq)]).fetchall())
        assert devs == want_devs, eq
    # grouped by a tag (no tag_rollups column holds one): from `events`
    scope = queries.Scope(eq=(("source", "codex"),))
    assert queries._source(("source",), scope) == ("events", None)
    assert queries.by(db, "source", scope)[0]["calls"] == 1


def test_sessions_are_counted_on_their_first_call(store_target):
    """ana runs s1 (day 3 search, day 4 billing) and s2 (day 4 billing); bo runs his own s1 on day 4."""
    db = store.open_db(store_target)
    store.ingest(db, [
        call(message_id="a", session_id="s1", occurred_at="2025-11-03T10:00:00Z", tags={"developer": "ana",
                                                                                        "feature": "search"}),
        call(message_id="b", session_id="s1", occurred_at="2025-11-04T10:00:00Z", tags={"developer": "ana",
                                                                                        "feature": "billing"}),
        call(message_id="c", session_id="s2", occurred_at="2025-11-04T11:00:00Z", tags={"developer": "ana",
                                                                                        "feature": "billing"})])
    store.ingest(db, [call(message_id="d", session_id="s1", occurred_at="2025-11-04T12:00:00Z", model="gpt-5-codex",
                           tags={"developer": "bo", "feature": "billing"})])
    count = lambda **kw: queries.sessions(db, "developer", queries.Scope(**kw))  # noqa: E731
    assert count() == {"ana": 2, "bo": 1}
    assert count(since="2025-11-04") == {"ana": 1, "bo": 1}  # ana's s1 started the day before
    assert count(eq=(("feature", "billing"),)) == {"ana": 1, "bo": 1}
    assert count(eq=(("developer", "ana"), ("feature", "search"))) == {"ana": 1}
    # a model filter: the distinct sessions with a call of that model, from `events`
    assert count(eq=(("model", "gpt-5-codex"),)) == {"bo": 1}
    assert queries.sessions(db, "project", queries.Scope()) == {"": 3}
