"""Gajae Code: v5 pi sessions replayed with header_patch/entry_patch; a patched entry counts once; task children
counted from their own transcripts, else from the tool result's roll-up (model unknown: unpriced)."""
import shutil

from conftest import FIXTURES
from nomira.sources import gajae
from nomira.sources.registry import collect

GJC = FIXTURES / "gjc"
SESSIONS = GJC / "agent" / "sessions"

# claude-sonnet-4-5: 3 / 15 / 0.30 read / 3.75 5m write; claude-haiku-4-5: 1 / 5 / 0.10 read (per MTok).
SONNET = ((2000 + 300) * 3 + (400 + 60) * 15 + (10000 + 12000) * 0.30 + 1200 * 3.75) / 1e6
HAIKU = ((400 + 300) * 1 + (70 + 50) * 5 + (1000 + 1000) * 0.10) / 1e6


def test_by_hand_patches_and_task_rollups(run_json):
    c = collect(("gajae",), [GJC])
    got = sorted((e.model, e.project, e.tokens.input, e.tokens.output, e.tokens.cache_read, e.tokens.cache_write_5m,
                  e.tokens.reasoning, e.aggregated) for e in c.events)
    assert got == [("claude-haiku-4-5", "shop", 300, 50, 1000, 0, 0, False),  # 0-Explore's own transcript
                   ("claude-haiku-4-5", "shop", 400, 70, 1000, 0, 0, False),
                   ("claude-sonnet-4-5", "shop", 2000, 400, 10000, 1200, 100, False),  # + its entry_patch: once
                   ("claude-sonnet-4-5", "shop-v2", 300, 60, 12000, 0, 0, False),  # after the header_patch's cwd
                   ("unknown", "shop", 300, 80, 0, 0, 0, True),  # the roll-up beyond the children's sum
                   ("unknown", "shop", 500, 100, 2000, 0, 0, True)]  # 1-Docs: no transcript, its results[].usage
    assert c.stats.skipped["duplicate_call"] == 1  # the entry_patch of c0000003
    assert c.stats.malformed == 1
    r = run_json("--path", GJC)
    assert r["sources"] == ["gajae_code"] and r["totals"]["calls"] == 6
    assert abs(r["totals"]["cost_usd"] - (SONNET + HAIKU)) < 1e-12
    assert [m["model"] for m in r["models"] if not m["priced"]] == ["unknown"]


def test_missing_child_transcript_counts_its_rollup(tmp_path):
    d = tmp_path / ".gjc" / "agent" / "sessions"
    shutil.copytree(SESSIONS, d)
    for f in d.rglob("0-Explore.jsonl"):
        f.unlink()
    c = collect(("gajae",), [d])
    rolled = sorted((e.session_id, e.tokens.input, e.tokens.output) for e in c.events if e.aggregated)
    assert rolled == [("0-Explore", 700, 120), ("0199b2c3-0000-7000-8000-0000000000aa", 300, 80),
                      ("1-Docs", 500, 100)]


def test_forked_session_copies_count_once(tmp_path):
    d = tmp_path / "gjc" / "sessions"
    shutil.copytree(SESSIONS, d)
    src = next(d.rglob("*_0199b2c3-0000-7000-8000-0000000000aa.jsonl"))
    fork = src.with_name("2025-11-09T09-00-00-000Z_0199b2c3-0900-7000-8000-0000000000ff.jsonl")
    fork.write_text(src.read_text().replace('"id":"0199b2c3-0000-7000-8000-0000000000aa"',
                                            '"id":"0199b2c3-0900-7000-8000-0000000000ff","parentSession":'
                                            '"0199b2c3-0000-7000-8000-0000000000aa"', 1))
    c = collect(("gajae",), [d])
    assert len(c.events) == 6
    assert c.stats.skipped["duplicate_call"] == 1 + 5  # the fork's two calls, its entry_patch and two roll-ups


def test_default_locations_and_overrides(isolated_env, tmp_path, monkeypatch):
    assert gajae.default_paths() == []
    shutil.copytree(SESSIONS, isolated_env / ".gjc" / "agent" / "sessions")
    shutil.copytree(SESSIONS, isolated_env / ".local" / "share" / "gjc" / "sessions")  # the migrated data root
    assert gajae.default_paths() == [isolated_env / ".gjc" / "agent" / "sessions",
                                     isolated_env / ".local" / "share" / "gjc" / "sessions"]
    assert len(collect(("gajae",)).events) == 6  # the same sessions in both count once
    monkeypatch.setenv("GJC_CONFIG_DIR", ".gjc-dev")
    assert gajae.default_paths() == [isolated_env / ".local" / "share" / "gjc" / "sessions"]
    monkeypatch.setenv("GJC_CODING_AGENT_DIR", str(tmp_path / "agent"))
    assert gajae.default_paths() == []  # exclusive
