"""A finished report's process ends without Python's teardown (cli._exit_now): its output complete
and flushed (to a file, a pipe, a reader that stops early), its exit status kept, its scan cache
committed (left open: SQLite's log holds what the run wrote, and the next runs answer from it, equal),
for a cold run, a warm one, a replay."""
import os
import sqlite3
import subprocess
import sys

from conftest import FIXTURES

from nomira.sources import behind


def environment(tmp_path) -> dict:
    env = dict(os.environ, XDG_CACHE_HOME=str(tmp_path / "cache"), HOME=str(tmp_path), NO_COLOR="1")
    env.pop("PYTHONUNBUFFERED", None)  # (set on some machines: the output must be flushed by Nomira itself)
    return env


def run(env, *args, stdout=subprocess.PIPE):
    return subprocess.run([sys.executable, "-m", "nomira", *args], env=env, stdout=stdout,
                          stderr=subprocess.PIPE, timeout=120)


def test_cold_warm_and_replayed_outputs_are_whole_and_equal(tmp_path):
    env = environment(tmp_path)
    args = ("--json", "--path", str(FIXTURES / "claude"))
    outs = [run(env, *args) for _ in range(3)]  # cold, then from the cache (replay from the second on)
    assert [p.returncode for p in outs] == [0, 0, 0] and all(p.stderr == b"" for p in outs)
    assert outs[0].stdout.endswith(b"}\n") and outs[0].stdout == outs[1].stdout == outs[2].stdout
    with open(tmp_path / "out.json", "wb") as fh:  # to a file: flushed before the process ends
        assert run(env, *args, "--no-cache", stdout=fh).returncode == 0
    assert (tmp_path / "out.json").read_bytes() == outs[0].stdout
    text = run(env, "daily", "--path", str(FIXTURES / "claude"))
    assert text.returncode == 0 and text.stdout.strip() and text.stderr == b""


def test_a_reader_that_stops_early_and_a_usage_error(tmp_path):
    env = environment(tmp_path)
    p = subprocess.run(f"{sys.executable} -m nomira --json --path {FIXTURES / 'claude'} | head -c 10",
                       shell=True, env=env, capture_output=True, timeout=120)
    assert len(p.stdout) == 10
    assert b"Traceback" not in p.stderr
    bad = run(env, "--since", "not-a-day", "--path", str(FIXTURES / "claude"))
    assert bad.returncode == 2 and b"--since" in bad.stderr


def test_a_cache_written_behind_is_whole_for_the_next_run(tmp_path):
    """The cold run's process ends before its cache writes are made (a child makes them, `write_behind`):
    once the writer's lock is free, another connection sees every entry and the output, and a run after
    a change (the stored output stale) reads the entries, not the logs."""
    env = environment(tmp_path)
    history = tmp_path / "history"
    history.mkdir()
    for f in (FIXTURES / "claude").rglob("*.jsonl"):
        target = history / f.relative_to(FIXTURES / "claude")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(f.read_bytes())
    cold = run(env, "--json", "--path", str(history))
    assert cold.returncode == 0 and cold.stderr == b""
    db_path = tmp_path / "cache" / "nomira" / "scan.sqlite"
    behind.wait(str(db_path.parent))
    with sqlite3.connect(db_path) as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        files = db.execute("SELECT count(*) FROM files").fetchone()[0]
        assert files == len(list(history.rglob("*.jsonl"))) and db.execute("SELECT count(*) FROM outputs").fetchone()[0] == 1
        db.execute("DELETE FROM outputs")
    again = run(env, "--json", "--path", str(history), "--no-color")  # (another invocation: no replay)
    assert again.returncode == 0 and again.stdout == cold.stdout and again.stderr == b""
