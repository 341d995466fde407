"""Augure Code (Codex's rollouts under ~/.augure/sessions) and Augure Desktop (Hermes' state.db under
~/.augure-desktop): the parent's parser and dedup, the agent's own source name and folders."""
import shutil
import sqlite3

import pytest

import test_sources_hermes as hermes_db
from conftest import FIXTURES
from nomira.sources import augure_code, augure_desktop
from nomira.sources.registry import collect


def test_augure_code_codex_rollouts_under_its_name(isolated_env, monkeypatch, tmp_path, run_json):
    assert augure_code.default_paths() == []
    shutil.copytree(FIXTURES / "codex" / "sessions", isolated_env / ".augure" / "sessions")
    assert augure_code.default_paths() == [isolated_env / ".augure" / "sessions"]
    mine, theirs = collect(("augure_code",)), collect(("codex",), [FIXTURES / "codex"])
    assert mine.events and {e.source for e in mine.events} == {"augure_code"}
    assert [(e.model, e.tokens) for e in mine.events] == [(e.model, e.tokens) for e in theirs.events]
    assert mine.stats.malformed == theirs.stats.malformed >= 1  # the fixture's broken line, counted
    assert collect(("codex",)).events == []  # not Codex's own history
    r = run_json("--path", isolated_env / ".augure")
    assert r["sources"] == ["augure_code"]
    assert r["totals"]["cost_usd"] == pytest.approx(run_json("--path", FIXTURES / "codex")["totals"]["cost_usd"])
    monkeypatch.setenv("AUGURE_CODE_SESSIONS_DIR", f"{tmp_path},{isolated_env / 'none'}")
    assert augure_code.default_paths() == [tmp_path]


def test_augure_code_copied_rollout_counts_once(isolated_env):
    src = isolated_env / ".augure" / "sessions"
    shutil.copytree(FIXTURES / "codex" / "sessions", src)
    once = collect(("augure_code",))
    (src / "copy").mkdir()
    for i, f in enumerate(sorted(src.rglob("rollout-*.jsonl"))):  # the same calls under new file names
        shutil.copy(f, src / "copy" / f"rollout-copy-{i}.jsonl")
    twice = collect(("augure_code",))
    assert [(e.model, e.tokens) for e in twice.events] == [(e.model, e.tokens) for e in once.events]
    assert twice.stats.skipped["duplicate_call"] >= len(once.events)


def test_augure_desktop_hermes_store_by_hand(isolated_env, monkeypatch, tmp_path, run_json):
    assert augure_desktop.default_paths() == []
    path = hermes_db.make_db(isolated_env / ".augure-desktop")
    assert augure_desktop.default_paths() == [path.parent]
    c = collect(("augure_desktop",))
    got = sorted((e.source, e.model, e.project, e.tokens.input, e.tokens.output, e.tokens.cache_read,
                  e.tokens.cache_write_5m, e.agent_cost_usd) for e in c.events)
    assert got == [("augure_desktop", "anthropic/claude-sonnet-4.5", "shop", 2000, 900, 30000, 5000, 0.048),
                   ("augure_desktop", "gpt-4.1", "billing", 10000, 1000, 2000, 0, 0.0295),
                   ("augure_desktop", "openai/gpt-4.1", "shop", 4000, 300, 0, 0, 0.0104)]
    assert collect(("hermes",)).events == []  # a stock ~/.hermes is Hermes'; this folder is Augure's
    r = run_json("--path", path)
    assert r["sources"] == ["augure_desktop"]
    assert r["totals"]["cost_usd"] == pytest.approx(hermes_db.M1 + hermes_db.M2 + hermes_db.OLD, abs=1e-12)
    win = tmp_path / "Local"
    hermes_db.make_db(win / "augure-desktop")
    monkeypatch.setenv("LOCALAPPDATA", str(win))
    assert augure_desktop.default_paths() == [path.parent, win / "augure-desktop"]
    monkeypatch.setenv("AUGURE_DESKTOP_DIR", str(win / "augure-desktop"))
    assert augure_desktop.default_paths() == [win / "augure-desktop"]


def test_augure_desktop_copy_counts_once_and_garbage_counted(isolated_env, tmp_path):
    path = hermes_db.make_db(isolated_env / ".augure-desktop")
    writer = sqlite3.connect(path)
    writer.execute("BEGIN IMMEDIATE")  # the running app holds a write lock: still read
    try:
        assert len(collect(("augure_desktop",)).events) == 3
    finally:
        writer.rollback()
        writer.close()
    (tmp_path / "bak" / "augure-desktop").mkdir(parents=True)
    shutil.copy(path, tmp_path / "bak" / "augure-desktop" / "state.db")
    c = collect(("augure_desktop",), [path, tmp_path / "bak" / "augure-desktop" / "state.db"])
    assert len(c.events) == 3 and c.stats.skipped["duplicate_call"] == 3
    bad = tmp_path / "bad" / ".augure-desktop" / "state.db"
    bad.parent.mkdir(parents=True)
    bad.write_bytes(b"\x00garbage" * 64)
    c = collect(("augure_desktop",), [bad])
    assert c.events == [] and any(k.startswith("unreadable_db") for k in c.stats.skipped)
