"""Aside browser: flat per-response usage records; a response id counts once across copies and accounts."""
import shutil

import pytest

from conftest import FIXTURES
from nomira.sources import aside
from nomira.sources.registry import collect

AS = FIXTURES / "aside"

# gpt-4.1: 2 / 8 / 0.50 read; claude-sonnet-4-5: 3 / 15 / 0.30 read / 3.75 5m write (per MTok); aside-fast unpriced.
GPT = (2400 * 2 + 350 * 8 + 1200 * 0.50 + 2 * (500 * 2 + 40 * 8)) / 1e6
SONNET = (900 * 3 + 600 * 15 + 8000 * 0.30 + 1000 * 3.75) / 1e6


def test_by_hand_responses_once(run_json):
    c = collect(("aside",), [AS])
    got = sorted((e.session_id, e.model, e.tokens.input, e.tokens.output, e.tokens.cache_read, e.tokens.cache_write_5m,
                  e.tokens.reasoning, e.agent_cost_usd) for e in c.events)
    assert got == [("0/s-7f2a", "claude-sonnet-4-5", 900, 600, 8000, 1000, 200, None),  # cost 0: not Aside's figure
                   ("0/s-7f2a", "gpt-4.1", 500, 40, 0, 0, 0, None),  # two id-less responses: both count
                   ("0/s-7f2a", "gpt-4.1", 500, 40, 0, 0, 0, None),
                   ("0/s-7f2a", "gpt-4.1", 2400, 350, 1200, 0, 0, 0.008),
                   ("1/s-91bc", "aside-fast", 100, 20, 0, 0, 0, None)]
    assert c.stats.skipped["duplicate_call"] == 2  # resp_01 repeated, and again under account 1
    assert c.stats.malformed == 1
    r = run_json("--path", AS)
    assert r["sources"] == ["aside"] and r["totals"]["calls"] == 5
    assert r["totals"]["cost_usd"] == pytest.approx(GPT + SONNET, abs=1e-12)
    assert [m["model"] for m in r["models"] if not m["priced"]] == ["aside-fast"]


def test_default_location_and_override(isolated_env, tmp_path, monkeypatch):
    assert aside.default_paths() == []
    shutil.copytree(AS, isolated_env / ".aside")
    assert aside.default_paths() == [isolated_env / ".aside" / "u"]
    assert len(collect(("aside",)).events) == 5
    monkeypatch.setenv("ASIDE_DIR", str(tmp_path / "a"))
    assert aside.default_paths() == []
    shutil.copytree(AS, tmp_path / "a")
    assert aside.default_paths() == [tmp_path / "a" / "u"]


def test_claims_only_the_account_session_layout():
    assert aside.claims("messages.jsonl", "/h/.aside/u/0/sessions/s1")
    assert not aside.claims("messages.jsonl", "/h/project/logs")
