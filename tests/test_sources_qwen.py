"""Qwen Code chats: OpenAI-style usageMetadata (cached inside prompt, thoughts inside candidates), /branch copies."""
import shutil

import pytest

from conftest import FIXTURES
from nomira.sources import qwen
from nomira.sources.registry import collect

QW = FIXTURES / "qwen"
# Bundled rates (USD per MTok): gpt-4.1 2.00 in / 0.50 cached / 8.00 out; gemini-2.5-flash 0.30 / 2.50.
A1 = ((20000 - 15000) * 2.00 + 15000 * 0.50 + 800 * 8.00) / 1e6  # reasoning 300 is inside the 800
B1 = (4000 * 0.30 + (200 + 100) * 2.50) / 1e6                    # total 4300 = prompt + candidates + thoughts
# qwen3-coder-plus resolves to Alibaba's own entry (LiteLLM dashscope/, 1.00 in / 0.10 cached / 5.00 out
# under 32k prompt tokens): 21000 prompt of which 20000 cached.
A2 = (1000 * 1.00 + 20000 * 0.10 + 120 * 5.00) / 1e6


def events():
    return {e.message_id: e for e in collect(("qwen",), [QW]).events}


def test_usage_in_canonical_terms():
    evs = events()
    a1 = evs["a-1"].tokens
    assert (a1.input, a1.cache_read, a1.output, a1.reasoning, a1.reported_input) == (5000, 15000, 800, 300, 20000)
    assert (evs["b-1"].tokens.output, evs["b-1"].tokens.reasoning) == (300, 100)
    assert evs["a-1"].project == "shop" and evs["a-1"].source == "qwen_code"


def test_branch_copy_counted_once_and_telemetry_is_not_a_call():
    c = collect(("qwen",), [QW])
    assert sorted(e.message_id for e in c.events) == ["a-1", "a-2", "b-1"]
    assert c.stats.skipped["duplicate_call"] == 1 and c.stats.malformed == 1


def test_totals_by_hand_with_the_vendor_priced_qwen_model(run_json):
    r = run_json("--path", QW)
    assert r["totals"]["cost_usd"] == pytest.approx(A1 + A2 + B1, abs=1e-12)
    models = {m["model"]: m for m in r["models"]}
    assert models["qwen3-coder-plus"]["priced"] is True


def test_locations(run_json, isolated_env, monkeypatch):
    shutil.copytree(QW / ".qwen", isolated_env / ".qwen")
    assert qwen.default_paths() == [isolated_env / ".qwen" / "projects"]
    r = run_json("--source", "qwen", "daily", "--timezone", "UTC")
    assert {d["date"]: round(d["cost_usd"], 9) for d in r["daily"]} == {"2025-11-06": round(A1 + A2, 9),
                                                                         "2025-11-07": round(B1, 9)}
    monkeypatch.setenv("QWEN_RUNTIME_DIR", str(isolated_env / "rt"))
    assert qwen.default_paths() == []  # the runtime dir wins over ~/.qwen
