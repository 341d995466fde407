"""Pricing engine: per-token-type rates, cache TTLs, tiers, modifiers, unknown models.

Expected figures are computed by hand from published rates (USD per million tokens):
Sonnet 4.5 in 3 / out 15 / cache read 0.30 / 5m write 3.75 / 1h write 6;
above 200k input: 6 / 22.50 / 0.60 / 7.50 / 12. GPT-5-Codex in 1.25 / cached 0.125 / out 10.
"""
from datetime import datetime, timezone

import pytest

from nomira.ledger.events import TokenCounts, UsageEvent
from nomira.pricing import load_bundled, price_event
from nomira.pricing.table import candidate_keys

T = datetime(2025, 11, 3, tzinfo=timezone.utc)


def ev(model, mods=(), **tok):
    tok.setdefault("reported_input", tok.get("input", 0))
    return UsageEvent(source="claude_code", provider="anthropic", model=model, occurred_at=T, session_id="s",
                      project="p", tokens=TokenCounts(**tok), modifiers=tuple(mods))


def cost(model, mods=(), **tok):
    return price_event(ev(model, mods, **tok), load_bundled())


def test_each_token_type_at_its_own_rate():
    c = cost("claude-sonnet-4-5-20250929", input=10, output=500, cache_read=1000, cache_write_1h=2000)
    assert c.input_usd == pytest.approx(10 * 3 / 1e6)
    assert c.output_usd == pytest.approx(500 * 15 / 1e6)
    assert c.cache_read_usd == pytest.approx(1000 * 0.3 / 1e6)
    assert c.cache_write_1h_usd == pytest.approx(2000 * 6 / 1e6)
    assert c.total_usd == pytest.approx(0.01983)
    assert c.verified


def test_1h_and_5m_writes_priced_differently():
    five = cost("claude-sonnet-4-5-20250929", cache_write_5m=100_000).total_usd
    hour = cost("claude-sonnet-4-5-20250929", cache_write_1h=100_000).total_usd
    assert (five, hour) == (pytest.approx(0.375), pytest.approx(0.6))


@pytest.mark.parametrize("model,base,tier", [  # (input, cache read, output) per MTok, standard and above 200k
    ("claude-sonnet-4-5-20250929", (3, 0.3, 15), (6, 0.6, 22.5)),
    ("gemini-3-pro-preview", (2, 0.2, 12), (4, 0.4, 18)),  # Vertex's published >200k tier
])
def test_long_context_bills_whole_request_at_tier(model, base, tier):
    c = cost(model, input=1000, cache_read=250_000, output=100)
    assert c.tier_above == 200_000
    assert c.total_usd == pytest.approx((1000 * tier[0] + 250_000 * tier[1] + 100 * tier[2]) / 1e6)
    under = cost(model, input=1000, cache_read=199_000, output=100)
    assert under.tier_above is None
    assert under.total_usd == pytest.approx((1000 * base[0] + 199_000 * base[1] + 100 * base[2]) / 1e6)


def test_per_model_cache_read_rates_differ():
    # Opus 4.7 reads at 0.1x input; Opus 5.5 at 0.05x; Mythos 5.1 at 0.025x (explicit per model)
    assert cost("claude-opus-4-7", cache_read=1_000_000).total_usd == pytest.approx(0.5)
    assert cost("claude-opus-5-5", cache_read=1_000_000).total_usd == pytest.approx(0.2)
    assert cost("claude-mythos-5-1", cache_read=1_000_000).total_usd == pytest.approx(0.25)


def test_openai_cached_input_at_cached_rate():
    c = cost("gpt-5-codex", input=200, cache_read=800, output=100, reported_input=1000)
    assert c.total_usd == pytest.approx((200 * 1.25 + 800 * 0.125 + 100 * 10) / 1e6)
    assert c.naive_usd == pytest.approx((1000 * 1.25 + 100 * 10) / 1e6)


def test_unknown_model_is_unpriced_never_guessed():
    assert cost("claude-opus-9-9", input=100, output=100) is None
    assert cost("totally-new-model", input=1) is None


@pytest.mark.parametrize("model,key", [
    ("claude-opus-4-7", "claude-opus-4-7"),
    ("anthropic/claude-sonnet-4.5", "claude-sonnet-4-5"),
    ("us.anthropic.claude-sonnet-4-5-20250929-v1:0", "us.anthropic.claude-sonnet-4-5-20250929-v1:0"),
    ("claude-sonnet-4-5@20250929", "claude-sonnet-4-5-20250929"),
    ("openai/gpt-5-codex", "gpt-5-codex"),
    ("claude-opus-4-7-20990101", "claude-opus-4-7"),
])
def test_version_aware_matching(model, key):
    assert load_bundled().lookup(model).key == key


