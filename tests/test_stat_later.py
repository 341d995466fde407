"""A history of many files the cache holds nothing of is not stated before the scan starts: each
Claude Code file is stated by the worker's scan as it opens it, before reading (`scan._job`,
`Run.cached_output` -> `DEFERRED`). The output is the usual one, every cache entry records the file as
it was before it was read, and the stored output's key is the one the next run makes by stating the
files first (it is served to it); another source's files are stated first, as always; a file no one
stated before reading leaves no entry and no stored output."""
import json
import os
import shutil
import sqlite3

import pytest

from conftest import FIXTURES
from nomira import cli, dirs
from nomira.cli import main
from nomira.sources import registry, scan
from test_prefold import history


def run(capsys, *args) -> dict:
    assert main(["--json", *map(str, args)]) == 0
    return json.loads(capsys.readouterr().out)


@pytest.fixture
def later(monkeypatch, isolated_env):
    """Every history counts as many files; counts the scans asked to state later."""
    monkeypatch.setattr(cli, "STAT_LATER_MIN", 0)
    counts = {"later": 0, "collect": 0}
    real = registry.collect

    def collect(*args, **kwargs):
        counts["collect"] += 1
        counts["later"] += bool(kwargs.get("stat_later"))
        return real(*args, **kwargs)
    monkeypatch.setattr(registry, "collect", collect)
    return counts


def entries() -> list[tuple]:
    with sqlite3.connect(dirs.cache_home() / "scan.sqlite") as db:
        return db.execute("SELECT path, size, mtime_ns FROM files ORDER BY path").fetchall()


@pytest.mark.parametrize("seed", [0, 2])
def test_stated_as_read_gives_the_usual_output_and_its_key(capsys, tmp_path, later, seed):
    root = history(tmp_path / "h", seed)
    want = run(capsys, "--source", "claude", "--path", root, "--no-cache")
    assert later == {"later": 0, "collect": 1}  # (no cache: nothing deferred)
    assert run(capsys, "--source", "claude", "--path", root) == want
    assert later["later"] == 1
    got = entries()
    assert len(got) == len(list(root.rglob("*.jsonl")))
    assert all((os.stat(p).st_size, os.stat(p).st_mtime_ns) == (size, mtime) for p, size, mtime in got)
    # the next run states the files first (the cache holds them), makes the key and finds the output
    assert run(capsys, "--source", "claude", "--path", root) == want
    assert later["collect"] == 2


def test_another_sources_files_are_stated_first(capsys, tmp_path, later):
    root = tmp_path / "h"
    shutil.copytree(FIXTURES / "claude", root / "claude")
    shutil.copytree(FIXTURES / "codex", root / "codex")
    want = run(capsys, "--path", root, "--no-cache")
    assert {"claude_code", "codex"} <= set(want["sources"])
    assert run(capsys, "--path", root) == want
    assert later["later"] == 1
    assert run(capsys, "--path", root) == want  # (the stored output, under the key the next run makes)
    assert later["collect"] == 2
    assert len(entries()) == len(list(root.rglob("*.jsonl")))


def test_a_file_no_one_stated_leaves_no_entry_and_no_output(capsys, tmp_path, later, monkeypatch):
    root = history(tmp_path / "h", 1)
    want = run(capsys, "--source", "claude", "--path", root, "--no-cache")
    files = sorted(str(p) for p in root.rglob("*.jsonl"))
    real = scan.LineScan.__iter__

    def unstated(self):  # (the first file's scan states nothing: as a source whose scan does not)
        for line in real(self):
            if os.fspath(self.path) == files[0]:
                scan._LAST_STATED = None
            yield line
    monkeypatch.setattr(scan.LineScan, "__iter__", unstated)
    assert run(capsys, "--source", "claude", "--path", root) == want
    assert [p for p, _s, _m in entries()] == files[1:]
    with sqlite3.connect(dirs.cache_home() / "scan.sqlite") as db:
        assert db.execute("SELECT count(*) FROM outputs").fetchone() == (0,)


def test_a_cache_holding_the_files_states_them_first(capsys, tmp_path, later):
    root = history(tmp_path / "h", 3)
    run(capsys, "--source", "claude", "--path", root)
    first = sorted(root.rglob("*.jsonl"))[0]
    first.write_text(first.read_text())  # (a new mtime: the stored output is stale, the entries are not)
    run(capsys, "--source", "claude", "--path", root)
    assert later == {"later": 1, "collect": 2}
