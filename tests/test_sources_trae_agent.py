"""Trae Agent trajectory JSON (opt-in): per-call usage whose cache reading depends on the client that recorded it
(Anthropic apart, OpenAI and Google inside input); a copied trajectory counts once, a rewritten one replaces its
calls; nothing is read unasked."""
import shutil
from datetime import datetime, timezone

import pytest

from conftest import FIXTURES
from nomira.sources import trae_agent
from nomira.sources.registry import collect

TA = FIXTURES / "trae_agent" / "work"
# claude-sonnet-4-5: 3 / 15 / 0.30 read / 3.75 write; gpt-5: 1.25 / 10 / 0.125 read; gpt-4.1: 2 / 8 (bundled table).
SONNET = (1800 * 3 + 250 * 15 + 3000 * 3.75 + 40 * 3 + 180 * 15 + 500 * 3.75 + 3000 * 0.30) / 1e6
GPT5 = ((5000 - 3500) * 1.25 + 600 * 10 + 3500 * 0.125) / 1e6  # the Responses API's input includes the cached read
GPT41 = (1200 * 2 + 90 * 8) / 1e6  # an OpenAI-compatible client records no cache split: the whole prompt at input rate


def local(ts):
    return datetime.fromisoformat(ts).astimezone().astimezone(timezone.utc)


def test_totals_by_hand(run_json):
    c = collect(("trae_agent",), [TA])
    got = [(e.occurred_at, e.session_id, e.model, e.project, e.tokens.input, e.tokens.output, e.tokens.cache_read,
            e.tokens.cache_write, e.tokens.reasoning) for e in c.events]
    assert got == [
        (local("2026-09-15T10:15:03.123456"), "trajectory_20260915_101500", "claude-sonnet-4-5-20250929", "shop",
         1800, 250, 0, 3000, 0),
        (local("2026-09-15T10:15:09.654321"), "trajectory_20260915_101500", "claude-sonnet-4-5-20250929", "shop",
         40, 180, 3000, 500, 0),
        (local("2026-09-16T09:00:12"), "trajectory_20260916_090000", "gpt-5-2025-08-07", "notes", 1500, 600, 3500, 0, 200),
        (local("2026-09-16T09:00:40"), "trajectory_20260916_090000", "gpt-4.1-2025-04-14", "notes", 1200, 90, 0, 0, 0)]
    assert c.stats.malformed == 1  # the trajectory cut mid-write; the ollama call without usage is no call
    r = run_json("--path", TA)
    assert r["sources"] == ["trae_agent"] and r["totals"]["calls"] == 4
    assert r["totals"]["cost_usd"] == pytest.approx(SONNET + GPT5 + GPT41, abs=1e-12)


def test_opt_in_copy_counts_once_and_rewrite_replaces(isolated_env, monkeypatch, tmp_path):
    assert trae_agent.default_paths() == []  # nothing unasked
    shutil.copytree(TA, tmp_path / "work")
    shutil.copytree(TA / "shop", tmp_path / "backup" / "shop")
    monkeypatch.setenv("NOMIRA_TRAE_AGENT_PATHS", f"{tmp_path / 'work'},{tmp_path / 'backup'}")
    assert trae_agent.default_paths() == [tmp_path / "work", tmp_path / "backup"]
    c = collect(("trae_agent",))
    assert len(c.events) == 4 and c.stats.skipped["duplicate_call"] == 2
    f = tmp_path / "work" / "shop" / "trajectories" / "trajectory_20260915_101500.json"
    f.write_text(f.read_text().replace('"output_tokens": 180', '"output_tokens": 280'))
    monkeypatch.setenv("NOMIRA_TRAE_AGENT_PATHS", str(tmp_path / "work"))
    assert sum(e.tokens.output for e in collect(("trae_agent",)).events) == 250 + 280 + 600 + 90
