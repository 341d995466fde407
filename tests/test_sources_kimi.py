"""Kimi CLI wire logs: StatusUpdate token usage, repeated updates, model from config, work dir from kimi.json."""
import shutil

import pytest

from conftest import FIXTURES
from nomira.sources import kimi
from nomira.sources.registry import collect

KIMI = FIXTURES / "kimi"
# config.toml's default model resolves to gpt-4.1: 2.00 in / 0.50 cached / 8.00 out (USD per MTok).
C1 = (1200 * 2 + 9000 * 0.5 + 150 * 8) / 1e6
C2 = (300 * 2 + 10000 * 0.5 + 80 * 8) / 1e6


def test_status_updates_are_calls_with_the_configured_model():
    c = collect(("kimi",), [KIMI])
    got = [(e.model, e.model_is_fallback, e.project, e.tokens.input, e.tokens.cache_read, e.tokens.output)
           for e in c.events]
    assert got == [("gpt-4.1", True, "shop", 1200, 9000, 150), ("gpt-4.1", True, "shop", 300, 10000, 80)]
    assert c.stats.skipped["duplicate_call"] == 1 and c.stats.malformed == 1


def test_totals_by_hand(run_json):
    r = run_json("--path", KIMI)
    assert r["totals"]["cost_usd"] == pytest.approx(C1 + C2, abs=1e-12)
    assert r["models"][0]["model_assumed"] is True


def test_default_share_dir_and_unpriced_kimi_model(run_json, isolated_env, monkeypatch):
    shutil.copytree(KIMI / ".kimi", isolated_env / "share")
    (isolated_env / "share" / "config.toml").write_text('default_model = "kimi-code/kimi-for-coding"\n')
    monkeypatch.setenv("KIMI_SHARE_DIR", str(isolated_env / "share"))
    assert kimi.default_paths() == [isolated_env / "share" / "sessions"]
    r = run_json("--source", "kimi")
    assert [(m["model"], m["priced"]) for m in r["models"]] == [("kimi-for-coding", False)]
    assert r["totals"]["cost_usd"] == 0
