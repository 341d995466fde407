"""A finished report's cache writes done after the command answered (`sources/behind.py`): the writer
holds the cache folder's lock until it is done, the next run waits for it, and the next run's output
is the same as if the writes had been done before the first run ended."""
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from nomira import dirs
from nomira.sources import behind, scancache

ROOT = Path(__file__).resolve().parent.parent


def test_the_writer_holds_the_lock_until_its_work_is_done(tmp_path):
    done = tmp_path / "done"

    def work():
        time.sleep(0.4)
        done.write_text("written")
    started = time.monotonic()
    assert behind.run(work, str(tmp_path)) is True
    assert time.monotonic() - started < 0.3 and not done.exists()  # (this process goes on at once)
    behind.wait(str(tmp_path))
    assert done.read_text() == "written"  # (the wait ended when the child's work was done)


def test_a_writer_that_fails_or_is_killed_releases_the_lock(tmp_path):
    def boom():
        raise OSError("disk full")
    assert behind.run(boom, str(tmp_path))
    behind.wait(str(tmp_path))  # (returns: the child ended, its error not shown)

    def forever():
        time.sleep(60)
    assert behind.run(forever, str(tmp_path))
    import fcntl
    fd = os.open(behind.lock_path(str(tmp_path)), os.O_RDONLY)
    try:
        with pytest.raises(BlockingIOError):
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)  # held by the sleeping child
    finally:
        os.close(fd)
    # the child is this process's: find it (the newest child) and kill it, as a user's kill would
    out = subprocess.run(["pgrep", "-P", str(os.getpid()), "-n"], capture_output=True, text=True)
    if out.returncode != 0:
        pytest.skip("pgrep is not available")
    os.kill(int(out.stdout.split()[0]), 9)
    started = time.monotonic()
    behind.wait(str(tmp_path))
    assert time.monotonic() - started < behind.WAIT_S / 2


def test_no_lock_file_no_wait(tmp_path):
    started = time.monotonic()
    behind.wait(str(tmp_path / "never-made"))
    assert time.monotonic() - started < 0.1


SLOW_WRITER = """
import time
from nomira.sources import scancache
real = scancache.ScanCache.write_output
def write_output(self, *args):
    time.sleep(0.8)  # (a slow disk: the writer is still writing when the next command line starts)
    return real(self, *args)
scancache.ScanCache.write_output = write_output
"""


def _nomira(*args: str, site: Path | None = None) -> subprocess.CompletedProcess:
    path = os.pathsep.join([str(site)] * (site is not None) + [str(ROOT)])
    return subprocess.run([sys.executable, "-m", "nomira", *args], cwd=ROOT, capture_output=True, text=True,
                          env=dict(os.environ, PYTHONPATH=path), timeout=120)


def test_the_next_run_waits_for_the_writes_and_replays_them(isolated_env):
    """Two command lines back to back, nothing in between: the second starts while the first one's
    writer still writes (slowed down by a sitecustomize), waits for it, and replays the stored output (the scan cache is removed
    before it: only a replay leaves it removed)."""
    import shutil
    from conftest import FIXTURES
    shutil.copytree(FIXTURES / "claude" / "projects", isolated_env / ".claude" / "projects")
    cache = dirs.cache_home()
    cache.mkdir(parents=True)
    old = time.time() - 3600  # (a replay is kept only when nothing it depends on changed around the run)
    for dirpath, _dirs, files in os.walk(isolated_env):
        for name in files + [""]:
            os.utime(os.path.join(dirpath, name), (old, old))
    first = _nomira("--json", "--source", "claude")
    assert first.returncode == 0, first.stderr
    behind.wait(str(cache))
    kept = os.listdir(scancache.quick_dir(os.environ))
    assert kept  # (written by the child)
    # again, without waiting in this process: the next command line does
    scancache.discard(cache / "scan.sqlite")
    shutil.rmtree(scancache.quick_dir(os.environ))
    site = isolated_env.parent / "site"  # (not in the home folder, which the replay watches)
    site.mkdir()
    (site / "sitecustomize.py").write_text(SLOW_WRITER)
    started = time.monotonic()
    first = _nomira("--json", "--source", "claude", site=site)
    assert time.monotonic() - started < 5  # (answered before its slow writes were done)
    db = cache / "scan.sqlite"
    assert first.returncode == 0 and db.exists()
    scancache.discard(db)  # (may run while the writer writes its files: the replay's are elsewhere)
    second = _nomira("--json", "--source", "claude", site=site)  # (the same environment: the same command)
    assert second.returncode == 0, second.stderr
    assert second.stdout == first.stdout and not db.exists()


def _tables(path) -> dict:
    import sqlite3
    with sqlite3.connect(path) as db:
        return {"files": sorted(db.execute("SELECT * FROM files")),
                "folds": sorted(db.execute("SELECT * FROM folds")),
                "keys": sorted(k for (k,) in db.execute("SELECT fold_key FROM fold_keys"))}