def test_no_prefix_fallback():
    table = load_bundled()
    assert table.lookup("claude-opus-4-7").key != "claude-opus-4"
    assert table.lookup("claude-opus-4-7-fast") is None  # a -fast variant is not the base model
    assert "claude-opus-4" not in candidate_keys("claude-opus-4-7")


def test_fast_mode_priced_by_published_multiplier_else_flagged():
    base = cost("claude-opus-4-8", input=1000, output=1000).total_usd
    fast = cost("claude-opus-4-8", [("speed", "fast")], input=1000, output=1000)
    assert fast.total_usd == pytest.approx(base * 2.0) and not fast.unpriced_modifiers
    flagged = cost("claude-sonnet-4-5-20250929", [("speed", "fast")], input=1000)
    assert flagged.unpriced_modifiers == ("speed=fast",)


def test_opus_4_6_fast_mode_at_published_6x():
    # Anthropic publishes Opus 4.6 fast mode at $30 / $150 per MTok: 6x standard
    c = cost("claude-opus-4-6", [("speed", "fast")], input=1000, output=2000, cache_read=10000, cache_write_5m=500)
    assert c.total_usd == pytest.approx((1000 * 30 + 2000 * 150 + 10000 * 3 + 500 * 37.5) / 1e6)
    assert not c.unpriced_modifiers


def test_opus_4_7_fast_mode_at_published_6x():
    # Claude Code's fast mode ran Opus 4.7 too, at the same $30 / $150 per MTok, until 2026-07-24
    for model in ("claude-opus-4-7", "claude-opus-4-7-20260416"):
        c = cost(model, [("speed", "fast")], input=1000, output=2000, cache_read=10000, cache_write_5m=500)
        assert c.total_usd == pytest.approx((1000 * 30 + 2000 * 150 + 10000 * 3 + 500 * 37.5) / 1e6), model
        assert not c.unpriced_modifiers and c.verified


def test_claude_haiku_3_cache_at_its_published_rates():
    # Haiku 3 is the Claude model whose cache rates are not 0.1x / 1.25x input: $0.03 read, $0.30 and
    # $0.50 writes against $0.25 input (Anthropic's pricing page)
    c = cost("claude-3-haiku-20240307", input=1000, output=100, cache_read=10_000, cache_write_5m=2000,
             cache_write_1h=3000)
    assert c.cache_read_usd == pytest.approx(10_000 * 0.03 / 1e6)
    assert c.cache_write_5m_usd == pytest.approx(2000 * 0.30 / 1e6)
    assert c.cache_write_1h_usd == pytest.approx(3000 * 0.50 / 1e6)
    assert c.total_usd == pytest.approx((1000 * 0.25 + 100 * 1.25 + 10_000 * 0.03 + 2000 * 0.3 + 3000 * 0.5) / 1e6)
    assert c.verified


def test_openai_cache_writes_an_agent_logs_apart_are_billed_as_input():
    # OpenAI bills a prompt token written to its cache as input (no surcharge, and no discount): a proxy
    # behind Claude Code that reports such tokens as cache_creation_input_tokens, apart from input
    c = price_event(UsageEvent(source="claude_code", provider="openai", model="gpt-5.1-codex", occurred_at=T,
                               session_id="s", project="p", tokens=TokenCounts(input=1000, cache_write_5m=3000,
                                                                              output=100)), load_bundled())
    assert c.cache_write_5m_usd == pytest.approx(3000 * 1.25 / 1e6)
    assert c.total_usd == pytest.approx((4000 * 1.25 + 100 * 10) / 1e6)
    assert not c.verified  # (the write's rate comes from the provider's rule, not the model's entry)


def test_anthropic_aliases_at_their_dated_models_rates():
    # a proxy may log the alias it was asked for (`claude-opus-4-1`), not the dated id the API answers with
    for alias, dated in (("claude-opus-4-1", "claude-opus-4-1-20250805"), ("claude-sonnet-4-0", "claude-sonnet-4-20250514"),
                         ("claude-3-7-sonnet-latest", "claude-3-7-sonnet-20250219")):
        a = cost(alias, input=1000, output=100, cache_read=5000, cache_write_5m=700)
        assert a.total_usd == cost(dated, input=1000, output=100, cache_read=5000, cache_write_5m=700).total_usd > 0
    assert cost("claude-opus-4-1", input=1_000_000).total_usd == pytest.approx(15.0)


def test_data_residency_multiplier():
    base = cost("claude-opus-4-7", input=1000).total_usd
    assert cost("claude-opus-4-7", [("inference_geo", "us")], input=1000).total_usd == pytest.approx(base * 1.1)


