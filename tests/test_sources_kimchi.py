"""Kimchi: pi sessions under ~/.config/kimchi/harness; a sub-agent counted once, from its own transcript when it
is there, else from the parent's details.tokenUsage roll-up."""
import shutil

from conftest import FIXTURES
from nomira.sources import kimchi
from nomira.sources.registry import collect

KC = FIXTURES / "kimchi"
DIR = KC / "harness" / "sessions" / "--home-ana-src-shop--"
PARENT = "2025-11-08T10-00-00-000Z_0199a1b2-0000-7000-8000-00000000000a.jsonl"
CHILD = "2025-11-08T10-00-05-000Z_0199a1b2-0005-7000-8000-0000000000c1.jsonl"

# claude-sonnet-4-5: 3 / 15 / 0.30 read / 3.75 5m write; claude-haiku-4-5: 1 / 5 / 0.10 read (per MTok).
SONNET = ((1500 + 300) * 3 + (200 + 80) * 15 + (5000 + 7000) * 0.30 + 800 * 3.75) / 1e6
CHILD1 = ((500 + 400) * 1 + (100 + 50) * 5 + (1000 + 2000) * 0.10) / 1e6  # its transcript, per call
CHILD2 = (400 * 1 + 60 * 5) / 1e6  # no transcript: the parent's roll-up


def test_by_hand_child_transcript_or_rollup_never_both(run_json):
    c = collect(("kimchi",), [KC])
    got = sorted((e.session_id[-2:], e.model, e.tokens.input, e.tokens.output, e.tokens.cache_read,
                  e.tokens.cache_write_5m, e.aggregated) for e in c.events)
    assert got == [("0a", "claude-sonnet-4-5", 300, 80, 7000, 0, False),
                   ("0a", "claude-sonnet-4-5", 1500, 200, 5000, 800, False),
                   ("c1", "claude-haiku-4-5", 400, 50, 2000, 0, False),
                   ("c1", "claude-haiku-4-5", 500, 100, 1000, 0, False),
                   ("c2", "claude-haiku-4-5", 400, 60, 0, 0, True)]  # model from the parent's tool call
    assert c.stats.skipped["kimchi_rollup_child_counted"] == 1  # toolu_01's roll-up: C1's transcript counts
    assert c.stats.malformed == 1  # the parent's truncated last line
    assert {e.project for e in c.events} == {"shop"}
    r = run_json("--path", KC)
    assert r["sources"] == ["kimchi"] and r["totals"]["calls"] == 5
    assert abs(r["totals"]["cost_usd"] - (SONNET + CHILD1 + CHILD2)) < 1e-12


def test_missing_child_transcript_falls_back_to_the_rollup(tmp_path):
    d = tmp_path / "kimchi" / "s"
    d.mkdir(parents=True)
    shutil.copy(DIR / PARENT, d / PARENT)
    c = collect(("kimchi",), [d])
    child1 = [e for e in c.events if e.session_id.endswith("c1")]
    assert [(e.tokens.input, e.tokens.output, e.tokens.cache_read, e.aggregated) for e in child1] == [
        (900, 150, 3000, True)]


def test_forked_parent_copies_count_once(tmp_path):
    """pi's fork copies the parent's entries (ids, timestamps, roll-ups) into a new session file."""
    d = tmp_path / "kimchi" / "sessions"
    shutil.copytree(DIR, d)
    fork = d / "2025-11-08T11-00-00-000Z_0199a1b2-1100-7000-8000-0000000000f0.jsonl"
    fork.write_text((d / PARENT).read_text().replace("0199a1b2-0000-7000-8000-00000000000a",
                                                      "0199a1b2-1100-7000-8000-0000000000f0", 1))
    c = collect(("kimchi",), [d])
    assert len(c.events) == 5 and c.stats.skipped["duplicate_call"] == 3  # two parent calls, C2's roll-up


def test_default_location_and_override(isolated_env, tmp_path, monkeypatch):
    assert kimchi.default_paths() == []
    shutil.copytree(KC / "harness", isolated_env / ".config" / "kimchi" / "harness")
    assert kimchi.default_paths() == [isolated_env / ".config" / "kimchi" / "harness" / "sessions"]
    assert len(collect(("kimchi",)).events) == 5
    monkeypatch.setenv("KIMCHI_CODING_AGENT_DIR", str(tmp_path / "agent"))
    assert kimchi.default_paths() == []  # the override is exclusive
    shutil.copytree(KC / "harness" / "sessions", tmp_path / "agent" / "sessions")
    assert kimchi.default_paths() == [tmp_path / "agent" / "sessions"]
