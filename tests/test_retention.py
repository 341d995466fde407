"""Retention (issue 17): prune deletes exactly the rows past their cutoffs, never a rollup total;
raw rows stay immutable otherwise; replay names the days it can no longer rebuild."""
import json
from datetime import datetime, timezone

import pytest

from nomira.ledger import engine, retention, store
from nomira.cli import main
from nomira.ledger.wire import TOKEN_FIELDS
from test_ledger import call

NOW = datetime(2026, 3, 1, 12, tzinfo=timezone.utc)  # raw cutoff 2026-01-30, events cutoff 2025-01-25


def sums(db) -> dict:
    cols = ", ".join(f"SUM({c})" for c in ("calls", *TOKEN_FIELDS, "unpriced_calls"))
    out = {}
    for table, kind in (("rollups", "grain"), ("daily_views", "view")):
        for row in db.execute(f"SELECT {kind}, {cols}, SUM(cost_usd) FROM {table} GROUP BY {kind} ORDER BY {kind}"):
            out[(table, row[0])] = (*(int(v) for v in row[1:-1]), round(float(row[-1]), 9))
    return out


def fill(db, monkeypatch):
    """Received 2026-01-01 (raw pruned): a call of 2025-01-10 (canonical pruned too), one of
    2025-12-31 and a second copy of it; received 2026-02-20 (all kept): a call of 2026-02-19."""
    monkeypatch.setattr(store, "_now", lambda: "2026-01-01T09:00:00+00:00")
    store.ingest(db, [call(occurred_at="2025-01-10T08:00:00Z", message_id="msg_old"),
                      call(occurred_at="2025-12-31T23:00:00Z", message_id="msg_dec", cost_usd=0.5),
                      call(occurred_at="2025-12-31T23:00:00Z", message_id="msg_dec", cost_usd=0.5)])
    monkeypatch.setattr(store, "_now", lambda: "2026-02-20T09:00:00+00:00")
    store.ingest(db, [call(occurred_at="2026-02-19T10:00:00Z", message_id="msg_feb",
                           tokens={"input": 7, "output": 9})])


def test_prune_removes_exactly_the_old_rows_and_keeps_every_total(store_target, monkeypatch):
    db = store.open_db(store_target)
    fill(db, monkeypatch)
    before = sums(db)
    assert before[("rollups", "day")][0] == 3  # three calls (the copy is superseded)
    dry = retention.prune(db, 30, 400, now=NOW, dry_run=True)
    assert (dry["raw_events_pruned"], dry["events_pruned"]) == (3, 1)
    assert db.execute("SELECT COUNT(*) FROM raw_events").fetchone()[0] == 4
    r = retention.prune(db, 30, 400, now=NOW)
    assert (r["raw_cutoff"], r["events_cutoff"], r["raw_events_pruned"], r["events_pruned"]) == \
        ("2026-01-30", "2025-01-25", 3, 1)
    assert [row[0] for row in db.execute("SELECT received_at FROM raw_events")] == ["2026-02-20T09:00:00+00:00"]
    assert sorted(row[0] for row in db.execute("SELECT day FROM events")) == ["2025-12-31", "2026-02-19"]
    assert db.execute("SELECT COUNT(*) FROM superseded_events").fetchone()[0] == 0  # its raw row is gone
    assert db.execute("SELECT COUNT(*) FROM retention_in_progress").fetchone()[0] == 0
    assert sums(db) == before
    for sql in ("UPDATE raw_events SET body = '{}'", "DELETE FROM raw_events"):  # still refused outside retention
        with pytest.raises(engine.errors(), match="raw_events"):
            db.execute(sql)
    assert db.execute("SELECT COUNT(*) FROM raw_events").fetchone()[0] == 1
    assert retention.prune(db, 30, 400, now=NOW)["raw_events_pruned"] == 0  # idempotent


def test_replay_after_prune_names_the_lost_days_and_keeps_totals(store_target, monkeypatch):
    db = store.open_db(store_target)
    fill(db, monkeypatch)
    before = sums(db)
    retention.prune(db, 30, 400, now=NOW)
    r = store.replay(db)
    assert r["lost_days"] == ["2025-01-10", "2025-12-31"]
    assert (r["replayed"], r["added"], r["removed"], r["changed"]) == (1, 0, 0, 0)
    assert sums(db) == before
    store.ingest(db, [call(occurred_at="2026-02-19T10:00:00Z", message_id="msg_feb",
                           tokens={"input": 7, "output": 9})])  # a late copy is still deduplicated
    assert sums(db) == before


def test_replay_without_pruning_loses_no_day(store_target):
    db = store.open_db(store_target)
    store.ingest(db, [call()])
    assert store.replay(db)["lost_days"] == []


def test_prune_command(tmp_path, capsys, monkeypatch):
    path = tmp_path / "team.db"
    db = store.open_db(path)
    fill(db, monkeypatch)
    db.close()
    assert main(["prune", "--db", str(path), "--dry-run", "--json"]) == 0
    dry = json.loads(capsys.readouterr().out)
    assert dry["dry_run"] and dry["raw_days"] == 30 and dry["events_days"] == 400
    monkeypatch.setenv("NOMIRA_RETENTION_RAW_DAYS", "1")
    assert main(["prune", "--db", str(path), "--events-days", "100000"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("nomira: pruned 4 raw event(s)") and "0 canonical event(s)" in out
    assert main(["prune", "--db", str(path), "--raw-days", "30", "--events-days", "7"]) == 2
    assert "at least as long as raw events" in capsys.readouterr().err
    assert main(["replay", "--db", str(path)]) == 0
    assert "3 day(s) can no longer be rebuilt" in capsys.readouterr().out
    assert main(["prune", "--db", str(tmp_path / "missing.db")]) == 1  # never creates a store


def test_collector_prune_thread_runs_and_survives_a_failure(tmp_path, monkeypatch):
    import threading
    path = tmp_path / "team.db"
    db = store.open_db(path)
    fill(db, monkeypatch)
    db.close()
    lines, stop = [], threading.Event()

    def log(line):
        lines.append(line)
        if len(lines) == 2:
            stop.set()
    broken = tmp_path / "folder"
    broken.mkdir()
    for target in (broken, path):  # a store that cannot open: logged, the loop goes on
        stop.clear()
        lines.clear()
        t = threading.Thread(target=retention.prune_loop, args=(target, 1, 100000, stop),
                             kwargs={"first_delay": 0.01, "interval": 0.01, "log": log})
        t.start()
        t.join(10)
        assert not t.is_alive() and len(lines) == 2
        if target == broken:
            assert all(line.startswith("nomira: retention prune failed: ") for line in lines), lines
    assert lines[0].startswith("nomira: retention pruned 4 raw event(s)") and "pruned 0 raw" in lines[1]
    db = store.open_db(path)
    assert db.execute("SELECT COUNT(*) FROM raw_events").fetchone()[0] == 0


def test_serve_refuses_a_bad_retention_setting(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("NOMIRA_RETENTION_EVENTS_DAYS", "soon")
    assert main(["serve", "--db", str(tmp_path / "t.db"), "--port", "0"]) == 2
    assert "NOMIRA_RETENTION_EVENTS_DAYS='soon' is not a whole number" in capsys.readouterr().err
