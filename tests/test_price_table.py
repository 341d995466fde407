"""The bundled LiteLLM table: every provider's text models, spellings resolved, Bedrock regions, empty modifiers.

Hand-copied published rates (USD per MTok), as carried by LiteLLM 1.110.2's
model_prices_and_context_window_backup.json (the bundled table's source):
- Anthropic Claude Sonnet 4.5: in 3, out 15, cache read 0.30, 5m write 3.75, 1h write 6; >200k in 6, out 22.50.
- OpenAI GPT-5.1-Codex: in 1.25, cached 0.125, out 10 (no cache-write charge).
- DeepSeek API deepseek-chat / deepseek-reasoner (V3.2): in 0.28, cache hit 0.028, out 0.42.
- Google Vertex gemini-3-pro-preview: in 2, cached 0.20, out 12; above 200k input: in 4, cached 0.40, out 18.
- AWS Bedrock us./eu./jp./au. Sonnet 4.5 profiles: 10% over global: in 3.30, out 16.50, read 0.33, 5m 4.125.
"""
import json
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import pytest

from nomira.ledger.events import TokenCounts, UsageEvent
from nomira.pricing import load_bundled, price_event
from nomira.pricing.engine import Pricer
from nomira.pricing.table import LazyModels, PriceTable, _bundled_bytes, _split_table

ROOT = Path(__file__).resolve().parent.parent
T = datetime(2026, 11, 3, tzinfo=timezone.utc)


def ev(model, mods=(), provider="anthropic", **tok):
    tok.setdefault("reported_input", tok.get("input", 0))
    return UsageEvent(source="claude_code", provider=provider, model=model, occurred_at=T, session_id="s",
                      project="p", tokens=TokenCounts(**tok), modifiers=tuple(mods))


def cost(model, mods=(), **tok):
    return price_event(ev(model, mods, **tok), load_bundled())


def rates(model):
    p = load_bundled().lookup(model)
    return p and (p.base.input, p.base.output, p.base.cache_read, p.base.cache_write_5m)


PUBLISHED = {  # key in the table -> (input, output, cache read, 5m write) as published
    "claude-sonnet-4-5": (3.0, 15.0, 0.3, 3.75),
    "gpt-5.1-codex": (1.25, 10.0, 0.125, None),
    "deepseek-chat": (0.28, 0.42, 0.028, None),
    "deepseek-reasoner": (0.28, 0.42, 0.028, None),
    "vertex_ai/gemini-3-pro-preview": (2.0, 12.0, 0.2, None),
    "us.anthropic.claude-sonnet-4-5-20250929-v1:0": (3.3, 16.5, 0.33, 4.125),
}


@pytest.mark.parametrize("key,expected", sorted(PUBLISHED.items()))
def test_bundled_rates_equal_published(key, expected):
    assert rates(key) == pytest.approx(expected)


def test_thousands_of_models_dated_with_source():
    table = load_bundled()
    assert len(table.models) > 3000
    assert table.generated and table.feed_source.startswith("litellm ")
    assert table.lookup("deepseek-chat").rate_source == f"bundled:{table.generated}"


def test_lazy_index_reads_the_same_table_as_a_full_parse():
    text = _bundled_bytes().decode()
    head, models = _split_table(text)
    full = json.loads(text)
    assert head["generated"] == full["generated"] and set(models) == set(full["models"])
    sample = sorted(models)[::97]
    assert all(json.loads(models[k]) == full["models"][k] for k in sample)


