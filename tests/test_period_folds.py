"""daily, monthly and session folded where the files are read (as the report is, see sources.prefold)
and kept beside the scan cache: each output equals the one a fresh run in one process makes
(floats up to summation order), cold, warm after a change, in a time window or another zone."""
import json
import marshal
from datetime import datetime, timedelta, timezone

import pytest

from nomira.cli import main
from nomira.ledger.events import TokenCounts, UsageEvent
from nomira.pricing.engine import Cost
from nomira.commands import periods as period_command
from nomira.reports import periods
from nomira.reports.aggregate import Tally
from nomira.sources import scan
from test_kept_folds import ASSISTANT, cache_db, forget_outputs
from test_prefold import assert_same, history, settled  # noqa: F401 - settled: a fixture

PERIODS = [("daily",), ("monthly",), ("session",), ("daily", "--since", "20261112", "--until", "20261113"),
           ("daily", "--timezone", "Pacific/Kiritimati"), ("monthly", "--breakdown"), ("session", "--since", "20261112")]


def run(capsys, *args) -> dict:
    assert main([*map(str, args[:1]), "--json", "--source", "claude", *map(str, args[1:])]) == 0
    return json.loads(capsys.readouterr().out)


def fresh(capsys, monkeypatch, *args) -> dict:
    """The output made without the cache, in one process: no file folded apart (the reference)."""
    monkeypatch.setattr(scan, "PARALLEL_MIN_BYTES", 1 << 40)
    try:
        return run(capsys, *args, "--no-cache")
    finally:
        monkeypatch.setattr(scan, "PARALLEL_MIN_BYTES", 0)


def kept_folds() -> list[tuple]:
    """(path, fold or None) of every kept fold."""
    with cache_db() as db:
        rows = db.execute("SELECT path, fold FROM folds").fetchall()
    return [(path, marshal.loads(blob)[3]) for path, blob in rows]


@pytest.mark.parametrize("args", PERIODS, ids=" ".join)
def test_folds_made_where_files_are_read_and_kept_equal_a_fresh_run(capsys, tmp_path, monkeypatch, settled, args):
    seed = PERIODS.index(args)
    root = history(tmp_path / "h", seed)
    what = (args[0], "--path", root, *args[1:])
    want = fresh(capsys, monkeypatch, *what)
    assert_same(run(capsys, *what), want)  # cold: the workers' folds
    assert settled["standing"] > 0  # (folds stood: not every file went the long way)
    assert any(fold is not None for _p, fold in kept_folds())
    forget_outputs()
    settled.update(standing=0, sent=0)
    assert_same(run(capsys, *what), want)  # warm: the kept folds
    assert settled["standing"] > 0

    grown = sorted((root / "projects").rglob("*.jsonl"))[seed]  # a session goes on
    with open(grown, "a") as fh:
        fh.write(ASSISTANT % ("s-more", "more", "more", 1234, 56))
    copy = root / "projects" / "-w-copy" / "c.jsonl"  # a new file copying calls of a kept one
    copy.parent.mkdir(parents=True, exist_ok=True)
    lines = [line for line in sorted((root / "projects").rglob("*.jsonl"))[0].read_text().splitlines()
             if '"usage"' in line]
    copy.write_text("\n".join(lines[:3]) + "\n")
    assert_same(run(capsys, *what), fresh(capsys, monkeypatch, *what))


def test_a_file_spread_over_many_days_is_not_folded_apart_for_daily(capsys, tmp_path, monkeypatch, settled):
    """Its daily fold would hold about a tally a call: it goes the long way, and its cache entry says
    so (a kept fold of None), so no later run makes its events to try again."""
    root = history(tmp_path / "h", 2)
    spread = root / "projects" / "-w-spread" / "s.jsonl"
    spread.parent.mkdir(parents=True)
    with open(spread, "w") as fh:
        for day in range(1, 21):
            fh.write(ASSISTANT.replace("2026-11-11", f"2026-10-{day:02}") % ("s-spread", day, day, 100 + day, day))
    want = fresh(capsys, monkeypatch, "daily", "--path", root)
    tried = tmp_path / "tried"  # (the workers are other processes: what they tried, in a file)
    real = period_command._few_days

    def few_days(events):
        with open(tried, "a") as fh:
            fh.write(events[0].session_id + "\n")
        return real(events)
    monkeypatch.setattr(period_command, "_few_days", few_days)
    assert_same(run(capsys, "daily", "--path", root), want)
    assert "s" in tried.read_text().split()  # (a session is named by its file)
    assert dict(kept_folds())[str(spread)] is None
    forget_outputs()
    tried.unlink()
    assert_same(run(capsys, "daily", "--path", root), want)
    assert not tried.exists()  # (every file's fold kept, or kept as none: nothing folded again)
    assert_same(run(capsys, "monthly", "--path", root), fresh(capsys, monkeypatch, "monthly", "--path", root))
    assert dict(kept_folds()).get(str(spread)) is not None  # (a month holds it in one tally: folded apart)


