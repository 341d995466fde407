"""Hermes Agent state.db: per-model session usage (CanonicalUsage terms), read-only, Hermes' own cost beside."""
import shutil
import sqlite3

import pytest

from nomira.sources import hermes
from nomira.sources.registry import collect

# hermes-agent hermes_state_schema.py: sessions and session_model_usage as the current schema creates them.
SCHEMA = """
CREATE TABLE schema_version (version INTEGER NOT NULL);
CREATE TABLE sessions (id TEXT PRIMARY KEY, source TEXT NOT NULL, user_id TEXT, model TEXT, model_config TEXT,
  system_prompt TEXT, parent_session_id TEXT, started_at REAL NOT NULL, ended_at REAL, end_reason TEXT,
  message_count INTEGER DEFAULT 0, tool_call_count INTEGER DEFAULT 0, input_tokens INTEGER DEFAULT 0,
  output_tokens INTEGER DEFAULT 0, cache_read_tokens INTEGER DEFAULT 0, cache_write_tokens INTEGER DEFAULT 0,
  reasoning_tokens INTEGER DEFAULT 0, cwd TEXT, billing_provider TEXT, billing_base_url TEXT, billing_mode TEXT,
  estimated_cost_usd REAL, actual_cost_usd REAL, cost_status TEXT, cost_source TEXT, pricing_version TEXT,
  title TEXT, api_call_count INTEGER DEFAULT 0);
CREATE TABLE session_model_usage (session_id TEXT NOT NULL, model TEXT NOT NULL,
  billing_provider TEXT NOT NULL DEFAULT '', billing_base_url TEXT NOT NULL DEFAULT '',
  billing_mode TEXT NOT NULL DEFAULT '', task TEXT NOT NULL DEFAULT '', api_call_count INTEGER NOT NULL DEFAULT 0,
  input_tokens INTEGER NOT NULL DEFAULT 0, output_tokens INTEGER NOT NULL DEFAULT 0,
  cache_read_tokens INTEGER NOT NULL DEFAULT 0, cache_write_tokens INTEGER NOT NULL DEFAULT 0,
  reasoning_tokens INTEGER NOT NULL DEFAULT 0, estimated_cost_usd REAL NOT NULL DEFAULT 0,
  actual_cost_usd REAL NOT NULL DEFAULT 0, cost_status TEXT, cost_source TEXT, first_seen REAL, last_seen REAL,
  PRIMARY KEY (session_id, model, billing_provider, billing_base_url, billing_mode, task));
"""
# claude-sonnet-4-5: 3 / 15 / 0.30 read / 3.75 write; gpt-4.1: 2 / 8 / 0.50 read. input_tokens are uncached.
M1 = (2000 * 3 + 900 * 15 + 30000 * 0.30 + 5000 * 3.75) / 1e6
M2 = (4000 * 2 + 300 * 8) / 1e6      # the session's auxiliary (compression) model
OLD = (10000 * 2 + 1000 * 8 + 2000 * 0.50) / 1e6  # a session from before session_model_usage: its totals


def make_db(folder):
    folder.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(folder / "state.db")
    db.execute("PRAGMA journal_mode=WAL")
    db.executescript(SCHEMA)
    cols = ("id, source, model, started_at, input_tokens, output_tokens, cache_read_tokens, cache_write_tokens, "
            "reasoning_tokens, cwd, estimated_cost_usd, actual_cost_usd, cost_status")
    db.executemany(f"INSERT INTO sessions ({cols}) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)", [
        ("20251106_090000_a1b2c3", "cli", "anthropic/claude-sonnet-4.5", 1762419600.5, 6000, 1200, 30000, 5000, 400,
         "/home/ana/src/shop", 0.0699, 0.071, "actual"),
        ("20251107_100000_d4e5f6", "telegram", "gpt-4.1", 1762509600.0, 10000, 1000, 2000, 0, 0, "/srv/billing",
         0.0295, None, "estimated"),
        ("20251107_110000_empty0", "cli", "gpt-4.1", 1762513200.0, 0, 0, 0, 0, 0, None, None, None, None),
    ])
    db.executemany("INSERT INTO session_model_usage (session_id, model, billing_provider, task, api_call_count, "
                   "input_tokens, output_tokens, cache_read_tokens, cache_write_tokens, reasoning_tokens, "
                   "estimated_cost_usd, actual_cost_usd, cost_status, first_seen, last_seen) "
                   "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)", [
                       ("20251106_090000_a1b2c3", "anthropic/claude-sonnet-4.5", "openrouter", "", 6, 2000, 900,
                        30000, 5000, 400, 0.0469, 0.048, "actual", 1762419601.0, 1762420000.0),
                       ("20251106_090000_a1b2c3", "openai/gpt-4.1", "openrouter", "compression", 1, 4000, 300, 0, 0,
                        0, 0.0104, 0.0, "estimated", 1762419900.0, 1762419900.0),
                   ])
    db.commit()
    db.close()
    return folder / "state.db"


def test_sessions_by_hand(tmp_path, run_json):
    path = make_db(tmp_path / ".hermes")
    c = collect(("hermes",), [path])
    got = sorted((e.session_id[:8], e.model, e.project, e.tokens.input, e.tokens.output, e.tokens.cache_read,
                  e.tokens.cache_write_5m, e.agent_cost_usd) for e in c.events)
    assert got == [("20251106", "anthropic/claude-sonnet-4.5", "shop", 2000, 900, 30000, 5000, 0.048),
                   ("20251106", "openai/gpt-4.1", "shop", 4000, 300, 0, 0, 0.0104),
                   ("20251107", "gpt-4.1", "billing", 10000, 1000, 2000, 0, 0.0295)]
    r = run_json("--path", path)
    assert r["totals"]["cost_usd"] == pytest.approx(M1 + M2 + OLD, abs=1e-12)


def test_read_only_while_hermes_writes_and_copy_counts_once(tmp_path, isolated_env):
    path = make_db(isolated_env / ".hermes")
    writer = sqlite3.connect(path)
    writer.execute("BEGIN IMMEDIATE")
    try:
        assert hermes.default_paths() == [path.parent]
        assert len(collect(("hermes",)).events) == 3
    finally:
        writer.rollback()
        writer.close()
    (tmp_path / "bak" / ".hermes").mkdir(parents=True)
    shutil.copy(path, tmp_path / "bak" / ".hermes" / "state.db")
    c = collect(("hermes",), [path, tmp_path / "bak" / ".hermes" / "state.db"])
    assert len(c.events) == 3 and c.stats.skipped["duplicate_call"] == 3


def test_garbage_db_counted(tmp_path):
    bad = tmp_path / ".hermes" / "state.db"
    bad.parent.mkdir()
    bad.write_bytes(b"\x00garbage" * 64)
    c = collect(("hermes",), [bad])
    assert c.events == [] and any(k.startswith("unreadable_db") for k in c.stats.skipped)