@pytest.mark.parametrize("model,key", [
    ("deepseek-chat", "deepseek-chat"),
    ("deepseek/deepseek-chat", "deepseek/deepseek-chat"),  # the provider's own entry, as logged
    ("deepseek-v3.2", "deepseek/deepseek-v3.2"),  # bare name: the vendor's own API entry, not Bedrock's
    ("gemini-3-pro-preview", "vertex_ai/gemini-3-pro-preview"),
    ("google/gemini-3.1-pro-preview", "gemini-3.1-pro-preview"),
    ("gpt-5-1-codex-2025-11-13", "gpt-5.1-codex"),  # dashes for dots, ISO date suffix
    ("gpt-5.1-codex-2025-11-13", "gpt-5.1-codex"),
    ("openai/gpt-5", "gpt-5"),
    ("anthropic/claude-sonnet-4-5", "claude-sonnet-4-5"),
    ("anthropic/claude-sonnet-4.5", "claude-sonnet-4-5"),
    ("openrouter/anthropic/claude-sonnet-4.5", "claude-sonnet-4-5"),
    ("claude-sonnet-4-5@20250929", "claude-sonnet-4-5-20250929"),
    ("z-ai/glm-4.6", "zai/glm-4.6"),
    ("qwen/qwen3-coder-plus", "dashscope/qwen3-coder-plus"),
    ("eu.anthropic.claude-sonnet-4-5-20250929-v1:0", "eu.anthropic.claude-sonnet-4-5-20250929-v1:0"),
    ("global.anthropic.claude-sonnet-4-5-20250929-v1:0", "global.anthropic.claude-sonnet-4-5-20250929-v1:0"),
])
def test_spellings_resolve_to_the_most_specific_published_entry(model, key):
    assert load_bundled().lookup(model).key == key


@pytest.mark.parametrize("model", ["acme-llm-9", "gemini-3-pro", "claude-opus-4-7-fast", "gpt-5-9-codex", "deepseek-v9",
                                   "gemini-3-pro-preview-fast", "kimi-k2"])
def test_unknown_or_unpublished_model_is_unpriced(model):
    assert load_bundled().lookup(model) is None
    assert cost(model, input=1000, output=1000) is None


def test_no_family_guess_across_versions():
    table = load_bundled()
    assert table.lookup("gpt-5-1").key == "gpt-5.1"  # dashes for dots; never gpt-5
    assert table.lookup("gpt-5-9-codex") is None  # not gpt-5-codex: only a date suffix is dropped
    assert table.lookup("claude-opus-4-7-20990101").key == "claude-opus-4-7"
    assert table.lookup("gemini-3-pro") is None  # LiteLLM publishes only the -preview entries


def test_bedrock_regional_profile_priced_at_its_regional_rate():
    us = cost("us.anthropic.claude-sonnet-4-5-20250929-v1:0", input=1000, output=1000, cache_read=10_000)
    glob = cost("global.anthropic.claude-sonnet-4-5-20250929-v1:0", input=1000, output=1000, cache_read=10_000)
    assert us.total_usd == pytest.approx((1000 * 3.3 + 1000 * 16.5 + 10_000 * 0.33) / 1e6)
    assert glob.total_usd == pytest.approx((1000 * 3 + 1000 * 15 + 10_000 * 0.3) / 1e6)
    assert us.total_usd == pytest.approx(glob.total_usd * 1.1)
    assert not us.unpriced_modifiers and not glob.unpriced_modifiers


def test_bedrock_region_without_published_entry_is_flagged_not_silent():
    c = cost("ca.anthropic.claude-sonnet-4-5-20250929-v1:0", input=1000)
    assert c.price_key == "anthropic.claude-sonnet-4-5-20250929-v1:0"
    assert c.unpriced_modifiers == ("bedrock_region=ca",)


def test_qwen_ranged_tiers():
    small = cost("qwen3-coder-plus", input=10_000, output=1000)
    big = cost("qwen3-coder-plus", input=100_000, output=1000)
    assert small.total_usd == pytest.approx((10_000 * 1.0 + 1000 * 5.0) / 1e6)
    assert big.tier_above == 32_000 and big.total_usd == pytest.approx((100_000 * 1.8 + 1000 * 9.0) / 1e6)


@pytest.mark.parametrize("mods", [
    [("inference_geo", "")], [("service_tier", "standard")], [("speed", "")],
    [("inference_geo", ""), ("service_tier", "standard")],
])
def test_empty_or_standard_modifier_is_no_modifier(mods):
    c = cost("claude-opus-4-7", mods, input=1000, output=1000)
    assert not c.unpriced_modifiers
    assert c.total_usd == pytest.approx(cost("claude-opus-4-7", input=1000, output=1000).total_usd)


def _assistant(model: str, usage_extra: str) -> str:
    return ('{"parentUuid":null,"isSidechain":false,"userType":"external","cwd":"/w/p","sessionId":"s1",'
            '"version":"2.1.38","type":"assistant","uuid":"u1","timestamp":"2026-11-20T10:00:00.000Z",'
            '"requestId":"req_1","message":{"id":"msg_1","type":"message","role":"assistant","model":"' + model +
            '","content":[{"type":"text","text":"x"}],"usage":{"input_tokens":10,"output_tokens":20,'
            '"cache_read_input_tokens":300,"cache_creation_input_tokens":0,' + usage_extra + '}}}')