def test_legacy_model_priced_but_unverified():
    c = cost("claude-sonnet-4-20250514", input=1000, cache_write_1h=1000)
    assert c.total_usd == pytest.approx((1000 * 3 + 1000 * 6) / 1e6)  # 1h write derived: 2x input
    assert not c.verified


def test_bundled_table_is_dated_with_source():
    table = load_bundled()
    assert table.generated
    for price in table.models.values():
        assert price.as_of and price.source == "bundled"


@pytest.mark.parametrize("model,mods,tier_rates", [
    # (input, cache read, output) per MTok: LiteLLM's combined gpt-5.6 priority rates above 272k; Anthropic's
    # batch is half of the Sonnet 4.5 >200k tier (6 / 0.6 / 22.5)
    ("gpt-5.6", [("service_tier", "priority")], (16, 1.6, 60)),
    ("claude-sonnet-4-5-20250929", [("service_tier", "batch")], (3, 0.3, 11.25)),
])
def test_a_service_tiers_long_request_is_billed_at_its_long_context_rate(model, mods, tier_rates):
    """Its plain service-tier rates billed such a request at about half, unflagged; now the long-context
    rates as the service tier scales them, marked unverified (the table has no combined rate)."""
    c = cost(model, mods, input=1000, cache_read=299_000, output=100)
    assert c.tier_above is not None and not c.verified
    assert c.total_usd == pytest.approx((1000 * tier_rates[0] + 299_000 * tier_rates[1] + 100 * tier_rates[2]) / 1e6)
    short = cost(model, mods, input=1000, cache_read=100_000, output=100)
    assert short.tier_above is None and short.verified


@pytest.mark.parametrize("model,key", [
    ("us.anthropic.claude-sonnet-4-5-20250929-v1", "us.anthropic.claude-sonnet-4-5-20250929-v1:0"),
    ("eu.anthropic.claude-sonnet-4-5-20250929", "eu.anthropic.claude-sonnet-4-5-20250929-v1:0"),
    ("us.anthropic.claude-opus-4-6-v1:0", "us.anthropic.claude-opus-4-6-v1"),
    ("anthropic.claude-mythos-preview-v1:0", "anthropic.claude-mythos-preview"),
])
def test_a_bedrock_id_with_its_version_spelled_otherwise_gets_its_own_entry(model, key):
    """LiteLLM keys some Bedrock ids `-v1:0`, some `-v1`, some bare: the regional (or Bedrock) entry, not
    the global rate with the region flagged (10% low) or Anthropic's own (a third of Bedrock's)."""
    c = cost(model, input=1_000_000)
    assert (c.price_key, c.unpriced_modifiers) == (key, ())


def test_an_undated_haiku_3_5_is_anthropics_rate_not_a_resellers():
    """`anthropic/claude-3.5-haiku` (OpenRouter) fell to Vertex's resale entry ($1 / $5)."""
    for name in ("openrouter/anthropic/claude-3.5-haiku", "claude-3-5-haiku"):
        assert cost(name, input=1_000_000, output=1_000_000).total_usd == pytest.approx(0.8 + 4.0)


@pytest.mark.parametrize("name,dated", [
    ("claude-sonnet-4", "claude-sonnet-4-20250514"), ("anthropic/claude-sonnet-4", "claude-sonnet-4-20250514"),
    ("claude-opus-4", "claude-opus-4-20250514"), ("openrouter/anthropic/claude-opus-4", "claude-opus-4-20250514"),
    ("claude-3.7-sonnet", "claude-3-7-sonnet-20250219"), ("anthropic/claude-3.7-sonnet", "claude-3-7-sonnet-20250219"),
    ("claude-3-haiku", "claude-3-haiku-20240307"),
])
def test_the_undated_id_of_a_one_snapshot_claude_model_is_its_snapshots_rate(name, dated):
    """OpenRouter and OpenCode's GitHub Copilot provider log undated ids: they were unpriced (Claude Haiku 3:
    Vertex's entry), though each names one model with one published rate."""
    tokens = dict(input=1_000_000, output=1_000_000, cache_read=1_000_000, cache_write_5m=1_000_000)
    got, want = cost(name, **tokens), cost(dated, **tokens)
    assert got.total_usd == pytest.approx(want.total_usd) and want.total_usd > 0


def test_a_bedrock_version_is_never_taken_for_another():
    """Spelling variants keep the version: Claude 2's `-v2` is never priced as Claude 1's `-v1` entry."""
    from nomira.pricing import load_bundled
    table = load_bundled()
    assert table.lookup("anthropic.claude-v1") is not None
    assert table.lookup("anthropic.claude-v2") is None and table.lookup("anthropic.claude-v2:0") is None
