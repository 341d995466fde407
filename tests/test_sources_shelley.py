"""Shelley shelley.db: per-reply llm.Usage rows and indirect calls; a fork's copied messages count once."""
import json
import shutil
import sqlite3

import pytest

from nomira.sources import shelley
from nomira.sources.registry import collect

# boldsoftware/shelley db/schema (the tables as migrations 001-037 leave them; columns read here and their neighbours).
SCHEMA = """
CREATE TABLE conversations (conversation_id TEXT PRIMARY KEY, slug TEXT, user_initiated BOOLEAN NOT NULL DEFAULT TRUE,
    created_at DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP, updated_at DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    cwd TEXT, archived BOOLEAN NOT NULL DEFAULT FALSE, parent_conversation_id TEXT, model TEXT,
    current_generation INTEGER NOT NULL DEFAULT 1);
CREATE TABLE messages (message_id TEXT PRIMARY KEY, conversation_id TEXT NOT NULL, sequence_id INTEGER NOT NULL,
    type TEXT NOT NULL, llm_data TEXT, user_data TEXT, usage_data TEXT,
    created_at DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP, display_data TEXT,
    excluded_from_context BOOLEAN NOT NULL DEFAULT FALSE, generation INTEGER NOT NULL DEFAULT 1, llm_api_url TEXT,
    model_name TEXT, forked_from_message_id TEXT, user_email TEXT, other_usage_data TEXT);
"""


def usage(i, o, cr=0, cw=0, cost=0.0, model="", start="2026-03-02T10:00:05.123456789Z"):
    return json.dumps({"input_tokens": i, "cache_creation_input_tokens": cw, "cache_read_input_tokens": cr,
                       "output_tokens": o, "cost_usd": cost, "model": model,
                       "url": "https://api.anthropic.com/v1/messages", "start_time": start, "end_time": start})


def make_db(folder):
    folder.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(folder / "shelley.db")
    db.executescript(SCHEMA)
    db.executemany("INSERT INTO conversations (conversation_id, slug, cwd, model, parent_conversation_id) "
                   "VALUES (?,?,?,?,?)", [("cA", "fix-test", "/home/ana/src/shop", "claude-sonnet-4-5", None),
                                          ("cB", "fix-test-fork", "/srv/billing", "claude-sonnet-4-5", None)])
    slug = json.dumps([{"purpose": "slug", **json.loads(usage(200, 10, model="claude-haiku-4-5", cost=0.00025))}])
    rows = [  # (id, conv, seq, type, usage_data, created_at, model_name, forked_from, other_usage_data)
        ("m1", "cA", 1, "user", None, "2026-03-02 10:00:00", None, None, slug),
        ("m2", "cA", 2, "agent", usage(800, 350, cr=12000, cw=2500, cost=0.0206, model="claude-sonnet-4-5"),
         "2026-03-02 10:00:06", "claude-sonnet-4-5", None, None),
        ("m3", "cA", 3, "agent", usage(3000, 500, cr=1000, cost=0.0105, model="gpt-4.1",
                                       start="2026-03-02T10:01:00Z"), "2026-03-02 10:01:01", "gpt-4.1", None, None),
        ("m4", "cA", 4, "agent", '{"input_tokens": 12', "2026-03-02 10:02:00", "gpt-4.1", None, None),
        ("m5", "cA", 5, "agent", usage(4000, 200, model="qwen3-coder-local", start="2026-03-02T10:03:00Z"),
         "2026-03-02 10:03:00", "qwen3-coder-local", None, None),
        # cB forked from cA: its copy of m2 carries the same usage (schema 032)
        ("m6", "cB", 1, "agent", usage(800, 350, cr=12000, cw=2500, cost=0.0206, model="claude-sonnet-4-5"),
         "2026-03-02 11:00:00", "claude-sonnet-4-5", "m2", None),
        ("m7", "cB", 2, "agent", usage(100, 20, model="", start=None), "2026-03-02 11:05:00", None, None, None),
    ]
    db.executemany("INSERT INTO messages (message_id, conversation_id, sequence_id, type, usage_data, created_at, "
                   "model_name, forked_from_message_id, other_usage_data) VALUES (?,?,?,?,?,?,?,?,?)", rows)
    db.commit()
    db.close()
    return folder / "shelley.db"


