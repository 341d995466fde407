"""Mistral Vibe meta.json: per-session prompt/completion sums, the active alias's model, Vibe's cost beside."""
import shutil

import pytest

from conftest import FIXTURES
from nomira.sources import vibe
from nomira.sources.registry import collect

VB = FIXTURES / "vibe"
# mistral-medium-latest and mistral-vibe-cli-latest: 1.50 in / 7.50 out per MTok (bundled); no cache split logged.
S1 = (120000 * 1.5 + 4000 * 7.5) / 1e6
S2 = (50000 * 1.5 + 2500 * 7.5) / 1e6


def test_sessions_by_hand(run_json):
    c = collect(("vibe",), [VB])
    got = sorted((e.session_id[:8], e.model, e.project, e.tokens.input, e.tokens.output, e.aggregated,
                  e.agent_cost_usd) for e in c.events)
    assert got == [("7c1d2e3f", "mistral-medium-latest", "shop", 120000, 4000, True, 0.056),
                   ("9e8d7c6b", "mistral-vibe-cli-latest", "billing", 50000, 2500, True, 0.025)]
    assert c.stats.malformed == 1
    assert c.stats.skipped["duplicate_call"] == 1  # the resumed copy of 7c1d2e3f: the most tokens win
    r = run_json("--path", VB)
    assert r["totals"]["cost_usd"] == pytest.approx(S1 + S2, abs=1e-12)


def test_default_location_and_override(isolated_env, tmp_path, monkeypatch):
    shutil.copytree(VB / "logs", isolated_env / ".vibe" / "logs")
    assert vibe.default_paths() == [isolated_env / ".vibe" / "logs" / "session"]
    assert len(collect(("vibe",)).events) == 2
    monkeypatch.setenv("VIBE_HOME", str(tmp_path))
    assert vibe.default_paths() == []
