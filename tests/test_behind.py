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
