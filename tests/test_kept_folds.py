"""Folds kept beside the scan cache's entries (scancache.KeptFold): a run after a change uses each
unchanged file's fold from the cache instead of its records, and its report is the report a fresh
run makes (floats up to summation order), whatever changed: a file grown, a new file copying
another's calls, a time window, the rates in force, damage to a kept fold."""
import json
import os
import sqlite3

import pytest

from nomira.cli import main
from nomira.sources import prefold, scan, scancache
from test_prefold import assert_same, history, reference, report, settled  # noqa: F401 - settled: a fixture

ASSISTANT = ('{"type":"assistant","timestamp":"2026-11-11T10:00:00.000Z","sessionId":"%s","version":"2.0.37",'
             '"cwd":"/w/p","requestId":"req_%s","message":{"id":"msg_%s","model":"claude-sonnet-4-5-20250929",'
             '"usage":{"input_tokens":%d,"output_tokens":%d,"cache_read_input_tokens":0,'
             '"cache_creation_input_tokens":0}}}\n')


def cache_db() -> sqlite3.Connection:
    return sqlite3.connect(scancache.default_path(os.environ))


def forget_outputs() -> None:
    """The next run folds again (a finished output would be served as it is)."""
    with cache_db() as db:
        db.execute("DELETE FROM outputs")


@pytest.fixture
def reads(monkeypatch):
    """Counts the kept folds used and the entries whose records were read."""
    counts = {"kept": 0, "records": 0}
    real_data, real_kept = scancache.Entry.data, scancache.KeptFold.data

    def data(self):
        counts["records"] += 1
        return real_data(self)

    def kept(self):
        counts["kept"] += 1
        return real_kept(self)
    monkeypatch.setattr(scancache.Entry, "data", data)
    monkeypatch.setattr(scancache.KeptFold, "data", kept)
    return counts


def fresh(capsys, monkeypatch, root, *args) -> dict:
    """The report made without the cache, in one process (the reference)."""
    return reference(capsys, monkeypatch, root, scan, "PARALLEL_MIN_BYTES", 1 << 40, 0, *args)


@pytest.mark.parametrize("seed", range(4))
def test_a_warm_run_folds_only_what_changed(capsys, tmp_path, monkeypatch, settled, reads, seed):
    root = history(tmp_path / "h", seed)
    cold = report(capsys, "--path", root)
    with cache_db() as db:
        files, = db.execute("SELECT count(*) FROM files").fetchone()
        folds, = db.execute("SELECT count(*) FROM folds").fetchone()
    assert folds > 0
    forget_outputs()
    reads.update(kept=0, records=0)
    warm = report(capsys, "--path", root)
    assert_same(warm, cold)
    assert_same(warm, fresh(capsys, monkeypatch, root))
    assert reads["kept"] == folds  # every kept fold used...
    assert reads["records"] <= files - folds + settled["sent"]  # ...and only the others' records read

    grown = sorted((root / "projects").rglob("*.jsonl"))[seed]  # a session goes on
    with open(grown, "a") as fh:
        fh.write(ASSISTANT % ("s-more", "more", "more", 1234, 56))
    assert_same(report(capsys, "--path", root), fresh(capsys, monkeypatch, root))


def test_a_new_file_copying_a_kept_files_call_sends_both_the_long_way(capsys, tmp_path, monkeypatch, settled):
    """A resumed session's new file repeats a call of a file whose fold is kept: that fold must not
    stand (the call would count twice); the totals are the fresh run's."""
    root = history(tmp_path / "h", 2)
    report(capsys, "--path", root)
    with cache_db() as db:
        path, = db.execute("SELECT path FROM folds ORDER BY path").fetchone()
    line = next(ln for ln in open(path).read().splitlines() if '"requestId":"req_' in ln and "<synthetic>" not in ln)
    copy = root / "projects" / "-w-p9" / "resumed.jsonl"
    copy.parent.mkdir(parents=True)
    copy.write_text(line + "\n")
    forget_outputs()
    sent_before = settled["sent"]
    warm = report(capsys, "--path", root)
    assert settled["sent"] - sent_before >= 2
    want = fresh(capsys, monkeypatch, root)
    assert_same(warm, want)
    assert want["scan"]["skipped"].get("duplicate_call")


