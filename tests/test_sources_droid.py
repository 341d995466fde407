"""Factory Droid: per-session totals in <uuid>.settings.json, BYOK model names, project from session_start."""
import shutil

import pytest

from conftest import FIXTURES
from nomira.sources import droid
from nomira.sources.registry import collect

DR = FIXTURES / "droid"
# Bundled rates (USD per MTok): claude-sonnet-4-5 3 / 15 / read 0.30 / write 3.75; gpt-4.1 2 / 8.
S1 = (3000 * 3 + (2000 + 500) * 15 + 10000 * 3.75 + 150000 * 0.30) / 1e6  # thinking counted on top of output
S2 = (5000 * 2 + 1000 * 8) / 1e6


def test_sessions_models_projects():
    c = collect(("droid",), [DR])
    got = {e.session_id[:4]: (e.model, e.project, e.tokens.input, e.tokens.output, e.tokens.reasoning)
           for e in c.events}
    assert got == {"3c1d": ("claude-sonnet-4-5-20250929", "shop", 3000, 2500, 500),
                   "9e8d": ("GPT-4.1", "unknown", 5000, 1000, 0)}
    assert c.stats.malformed == 1


def test_totals_by_hand(run_json):
    r = run_json("--path", DR)
    assert r["totals"]["cost_usd"] == pytest.approx(S1 + S2, abs=1e-12)
    assert r["regime"] == "subscription"


def test_copy_counts_once_and_default_location(run_json, isolated_env, tmp_path):
    shutil.copytree(DR / "sessions", isolated_env / ".factory" / "sessions")
    shutil.copytree(DR / "sessions", tmp_path / "backup" / "sessions")
    assert droid.default_paths() == [isolated_env / ".factory" / "sessions"]
    c = collect(("droid",), [isolated_env / ".factory", tmp_path / "backup"])
    assert len(c.events) == 2 and c.stats.skipped["duplicate_call"] == 2
    r = run_json("--source", "droid", "daily", "--timezone", "UTC")
    assert {d["date"]: round(d["cost_usd"], 9) for d in r["daily"]} == {"2025-11-06": round(S1, 9),
                                                                         "2025-11-07": round(S2, 9)}


def test_model_names():
    assert droid.model_name("custom:GLM-4.6-[Fireworks]") == "GLM-4.6"
    assert droid.model_name("claude-opus-4-5-20251101") == "claude-opus-4-5-20251101"


def test_a_session_total_above_200k_is_not_a_long_context_request():
    """The tokens are a session's, summed over many requests that were each under 200k."""
    from nomira.pricing.engine import price_event
    from nomira.pricing.table import load_bundled
    from nomira.sources import calls
    rec = calls.record("droid", "2025-11-06T11:00:00+00:00", "s", "s", "claude-sonnet-4-5-20250929", input=3000,
                       output=2000, cache_read=250000, aggregated=True)
    cost = price_event(calls.to_event(rec), load_bundled())
    assert cost.total_usd == pytest.approx((3000 * 3 + 2000 * 15 + 250000 * 0.30) / 1e6)
