"""Zed Agent threads.db: per-request TokenUsage from the thread JSON, read-only, zstd where a decoder is installed."""
import json
import shutil
import sqlite3

import pytest

from conftest import zstd_compress
from nomira.sources import compressed, zed
from nomira.sources.registry import collect

# zed crates/agent/src/db.rs: the threads table and the columns later migrations added (as tokscale's tests build it)
SCHEMA = """CREATE TABLE threads (id TEXT PRIMARY KEY, summary TEXT NOT NULL, updated_at TEXT NOT NULL,
    data_type TEXT NOT NULL, data BLOB NOT NULL, parent_id TEXT, folder_paths TEXT, folder_paths_order TEXT,
    created_at TEXT);"""
U = {"input_tokens": 0, "output_tokens": 0, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0}


def thread(provider, model, requests, cumulative, imported=False):
    return {"version": "0.3.0", "title": "t", "messages": [], "updated_at": "2025-11-08T00:00:00Z",
            "request_token_usage": requests, "cumulative_token_usage": cumulative,
            "model": {"provider": provider, "model": model}, "imported": imported}


T1 = thread("zed.dev", "claude-sonnet-4-5",
            {"m-1": {**U, "input_tokens": 1200, "output_tokens": 400, "cache_creation_input_tokens": 5000},
             "m-2": {**U, "input_tokens": 300, "output_tokens": 250, "cache_read_input_tokens": 5000}},
            {**U, "input_tokens": 1500, "output_tokens": 650})
T2 = thread("openai", "gpt-4.1", {}, {**U, "input_tokens": 8000, "output_tokens": 600})
# claude-sonnet-4-5: 3 in / 15 out / 0.30 read / 3.75 write; gpt-4.1: 2 in / 8 out.
R1 = (1200 * 3 + 400 * 15 + 5000 * 3.75) / 1e6
R2 = (300 * 3 + 250 * 15 + 5000 * 0.30) / 1e6
AGG = (8000 * 2 + 600 * 8) / 1e6


def make_db(folder):
    folder.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(folder / "threads.db")
    db.execute("PRAGMA journal_mode=WAL")
    db.executescript(SCHEMA)
    rows = [("t1", "x", "2025-11-06T12:00:00Z", "json", json.dumps(T1).encode(), None,
             "/home/ana/src/shop\n/home/ana/src/lib", "1,0", "2025-11-06T09:00:00Z"),
            ("t2", "x", "2025-11-07T10:00:00Z", "json", json.dumps(T2).encode(), None, "/srv/billing", None, None),
            ("t3", "x", "2025-11-07T10:00:00Z", "json", json.dumps(thread("zed.dev", "gpt-4.1", {"a": {
                **U, "input_tokens": 9}}, U, imported=True)).encode(), None, None, None, None),
            ("t4", "x", "2025-11-07T10:00:00Z", "json", b"{\"version\": \"0.3.0\", \"tit", None, None, None, None),
            ("t5", "x", "2025-11-07T10:00:00Z", "zstd", zstd_compress(json.dumps(T2).encode()), None, None, None, None)]
    db.executemany("INSERT INTO threads VALUES (?,?,?,?,?,?,?,?,?)", rows)
    db.commit()
    db.close()
    return folder / "threads.db"


@pytest.mark.parametrize("decoder", [True, False], ids=["zstd_decoder", "no_zstd_decoder"])
def test_threads_by_hand(tmp_path, run_json, decoder, request):
    if not decoder:
        request.getfixturevalue("no_zstd")
    path = make_db(tmp_path / "zed" / "threads")
    c = collect(("zed",), [path])
    got = sorted((e.session_id, e.model, e.project, e.tokens.input, e.tokens.output, e.tokens.cache_read,
                  e.tokens.cache_write_5m, e.aggregated) for e in c.events)
    assert got[:3] == [("t1", "claude-sonnet-4-5", "lib", 300, 250, 5000, 0, False),
                       ("t1", "claude-sonnet-4-5", "lib", 1200, 400, 0, 5000, False),
                       ("t2", "gpt-4.1", "billing", 8000, 600, 0, 0, True)]  # only a cumulative total
    assert c.stats.malformed == 1 and c.stats.skipped["imported_thread"] == 1
    extra = 0.0
    if decoder:
        assert len(c.events) == 4 and compressed.ZSTD_MISSING not in c.stats.skipped
        extra = AGG
    else:
        assert len(c.events) == 3 and c.stats.skipped[compressed.ZSTD_MISSING] == 1
    r = run_json("--path", path)
    assert r["totals"]["cost_usd"] == pytest.approx(R1 + R2 + AGG + extra, abs=1e-12)


def test_read_only_while_zed_writes_and_copy_counts_once(tmp_path, isolated_env):
    path = make_db(isolated_env / ".local" / "share" / "zed" / "threads")
    writer = sqlite3.connect(path)
    writer.execute("BEGIN IMMEDIATE")  # Zed holds a write lock
    try:
        assert zed.default_paths() == [path.parent]
        assert [p.name for p in zed.find_files(zed.default_paths())][0] == "threads.db"
        n = len(collect(("zed",)).events)
        assert n >= 3
    finally:
        writer.rollback()
        writer.close()
    (tmp_path / "copy" / "threads").mkdir(parents=True)
    shutil.copy(path, tmp_path / "copy" / "threads" / "threads.db")
    c = collect(("zed",), [path, tmp_path / "copy" / "threads" / "threads.db"])
    assert len(c.events) == n and c.stats.skipped["duplicate_call"] == n


def test_garbage_db_counted(tmp_path):
    bad = tmp_path / "threads" / "threads.db"
    bad.parent.mkdir()
    bad.write_bytes(b"not sqlite" * 50)
    c = collect(("zed",), [bad])
    assert c.events == [] and any(k.startswith("unreadable_db") for k in c.stats.skipped)


def test_env_override(tmp_path):
    make_db(tmp_path / "a" / "threads")
    assert zed.default_paths({"ZED_DIR": f"{tmp_path / 'a'},{tmp_path / 'b'}"}) == [tmp_path / "a" / "threads"]


def test_json_stored_as_text_is_read(tmp_path):
    path = make_db(tmp_path / "threads")
    db = sqlite3.connect(path)
    db.execute("INSERT INTO threads (id, summary, updated_at, data_type, data) VALUES (?,?,?,?,?)",
               ("t6", "x", "2025-11-08T10:00:00Z", "json", json.dumps(T2)))  # TEXT, not BLOB
    db.commit()
    db.close()
    c = collect(("zed",), [path])
    assert [e.tokens.input for e in c.events if e.session_id == "t6"] == [8000]
