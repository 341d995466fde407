"""Goose sessions.db: per-session accumulated totals, read-only, built here from Goose's own schema."""
import sqlite3

import pytest

from nomira.sources import goose
from nomira.sources.registry import collect

# block/goose session_manager.rs: CREATE TABLE sessions (schema v5), plus the provider/model columns newer
# schemas add (read by ccusage's goose adapter).
SCHEMA = """
CREATE TABLE schema_version (version INTEGER PRIMARY KEY, applied_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP);
CREATE TABLE sessions (
    id TEXT PRIMARY KEY, name TEXT NOT NULL DEFAULT '', description TEXT NOT NULL DEFAULT '',
    user_set_name BOOLEAN DEFAULT FALSE, session_type TEXT NOT NULL DEFAULT 'user', working_dir TEXT NOT NULL,
    created_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP, updated_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP,
    extension_data TEXT DEFAULT '{}', total_tokens INTEGER, input_tokens INTEGER, output_tokens INTEGER,
    accumulated_total_tokens INTEGER, accumulated_input_tokens INTEGER, accumulated_output_tokens INTEGER,
    schedule_id TEXT, recipe_json TEXT, user_recipe_values_json TEXT, provider_name TEXT, model_config_json TEXT);
CREATE TABLE messages (id INTEGER PRIMARY KEY AUTOINCREMENT, session_id TEXT NOT NULL REFERENCES sessions(id),
    role TEXT NOT NULL, content_json TEXT NOT NULL, created_timestamp INTEGER NOT NULL,
    timestamp TIMESTAMP DEFAULT CURRENT_TIMESTAMP, tokens INTEGER, metadata_json TEXT);
"""
ROWS = [  # id, type, working_dir, created_at, provider, model config, total, input, output, acc total, acc in, acc out
    ("20251106_1", "user", "/home/ana/src/shop", "2025-11-06 09:00:00", "anthropic",
     '{"model_name":"claude-sonnet-4-5-20250929","context_limit":null,"temperature":null}',
     30500, 30000, 500, 124000, 120000, 4000),
    ("20251106_2", "sub_agent", "/home/ana/src/shop", "2025-11-06 09:05:00", "openai", '{"model_name":"gpt-4.1"}',
     2000, 1800, 200, 11000, 10000, 1000),
    ("20251107_1", "user", "/srv/billing", "2025-11-07T10:00:00Z", "openai", '{"model_name":"gpt-4.1"}',
     5200, 5000, 200, None, None, None),
    ("20251107_2", "user", "/srv/billing", "2025-11-07 11:00:00", None, None, None, None, None, None, None, None),
    ("20251107_3", "user", "/srv/billing", "not a time", "openai", '{"model_name":"gpt-4.1"}',
     10, 5, 5, None, None, None),
    ("20251107_4", "user", "/srv/billing", "2025-11-07 12:00:00", "openai", '{"model_name":',
     10, 5, 5, None, None, None),
]
# Bundled rates (USD per MTok): claude-sonnet-4-5 3 in / 15 out; gpt-4.1 2 in / 8 out.
S1 = (120000 * 3 + 4000 * 15) / 1e6  # accumulated totals, not the last turn
S2 = (10000 * 2 + 1000 * 8) / 1e6
S3 = (5000 * 2 + 200 * 8) / 1e6      # no accumulated figure: the plain columns


def make_db(folder):
    folder.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(folder / "sessions.db")
    db.executescript(SCHEMA)
    db.executemany("INSERT INTO sessions (id, session_type, working_dir, created_at, provider_name, model_config_json,"
                   " total_tokens, input_tokens, output_tokens, accumulated_total_tokens, accumulated_input_tokens,"
                   " accumulated_output_tokens) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)", ROWS)
    db.commit()
    db.close()
    return folder / "sessions.db"


def test_sessions_by_hand(tmp_path, run_json):
    path = make_db(tmp_path / "goose" / "sessions")
    c = collect(("goose",), [path])
    got = {e.session_id: (e.model, e.project, e.tokens.input, e.tokens.output) for e in c.events}
    assert got["20251106_1"] == ("claude-sonnet-4-5-20250929", "shop", 120000, 4000)
    assert got["20251107_1"] == ("gpt-4.1", "billing", 5000, 200)
    assert got["20251107_4"][0] == "unknown"  # unreadable model config: unpriced, never guessed
    assert c.stats.skipped["no_timestamp"] == 1 and c.stats.skipped["model_unknown"] == 1
    r = run_json("--path", path)
    assert r["totals"]["cost_usd"] == pytest.approx(S1 + S2 + S3, abs=1e-12)
    assert r["regime"] == "api"


def test_read_only_and_not_locking(tmp_path):
    path = make_db(tmp_path / "s")
    writer = sqlite3.connect(path)
    writer.execute("BEGIN IMMEDIATE")  # the running agent holds a write lock
    try:
        assert len(collect(("goose",), [path]).events) == 4
    finally:
        writer.rollback()
        writer.close()
    assert not (tmp_path / "s" / "sessions.db-journal").exists()


def test_copied_db_counts_once_and_default_location(tmp_path, isolated_env, run_json):
    make_db(isolated_env / ".local/share/goose/sessions")
    assert [p.name for p in goose.find_files(goose.default_paths())] == ["sessions.db"]
    import shutil
    (tmp_path / "backup").mkdir()
    shutil.copy(isolated_env / ".local/share/goose/sessions/sessions.db", tmp_path / "backup" / "sessions.db")
    c = collect(("goose",), [isolated_env / ".local/share/goose", tmp_path / "backup"])
    assert len(c.events) == 4 and c.stats.skipped["duplicate_call"] == 4
    r = run_json("--source", "goose", "daily", "--timezone", "UTC")
    assert {d["date"]: round(d["cost_usd"], 9) for d in r["daily"]} == {"2025-11-06": round(S1 + S2, 9),
                                                                         "2025-11-07": round(S3, 9)}


def test_garbage_file_is_counted_not_fatal(tmp_path):
    bad = tmp_path / "sessions.db"
    bad.write_bytes(b"not a database at all" * 10)
    c = collect(("goose",), [bad])
    assert c.events == [] and any(k.startswith("unreadable_db") for k in c.stats.skipped)
