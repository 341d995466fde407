"""Pi sessions: normalised usage with pi's own cost, forked sessions counted once."""
import shutil

import pytest

from conftest import FIXTURES
from nomira.sources import pi
from nomira.sources.registry import collect

PI = FIXTURES / "pi"
# Bundled rates (USD per MTok): claude-sonnet-4-5 3 / 15 / read 0.30 / write 3.75; gpt-5 1.25 / cached 0.125 / 10.
A1 = (12 * 3 + 400 * 15 + 20000 * 0.30 + 3000 * 3.75) / 1e6
A2 = (2000 * 1.25 + 6000 * 0.125 + 700 * 10) / 1e6  # pi's `input` is already the cache-miss part


def test_calls_project_and_agent_cost():
    c = collect(("pi",), [PI])
    got = [(e.model, e.provider, e.project, e.tokens.input, e.tokens.cache_read, e.agent_cost_usd) for e in c.events]
    assert got == [("claude-sonnet-4-5", "anthropic", "shop", 12, 20000, 0.023286),
                   ("gpt-5", "openai", "shop", 2000, 6000, 0.01025)]
    assert c.stats.skipped["duplicate_call"] == 1 and c.stats.malformed == 1  # the fork's copy; the cut line


def test_totals_by_hand_equal_pis_own(run_json):
    r = run_json("--path", PI)
    assert r["totals"]["cost_usd"] == pytest.approx(A1 + A2, abs=1e-12)
    assert sum(m["agent_cost_usd"] for m in r["models"]) == pytest.approx(A1 + A2, abs=1e-12)
    assert r["regime"] == "api"


def test_locations(isolated_env, monkeypatch, run_json):
    shutil.copytree(PI / "sessions", isolated_env / ".pi" / "agent" / "sessions")
    assert pi.default_paths() == [isolated_env / ".pi" / "agent" / "sessions"]
    assert len(run_json("--source", "pi")["sessions"]) == 1
    monkeypatch.setenv("PI_CODING_AGENT_DIR", str(isolated_env / "nowhere"))
    assert pi.default_paths() == []
