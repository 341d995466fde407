"""MiMo Code and IcodeMate: OpenCode's SQLite store under their own names (read as Kilo CLI's is)."""
import shutil
import sqlite3

import pytest

import test_sources_kilo as kilo_test
from nomira.sources import icodemate, mimocode
from nomira.sources.registry import collect

AGENTS = [("mimocode", mimocode, "mimocode", "mimocode.db", "MIMOCODE_DIR"),
          ("icodemate", icodemate, "icodemate", "icodemate.db", "ICODEMATE_DIR")]


@pytest.mark.parametrize("key,mod,folder,db,var", AGENTS)
def test_steps_by_hand_under_own_name(tmp_path, run_json, key, mod, folder, db, var):
    path = kilo_test.make_db(tmp_path / folder, db)
    c = collect((key,), [path])
    got = [(e.source, e.model, e.tokens.input, e.tokens.output, e.tokens.cache_read, e.tokens.cache_write_5m,
            e.agent_cost_usd) for e in c.events]
    assert got == [(mod.NAME, "anthropic/claude-sonnet-4.5", 1200, 450, 0, 4000, 0.0225),
                   (mod.NAME, "anthropic/claude-sonnet-4.5", 40, 300, 9000, 0, 0.0187),
                   (mod.NAME, "gpt-4.1", 5000, 700, 2000, 0, 0.0161),
                   (mod.NAME, "kilo/unknown-free-model", 100, 10, 0, 0, 0.0)]
    assert c.stats.malformed == 1  # the truncated message row: counted and skipped
    r = run_json("--path", path)
    assert r["sources"] == [mod.NAME]
    assert r["totals"]["cost_usd"] == pytest.approx(kilo_test.S1 + kilo_test.S2 + kilo_test.G, abs=1e-12)
    assert {m["model"]: m["priced"] for m in r["models"]}["kilo/unknown-free-model"] is False


@pytest.mark.parametrize("key,mod,folder,db,var", AGENTS)
def test_default_location_override_and_copy_once(tmp_path, isolated_env, monkeypatch, key, mod, folder, db, var):
    assert mod.default_paths() == []
    path = kilo_test.make_db(isolated_env / ".local" / "share" / folder, db)
    writer = sqlite3.connect(path)
    writer.execute("BEGIN IMMEDIATE")  # the running agent holds a write lock: still read
    try:
        assert mod.default_paths() == [path.parent]
        assert len(collect((key,)).events) == 4
    finally:
        writer.rollback()
        writer.close()
    (tmp_path / "copy").mkdir()
    shutil.copy(path, tmp_path / "copy" / db)
    c = collect((key,), found={key: mod.find_files([path.parent, tmp_path / "copy"])})
    assert len(c.events) == 4 and c.stats.skipped["duplicate_call"] == 4
    monkeypatch.setenv(var, str(tmp_path / "copy"))
    assert mod.default_paths() == [tmp_path / "copy"]
