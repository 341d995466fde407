"""Copilot CLI session logs: per-model totals at shutdown, resumed sessions diffed, sessions without tokens."""
import shutil

import pytest

from conftest import FIXTURES
from nomira.sources import copilot
from nomira.sources.registry import collect

CP = FIXTURES / "copilot"
# Bundled rates (USD per MTok): claude-sonnet-4-5 3 in / 15 out / 0.30 read / 3.75 write; gpt-5-mini 0.25 / 0.025 / 2.
S1 = (5000 * 3 + 2000 * 15 + 40000 * 0.30 + 5000 * 3.75) / 1e6   # input 50000 includes 40000 read + 5000 write
M1 = (2000 * 0.25 + 8000 * 0.025 + 1000 * 2.0) / 1e6             # reasoning 400 is inside output 1000
S2 = (4000 * 3 + 1000 * 15 + 25000 * 0.30 + 1000 * 3.75) / 1e6   # the resumed run: second total minus the first


def test_shutdown_metrics_become_per_model_usage():
    evs = collect(("copilot",), [CP]).events
    got = [(e.model, e.tokens.input, e.tokens.cache_read, e.tokens.cache_write_5m, e.tokens.output) for e in evs]
    assert got == [("claude-sonnet-4.5", 5000, 40000, 5000, 2000), ("gpt-5-mini", 2000, 8000, 0, 1000),
                   ("claude-sonnet-4.5", 4000, 25000, 1000, 1000)]
    assert {e.project for e in evs} == {"shop"}


def test_repeat_bad_line_and_session_without_tokens_are_reported():
    c = collect(("copilot",), [CP])
    assert c.stats.skipped["repeated_total"] == 1  # gpt-5-mini unchanged by the resumed run
    assert c.stats.skipped["no_token_data:copilot"] == 1 and c.stats.malformed == 1


def test_totals_by_hand(run_json):
    r = run_json("--path", CP)
    assert r["totals"]["cost_usd"] == pytest.approx(S1 + M1 + S2, abs=1e-12)
    assert r["regime"] == "subscription"


def test_copied_log_counts_once_and_default_location(run_json, isolated_env):
    shutil.copytree(CP / "session-state", isolated_env / ".copilot" / "session-state")
    assert copilot.default_paths() == [isolated_env / ".copilot" / "session-state"]
    c = collect(("copilot",), [CP, isolated_env / ".copilot"])
    assert len(c.events) == 3 and c.stats.skipped["duplicate_call"] == 3
    r = run_json("--source", "copilot", "daily", "--timezone", "UTC")
    assert {d["date"]: round(d["cost_usd"], 9) for d in r["daily"]} == {"2025-11-06": round(S1 + M1, 9),
                                                                         "2025-11-07": round(S2, 9)}
