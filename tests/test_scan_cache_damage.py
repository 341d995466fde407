"""A damaged scan cache (garbage, torn pages, a changed byte SQLite cannot see, a truncated replay file)
never fails a run nor changes a figure: it is discarded, every file is read, and the next run has a
new cache."""
import json
import os
import random
import shutil
import sqlite3
from pathlib import Path

import pytest

from conftest import FIXTURES
from nomira.cli import main
from nomira.sources import scancache

@pytest.fixture
def hist(tmp_path, isolated_env):
    dst = tmp_path / "claude"
    shutil.copytree(FIXTURES / "claude", dst)
    return dst


def report(capsys, hist, *extra):
    assert main(["--json", "--path", str(hist), *extra]) == 0
    captured = capsys.readouterr()
    return json.loads(captured.out), captured.err


def cache_path() -> Path:
    return scancache.default_path()


def warm_cache(capsys, hist):
    """The truth (no cache at all), and a cache holding every file's entry and the report's output."""
    truth, _ = report(capsys, hist, "--no-cache")
    assert report(capsys, hist)[0] == truth
    return truth


def assert_recovers(capsys, hist, truth, damaged_said=True):
    got, err = report(capsys, hist)
    assert got == truth
    assert ("scan cache" in err and "damaged" in err) == damaged_said, err
    again, err = report(capsys, hist)  # a new cache, warm and quiet
    assert again == truth and err == ""
    with sqlite3.connect(cache_path()) as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert db.execute("SELECT count(*) FROM files").fetchone()[0] > 0


def test_garbage_in_place_of_the_cache(capsys, hist):
    truth = warm_cache(capsys, hist)
    cache_path().write_bytes(random.Random(1).randbytes(40_000))
    assert_recovers(capsys, hist, truth)


@pytest.mark.parametrize("seed", range(4))
def test_torn_pages(capsys, hist, seed):
    """Random bytes over random pages past the first (where a crash or a bad disk leaves them)."""
    truth = warm_cache(capsys, hist)
    path = cache_path()
    with sqlite3.connect(path) as db:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        page = db.execute("PRAGMA page_size").fetchone()[0]
    size = path.stat().st_size
    rng = random.Random(seed)
    with open(path, "r+b") as fh:
        for _ in range(3):
            fh.seek(rng.randrange(page, size - 64))
            fh.write(rng.randbytes(rng.choice((64, page))))
    got, _err = report(capsys, hist)
    assert got == truth  # (SQLite finds most such damage; the checksums the rest, or it missed what is read)
    assert report(capsys, hist)[0] == truth


def test_changed_entry_that_sqlite_cannot_see(capsys, hist):
    """One changed byte inside a record blob is valid SQLite: only the entry's checksum finds it."""
    truth = warm_cache(capsys, hist)
    with sqlite3.connect(cache_path()) as db:
        path, data = db.execute("SELECT path, data FROM files WHERE length(data) > 200 ORDER BY path").fetchone()
        changed = bytearray(data)
        changed[len(changed) // 2] ^= 0x01
        db.execute("UPDATE files SET data=? WHERE path=?", (bytes(changed), path))
        db.execute("DELETE FROM outputs")  # (else the finished output is served without reading entries)
    assert_recovers(capsys, hist, truth)


def stored_output() -> Path:
    """The file of the one output the cache keeps (a file beside the database, its checksum in it)."""
    with sqlite3.connect(cache_path()) as db:
        (key,), = db.execute("SELECT key FROM outputs").fetchall()
    return Path(f"{cache_path()}{scancache.OUTPUTS}") / key


def test_changed_stored_output(capsys, hist):
    truth = warm_cache(capsys, hist)
    out = stored_output()
    out.write_bytes(out.read_bytes().replace(b'"calls": ', b'"calls": 9', 1))  # (same length: only the checksum sees it)
    assert_recovers(capsys, hist, truth)
    assert out.parent.is_dir() and len(list(out.parent.iterdir())) == 1  # (the damaged cache's outputs went with it)


def test_a_stored_output_cut_short_or_gone(capsys, hist):
    """A stored output shorter than its row says is damage; one removed is only a run without the shortcut."""
    truth = warm_cache(capsys, hist)
    out = stored_output()
    out.write_bytes(out.read_bytes()[:-1])
    assert_recovers(capsys, hist, truth)
    stored_output().unlink()
    got, err = report(capsys, hist)
    assert got == truth and err == ""
    assert stored_output().is_file()  # (stored again)


def test_outputs_past_the_newest_are_removed_with_their_files(tmp_path):
    cache = scancache.ScanCache(tmp_path / "scan.sqlite")
    for n in range(scancache.KEEP_OUTPUTS + 5):
        cache.put_output(f"{n:064x}", b"output %d" % n)
    (tmp_path / f"scan.sqlite{scancache.OUTPUTS}" / "stray").write_bytes(b"a run's leftover")
    cache.put_output("f" * 64, b"last")
    files = sorted(p.name for p in (tmp_path / f"scan.sqlite{scancache.OUTPUTS}").iterdir())
    assert len(files) == scancache.KEEP_OUTPUTS and "f" * 64 in files and f"{0:064x}" not in files
    assert cache.get_output("f" * 64) == b"last" and cache.get_output(f"{0:064x}") is None
    assert cache.get_output(f"{20:064x}") == b"output 20"
    cache.close()


def test_an_output_not_written_leaves_no_row(tmp_path, monkeypatch):
    """A stored output's file that cannot be written (a full disk): its row finds nothing, no error, only
    no shortcut."""
    cache = scancache.ScanCache(tmp_path / "scan.sqlite")
    real = open

    def full(path, mode="r", *a, **k):
        if str(path).endswith(".tmp") and "w" in mode:
            raise OSError(28, "No space left on device")
        return real(path, mode, *a, **k)
    monkeypatch.setattr("builtins.open", full)
    cache.put_output("a" * 64, b"output")
    monkeypatch.setattr("builtins.open", real)
    assert cache.get_output("a" * 64) is None
    assert not list((tmp_path / f"scan.sqlite{scancache.OUTPUTS}").iterdir())
    cache.close()


def test_damage_met_while_saving_the_output_keeps_the_output(capsys, hist, monkeypatch):
    truth = warm_cache(capsys, hist)

    def torn(self, key, length, checksum):
        raise scancache.CacheDamaged(self.path, "test")
    monkeypatch.setattr(scancache.ScanCache, "name_output", torn)
    with sqlite3.connect(cache_path()) as db:
        db.execute("DELETE FROM outputs")
    got, err = report(capsys, hist)
    assert got == truth and "damaged" in err
    assert not cache_path().exists()  # removed: the next run makes a new one


def test_statusline_reads_the_files_past_a_damaged_cache(isolated_env):
    from test_statusline import PAYLOAD, render, setup_history
    transcript, now = setup_history(isolated_env)
    payload = PAYLOAD.replace("TRANSCRIPT", str(transcript))
    expected = render(payload, now)
    assert main(["daily"]) == 0  # every file's entry cached
    with sqlite3.connect(cache_path()) as db:
        db.execute("UPDATE files SET data=substr(data, 1, 20) || x'00' || substr(data, 22)")
    (Path(os.environ["XDG_STATE_HOME"]) / "nomira" / "statusline.json").unlink()
    assert render(payload, now) == expected
    assert not cache_path().exists()
