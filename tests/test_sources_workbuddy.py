"""WorkBuddy's Agents SDK items: per response, the SDK's Usage (input including cached, output including reasoning);
a response's usage repeated on its function-call item counts once; sub-agents belong to their session."""
import shutil

import pytest

from conftest import FIXTURES
from nomira.sources import workbuddy
from nomira.sources.registry import collect

WB = FIXTURES / "workbuddy" / ".workbuddy"
SID = "7c9e6679-7425-40de-944b-e07fc1f90ae7"
# bundled rates: claude-sonnet-4-20250514 3 / 15 / 0.30 read; deepseek-v4-pro 1.32 / 3.96 / 0.044 read;
# gpt-4.1 2 / 8 / 0.50 read. Input is fresh input: the SDK's inputTokens less its cached_tokens.
C1 = (300 * 3 + 800 * 15 + 1200 * 0.30) / 1e6
C2 = (2000 * 1.32 + 1200 * 3.96) / 1e6
C3 = (300 * 1.32 + 100 * 3.96 + 600 * 0.044) / 1e6  # the sub-agent's call
C4 = (1000 * 2 + 200 * 8 + 4000 * 0.50) / 1e6


def test_calls_by_hand(run_json):
    c = collect(("workbuddy",), [WB])
    got = [(e.session_id, e.model, e.project, e.tokens.input, e.tokens.output, e.tokens.cache_read,
            e.tokens.reasoning, e.tokens.reported_input) for e in c.events]
    assert got == [(SID, "claude-sonnet-4-20250514", "shop", 300, 800, 1200, 10, 1500),
                   (SID, "deepseek-v4-pro", "shop", 300, 100, 600, 0, 900),
                   (SID, "deepseek-v4-pro", "shop", 2000, 1200, 0, 0, 2000),
                   (SID, "gpt-4.1", "shop", 1000, 200, 4000, 0, 5000)]
    assert c.stats.skipped["duplicate_call"] == 1  # the first response's usage, again on its function-call item
    assert c.stats.malformed == 1  # the torn last line
    r = run_json("--path", WB / "projects")
    assert r["sources"] == ["workbuddy"]
    assert r["totals"]["cost_usd"] == pytest.approx(C1 + C2 + C3 + C4, abs=1e-12)


def test_locations(isolated_env, monkeypatch, tmp_path):
    assert workbuddy.default_paths() == []
    shutil.copytree(WB, isolated_env / ".workbuddy")
    assert workbuddy.default_paths() == [isolated_env / ".workbuddy" / "projects"]
    assert len(collect(("workbuddy",)).events) == 4
    assert collect(("claude",)).events == []  # its .jsonl files are not Claude Code's
    monkeypatch.setenv("WORKBUDDY_PROJECTS_DIR", f"{tmp_path},{tmp_path / 'missing'}")
    assert workbuddy.default_paths() == [tmp_path]


def test_copied_session_counts_once_and_cache_above_input_is_disjoint(tmp_path):
    root = tmp_path / ".workbuddy" / "projects"
    shutil.copytree(WB / "projects", root)
    shutil.copytree(root / "Users-ana-WorkBuddy-shop", root / "Users-ana-WorkBuddy-shop-moved")  # the same session twice
    c = collect(("workbuddy",), [tmp_path / ".workbuddy"])
    assert len(c.events) == 4 and c.stats.skipped["duplicate_call"] == 1 + 5  # the copy's 4 calls + each file's repeat
    odd = tmp_path / "odd" / ".workbuddy" / "projects" / "p"
    odd.mkdir(parents=True)
    (odd / "s.jsonl").write_text('{"id":"m","timestamp":1764662400000,"role":"assistant","providerData":{"model":'
                                 '"gpt-4.1","usage":{"inputTokens":100,"outputTokens":10,"inputTokensDetails":'
                                 '[{"cached_tokens":500}]}},"cwd":"/w/x"}\n')
    c = collect(("workbuddy",), [odd])
    assert [(e.tokens.input, e.tokens.cache_read) for e in c.events] == [(100, 500)]
    assert c.stats.skipped["workbuddy_cache_outside_input"] == 1
