"""Posit Assistant lm-messages.jsonl: AI SDK usage per reply; each reply's totalTokens says whether input
includes the cache; sub-agents belong to their conversation; a copied workspace counts once."""
import shutil

import pytest

from conftest import FIXTURES
from nomira.sources import posit
from nomira.sources.registry import collect

PA = FIXTURES / "posit"
# claude-sonnet-4-6: 3 / 15 / 0.30 read / 3.75 5m write; gpt-4.1: 2 / 8 / 0.50 read; claude-haiku-4-5: 1 / 5.
SONNET = (12 * 3 + 340 * 15 + 9000 * 0.30 + 2000 * 3.75) / 1e6
GPT = (1000 * 2 + 200 * 8 + 4000 * 0.50) / 1e6  # total 5200 = input + output: the 4000 cached are inside input
HAIKU = (40 * 1 + 15 * 5) / 1e6


def test_by_hand(run_json):
    c = collect(("posit",), [PA])
    got = [(e.session_id, e.model, e.project, e.tokens.input, e.tokens.output, e.tokens.cache_read,
            e.tokens.cache_write_5m) for e in c.events]
    assert got == [("5c2d1b00", "claude-sonnet-4-6", "shop", 12, 340, 9000, 2000),
                   ("5c2d1b00", "claude-haiku-4-5", "shop", 40, 15, 0, 0),
                   ("5c2d1b00", "gpt-4.1", "shop", 1000, 200, 4000, 0)]
    assert c.stats.malformed == 1  # the truncated last line
    assert "posit_total_unmatched" not in c.stats.skipped
    r = run_json("--path", PA)
    assert r["sources"] == ["posit_assistant"]
    assert r["totals"]["cost_usd"] == pytest.approx(SONNET + GPT + HAIKU, abs=1e-12)


def test_default_location_override_and_copy_once(isolated_env, monkeypatch, tmp_path):
    assert posit.default_paths() == []
    shutil.copytree(PA, isolated_env / ".posit" / "assistant")
    assert posit.default_paths() == [isolated_env / ".posit" / "assistant" / "workspaces"]
    assert len(collect(("posit",)).events) == 3
    shutil.copytree(PA, tmp_path / "copy")
    roots = [isolated_env / ".posit" / "assistant" / "workspaces", tmp_path / "copy" / "workspaces"]
    c = collect(("posit",), found={"posit": posit.find_files(roots)})
    assert len(c.events) == 3 and c.stats.skipped["duplicate_call"] == 3
    monkeypatch.setenv("POSIT_ASSISTANT_DIR", str(tmp_path / "copy" / "workspaces"))
    assert posit.default_paths() == [tmp_path / "copy" / "workspaces"]
