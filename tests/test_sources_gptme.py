"""gptme conversation.jsonl: per-reply usage in Anthropic terms (nested or the older flat metadata), gptme's cost."""
import shutil

import pytest

from conftest import FIXTURES
from nomira.sources import gptme
from nomira.sources.registry import collect

GP = FIXTURES / "gptme"
# claude-sonnet-4-5: 3 / 15 / 0.30 read / 3.75 write; gpt-4.1: 2 / 8 / 0.50 read. input_tokens are uncached.
A1 = (1200 * 3 + 450 * 15 + 4000 * 3.75) / 1e6
A2 = (40 * 3 + 300 * 15 + 9000 * 0.30) / 1e6
B1 = (5000 * 2 + 700 * 8 + 2000 * 0.50) / 1e6


@pytest.fixture(autouse=True)
def utc(local_utc):
    """gptme writes naive local times."""


def test_replies_by_hand(run_json):
    c = collect(("gptme",), [GP])
    got = [(e.occurred_at.isoformat(), e.model, e.project, e.tokens.input, e.tokens.output, e.tokens.cache_read,
            e.tokens.cache_write_5m, e.agent_cost_usd) for e in c.events]
    assert got == [
        ("2025-11-06T09:00:05+00:00", "anthropic/claude-sonnet-4-5-20250929", "shop", 1200, 450, 0, 4000, 0.02535),
        ("2025-11-06T09:00:12+00:00", "anthropic/claude-sonnet-4-5-20250929", "shop", 40, 300, 9000, 0, 0.0081),
        ("2025-11-07T14:00:09+00:00", "openai/gpt-4.1", "unknown", 5000, 700, 2000, 0, 0.0166),  # flat, older
        ("2025-11-07T14:05:00+00:00", "local/qwen2.5-coder:7b", "unknown", 800, 120, 0, 0, None),
    ]
    assert c.stats.malformed == 1  # the cut last line
    r = run_json("--path", GP)
    assert r["totals"]["cost_usd"] == pytest.approx(A1 + A2 + B1, abs=1e-12)
    assert {m["model"]: m["priced"] for m in r["models"]}["local/qwen2.5-coder:7b"] is False


def test_default_location_and_copy_counts_once(isolated_env, tmp_path, monkeypatch):
    shutil.copytree(GP / "logs", isolated_env / ".local" / "share" / "gptme" / "logs")
    assert gptme.default_paths() == [isolated_env / ".local" / "share" / "gptme" / "logs"]
    assert len(collect(("gptme",)).events) == 4
    shutil.copytree(GP / "logs", tmp_path / "backup")
    c = collect(("gptme",), [isolated_env / ".local" / "share" / "gptme", tmp_path / "backup"])
    assert len(c.events) == 4 and c.stats.skipped["duplicate_call"] == 4
    monkeypatch.setenv("GPTME_LOGS_HOME", str(tmp_path / "backup"))
    assert gptme.default_paths() == [tmp_path / "backup"]


def test_rewritten_log_resumes_only_over_unchanged_bytes(tmp_path):
    log = tmp_path / "c" / gptme.LOG
    log.parent.mkdir()
    lines = (GP / "logs" / "2025-11-06-fix-webhook" / gptme.LOG).read_text().splitlines(keepends=True)
    log.write_text("".join(lines[:3]))
    recs, state, end, _ = gptme.scan_file(log)
    log.write_text("".join(lines[:5]))  # gptme rewrites the whole log; the prefix is unchanged
    more, _, _, _ = gptme.scan_file(log, end, state)
    assert len(recs) == 1 and len(more) == 1
    assert [r[gptme.calls.KEY] for r in recs + more] == [r[gptme.calls.KEY] for r in gptme.scan_file(log)[0]]
