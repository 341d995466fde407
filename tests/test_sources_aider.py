"""Aider's Markdown chat history (opt-in): rounded token lines, the run's model and start, Aider's own cost."""
import shutil

import pytest

from conftest import FIXTURES
from nomira.sources import aider
from nomira.sources.registry import collect

AI = FIXTURES / "aider"
# claude-sonnet-4-5: 3 in / 15 out / 0.30 read / 3.75 write; gpt-4.1: 2 in / 8 out. "sent" includes the cache figures.
R1 = ((4200 - 3000) * 3 + 512 * 15 + 3000 * 3.75) / 1e6
R2 = ((12000 - 1500 - 9000) * 3 + 1100 * 15 + 9000 * 0.30 + 1500 * 3.75) / 1e6
G1 = (2345 * 2 + 678 * 8) / 1e6


@pytest.fixture(autouse=True)
def utc(local_utc):
    """The history's times are local."""


def test_replies_by_hand(run_json):
    c = collect(("aider",), [AI])
    got = [(e.occurred_at.isoformat(), e.model, e.project, e.tokens.input, e.tokens.output, e.tokens.cache_read,
            e.tokens.cache_write_5m, e.agent_cost_usd) for e in c.events]
    assert got == [
        ("2025-11-06T09:00:00+00:00", "anthropic/claude-sonnet-4-5-20250929", "shop", 1200, 512, 0, 3000, 0.02),
        ("2025-11-06T09:00:00+00:00", "anthropic/claude-sonnet-4-5-20250929", "shop", 1500, 1100, 9000, 1500, 0.03),
        ("2025-11-07T14:30:00+00:00", "gpt-4.1", "shop", 2345, 678, 0, 0, 0.0101),
        ("2025-11-07T14:30:00+00:00", "ollama_chat/qwen2.5-coder:7b", "shop", 3100, 250, 0, 0, None),
    ]
    assert c.stats.malformed == 1  # "Tokens: garbled"; the llm-command run's "unknown" is not a call
    r = run_json("--path", AI)
    assert r["totals"]["cost_usd"] == pytest.approx(R1 + R2 + G1, abs=1e-12)
    assert {m["model"]: m["priced"] for m in r["models"]}["ollama_chat/qwen2.5-coder:7b"] is False


def test_opt_in_only(isolated_env, monkeypatch, tmp_path):
    shutil.copytree(AI, isolated_env / "src")
    assert aider.default_paths() == []  # never walks the disk unasked
    assert collect(("aider",)).events == []
    monkeypatch.setenv("NOMIRA_AIDER_PATHS", f"{isolated_env / 'src'},{tmp_path / 'none'}")
    assert len(aider.find_files(aider.default_paths())) == 2
    monkeypatch.delenv("NOMIRA_AIDER_PATHS")
    monkeypatch.setenv("AIDER_CHAT_HISTORY_FILE", str(isolated_env / "src" / "shop" / aider.HISTORY))
    assert len(collect(("aider",)).events) == 4


def test_appended_history_resumes_and_a_copy_counts_once(tmp_path):
    hist = tmp_path / "shop" / aider.HISTORY
    hist.parent.mkdir()
    text = (AI / "shop" / aider.HISTORY).read_text()
    cut = text.index("# aider chat started at 2025-11-07")
    hist.write_text(text[:cut])
    recs, state, end, _ = aider.scan_file(hist)
    assert len(recs) == 2
    hist.write_text(text)
    more, _, _, _ = aider.scan_file(hist, end, state)
    assert [r[aider.calls.MODEL] for r in more] == ["gpt-4.1", "ollama_chat/qwen2.5-coder:7b"]
    whole, _, _, _ = aider.scan_file(hist)
    assert [r[aider.calls.KEY] for r in recs + more] == [r[aider.calls.KEY] for r in whole]
    (tmp_path / "link").symlink_to(hist.parent)  # the same history reached twice, by another path
    c = collect(("aider",), [hist, tmp_path / "link" / aider.HISTORY])
    assert len(c.events) == 4 and c.stats.skipped["duplicate_call"] == 4
