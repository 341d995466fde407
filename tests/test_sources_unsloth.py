"""Unsloth Studio studio.db: local replies at $0 with the reason, external ones priced; a fork's clones count once."""
import json
import sqlite3

from nomira.reports.local_models import REASON
from nomira.sources import unsloth
from nomira.sources.registry import collect

# unslothai/unsloth studio/backend/storage/studio_db.py (commit 015bdef): the three tables read here.
SCHEMA = """
CREATE TABLE IF NOT EXISTS chat_projects (id TEXT NOT NULL PRIMARY KEY, name TEXT NOT NULL, instructions TEXT,
    root_path TEXT, archived INTEGER NOT NULL DEFAULT 0, created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS chat_threads (id TEXT NOT NULL PRIMARY KEY, title TEXT NOT NULL, model_type TEXT NOT NULL,
    model_id TEXT, pair_id TEXT, project_id TEXT, archived INTEGER NOT NULL DEFAULT 0, created_at INTEGER NOT NULL,
    updated_at INTEGER, openai_code_exec_container_id TEXT, anthropic_code_exec_container_id TEXT,
    forked_from_thread_id TEXT, forked_from_message_id TEXT, settings_json TEXT, settings_seqs TEXT,
    FOREIGN KEY(project_id) REFERENCES chat_projects(id) ON DELETE CASCADE);
CREATE TABLE IF NOT EXISTS chat_messages (id TEXT NOT NULL PRIMARY KEY,
    thread_id TEXT NOT NULL REFERENCES chat_threads(id) ON DELETE CASCADE, parent_id TEXT, role TEXT NOT NULL,
    content_json TEXT NOT NULL, attachments_json TEXT, metadata_json TEXT, created_at INTEGER NOT NULL);
"""
T0 = 1762419600000  # 2025-11-06T09:00:00Z


def local_meta(prompt_n, predicted_n, cache_n, model="unsloth/Qwen3-8B-GGUF"):
    """A llama-server reply without a usage chunk: serverTimings and the adapter's timing only."""
    return {"serverTimings": {"prompt_n": prompt_n, "predicted_n": predicted_n, "cache_n": cache_n,
                              "prompt_ms": 120.5, "predicted_per_second": 41.2},
            "timing": {"tokenCount": predicted_n, "tokensPerSecond": 41.2},
            "responseDetails": {"modelId": model, "responseModelId": model, "providerName": "Local model",
                                "providerType": "local", "startedAt": T0, "finishedAt": T0 + 900}}


def external_meta(prompt, completion, cached, write, model, requested=None):
    return {"contextUsage": {"promptTokens": prompt, "completionTokens": completion, "totalTokens": prompt + completion,
                             "cachedTokens": cached, "cacheWriteTokens": write, "modelId": requested or model},
            "responseDetails": {"modelId": requested or model, "responseModelId": model,
                                "providerName": "Anthropic", "providerType": "anthropic"}}


def make_db(folder):
    folder.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(folder / "studio.db")
    db.executescript(SCHEMA)
    db.execute("INSERT INTO chat_projects (id, name, root_path, created_at, updated_at) VALUES "
               "('p1', 'shop', '/home/ana/src/shop', ?, ?)", (T0, T0))
    db.executemany("INSERT INTO chat_threads (id, title, model_type, model_id, pair_id, project_id, created_at, "
                   "forked_from_thread_id) VALUES (?,?,?,?,?,?,?,?)", [
                       ("tA", "local chat", "base", "unsloth/Qwen3-8B-GGUF", None, "p1", T0, None),
                       ("tB", "ask claude", "base", "claude-sonnet-4-5", None, None, T0, None),
                       # tC forked from tA after its two replies: both cloned with their original created_at
                       ("tC", "local chat (fork)", "base", "unsloth/Qwen3-8B-GGUF", None, "p1", T0 + 600_000, "tA"),
                       # tD forked from tC: clones of tA's first reply again (a fork of a fork)
                       ("tD", "fork of fork", "base", "unsloth/Qwen3-8B-GGUF", None, "p1", T0 + 900_000, "tC")])
    rows = [  # (id, thread, role, metadata, created_at)
        ("a1", "tA", "user", None, T0 + 1_000),
        ("a2", "tA", "assistant", local_meta(512, 230, 0), T0 + 5_000),
        ("a3", "tA", "assistant", local_meta(130, 400, 742), T0 + 60_000),
        ("b1", "tB", "assistant", external_meta(14_300, 350, 12_000, 1_500, "claude-sonnet-4-5-20250929",
                                                "claude-sonnet-4-5"), T0 + 120_000),
        ("b2", "tB", "assistant", '{"contextUsage": {"promptTokens": 12', T0 + 180_000),  # truncated
        ("c2", "tC", "assistant", local_meta(512, 230, 0), T0 + 5_000),  # clone of a2
        ("c3", "tC", "assistant", local_meta(130, 400, 742), T0 + 60_000),  # clone of a3
        ("c4", "tC", "assistant", local_meta(900, 80, 1_372), T0 + 700_000),  # the fork's own reply
        ("d2", "tD", "assistant", local_meta(512, 230, 0), T0 + 5_000),  # clone of a2 via tC
    ]
    db.executemany("INSERT INTO chat_messages (id, thread_id, role, content_json, metadata_json, created_at) "
                   "VALUES (?,?,?,?,?,?)",
                   [(i, t, r, "[]", m if isinstance(m, str) or m is None else json.dumps(m), ts)
                    for i, t, r, m, ts in rows])
    db.commit()
    db.close()
    return folder / "studio.db"


