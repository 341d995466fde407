"""Deferred tag grains (0020, issue 24): an ingest files its canonical rows in a queue and the fold
sums them into tag_rollups, hour_rollups, sidechain_rollups, usage_sessions, session_models and
session_counts. Folding late must give exactly what folding after every batch gives (the old inline write),
and what a recompute from `events` gives; a view, replay, prune and a long queue fold. s24e: the queue is one
`rollup_batches` row per batch of new calls (else rows per call), and the fold takes the rows its process
still holds from memory: it must equal a fold that reads them back, whoever filed them."""
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
    """Calls pending: rows per call, and the calls of whole batches (fresh..last)."""
    return db.execute("SELECT COUNT(*) FROM rollup_pending").fetchone()[0] + \
        int(db.execute("SELECT COALESCE(SUM(last - fresh + 1), 0) FROM rollup_batches").fetchone()[0])


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


@pytest.mark.parametrize("held", [True, False])
def test_prune_folds_first(store_target, monkeypatch, held):
    db = store.open_db(store_target)
    monkeypatch.setattr(store, "_now", lambda: "2026-01-01T09:00:00+00:00")
    store.ingest(db, [call(occurred_at="2025-01-10T08:00:00Z", message_id="old", tags={"feature": "search"}),
                      call(occurred_at="2025-12-31T23:00:00Z", message_id="dec", tags={"feature": "billing"})])
    want = recomputed(db)
    assert pending(db) == 2
    if not held:  # a restarted process: the fold reads them back, through raw rows this prune deletes
        monkeypatch.setattr(store, "_HELD", {})
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


# --- held rows (s24e): the fold takes the rows this process filed from memory, the others from the store ---

class _ReadBacks(str):
    """store._FOLD_ROWS, counting the reads of pending rows back from the store."""
    n = 0

    def format(self, *args):
        _ReadBacks.n += 1
        return str.format(self, *args)


@pytest.fixture
def read_backs(monkeypatch):
    _ReadBacks.n = 0
    monkeypatch.setattr(store, "_FOLD_ROWS", _ReadBacks(store._FOLD_ROWS))
    return _ReadBacks


def elsewhere(target, batches: list[list[dict]], kill: bool = False) -> None:
    """Ingest the batches in another process (a second writer; kill: it dies by SIGKILL before any fold)."""
    import json
    import subprocess
    import sys
    from pathlib import Path
    code = ("import json, os, signal, sys\nfrom nomira.ledger import store\ndb = store.open_db(sys.argv[1])\n"
            "for batch in json.loads(sys.stdin.read()):\n    store.ingest(db, batch)\n"
            "if sys.argv[2] == 'kill':\n    os.kill(os.getpid(), signal.SIGKILL)\ndb.close()\n")
    done = subprocess.run([sys.executable, "-c", code, str(target), "kill" if kill else "exit"],
                          input=json.dumps(batches), text=True, capture_output=True,
                          cwd=Path(__file__).resolve().parents[1], timeout=120)
    assert done.returncode == (-9 if kill else 0), done.stderr