def test_pack_and_unpack_give_the_same_tallies():
    g = periods.Grouped()
    at = datetime(2026, 11, 11, 23, 59, 59, 123456, tzinfo=timezone(timedelta(hours=5, minutes=30)))
    for i, model in enumerate(["m1", "m2", "m1"]):
        e = UsageEvent("claude_code", "anthropic", model, at + timedelta(hours=i), "s1", "p",
                       TokenCounts(input=10 * i, output=7, cache_read=3, cache_write_5m=2, cache_write_1h=1),
                       is_sidechain=i == 1)
        cost = Cost(0.1 * (i + 1), 0.2, 0.3, 0.4, 0.5, 1.0, model, "test", True, naive_usd=0.05) if i != 2 else None
        g.add(("claude_code", "s1", "p"), e, cost)
    for sessions, project in ((True, "p"), (False, None)):
        back = periods.unpack(marshal.loads(marshal.dumps(periods.pack(g, sessions))), project)
        assert list(back.rows) == list(g.rows)
        for row, got in zip(g.rows.values(), back.rows.values()):
            assert list(got["models"]) == list(row["models"])
            for mine, theirs in [(row["all"], got["all"]), *((row["models"][m], got["models"][m]) for m in row["models"])]:
                assert isinstance(theirs, Tally)
                assert {s: getattr(theirs, s) for s in Tally.__slots__} == {s: getattr(mine, s) for s in Tally.__slots__}
                assert theirs.first.utcoffset() == mine.first.utcoffset()
                assert theirs.unpriced_reasons == mine.unpriced_reasons


def test_a_damaged_kept_period_fold_is_found_and_the_run_reads_everything(capsys, tmp_path, monkeypatch, settled):
    root = history(tmp_path / "h", 4)
    run(capsys, "daily", "--path", root)
    with cache_db() as db:
        path, fold = db.execute("SELECT path, fold FROM folds WHERE fold IS NOT NULL").fetchone()
        db.execute("UPDATE folds SET fold=? WHERE path=?", (fold[:-1] + bytes([fold[-1] ^ 1]), path))
        db.execute("DELETE FROM outputs")
    assert main(["daily", "--json", "--source", "claude", "--path", str(root)]) == 0
    out, err = capsys.readouterr()
    assert "damaged" in err
    assert_same(json.loads(out), fresh(capsys, monkeypatch, "daily", "--path", root))


@pytest.mark.parametrize("period", ["daily", "monthly", "session"])
def test_the_period_reports_name_the_lines_they_could_not_count(tmp_path, capsys, period):
    """The report's scan footer is not in daily, monthly or session: a line lost to a bad count or a
    malformed line is named there too, and `scan` is in their --json; dedup's skips are not losses."""
    line = ('{"type":"assistant","timestamp":"2025-11-03T14:22:0%d.913Z","sessionId":"s","requestId":"r%d",'
            '"message":{"id":"m%d","model":"claude-sonnet-4-5","usage":{"input_tokens":%s,"output_tokens":10}}}')
    f = tmp_path / "s.jsonl"
    f.write_text("\n".join([line % (1, 1, 1, "100"), line % (1, 1, 1, "100"), line % (2, 2, 2, '"lots"'),
                            '{"usage":' + "x" * 10]) + "\n")
    assert main([period, "--path", str(f), "--no-cache"]) == 0
    out = capsys.readouterr().out
    assert "not counted: 1 malformed lines, bad_token_count=1" in out and "duplicate" not in out
    assert main([period, "--path", str(f), "--no-cache", "--json"]) == 0
    scan = json.loads(capsys.readouterr().out)["scan"]
    assert (scan["malformed_lines"], scan["skipped"]) == (1, {"bad_token_count": 1, "duplicate_call": 1})
    g = tmp_path / "clean.jsonl"
    g.write_text(line % (1, 1, 1, "100") + "\n")
    assert main([period, "--path", str(g), "--no-cache"]) == 0
    assert "not counted" not in capsys.readouterr().out
