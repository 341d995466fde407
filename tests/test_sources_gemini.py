"""Gemini CLI chats: JSONL re-writes, legacy JSON + its migrated copy, cached/thoughts/tool tokens."""
import shutil

import pytest

from conftest import FIXTURES
from nomira.sources import gemini
from nomira.sources.registry import collect

GEM = FIXTURES / "gemini"
# Bundled rates (USD per MTok): gemini-2.5-pro 1.25 in / 0.125 cached / 10 out;
# gemini-2.5-flash 0.30 in / 0.03 cached / 2.50 out.
G1 = ((12000 - 8000) * 1.25 + 8000 * 0.125 + (300 + 200) * 10) / 1e6  # prompt includes cached; thoughts are output
G2 = ((5000 + 20) * 0.30 + (100 + 50) * 2.50) / 1e6                    # tool-use prompt tokens are input
L1 = (1000 * 1.25 + 50 * 10) / 1e6


def test_tokens_in_canonical_terms():
    evs = {e.message_id.split(":")[1]: e for e in collect(("gemini",), [GEM]).events}
    g1 = evs["g1"].tokens
    assert (g1.input, g1.cache_read, g1.output, g1.reasoning, g1.reported_input) == (4000, 8000, 500, 200, 12000)
    assert (evs["g2"].tokens.input, evs["g2"].model) == (5020, "gemini-2.5-flash")
    assert {e.project for e in evs.values()} == {"shop"}  # resolved through projects.json


def test_rewrites_and_migrated_copy_count_once_bad_line_counted():
    c = collect(("gemini",), [GEM])
    assert sorted(e.message_id.split(":")[1] for e in c.events) == ["g1", "g2", "l1"]
    assert c.stats.skipped["duplicate_call"] == 1  # the legacy .json and its .jsonl copy
    assert c.stats.malformed == 1


def test_totals_by_hand(run_json):
    r = run_json("--path", GEM)
    assert r["totals"]["cost_usd"] == pytest.approx(G1 + G2 + L1, abs=1e-12)
    assert r["regime"] == "subscription"


def test_default_location_and_source_flag(run_json, isolated_env, monkeypatch):
    shutil.copytree(GEM / ".gemini", isolated_env / "elsewhere" / ".gemini")
    monkeypatch.setenv("GEMINI_CLI_HOME", str(isolated_env / "elsewhere"))
    assert [p.name for p in gemini.default_paths()] == ["tmp"]
    r = run_json("--source", "gemini", "daily", "--timezone", "UTC")
    assert {d["date"]: round(d["cost_usd"], 9) for d in r["daily"]} == {
        "2025-11-04": round(L1, 9), "2025-11-05": round(G1 + G2, 9)}


def test_legacy_hash_folder_resolves(tmp_path):
    import hashlib
    root = tmp_path / ".gemini"
    shutil.copytree(GEM / ".gemini", root)
    chats = root / "tmp" / "shop" / "chats"
    legacy = root / "tmp" / hashlib.sha256(b"/home/ana/src/shop").hexdigest() / "chats"
    legacy.mkdir(parents=True)
    (chats / "session-2025-11-04T09-00-ef567890.json").rename(legacy / "session-2025-11-04T09-00-ef567890.json")
    evs = collect(("gemini",), [root]).events
    assert len(evs) == 3 and {e.project for e in evs} == {"shop"}


def test_appended_lines_resume_with_the_session(tmp_path):
    f = tmp_path / "tmp" / "p" / "chats" / "session-2025-11-05T10-00-abcd1234.jsonl"
    f.parent.mkdir(parents=True)
    shutil.copy(GEM / ".gemini/tmp/shop/chats" / f.name, f)
    recs, state, end, _ = gemini.scan_file(f)
    with open(f, "a") as fh:
        fh.write('{"id":"g4","timestamp":"2025-11-05T11:00:00.000Z","type":"gemini","model":"gemini-2.5-pro",'
                 '"tokens":{"input":10,"output":1,"cached":0,"thoughts":0,"tool":0,"total":11}}\n')
    more, _, _, _ = gemini.scan_file(f, end, state)
    assert len(recs) == 2 and [(r[1], r[5]) for r in more] == [("abcd1234-5e6f-4a0b-9c1d-2e3f4a5b6c7d:g4", 10)]


def test_project_root_file_names_the_workspace(tmp_path):
    root = tmp_path / ".gemini"
    shutil.copytree(GEM / ".gemini", root)
    (root / "tmp" / "shop" / ".project_root").write_text("/home/ana/src/storefront\n")
    assert {e.project for e in collect(("gemini",), [root]).events} == {"storefront"}


def test_messages_carried_by_a_set_update_are_read(tmp_path):
    import json
    f = tmp_path / "tmp" / "p" / "chats" / "session-2025-11-09T10-00-aaaa0000.jsonl"
    f.parent.mkdir(parents=True)
    msg = {"id": "h1", "timestamp": "2025-11-09T10:00:05.000Z", "type": "gemini", "content": [],
           "model": "gemini-2.5-pro", "tokens": {"input": 100, "output": 10, "cached": 0, "thoughts": 0, "tool": 0, "total": 110}}
    f.write_text("\n".join(json.dumps(x) for x in [
        {"sessionId": "aaaa0000-1", "projectHash": "x", "startTime": "2025-11-09T10:00:00.000Z"}, msg,
        {"$set": {"messages": [msg], "lastUpdated": "2025-11-09T10:00:06.000Z"}}]) + "\n")
    c = collect(("gemini",), [f])
    assert [e.message_id for e in c.events] == ["aaaa0000-1:h1"] and c.stats.skipped["duplicate_call"] == 1