def _writes(cache) -> None:
    """Every kind of write a run makes: entries with and without folds, a kept file, a fold of an
    entry reused, a commit without pruning, a close that prunes, and a writer left open (a failed run)."""
    from nomira.sources.scancache import Entry
    w = cache.writer("claude")
    w.keys.add("k-used")
    for i in range(600):  # (more than a batch of rows)
        e = Entry(1000 + i, 7 * i, 900 + i, bytes([i % 256]) * 20, (b"%d," % i) * (600 if i % 7 else 2))
        w.put(f"/h/{i}.jsonl", e, ("k1", b"fold%d" % i) if i % 3 == 0 else None)
    w.keep("/h/kept.jsonl")
    w.put_fold("/h/kept.jsonl", Entry(5, 6, 5, b"s"), "k2", b"reused")
    w.close()
    w = cache.writer("codex")
    w.put("/c/a.jsonl", Entry(1, 2, 1, b"x", b"blob"))
    w.commit()
    w = cache.writer("opencode")  # never closed: rolled back
    w.put("/o/lost.json", Entry(1, 2, 1, b"x", b"lost"))


def test_spooled_writes_replayed_equal_the_writes_made_at_once(tmp_path):
    """What a command line keeps in its spool and its child replays is what the writers would have
    written as the scan went: the same rows, folds and kept keys, stale files pruned, an unclosed
    writer rolled back."""
    from nomira.sources.scancache import Entry, ScanCache
    results = []
    for mode in ("at once", "spooled"):
        path = tmp_path / mode / "scan.sqlite"
        cache = ScanCache(path)
        w = cache.writer("claude")  # (a previous run's entries: the stale one is pruned by the close)
        w.put("/h/gone.jsonl", Entry(1, 1, 1, b"", b"old"))
        w.put("/h/0.jsonl", Entry(1, 1, 1, b"", b"old"))
        w.close()
        if mode == "spooled":
            spool = cache.defer()
            _writes(cache)
            assert spool.pending() and _tables(path)["files"][0][1] == "/h/0.jsonl"  # (nothing written yet)
            cache.close()
            spool.finish()
        else:
            _writes(cache)
            cache.db.execute("ROLLBACK")  # (the open writer's transaction, as a process's end would)
            cache.close()
        results.append(_tables(path))
    assert results[0] == results[1]
    files = results[1]["files"]
    assert len(files) == 601 and {f[1] for f in files} >= {"/h/0.jsonl", "/h/599.jsonl", "/c/a.jsonl"}
    assert "/h/gone.jsonl" not in {f[1] for f in files} and "/o/lost.json" not in {f[1] for f in files}
    assert len(results[1]["folds"]) == 201 and results[1]["keys"] == ["k-used", "k1", "k2"]
    assert all(n.startswith("scan.sqlite") for n in os.listdir(tmp_path / "spooled"))  # (the spool: unnamed)


KILLED_WRITER = """
import os
from nomira.sources import scancache
def finish(self):
    os._exit(9)  # (killed before any write: the lock is released with it)
scancache.Spool.finish = finish
"""


def test_a_writer_killed_before_its_writes_leaves_a_cache_the_next_run_fills(isolated_env):
    """A cold run whose writer dies: the answer was already out and right, nothing is left in the cache
    folder but the empty database, and the next run reads every file again, with the same output, and
    keeps it."""
    import shutil
    import sqlite3
    from conftest import FIXTURES
    shutil.copytree(FIXTURES / "claude" / "projects", isolated_env / ".claude" / "projects")
    site = isolated_env.parent / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(KILLED_WRITER)
    first = _nomira("--json", "--source", "claude", "--no-color", site=site)
    assert first.returncode == 0, first.stderr
    cache = dirs.cache_home()
    behind.wait(str(cache))
    assert sorted(os.listdir(cache)) == ["scan.sqlite", "scan.sqlite-shm", "scan.sqlite-wal", "writing.lock"] or \
        sorted(os.listdir(cache)) == ["scan.sqlite", "writing.lock"]
    with sqlite3.connect(cache / "scan.sqlite") as db:
        assert db.execute("SELECT count(*) FROM files").fetchone() == (0,)
    second = _nomira("--json", "--source", "claude")
    assert second.returncode == 0 and second.stdout == first.stdout
    behind.wait(str(cache))
    with sqlite3.connect(cache / "scan.sqlite") as db:
        assert db.execute("SELECT count(*) FROM files").fetchone()[0] > 0
        assert db.execute("SELECT count(*) FROM outputs").fetchone() == (1,)


def test_a_spool_that_cannot_be_written_keeps_nothing_and_fails_nothing(tmp_path):
    """A full disk while the scan's entries are spooled: the run goes on (its answer is not the cache's),
    nothing of this run's entries is written later, the output still is."""
    from nomira.sources.scancache import Entry, ScanCache
    path = tmp_path / "scan.sqlite"
    cache = ScanCache(path)
    spool = cache.defer()
    spool.file.close()
    spool.file = open(os.devnull, "rb")  # (every write fails, as on a full disk)
    w = cache.writer("claude")
    w.put("/h/a.jsonl", Entry(1, 2, 1, b"s", b"x" * (2 << 20)))  # (past a batch: written at once)
    w.close()
    assert spool.broken and not spool.pending()
    spool.later.append(lambda c: c.put_output("k", b"output"))
    cache.close()
    spool.finish()
    again = ScanCache(path)
    assert again.get_output("k") == b"output" and again.load("claude") == {}
    again.close()
