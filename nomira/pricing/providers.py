"""Per-provider cache semantics: the fallback when a model's table entry lacks a cache rate.

Rates are per model first (cache-read multipliers differ between models of one
provider); these multipliers only fill a gap, and a price that used one is marked
unverified.
"""
from __future__ import annotations

# multiplier of the model's input rate, per token type; None = not billed by this provider
CACHE_MULTIPLIERS: dict[str, dict[str, float | None]] = {
    # Anthropic: cache read 0.1x, 5-minute write 1.25x, 1-hour write 2x input.
    "anthropic": {"cache_read": 0.1, "cache_write_5m": 1.25, "cache_write_1h": 2.0},
    # OpenAI: cached input at the model's cached rate (un-discounted when it has none); no write cost.
    "openai": {"cache_read": 1.0, "cache_write_5m": None, "cache_write_1h": None},
    # Google: context-cache reads at the model's cached rate (0.25x on 2.x models); writes are input.
    "google": {"cache_read": 0.25, "cache_write_5m": 1.0, "cache_write_1h": 1.0},
}


def fallback_rate(provider: str, token_type: str, input_rate: float) -> float | None:
    mult = CACHE_MULTIPLIERS.get(provider, CACHE_MULTIPLIERS["anthropic"]).get(token_type)
    return None if mult is None else input_rate * mult