def many(seed: int, n: int = 240) -> list[list[dict]]:
    """Calls with random tags, sessions, sub-agent flags and costs in four batches; the last re-sends a
    third of the calls, some as winning copies (more tokens). A session's calls span batches out of time
    order, so its first call is the first to arrive (as on ingest), not what a recompute finds."""
    import random
    rnd = random.Random(seed)
    values = {"feature": ["search", "cart", None], "env": ["prod", "ci"], "workflow": ["review", None],
              "customer": ["acme", "globex", None]}
    calls = []
    for i in range(n):
        tags = {"developer": rnd.choice(["ana", "bo", "cy"]), "project": rnd.choice(["shop", "api"])}
        tags.update({k: v for k, vs in values.items() if (v := rnd.choice(vs))})
        calls.append(call(message_id=f"m{seed}-{i}", session_id=f"s{seed}-{rnd.randrange(12)}", tags=tags,
                          occurred_at=f"2025-11-{3 + rnd.randrange(4):02d}T{rnd.randrange(24):02d}:{i % 60:02d}:00Z",
                          is_sidechain=rnd.random() < 0.2, cost_usd=round(rnd.uniform(0.001, 0.4), 6),
                          tokens={"input": rnd.randrange(1, 90), "output": rnd.randrange(1, 3000),
                                  "cache_read": rnd.randrange(40000)}))
    again = [dict(c, tokens=dict(c["tokens"], output=c["tokens"]["output"] + 7)) if j % 2 else c
             for j, c in enumerate(calls[::3])]
    return [calls[:n // 3], calls[n // 3:2 * n // 3], calls[2 * n // 3:], again]


def exact(db) -> dict[str, list[tuple]]:
    """Every row of the tables the fold feeds, as stored (floats unrounded)."""
    return {t: db.execute(f"SELECT * FROM {t} ORDER BY {', '.join(keys)}").fetchall() for t, keys in TABLES.items()}


def one_process(path, *runs: list[list[dict]]):
    """A store fed the runs' batches one run after the other in this process, then folded."""
    db = store.open_db(path)
    for run in runs:
        for batch in run:
            store.ingest(db, batch)
    store.fold(db)
    return tables(db)


def grains(got: dict) -> dict:
    return {t: rows for t, rows in got.items() if t.endswith("rollups")}


def test_a_fold_from_memory_equals_one_read_back(store_target, tmp_path, read_backs, monkeypatch):
    held, back = store.open_db(store_target), store.open_db(tmp_path / "back.db")
    for batch in many(1):
        store.ingest(held, batch)
        store.ingest(back, batch)
    assert len(store._GROUPED) >= 3  # the first three batches: new calls only, their groups held
    assert store.fold(held) == pending(back) > 0
    assert read_backs.n == 0  # every pending row came from memory, its batch's groups too
    monkeypatch.setattr(store, "_HELD", {})  # a restarted process: nothing held
    store.fold(back)
    assert read_backs.n > 0
    assert tables(held) == tables(back)
    assert grains(tables(back)) == grains(recomputed(back))
    if not isinstance(store_target, str):  # both SQLite: the same floats to the last bit
        assert exact(held) == exact(back)


def test_a_collector_killed_before_the_fold_loses_nothing(store_target, tmp_path, read_backs):
    elsewhere(store_target, many(2), kill=True)
    db = store.open_db(store_target)
    assert pending(db) > 0
    store.fold(db)
    assert read_backs.n > 0 and pending(db) == 0
    assert tables(db) == one_process(tmp_path / "one.db", many(2))
    assert grains(tables(db)) == grains(recomputed(db))


def test_pending_rows_replaced_here_and_by_another_process(store_target, tmp_path, read_backs):
    """a, b, c filed here; another process sends b's winner and d (b's held copy must not be folded); then
    a's winner here: the same tables as one process sending all three batches."""
    first, second, third = batches()
    db, one = store.open_db(store_target), store.open_db(tmp_path / "one.db")
    for batch in (first, second, third):
        store.ingest(one, batch)
    store.fold(one)
    store.ingest(db, first)
    elsewhere(store_target, [second])
    store.ingest(db, third)
    assert pending(db) == 5
    store.fold(db)
    assert read_backs.n > 0  # b's winner and d: filed by the other process
    assert tables(db) == tables(one) == recomputed(db)


def test_two_writers_at_once(store_target, tmp_path):
    import threading
    mine, theirs = many(3), many(4)
    other = threading.Thread(target=elsewhere, args=(store_target, theirs))
    other.start()
    db = store.open_db(store_target)
    for batch in mine:
        store.ingest(db, batch)
    other.join(120)
    store.ingest(db, theirs[-1])  # copies of the other writer's calls, pending or folded
    store.fold(db)
    assert tables(db) == one_process(tmp_path / "one.db", mine, theirs)
    assert grains(tables(db)) == grains(recomputed(db))


def test_a_rolled_back_batch_is_never_folded_from_memory(store_target, tmp_path, monkeypatch):
    """A batch rolled back after it was held; another writer then takes the same raw ids (SQLite) for other
    calls: the fold folds theirs, not the held rows of the batch that never was."""
    monkeypatch.setattr(store, "_HELD", {})
    monkeypatch.setattr(store, "_held", [0, store._held[1]])
    db = store.open_db(store_target)
    apply = store._apply

    def fails(*args):
        apply(*args)
        raise ValueError("the batch fails after its rows were filed")
    monkeypatch.setattr(store, "_apply", fails)
    with pytest.raises(ValueError):
        store.ingest(db, many(5)[0])
    monkeypatch.setattr(store, "_apply", apply)
    assert len(store._HELD) == 1 and pending(db) == 0  # held, never stored
    elsewhere(store_target, many(6)[:1])
    store.fold(db)
    assert tables(db) == one_process(tmp_path / "one.db", many(6)[:1])


def test_held_rows_are_bounded(store_target, tmp_path, monkeypatch, read_backs):
    monkeypatch.setattr(store, "HOLD_MAX", 100)
    monkeypatch.setattr(store, "_HELD", {})
    monkeypatch.setattr(store, "_held", [0, store._held[1]])
    db = store.open_db(store_target)
    for batch in many(7)[:3]:  # 80 calls each
        store.ingest(db, batch)
        assert sum(map(len, store._HELD.values())) == store._held[0] <= 100
    store.fold(db)
    assert read_backs.n > 0 and not store._HELD and store._held[0] == 0
    assert tables(db) == one_process(tmp_path / "one.db", many(7)[:3])


def test_a_batch_of_new_calls_is_one_queue_row_until_a_copy_wins(store_target, tmp_path):
    db = store.open_db(store_target)
    first, second, third = batches()
    store.ingest(db, first)
    assert db.execute("SELECT fresh, last FROM rollup_batches").fetchall() == [(1, 3)] if not isinstance(
        store_target, str) else len(db.execute("SELECT * FROM rollup_batches").fetchall()) == 1
    assert db.execute("SELECT COUNT(*) FROM rollup_pending").fetchone()[0] == 0
    store.ingest(db, second)  # b's winner: the batch becomes rows per call, b's place taken by the winner
    assert db.execute("SELECT COUNT(*) FROM rollup_batches").fetchone()[0] == 0 and pending(db) == 4
    store.ingest(db, third)
    store.fold(db)
    assert tables(db) == one_process(tmp_path / "one.db", [first, second, third]) == recomputed(db)


def test_a_long_queue_folds_in_passes(store_target, tmp_path, monkeypatch):
    """Rows per call past _FOLD_CHUNK (batches that met copies) and whole batches: folded in passes,
    batch by batch, as in one pass."""
    runs = [*many(8), many(8)[1][:5] + many(9)[0], many(10)[0]]  # copies of calls of every batch, then new
    want = one_process(tmp_path / "one.db", runs)
    monkeypatch.setattr(store, "_FOLD_CHUNK", 7)
    db = store.open_db(store_target)
    for batch in runs:
        store.ingest(db, batch)
    assert db.execute("SELECT COUNT(*) FROM rollup_pending").fetchone()[0] > 7
    assert db.execute("SELECT COUNT(*) FROM rollup_batches").fetchone()[0] > 0
    assert store.fold(db) == 240 + 80 + 80 and pending(db) == 0
    assert tables(db) == want