@pytest.mark.parametrize("change", ["a time window", "the rates in force", "the code"])
def test_a_fold_is_kept_for_what_it_was_made_with(capsys, tmp_path, monkeypatch, settled, reads, change):
    root = history(tmp_path / "h", 5)
    report(capsys, "--path", root)
    args = ()
    if change == "a time window":
        args = ("--since", "20261112")
    elif change == "the rates in force":
        override = tmp_path / "home" / ".config" / "nomira" / "prices.json"
        override.parent.mkdir(parents=True, exist_ok=True)
        override.write_text(json.dumps({"models": {"claude-sonnet-4-5-20250929": {
            "provider": "anthropic", "input": 1.0, "output": 2.0, "cache_read": 0.1, "cache_write_5m": 1.25,
            "cache_write_1h": 2.0}}}))
    else:
        monkeypatch.setattr(scancache, "_CODE", [("changed.py", 1, 1)])
    reads.update(kept=0)
    got = report(capsys, "--path", root, *args)
    assert reads["kept"] == 0
    assert_same(got, fresh(capsys, monkeypatch, root, *args))
    forget_outputs()  # the folds made under the new key serve the next run with it
    assert_same(report(capsys, "--path", root, *args), got)
    assert reads["kept"] > 0


@pytest.mark.parametrize("damage", ["a changed figure", "not a fold"])
def test_a_damaged_kept_fold_is_found_and_the_run_reads_everything(capsys, tmp_path, monkeypatch, settled, damage):
    root = history(tmp_path / "h", 4)
    report(capsys, "--path", root)
    with cache_db() as db:
        path, fold, key = db.execute("SELECT path, fold, fold_key FROM folds").fetchone()
        import marshal
        if damage == "a changed figure":  # (still a fold: only the checksum tells)
            state, stats, hashes, ((rows, info), seen), skipped = (lambda d: (*d[:3], *d[3]))(marshal.loads(fold))
            figures = rows[0][3]  # (its tally: calls first)
            rows[0] = (*rows[0][:3], (figures[0] + 1, *figures[1:]))
            fold = marshal.dumps((state, stats, hashes, (((rows, info), seen), skipped)))
        else:  # (its checksum made for it: only its shape is wrong)
            fold = marshal.dumps(("not", "a fold"))
            size, mtime, offset, sig = db.execute("SELECT size, mtime_ns, offset, sig FROM folds WHERE path=?",
                                                  (path,)).fetchone()
            db.execute("UPDATE folds SET fold_check=? WHERE path=?",
                       (scancache.fold_check(size, mtime, offset, sig, key, fold), path))
        db.execute("UPDATE folds SET fold=? WHERE path=?", (fold, path))
        db.execute("DELETE FROM outputs")
    assert main(["--json", "--source", "claude", "--path", str(root)]) == 0
    out, err = capsys.readouterr()
    assert "damaged" in err and "kept fold" in err
    assert_same(json.loads(out), fresh(capsys, monkeypatch, root))


def test_no_fold_is_kept_for_a_history_of_small_files(capsys, tmp_path, monkeypatch, settled):
    """Below `MIN_AVERAGE_BYTES` a file's fold costs more than it saves: none is made or kept."""
    root = history(tmp_path / "h", 3)
    monkeypatch.setattr(prefold, "MIN_AVERAGE_BYTES", 1 << 30)
    report(capsys, "--path", root)
    forget_outputs()
    report(capsys, "--path", root)
    with cache_db() as db:
        assert db.execute("SELECT count(*) FROM folds").fetchone()[0] == 0


def test_folds_of_several_keys_are_kept_side_by_side(capsys, tmp_path, monkeypatch, settled, reads):
    """Runs that alternate (the report and a time window) each find their own folds; past KEEP_KEYS
    keys, the folds of the least recently used one go."""
    root = history(tmp_path / "h", 6)
    report(capsys, "--path", root)
    windows = [("--since", f"202610{d:02d}") for d in range(1, scancache.KEEP_KEYS + 1)]  # (KEEP_KEYS of them)
    report(capsys, "--path", root, *windows[0])
    forget_outputs()
    reads.update(kept=0, records=0)
    assert_same(report(capsys, "--path", root), fresh(capsys, monkeypatch, root))
    assert reads["kept"] > 0 and reads["records"] <= settled["sent"]  # (the plain report's folds: still there)
    with cache_db() as db:
        assert db.execute("SELECT count(DISTINCT fold_key) FROM folds").fetchone()[0] == 2
    for window in windows[1:]:  # 2 + KEEP_KEYS - 1 keys: the oldest used goes
        report(capsys, "--path", root, *window)
    with cache_db() as db:
        assert db.execute("SELECT count(DISTINCT fold_key) FROM folds").fetchone()[0] == scancache.KEEP_KEYS
        assert db.execute("SELECT count(*) FROM fold_keys").fetchone()[0] == scancache.KEEP_KEYS
    forget_outputs()
    reads.update(kept=0)
    assert_same(report(capsys, "--path", root, *windows[0]), fresh(capsys, monkeypatch, root, *windows[0]))
    assert reads["kept"] == 0  # (its folds went: made again in this run)