def test_claude_code_2_1_38_inference_geo_empty_raises_no_warning(tmp_path):
    project = tmp_path / "projects" / "-w-p"
    project.mkdir(parents=True)
    (project / "s1.jsonl").write_text(_assistant(
        "claude-opus-4-7", '"service_tier":"standard","inference_geo":""') + "\n")
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "CLAUDE_CONFIG_DIR": str(tmp_path),
           "XDG_CACHE_HOME": str(tmp_path / "c"), "XDG_CONFIG_HOME": str(tmp_path / "cfg"),
           "XDG_DATA_HOME": str(tmp_path / "d"), "CODEX_HOME": str(tmp_path / "nocodex"),
           "PYTHONPATH": str(ROOT), "NO_COLOR": "1"}
    out = subprocess.run([sys.executable, "-m", "nomira", "daily", "--source", "claude", "--no-cache"],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "modifier not priced" not in out.stdout + out.stderr
    assert "Traceback" not in out.stderr
    doc = json.loads(subprocess.run(
        [sys.executable, "-m", "nomira", "daily", "--source", "claude", "--no-cache", "--json"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60).stdout)
    assert doc["daily"][0]["cost_usd"] == pytest.approx((10 * 5 + 20 * 25 + 300 * 0.5) / 1e6)


def test_regeneration_is_byte_identical(tmp_path):
    """tools/update_prices.py rebuilds the bundled table from the entries it holds, byte for byte."""
    table = json.loads(_bundled_bytes())
    out = tmp_path / "prices.json"
    out.write_bytes(_bundled_bytes())
    feed = tmp_path / "feed.json"
    sample = {}
    for key in ("claude-opus-4-7", "gpt-5.1-codex", "deepseek-chat"):
        m = table["models"][key]
        sample[key] = {"litellm_provider": {"anthropic": "anthropic", "openai": "openai"}.get(m["provider"],
                                                                                               m["provider"]),
                       "mode": "chat", "input_cost_per_token": m["input"] / 1e6,
                       "output_cost_per_token": m["output"] / 1e6}
    feed.write_text(json.dumps(sample))
    first = subprocess.run([sys.executable, str(ROOT / "tools" / "update_prices.py"), str(feed), "--out", str(out)],
                           capture_output=True, text=True, timeout=60)
    assert first.returncode == 0, first.stderr
    once = out.read_bytes()
    subprocess.run([sys.executable, str(ROOT / "tools" / "update_prices.py"), str(feed), "--out", str(out)],
                   capture_output=True, text=True, timeout=60, check=True)
    assert out.read_bytes() == once
    regenerated = json.loads(once)
    assert regenerated["generated"] == table["generated"] and regenerated["source"] == table["source"]
    assert sorted(regenerated["models"]) == ["claude-opus-4-7", "deepseek-chat", "gpt-5.1-codex"]


def test_pricer_pays_only_for_the_models_it_uses():
    head, raw = _split_table(_bundled_bytes().decode())
    models = LazyModels(raw, "bundled", head["generated"])
    pricer = Pricer(PriceTable(models, head["generated"]))
    for model in ("deepseek-chat", "gpt-5-1-codex-2025-11-13", "deepseek-chat"):
        assert pricer(ev(model, provider="other", input=1)) is not None
    assert len(models._built) == 2


def test_normal_index_is_the_first_key_in_sorted_order():
    """One pass without a sort picks what sorted() + setdefault picked: the first key of each spelling."""
    from nomira.pricing.table import PriceTable, _DOTTED_ID, load_bundled, normal
    layer = dict.fromkeys(["gpt-5.1", "GPT-5-1", "gpt-5@1", "gpt-5-1", "deepseek.v3.2", "a.b"], None)
    for models in (load_bundled().models, layer):
        want: dict = {}
        for key in sorted(models):
            if not _DOTTED_ID.match(key):
                want.setdefault(normal(key.lower()), key)
        assert PriceTable(models)._normal_index(0) == want
