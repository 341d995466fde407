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


@dataclass(slots=True)
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


# Values that mean "no modifier": Claude Code 2.1.38+ logs `"inference_geo":""` and `"service_tier":"standard"`.
PLAIN = frozenset({"", "standard", "standard_only", "default", "auto", "global", "not_available", "none"})


def _modifiers(price: ModelPrice, modifiers) -> tuple[Rates, float, tuple[str, ...], bool]:
    """(rates, multiplier, unpriced modifiers, tiers apply?) for the logged modifiers."""
    rates, multiplier, unpriced = price.base, 1.0, list(price.unpriced)
    for kind, value in modifiers:
        if value is None or str(value).strip().lower() in PLAIN:
            continue
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
        elif kind == "inference_geo" and value in price.multipliers:
            multiplier *= price.multipliers[value]
        else:
            unpriced.append(f"{kind}={value}")
    return rates, multiplier, tuple(unpriced), rates is price.base


ALL_EXPLICIT = (True,) * len(TOKEN_TYPES)


def _vector(rates: Rates, provider: str, multiplier: float) -> tuple[tuple[float, ...], tuple[bool, ...]]:
    pairs = [_rate(rates, t, provider) for t in TOKEN_TYPES]
    explicit = tuple(e for _, e in pairs)
    return tuple(r * multiplier / PER for r, _ in pairs), (ALL_EXPLICIT if all(explicit) else explicit)


class Pricer:
    """Prices events against one table; per (model, modifiers) work is done once."""

    def __init__(self, table: PriceTable):
        self.table = table
        self._plans: dict = {}

    def _plan(self, model: str, modifiers) -> tuple | None:
        price = self.table.lookup(model)
        if price is None:
            return None
        rates, multiplier, unpriced, tiered = _modifiers(price, modifiers)
        levels = [(0, None, *_vector(rates, price.provider, multiplier))]
        if tiered:
            levels += [(n, n, *_vector(r, price.provider, multiplier)) for n, r in price.tiers]
        naive = (price.base.input / PER, price.base.output / PER)
        return price, levels, multiplier, unpriced, naive

    def __call__(self, event: UsageEvent) -> Cost | None:
        key = (event.model, event.modifiers)
        try:
            plan = self._plans[key]
        except KeyError:
            plan = self._plans[key] = self._plan(*key)
        if plan is None:
            return None
        price, levels, multiplier, unpriced, naive = plan
        t = event.tokens
        _, tier_above, rates, explicit = levels[0]
        if len(levels) > 1 and not event.aggregated:  # a session total is many requests, not one long one
            prompt = t.input + t.cache_read + t.cache_write_5m + t.cache_write_1h
            for threshold, above, r, e in levels[1:]:
                if prompt > threshold:
                    tier_above, rates, explicit = above, r, e
        verified = price.verified
        if verified and explicit is not ALL_EXPLICIT:
            counts = (t.input, t.output, t.cache_read, t.cache_write_5m, t.cache_write_1h)
            verified = all(e or not c for c, e in zip(counts, explicit))
        return Cost(t.input * rates[0], t.output * rates[1], t.cache_read * rates[2], t.cache_write_5m * rates[3],
                    t.cache_write_1h * rates[4], multiplier, price.key, price.rate_source, verified, tier_above,
                    unpriced, t.reported_input * naive[0] + t.output * naive[1])


def price_event(event: UsageEvent, table: PriceTable) -> Cost | None:
    """One event's cost; for many events build one Pricer and call it."""
    return Pricer(table)(event)
