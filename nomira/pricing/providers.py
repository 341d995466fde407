"""Per-provider cache pricing rules: the fallback when a model's table entry lacks a cache rate.

Rates are per model first (cache-read multipliers differ between models of one provider). A
missing rate is filled only from a rule the provider publishes for every model it sells, and a
price that used one is marked unverified. Any other missing rate leaves the call unpriced, with
the token type as the reason (issue 28: "unpriced is never zero", never a guessed multiplier).
"""
from __future__ import annotations

# multiplier of the model's input rate, per token type; 0.0 = not billed by this provider.
PUBLISHED_RULES: dict[str, dict[str, float]] = {
    # Anthropic (docs.anthropic.com, prompt caching pricing): cache read 0.1x, 5-minute write 1.25x,
    # 1-hour write 2x the base input rate, for every model but Claude Haiku 3 (0.12x and 1.2x: its
    # published rates are in the bundled table, tools/update_prices.py).
    "anthropic": {"cache_read": 0.1, "cache_write_5m": 1.25, "cache_write_1h": 2.0},
    # OpenAI (platform.openai.com prompt caching): caching is automatic, writes cost nothing extra: a
    # prompt token written to the cache (a count some agents log apart from input) is billed as input.
    # The cached-input discount differs per model: no rule for cache_read.
    "openai": {"cache_write_5m": 1.0, "cache_write_1h": 1.0},
}


def fallback_rate(provider: str, token_type: str, input_rate: float) -> float | None:
    """The rate a published provider rule gives `token_type`, else None (the type is unpriced)."""
    mult = PUBLISHED_RULES.get(provider, {}).get(token_type)
    return None if mult is None else input_rate * mult
