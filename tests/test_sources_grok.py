"""Grok Build updates.jsonl: one ACP usage payload per completed turn, split per model; input includes the
cached reads (a logged total decides); Grok's cost ticks kept beside; re-emitted turns count once; a model
not in the bundled table is unpriced, never guessed."""
import shutil

import pytest

from conftest import FIXTURES
from nomira.sources import grok
from nomira.sources.registry import collect

GR = FIXTURES / "grok"
# xai/grok-4.5: 2 / 6 / 0.30 cache read; xai/grok-code-fast-1: 1 / 2 / 0.20; grok-4.5-build: not in the table
G45 = ((200 + 72 + 300) * 2 + (15 + 50 + 40) * 6 + (1000 + 128) * 0.30) / 1e6
FAST = (100 * 1 + 60 * 2 + 400 * 0.20) / 1e6


def test_by_hand(run_json):
    c = collect(("grok",), [GR])
    got = [(e.session_id[-2:], e.model, e.project, e.tokens.input, e.tokens.output, e.tokens.cache_read,
            e.tokens.reasoning, e.agent_cost_usd) for e in c.events]
    assert got[:4] == [("a1", "grok-4.5", "ledger", 1200 - 1000, 15, 1000, 0, None),  # p-aaa re-emitted: once
                       ("a1", "grok-4.5", "ledger", 200 - 128, 20 + 30, 128, 30, None),  # 250 = 200 + 20 + 30
                       ("a1", "grok-4.5-build", "ledger", 50, 5, 0, 0, pytest.approx(1500000 / 1e10)),
                       ("a1", "grok-4.5", "ledger", 300, 40, 0, 0, pytest.approx(42412800 / 1e10))]  # no modelUsage
    assert got[4] == ("b2", "grok-code-fast-1", "ledger", 500 - 400, 60, 400, 0, None)  # no summary: folder's cwd
    assert c.stats.malformed == 1 and c.stats.skipped["duplicate_call"] == 1
    r = run_json("--path", GR)
    assert r["sources"] == ["grok"] and r["totals"]["calls"] == 5
    assert r["totals"]["cost_usd"] == pytest.approx(G45 + FAST, abs=1e-12)
    assert [m["model"] for m in r["models"] if not m["priced"]] == ["grok-4.5-build"]


def test_default_location_resume_and_copy_once(isolated_env, monkeypatch, tmp_path):
    assert grok.default_paths() == []
    shutil.copytree(GR / ".grok", isolated_env / ".grok")
    assert grok.default_paths() == [isolated_env / ".grok" / "sessions"]
    assert len(collect(("grok",)).events) == 5
    shutil.copytree(GR / ".grok" / "sessions", tmp_path / "backup")
    monkeypatch.setenv("GROK_DIR", f"{isolated_env / '.grok' / 'sessions'},{tmp_path / 'backup'}")
    c = collect(("grok",))
    assert len(c.events) == 5 and c.stats.skipped["duplicate_call"] == 1 + 6
    # an appended log resumes where the last scan stopped, with the session's state (model, turn ordinal)
    src = sorted(grok.find_files([tmp_path / "backup"]))[0]
    data = src.read_bytes()
    cut = data.index(b'{"timestamp": 1784368900')
    live = tmp_path / "live" / src.parent.parent.name / src.parent.name
    live.mkdir(parents=True)
    shutil.copy(src.parent / "summary.json", live)
    (live / "updates.jsonl").write_bytes(data[:cut])
    recs, state, end, _ = grok.scan_file(live / "updates.jsonl")
    (live / "updates.jsonl").write_bytes(data)
    more, _state, _end, _ = grok.scan_file(live / "updates.jsonl", end, state)
    assert recs + more == grok.scan_file(src)[0]
