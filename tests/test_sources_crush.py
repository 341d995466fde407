"""Crush: discovered through projects.json, read read-only, reported as found without token data."""
import json
import sqlite3

from nomira.sources import crush
from nomira.sources.registry import collect

# charmbracelet/crush internal/db/migrations/20250424200609_initial.sql (sessions, messages)
SCHEMA = """
CREATE TABLE sessions (id TEXT PRIMARY KEY, parent_session_id TEXT, title TEXT NOT NULL,
    message_count INTEGER NOT NULL DEFAULT 0 CHECK (message_count >= 0),
    prompt_tokens INTEGER NOT NULL DEFAULT 0 CHECK (prompt_tokens >= 0),
    completion_tokens INTEGER NOT NULL DEFAULT 0 CHECK (completion_tokens >= 0),
    cost REAL NOT NULL DEFAULT 0.0 CHECK (cost >= 0.0), updated_at INTEGER NOT NULL, created_at INTEGER NOT NULL);
CREATE TABLE messages (id TEXT PRIMARY KEY, session_id TEXT NOT NULL, role TEXT NOT NULL,
    parts BLOB NOT NULL default '[]', model TEXT, created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL,
    finished_at INTEGER);
"""


def make_project(isolated_env):
    data = isolated_env / "src" / "shop" / ".crush"
    data.mkdir(parents=True)
    db = sqlite3.connect(data / "crush.db")
    db.executescript(SCHEMA)
    db.executemany("INSERT INTO sessions VALUES (?,?,?,?,?,?,?,?,?)", [
        ("s1", None, "Fix the build", 6, 41000, 900, 0.0812, 1762430400, 1762430000),
        ("s2", None, "New Session", 0, 0, 0, 0.0, 1762430500, 1762430500)])
    db.commit()
    db.close()
    g = isolated_env / ".local" / "share" / "crush"
    g.mkdir(parents=True)
    (g / "projects.json").write_text(json.dumps({"projects": [
        {"path": str(isolated_env / "src" / "shop"), "data_dir": str(data), "last_accessed": "2025-11-06T12:00:00Z"},
        {"path": "/gone", "data_dir": "/gone/.crush", "last_accessed": "2025-10-01T12:00:00Z"}]}))
    return data


def test_found_without_token_data(isolated_env, run_json):
    data = make_project(isolated_env)
    assert crush.default_paths() == [data]
    c = collect(("crush",), env={"HOME": str(isolated_env), "XDG_DATA_HOME": str(isolated_env / ".local/share")})
    assert c.events == [] and c.stats.skipped["no_token_data:crush"] == 1
    r = run_json("--source", "crush")
    assert r["totals"]["calls"] == 0 and r["scan"]["skipped"] == {"no_token_data:crush": 1}
    assert r["found_without_tokens"] == [{"source": "crush", "sessions": 1, "use_instead": crush.NO_TOKEN_DATA}]


def test_text_report_says_what_to_use_instead(isolated_env, capsys):
    from nomira.cli import main
    make_project(isolated_env)
    assert main(["--source", "crush"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "! crush: 1 session found without token data (not priced); Crush keeps no token counts" in out


def test_absent_crush_costs_one_stat(isolated_env):
    assert crush.default_paths() == []
