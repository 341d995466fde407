"""ZCode db.sqlite model_usage: each row's computed total decides whether input includes the cache."""
import shutil
import sqlite3

import pytest

from nomira.sources import zcode
from nomira.sources.registry import collect

# The tables agentsview's zcode.go reads (session, model_usage), with the columns it selects.
SCHEMA = """
CREATE TABLE session (id TEXT PRIMARY KEY, directory TEXT, title TEXT, time_created TEXT, time_updated TEXT);
CREATE TABLE model_usage (id INTEGER PRIMARY KEY, session_id TEXT, turn_id INTEGER, provider_id INTEGER,
    model_id TEXT, status TEXT, input_tokens INTEGER, output_tokens INTEGER, reasoning_tokens INTEGER,
    cache_creation_input_tokens INTEGER, cache_read_input_tokens INTEGER, computed_total_tokens INTEGER,
    started_at TEXT, completed_at TEXT, duration_ms INTEGER, tool_call_count INTEGER);
"""
ROWS = [  # session, turn, model, in, out, reasoning, cache write, cache read, total, started, completed
    ("s1", 1, "glm-4.6", 1000, 200, 0, 0, 3000, 4200, "2026-04-01T09:00:00Z", "2026-04-01T09:00:04Z"),  # disjoint
    ("s1", 2, "glm-4.6", 5000, 100, 0, 0, 4000, 5100, "2026-04-01T09:01:00Z", "1775034064000"),  # cache inside input
    ("s1", 3, "glm-4.6", 10, 20, 5, 0, 0, 35, "2026-04-01T09:02:00Z", None),  # reasoning beside output
    ("s1", 4, "glm-4.6", 100, 10, 0, 0, 50, 999, "2026-04-01T09:03:00Z", None),  # total matches no reading
    ("s2", 1, "zcode-internal-router", 300, 30, 0, 0, 0, 330, "2026-04-02T10:00:00Z", None),  # not in the table
    ("s2", 2, "glm-4.6", 70, 7, 0, 0, 0, 77, "yesterday", "soon"),  # no readable time: counted, skipped
]


def make_db(folder):
    folder.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(folder / "db.sqlite")
    db.executescript(SCHEMA)
    db.executemany("INSERT INTO session VALUES (?,?,?,?,?)",
                   [("s1", "/home/ana/src/shop", "fix", "2026-04-01T08:59:00Z", "2026-04-01T09:03:00Z"),
                    ("s2", "/srv/billing", "plan", None, None)])
    db.executemany("INSERT INTO model_usage (session_id, turn_id, provider_id, model_id, status, input_tokens, "
                   "output_tokens, reasoning_tokens, cache_creation_input_tokens, cache_read_input_tokens, "
                   "computed_total_tokens, started_at, completed_at, duration_ms, tool_call_count) "
                   "VALUES (?,?,1,?,'completed',?,?,?,?,?,?,?,?,900,1)", ROWS)
    db.commit()
    db.close()
    return folder / "db.sqlite"


# glm-4.6 (bundled): 0.60 in / 2.20 out / 0.11 cache read per MTok.
R1 = (1000 * 0.6 + 200 * 2.2 + 3000 * 0.11) / 1e6
R2 = (1000 * 0.6 + 100 * 2.2 + 4000 * 0.11) / 1e6
R3 = (10 * 0.6 + 25 * 2.2) / 1e6
R4 = (100 * 0.6 + 10 * 2.2 + 50 * 0.11) / 1e6


def test_rows_by_hand(tmp_path, run_json):
    path = make_db(tmp_path / ".zcode" / "cli" / "db")
    c = collect(("zcode",), [path])
    got = [(e.session_id, e.model, e.project, e.tokens.input, e.tokens.output, e.tokens.cache_read)
           for e in c.events]
    assert got == [("s1", "glm-4.6", "shop", 1000, 200, 3000), ("s1", "glm-4.6", "shop", 1000, 100, 4000),
                   ("s1", "glm-4.6", "shop", 10, 25, 0), ("s1", "glm-4.6", "shop", 100, 10, 50),
                   ("s2", "zcode-internal-router", "billing", 300, 30, 0)]
    assert c.stats.skipped["zcode_total_unmatched"] == 1 and c.stats.skipped["no_timestamp"] == 1
    r = run_json("--path", path)
    assert r["sources"] == ["zcode"]
    assert r["totals"]["cost_usd"] == pytest.approx(R1 + R2 + R3 + R4, abs=1e-12)
    assert {m["model"]: m["priced"] for m in r["models"]}["zcode-internal-router"] is False


def test_default_location_override_copy_and_garbage(tmp_path, isolated_env, monkeypatch):
    assert zcode.default_paths() == []
    path = make_db(isolated_env / ".zcode" / "cli" / "db")
    assert zcode.default_paths() == [path.parent]
    assert len(collect(("zcode",)).events) == 5
    (tmp_path / "copy" / "db").mkdir(parents=True)
    shutil.copy(path, tmp_path / "copy" / "db" / "db.sqlite")
    c = collect(("zcode",), found={"zcode": zcode.find_files([path.parent, tmp_path / "copy" / "db"])})
    assert len(c.events) == 5 and c.stats.skipped["duplicate_call"] == 5
    monkeypatch.setenv("ZCODE_DIR", str(tmp_path / "copy"))  # agentsview's rule: the root's db/ folder
    assert zcode.default_paths() == [tmp_path / "copy" / "db"]
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "db.sqlite").write_bytes(b"not a database" * 50)
    c = collect(("zcode",), found={"zcode": [tmp_path / "bad" / "db.sqlite"]})
    assert c.events == [] and any(k.startswith("unreadable_db") for k in c.stats.skipped)
