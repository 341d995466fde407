"""Kilo CLI kilo.db: OpenCode's store under Kilo's name; per-step usage, Kilo's own cost beside."""
import json
import shutil
import sqlite3

import pytest

from nomira.sources import kilo
from nomira.sources.registry import collect

# OpenCode's tables (packages/opencode session schema), which Kilo CLI keeps as they are.
SCHEMA = """
CREATE TABLE session (id TEXT PRIMARY KEY, project_id TEXT, parent_id TEXT, slug TEXT, directory TEXT, title TEXT,
    version TEXT, time_created INTEGER, time_updated INTEGER);
CREATE TABLE message (id TEXT PRIMARY KEY, session_id TEXT, time_created INTEGER, time_updated INTEGER, data TEXT);
CREATE TABLE part (id TEXT PRIMARY KEY, message_id TEXT, session_id TEXT, time_created INTEGER, time_updated INTEGER,
    data TEXT);
"""


def msg(model, provider, created, tokens, cost, cwd="/home/ana/src/shop"):
    return json.dumps({"role": "assistant", "time": {"created": created, "completed": created + 4000},
                       "parentID": "msg_u", "modelID": model, "providerID": provider, "mode": "code", "agent": "code",
                       "path": {"cwd": cwd, "root": cwd}, "cost": cost, "tokens": tokens, "finish": "stop"})


def tok(i, o, r=0, cr=0, cw=0):
    return {"input": i, "output": o, "reasoning": r, "cache": {"read": cr, "write": cw}}


def make_db(folder, name="kilo.db"):
    folder.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(folder / name)
    db.executescript(SCHEMA)
    db.executemany("INSERT INTO message VALUES (?,?,?,?,?)", [
        # two API requests (step-finish parts); the message's own tokens are only the last step
        ("msg_K1", "ses_K", 0, 0, msg("anthropic/claude-sonnet-4.5", "kilo", 1762416000000, tok(40, 300, cr=9000),
                                      0.0412)),
        ("msg_K2", "ses_K", 0, 0, msg("gpt-4.1", "openai", 1762502400000, tok(5000, 700, cr=2000), 0.0161,
                                      cwd="/srv/billing")),
        ("msg_K3", "ses_K", 0, 0, msg("kilo/unknown-free-model", "kilo", 1762502500000, tok(100, 10), 0.0)),
        ("msg_K4", "ses_K", 0, 0, '{"role": "assistant", "time": {"crea'),
    ])
    db.executemany("INSERT INTO part VALUES (?,?,?,?,?,?)", [
        ("prt_1", "msg_K1", "ses_K", 0, 0, json.dumps({"type": "step-finish", "reason": "tool-calls", "cost": 0.0225,
                                                       "tokens": tok(1200, 450, cw=4000)})),
        ("prt_2", "msg_K1", "ses_K", 0, 0, json.dumps({"type": "step-finish", "reason": "stop", "cost": 0.0187,
                                                       "tokens": tok(40, 300, cr=9000)})),
        ("prt_3", "msg_K1", "ses_K", 0, 0, json.dumps({"type": "text", "text": "done"})),
    ])
    db.commit()
    db.close()
    return folder / name


# claude-sonnet-4-5: 3 in / 15 out / 0.30 read / 3.75 write; gpt-4.1: 2 in / 8 out / 0.50 read.
S1 = (1200 * 3 + 450 * 15 + 4000 * 3.75) / 1e6
S2 = (40 * 3 + 300 * 15 + 9000 * 0.30) / 1e6
G = (5000 * 2 + 700 * 8 + 2000 * 0.50) / 1e6


def test_steps_by_hand_with_kilo_cost(tmp_path, run_json):
    path = make_db(tmp_path / "kilo")
    c = collect(("kilo",), [path])
    got = [(e.model, e.project, e.tokens.input, e.tokens.output, e.tokens.cache_read, e.tokens.cache_write_5m,
            e.agent_cost_usd) for e in c.events]
    assert got == [("anthropic/claude-sonnet-4.5", "shop", 1200, 450, 0, 4000, 0.0225),
                   ("anthropic/claude-sonnet-4.5", "shop", 40, 300, 9000, 0, 0.0187),
                   ("gpt-4.1", "billing", 5000, 700, 2000, 0, 0.0161),
                   ("kilo/unknown-free-model", "shop", 100, 10, 0, 0, 0.0)]
    assert c.stats.malformed == 1
    r = run_json("--path", path)
    assert r["totals"]["cost_usd"] == pytest.approx(S1 + S2 + G, abs=1e-12)
    assert {m["model"]: m["priced"] for m in r["models"]}["kilo/unknown-free-model"] is False


def test_default_location_read_only_and_copy_counts_once(tmp_path, isolated_env):
    path = make_db(isolated_env / ".local" / "share" / "kilo")
    writer = sqlite3.connect(path)
    writer.execute("BEGIN IMMEDIATE")
    try:
        assert kilo.default_paths() == [path.parent]
        assert len(collect(("kilo",)).events) == 4
    finally:
        writer.rollback()
        writer.close()
    shutil.copy(path, tmp_path / "kilo.db")
    c = collect(("kilo",), [path, tmp_path / "kilo.db"])
    assert len(c.events) == 4 and c.stats.skipped["duplicate_call"] == 4


def test_garbage_db_counted(tmp_path):
    (tmp_path / "kilo.db").write_bytes(b"nope" * 100)
    c = collect(("kilo",), [tmp_path / "kilo.db"])
    assert c.events == [] and any(k.startswith("unreadable_db") for k in c.stats.skipped)
