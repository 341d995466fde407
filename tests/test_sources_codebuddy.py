"""CodeBuddy Code's project JSONL (WorkBuddy's layout): message.usage with its own total, rawUsage, items still
streaming skipped, a response's usage repeated on its function-call item counted once."""
import shutil

import pytest

from conftest import FIXTURES
from nomira.sources import codebuddy
from nomira.sources.registry import collect

CB = FIXTURES / "codebuddy" / ".codebuddy"
SID = "3f9a1c2e-8b7d-4e6f-9a0b-1c2d3e4f5a6b"
# claude-sonnet-4-5 3 / 15 / 0.30 read; deepseek-v4-pro 1.32 / 3.96 / 0.044 read; glm-5.2 1.40 / 4.40 (bundled).
C = (9766 * 3 + 300 * 15 + 14720 * 0.30) / 1e6   # 24486 + 300 = 24786 total: the 14720 cached are inside the input
D = (4000 * 1.32 + 200 * 3.96 + 6000 * 0.044) / 1e6  # no total: prompt_tokens include the cache hits (OpenAI's)
G = (1000 * 1.40 + 10 * 4.40) / 1e6


def test_replies_by_hand(run_json):
    c = collect(("codebuddy",), [CB])
    got = [(e.source, e.session_id, e.model, e.project, e.tokens.input, e.tokens.output, e.tokens.cache_read,
            e.tokens.reasoning) for e in c.events]
    assert got == [("codebuddy", SID, "claude-sonnet-4-5", "repo", 9766, 300, 14720, 0),
                   ("codebuddy", SID, "deepseek-v4-pro", "repo", 4000, 200, 6000, 50),
                   ("codebuddy", SID, "glm-5.2", "repo", 1000, 10, 0, 0)]
    assert c.stats.skipped["duplicate_call"] == 1  # msg-1 again on its function call
    assert c.stats.malformed == 1
    r = run_json("--path", CB)
    assert r["sources"] == ["codebuddy"]
    assert r["totals"]["cost_usd"] == pytest.approx(C + D + G, abs=1e-12)


def test_locations_and_copy(isolated_env, monkeypatch, tmp_path):
    assert codebuddy.default_paths() == []
    shutil.copytree(CB, isolated_env / ".codebuddy")
    assert codebuddy.default_paths() == [isolated_env / ".codebuddy" / "projects"]
    shutil.copytree(isolated_env / ".codebuddy" / "projects" / "c-Users-alice-repo",
                    isolated_env / ".codebuddy" / "projects" / "c-Users-alice-repo-old")
    c = collect(("codebuddy",))
    assert len(c.events) == 3 and c.stats.skipped["duplicate_call"] == 1 + 4
    assert collect(("workbuddy",)).events == [] and collect(("claude",)).events == []
    monkeypatch.setenv("CODEBUDDY_DIR", str(tmp_path))
    assert codebuddy.default_paths() == [tmp_path]


def test_mismatching_total_counted(tmp_path):
    d = tmp_path / ".codebuddy" / "projects" / "p"
    d.mkdir(parents=True)
    (d / "s.jsonl").write_text('{"id":"a","timestamp":1780000000100,"type":"message","role":"assistant","status":'
                               '"completed","providerData":{"model":"gpt-4.1","messageId":"m"},"message":{"usage":'
                               '{"input_tokens":100,"output_tokens":10,"total_tokens":999,"cache_read_input_tokens":50}}}\n')
    c = collect(("codebuddy",), [tmp_path / ".codebuddy"])
    assert [(e.tokens.input, e.tokens.cache_read) for e in c.events] == [(100, 50)]  # read as disjoint, counted
    assert c.stats.skipped["codebuddy_total_unmatched"] == 1
