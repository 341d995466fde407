"""Tag rollups (0012, issue 13): per business-tag value, kept in step with `events` in the ingest
transaction (duplicates and superseding copies included), rebuilt by replay, untouched by prune,
backfilled by the migration; the filtered pages read them instead of `events`."""
from datetime import datetime, timezone

from nomira.ledger import retention, store
from nomira.collector import queries
from nomira.ledger.wire import TOKEN_FIELDS
from test_ledger import call

KEYS = ("tag", "value", "day", "tenant", *store.GRAIN_DIMS)  # read in this order, whatever the table's key
COLS = ", ".join(KEYS + store.ROLLUP_COLS)
SESSION_COUNTS = "SELECT tag, value, day, tenant, developer, project, sessions FROM session_counts ORDER BY 1, 2, 3, 4, 5, 6"


def rows(db) -> list[tuple]:
    """Every tag rollup row: 8 keys, calls and tokens as ints, cost rounded (engines sum floats apart),
    the pending rows folded first (0020), as a view does."""
    store.fold(db)
    return [(*r[:8], *(int(v) for v in r[8:15]), round(float(r[15]), 9), int(r[16]))
            for r in db.execute(f"SELECT {COLS} FROM tag_rollups ORDER BY {', '.join(KEYS)}")
            if any(r[8:])]  # a replaced copy leaves a row of zeros behind, as in `rollups`


def session_counts(db) -> list[tuple]:
    store.fold(db)
    return db.execute(SESSION_COUNTS).fetchall()


def rebuilt(db) -> list[tuple]:
    """What a recompute from today's canonical rows gives (rolled back: the store is left as it was)."""
    store.fold(db)
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
    # three canonical calls under tag '' (every event); m3's winning copy says workflow=tests, not review.
    # Since 0018 a tag has rows only where it is set: the two calls without a workflow are under '' only
    # (no view filters on an unset tag; the rows cost every ingest a write)
    assert by_tag[""] == {"": 3}
    assert by_tag["workflow"] == {"tests": 1}
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
    sessions = session_counts(db)
    for table in ("tag_rollups", "usage_sessions", "session_counts", "hour_rollups", "sidechain_rollups",
                  "session_models"):  # (0019's session counts by model live in session_counts)
        db.execute(f"DROP TABLE {table}")
    db.execute("DELETE FROM _nomira_migrations WHERE name IN ('0012_tag_rollups', '0018_developer_first', "
               "'0019_hour_sidechain_rollups')")
    db.close()
    db = store.open_db(store_target)
    assert rows(db) == want
    assert session_counts(db) == sessions


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


def as_0012(db) -> None:
    """Put tag_rollups and session_counts back as 0012 made them (keys led by tag, value, day; rows for
    unset tags too), 0018 not applied: what a store of main before 0018 holds."""
    sums = ", ".join(["COUNT(*)", *(f"SUM({t})" for t in TOKEN_FIELDS), "SUM(COALESCE(cost_usd, 0))",
                      "SUM(CASE WHEN cost_usd IS NULL THEN 1 ELSE 0 END)"])
    db.execute("BEGIN IMMEDIATE")
    for table in ("tag_rollups", "session_counts"):
        db.execute(f"DROP TABLE {table}")
    db.execute(store._tag_rollups_ddl("tag_rollups", store._TAG_ROLLUP_KEYS_0012))
    db.execute(store._session_counts_ddl("session_counts", store._SESSION_COUNT_KEYS_0012))
    for tag in store.TAG_ROLLUPS:
        value = tag or "''"
        db.execute(f"INSERT INTO tag_rollups ({COLS}) SELECT ?, {value}, day, tenant, {', '.join(store.GRAIN_DIMS)}, "
                   f"{sums} FROM events GROUP BY {', '.join([*([tag] if tag else []), 'day', 'tenant', *store.GRAIN_DIMS])}",
                   (tag,))
        db.execute(f"INSERT INTO session_counts (tag, value, day, tenant, developer, project, sessions) SELECT ?, "
                   f"{value}, day, tenant, developer, project, COUNT(*) FROM usage_sessions "
                   f"GROUP BY {', '.join([*([tag] if tag else []), 'day', 'tenant', 'developer', 'project'])}", (tag,))
    db.execute("DELETE FROM _nomira_migrations WHERE name = '0018_developer_first'")
    for table in ("hour_rollups", "sidechain_rollups", "session_models"):  # and 0019 after it
        db.execute(f"DROP TABLE {table}")
    db.execute("DELETE FROM _nomira_migrations WHERE name = '0019_hour_sidechain_rollups'")
    db.execute("COMMIT")


def figures(db) -> list:
    """What the pages read from tag_rollups and session_counts (and the rollups beside them), per scope."""
    queries._MEMO.clear()  # a new connection may reuse an old one's id: nothing remembered across them
    out = []
    for tenant in (None, "", "t2"):
        for since in (None, "2025-11-04"):
            for eq in ((), (("feature", "search"),), (("workflow", "tests"),), (("developer", "ana"),),
                       (("developer", "bo"), ("customer", "acme")), (("project", "shop"), ("env", "prod")),
                       (("developer", "ana"), ("model", "gpt-5-codex"), ("project", "shop")), (("source", "codex"),)):
                scope = queries.Scope(tenant, since, None, eq)
                got = [queries._source(("developer",), scope)[0], queries.totals(db, scope)]
                for dim in ("developer", "project", "model", "day", "regime"):
                    got.append([{k: (round(v, 9) if isinstance(v, float) else v) for k, v in r.items()}
                                for r in queries.by(db, dim, scope)])
                if "model" not in dict(eq):
                    got += [queries.sessions(db, "developer", scope), queries.sessions(db, "project", scope)]
                got.append(queries.span(db, scope))
                out.append((tenant, since, eq, got))
    return out


def test_0018_rekeys_in_place_with_every_figure_equal(store_target):
    """A store as 0012 left it migrates to (tenant, developer)-led keys without the unset-tag rows, and
    every figure a page reads from these tables is what it was."""
    db = store.open_db(store_target)
    store.ingest(db, history())
    store.ingest(db, [call(message_id="t2a", tags={"tenant": "t2", "developer": "cy", "feature": "search"},
                           session_id="s9"),
                      call(message_id="t2b", tags={"tenant": "t2", "developer": "cy"}, session_id="s9",
                           occurred_at="2025-11-05T10:00:00Z")])
    want_rows, want_sessions, want = rows(db), session_counts(db), figures(db)
    assert sum(got[0] == "tag_rollups" for *_x, got in want) >= 16, "the test must read tag_rollups"
    as_0012(db)
    unset = "SELECT COUNT(*) FROM {} WHERE tag <> '' AND value = ''"
    assert db.execute(unset.format("tag_rollups")).fetchone()[0] > 0
    assert db.execute(unset.format("session_counts")).fetchone()[0] > 0
    assert figures(db) == want  # the old layout answers alike (the queries do not depend on the key)
    db.close()
    db = store.open_db(store_target)
    assert db.execute("SELECT 1 FROM _nomira_migrations WHERE name = '0018_developer_first'").fetchone()
    assert db.execute(unset.format("tag_rollups")).fetchone()[0] == 0
    assert db.execute(unset.format("session_counts")).fetchone()[0] == 0
    assert rows(db) == want_rows
    assert session_counts(db) == want_sessions
    assert figures(db) == want
    # and ingest goes on into the re-keyed tables
    store.ingest(db, [call(message_id="m9", tags={"developer": "ana", "feature": "search"})])
    assert rows(db) == rebuilt(db)
