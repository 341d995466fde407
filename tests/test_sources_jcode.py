"""Jcode: session snapshots and their journals; provider terms applied, repeated messages counted once."""
import shutil

from conftest import FIXTURES
from nomira.sources import jcode
from nomira.sources.registry import collect

JC = FIXTURES / "jcode"

# claude-sonnet-4-5: 3 / 15 / 0.30 read / 3.75 5m write; gpt-5: 1.25 / 10 / 0.125 read (per MTok).
SONNET = ((1200 + 400 + 300 + 350) * 3 + (300 + 120 + 50 + 40) * 15 + (8000 + 9000 + 9500 + 9800) * 0.30
          + (500 + 200) * 3.75) / 1e6
GPT5 = ((10000 - 6000 + 2000) * 1.25 + (800 + 100) * 10 + 6000 * 0.125) / 1e6


def test_by_hand_snapshot_and_journal(run_json):
    c = collect(("jcode",), [JC])
    got = sorted((e.occurred_at.isoformat(), e.session_id, e.model, e.project, e.tokens.input, e.tokens.output,
                  e.tokens.cache_read, e.tokens.cache_write_5m) for e in c.events)
    assert got == [
        ("2025-11-06T09:00:05+00:00", "session_owl_7f3a", "claude-sonnet-4-5", "shop", 1200, 300, 8000, 500),
        ("2025-11-06T09:01:00+00:00", "session_owl_7f3a", "claude-sonnet-4-5", "shop", 400, 120, 9000, 0),
        ("2025-11-06T09:02:00+00:00", "session_owl_7f3a", "claude-sonnet-4-5", "shop", 300, 50, 9500, 200),
        ("2025-11-06T09:04:00+00:00", "session_owl_7f3a", "claude-sonnet-4-5", "shop", 350, 40, 9800, 0),
        # OpenAI's input_tokens hold the cached tokens: taken out
        ("2025-11-07T14:00:00+00:00", "session_fox_21b9", "gpt-5", "billing", 2000, 100, 0, 0),  # no timestamp
        ("2025-11-07T14:00:30+00:00", "session_fox_21b9", "gpt-5", "billing", 4000, 800, 6000, 0)]
    assert c.stats.skipped["duplicate_call"] == 1  # msg_a2, in the snapshot and the journal
    assert c.stats.malformed == 1  # the journal's truncated line
    r = run_json("--path", JC)
    assert r["sources"] == ["jcode"] and r["totals"]["calls"] == 6
    assert abs(r["totals"]["cost_usd"] - (SONNET + GPT5)) < 1e-12


def test_checkpoint_rewrite_counts_once(tmp_path):
    """A checkpoint folds the journal's messages into the rewritten snapshot: each still counts once."""
    import json
    d = tmp_path / "sessions"
    shutil.copytree(JC / "sessions", d)
    snap = json.loads((d / "session_owl_7f3a.json").read_text())
    for line in (d / "session_owl_7f3a.journal.jsonl").read_text().splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        snap["messages"] += [m for m in entry["append_messages"] if m["id"] not in {x["id"] for x in snap["messages"]}]
    (d / "session_owl_7f3a.json").write_text(json.dumps(snap))
    c = collect(("jcode",), [d])
    assert len(c.events) == 6
    assert c.stats.skipped["duplicate_call"] == 3  # a2, a3, a4: in the new snapshot and the old journal


def test_default_location_and_override(isolated_env, tmp_path, monkeypatch):
    assert jcode.default_paths() == []
    shutil.copytree(JC / "sessions", isolated_env / ".jcode" / "sessions")
    assert jcode.default_paths() == [isolated_env / ".jcode" / "sessions"]
    assert len(collect(("jcode",)).events) == 6
    monkeypatch.setenv("JCODE_HOME", str(tmp_path / "jh"))
    assert jcode.default_paths() == []
    shutil.copytree(JC / "sessions", tmp_path / "jh" / "sessions")
    assert jcode.default_paths() == [tmp_path / "jh" / "sessions"]


def test_claims_only_session_files_in_a_sessions_folder():
    assert jcode.claims("session_owl_7f3a.json", "/h/.jcode/sessions")
    assert jcode.claims("session_owl_7f3a.journal.jsonl", "/h/.jcode/sessions")
    assert not jcode.claims("session-2025.json", "/h/.gemini/tmp/x/chats")
    assert not jcode.claims("session_owl.json", "/h/.jcode/logs")