# claude-sonnet-4-5: 3 / 15 / 0.30 read / 3.75 5m write per MTok; prompt 14,300 includes the 12,000 + 1,500 cache.
SONNET = ((14_300 - 12_000 - 1_500) * 3 + 350 * 15 + 12_000 * 0.30 + 1_500 * 3.75) / 1e6


def test_by_hand_local_at_zero_fork_clones_once(tmp_path, run_json):
    path = make_db(tmp_path / ".unsloth" / "studio")
    c = collect(("unsloth",), [path])
    got = sorted((e.session_id, e.model, e.provider, e.project, e.tokens.input, e.tokens.output,
                  e.tokens.cache_read, e.tokens.cache_write_5m) for e in c.events)
    assert got == [("tA", "unsloth/Qwen3-8B-GGUF", "local", "shop", 130, 400, 742, 0),
                   ("tA", "unsloth/Qwen3-8B-GGUF", "local", "shop", 512, 230, 0, 0),
                   ("tB", "claude-sonnet-4-5-20250929", "anthropic", "unknown", 800, 350, 12_000, 1_500),
                   ("tC", "unsloth/Qwen3-8B-GGUF", "local", "shop", 900, 80, 1_372, 0)]
    assert c.stats.skipped["duplicate_call"] == 3  # c2, c3, d2: the forks' clones
    assert c.stats.malformed == 1  # b2
    r = run_json("--path", path)
    assert r["sources"] == ["unsloth_studio"]
    assert r["totals"]["calls"] == 4
    assert abs(r["totals"]["cost_usd"] - SONNET) < 1e-12
    local = [m for m in r["models"] if m["provider"] == "local"]
    assert local and all(m["cost_usd"] == 0 and m["rate_source"] == REASON for m in local)


def test_deleted_original_still_counted_once_through_its_clones(tmp_path):
    path = make_db(tmp_path / "studio")
    db = sqlite3.connect(path)
    db.execute("DELETE FROM chat_messages WHERE thread_id = 'tA'")
    db.commit()
    db.close()
    c = collect(("unsloth",), [path])
    assert sorted((e.tokens.input, e.tokens.output) for e in c.events if e.provider == "local") == [
        (130, 400), (512, 230), (900, 80)]
    assert c.stats.skipped["duplicate_call"] == 1  # d2, tD's clone of tC's clone


def test_default_location_and_overrides(isolated_env, tmp_path, monkeypatch):
    assert unsloth.default_paths() == []
    make_db(isolated_env / ".unsloth" / "studio")
    assert unsloth.default_paths() == [isolated_env / ".unsloth" / "studio"]
    make_db(tmp_path / "custom")
    monkeypatch.setenv("STUDIO_HOME", str(tmp_path / "custom"))
    assert unsloth.default_paths() == [tmp_path / "custom"]
    monkeypatch.setenv("UNSLOTH_STUDIO_HOME", str(tmp_path / "nowhere"))  # the specific one wins
    assert unsloth.default_paths() == []
    monkeypatch.delenv("UNSLOTH_STUDIO_HOME")
    assert len(collect(("unsloth",)).events) == 4


def test_not_a_studio_db_is_counted(tmp_path):
    (tmp_path / "studio").mkdir()
    sqlite3.connect(tmp_path / "studio" / "studio.db").execute("CREATE TABLE other (x)").connection.close()
    c = collect(("unsloth",), [tmp_path / "studio" / "studio.db"])
    assert c.events == [] and c.stats.skipped == {"not_a_unsloth_studio_db": 1}