# claude-sonnet-4-5: 3 / 15 / 0.30 read / 3.75 5m write; gpt-4.1: 2 / 8 / 0.50 read; claude-haiku-4-5: 1 / 5.
SONNET = (800 * 3 + 350 * 15 + 12000 * 0.30 + 2500 * 3.75) / 1e6
GPT = (3000 * 2 + 500 * 8 + 1000 * 0.50) / 1e6
HAIKU = (200 * 1 + 10 * 5) / 1e6
SONNET_B = (100 * 3 + 20 * 15) / 1e6  # m7: no model in the usage or row: the conversation's


def test_by_hand_fork_counts_once(tmp_path, run_json):
    path = make_db(tmp_path / "shelley")
    c = collect(("shelley",), [path])
    got = sorted((e.session_id, e.model, e.project, e.tokens.input, e.tokens.output, e.tokens.cache_read,
                  e.tokens.cache_write_5m, e.agent_cost_usd) for e in c.events)
    assert got == [("cA", "claude-haiku-4-5", "shop", 200, 10, 0, 0, 0.00025),
                   ("cA", "claude-sonnet-4-5", "shop", 800, 350, 12000, 2500, 0.0206),
                   ("cA", "gpt-4.1", "shop", 3000, 500, 1000, 0, 0.0105),
                   ("cA", "qwen3-coder-local", "shop", 4000, 200, 0, 0, 0.0),
                   ("cB", "claude-sonnet-4-5", "billing", 100, 20, 0, 0, 0.0)]
    assert c.stats.skipped["duplicate_call"] == 1  # m6, the fork's copy of m2
    assert c.stats.malformed == 1  # m4's truncated usage
    r = run_json("--path", path)
    assert r["sources"] == ["shelley"]
    assert r["totals"]["cost_usd"] == pytest.approx(SONNET + GPT + HAIKU + SONNET_B, abs=1e-12)
    assert {m["model"]: m["priced"] for m in r["models"]}["qwen3-coder-local"] is False


def test_default_location_override_locked_and_copied(tmp_path, isolated_env, monkeypatch):
    assert shelley.default_paths() == []
    path = make_db(isolated_env / ".config" / "shelley")
    writer = sqlite3.connect(path)
    writer.execute("BEGIN IMMEDIATE")  # Shelley writing: still read, never blocked
    try:
        assert shelley.default_paths() == [path.parent]
        assert len(collect(("shelley",)).events) == 5
    finally:
        writer.rollback()
        writer.close()
    (tmp_path / "copy").mkdir()
    shutil.copy(path, tmp_path / "copy" / "shelley.db")
    c = collect(("shelley",), found={"shelley": shelley.find_files([path.parent, tmp_path / "copy"])})
    assert len(c.events) == 5 and c.stats.skipped["duplicate_call"] == 1 + 6
    monkeypatch.setenv("SHELLEY_DIR", str(tmp_path / "copy"))
    assert shelley.default_paths() == [tmp_path / "copy"]


def test_older_schema_without_fork_and_other_usage_columns(tmp_path):
    db = sqlite3.connect(tmp_path / "shelley.db")
    db.executescript("CREATE TABLE conversations (conversation_id TEXT PRIMARY KEY, cwd TEXT);"
                     "CREATE TABLE messages (message_id TEXT PRIMARY KEY, conversation_id TEXT, sequence_id INTEGER, "
                     "type TEXT, usage_data TEXT, created_at DATETIME);")
    db.execute("INSERT INTO messages VALUES ('x', 'c', 1, 'agent', ?, '2025-12-01 09:00:00')",
               (usage(10, 5, model="gpt-4.1", start=None),))
    db.commit()
    db.close()
    c = collect(("shelley",), [tmp_path / "shelley.db"])
    assert [(e.model, e.tokens.total, e.occurred_at.isoformat()) for e in c.events] == [
        ("gpt-4.1", 15, "2025-12-01T09:00:00+00:00")]
