"""The cost of one event: each token type at its own rate, per the model's table entry.

- Long context: when a request's input side (uncached + cache read + cache writes)
  exceeds a tier threshold in the table, the *whole request* is billed at that tier.
- Modifiers the agent logged (fast mode, batch/priority tier, data residency) are
  priced where the table publishes the rule; otherwise the cost says which modifier
  it could not price.
- An unknown model gets no price at all (None): never a guess.
"""
from __future__ import annotations

from dataclasses import dataclass

from nomira.events import TOKEN_TYPES, UsageEvent
from nomira.pricing.providers import fallback_rate
from nomira.pricing.table import ModelPrice, PriceTable, Rates

PER = 1_000_000


@dataclass(frozen=True, slots=True)
class Cost:
    input_usd: float
    output_usd: float
    cache_read_usd: float
    cache_write_5m_usd: float
    cache_write_1h_usd: float
    multiplier: float
    price_key: str
    rate_source: str
    verified: bool
    tier_above: int | None = None
    unpriced_modifiers: tuple[str, ...] = ()
    naive_usd: float = 0.0  # what a cache-blind tool (input/output fields only) would have shown

    @property
    def total_usd(self) -> float:
        return (self.input_usd + self.output_usd + self.cache_read_usd
                + self.cache_write_5m_usd + self.cache_write_1h_usd)

    def by_type(self) -> dict[str, float]:
        return {t: getattr(self, f"{t}_usd") for t in TOKEN_TYPES}


def _rate(rates: Rates, token_type: str, provider: str) -> tuple[float, bool]:
    """(rate, explicit?) for one token type."""
    value = getattr(rates, token_type)
    if value is not None:
        return value, True
    derived = fallback_rate(provider, token_type, rates.input)
    return (derived if derived is not None else 0.0), False


def _select_rates(price: ModelPrice, event: UsageEvent) -> tuple[Rates, int | None, float, list[str]]:
    rates, tier_above, multiplier, unpriced = price.base, None, 1.0, []
    for kind, value in event.modifiers:
        if kind == "service_tier" and value in ("batch", "priority", "flex"):
            if value in price.service_tiers:
                rates = price.service_tiers[value]
            else:
                unpriced.append(f"service_tier={value}")
        elif kind == "speed" and value == "fast":
            if "fast" in price.multipliers:
                multiplier *= price.multipliers["fast"]
            else:
                unpriced.append("speed=fast")
        elif kind == "inference_geo":
            if value in price.multipliers:
                multiplier *= price.multipliers[value]
            else:
                unpriced.append(f"inference_geo={value}")
        else:
            unpriced.append(f"{kind}={value}")
    if rates is price.base:
        prompt = event.tokens.prompt_total
        for threshold, tier_rates in price.tiers:
            if prompt > threshold:
                rates, tier_above = tier_rates, threshold
    return rates, tier_above, multiplier, unpriced


def price_event(event: UsageEvent, table: PriceTable) -> Cost | None:
    price = table.lookup(event.model)
    if price is None:
        return None
    rates, tier_above, multiplier, unpriced = _select_rates(price, event)
    t = event.tokens
    verified = price.verified
    usd = {}
    for token_type in TOKEN_TYPES:
        count = getattr(t, token_type)
        rate, explicit = _rate(rates, token_type, price.provider)
        if count and not explicit:
            verified = False
        usd[token_type] = count * rate * multiplier / PER
    naive = (t.reported_input * price.base.input + t.output * price.base.output) / PER
    return Cost(
        input_usd=usd["input"], output_usd=usd["output"], cache_read_usd=usd["cache_read"],
        cache_write_5m_usd=usd["cache_write_5m"], cache_write_1h_usd=usd["cache_write_1h"],
        multiplier=multiplier, price_key=price.key, rate_source=price.rate_source, verified=verified,
        tier_above=tier_above, unpriced_modifiers=tuple(unpriced), naive_usd=naive,
    )
