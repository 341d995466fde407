"""The cost of one event: each token type at its own rate, per the model's table entry.

- Long context: when a request's input side (uncached + cache read + cache writes)
  exceeds a tier threshold in the table, the *whole request* is billed at that tier.
- Modifiers the agent logged (fast mode, batch/priority tier, data residency) are
  priced where the table publishes the rule; otherwise the cost says which modifier
  it could not price.
- An unknown model, a generic routing label (`auto`, `default`: the model that served the call is
  not named) and a call using a token type the model has no rate for get no price at all (None),
  never a guess and never $0; `unpriced_reason` says which.
"""
from __future__ import annotations

from dataclasses import dataclass

from nomira.ledger.events import TOKEN_TYPES, UsageEvent, plausible, plausible_count
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


def _rate(rates: Rates, token_type: str, provider: str) -> tuple[float | None, bool]:
    """(rate or None when there is none, explicit?) for one token type."""
    value = getattr(rates, token_type)
    if value is not None:
        return value, True
    return fallback_rate(provider, token_type, rates.input), False


TYPE_LABELS = {"input": "input", "output": "output", "cache_read": "cache-read", "cache_write_5m": "cache-write",
               "cache_write_1h": "1-hour cache-write"}
ROUTING_LABELS = frozenset({"auto", "default", "router", "best"})
# (model, modifiers) -> why its calls may be unpriced: a reason, or the token types without a rate.
# Filled by every Pricer as it plans a model, read by the reports through unpriced_reason().
_WHY: dict[tuple, str | tuple[str, ...]] = {}


def is_routing_label(model: str) -> bool:
    m = model.strip().lower()
    return m in ROUTING_LABELS or m.rsplit("/", 1)[-1] == "auto"


def unpriced_reason(event: UsageEvent) -> str:
    """Why `event` has no price (for an event a Pricer returned None for)."""
    why = _WHY.get((event.model, event.modifiers))
    if isinstance(why, str):
        return why
    t = event.tokens
    if not (plausible(t) and plausible_count(t.reported_input)):
        return "token count out of range"
    missing = [TYPE_LABELS[k] for k in why or () if getattr(t, k)]
    return f"no {' or '.join(missing)} price" if missing else "unpriced"


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


def _vector(rates: Rates, provider: str, multiplier: float) -> tuple[tuple[float | None, ...], tuple | None]:
    """(rate per token by type, gaps): gaps is None when every rate is explicit, else (types without a
    rate, types with an implied rate, the rates with 0.0 where none), made once per model, not per call
    (sixty agents' models: many lack a cache rate)."""
    pairs = [_rate(rates, t, provider) for t in TOKEN_TYPES]
    per_token = tuple(None if r is None else r * multiplier / PER for r, _ in pairs)
    if all(e for _, e in pairs):
        return per_token, None
    gaps = (tuple(j for j, r in enumerate(per_token) if r is None), tuple(j for j, (_, e) in enumerate(pairs) if not e),
            tuple(x or 0.0 for x in per_token))
    return per_token, gaps


def _service_above(above: Rates, service: Rates, base: Rates) -> Rates:
    """A service tier's (batch, priority, flex) rates above a long-context threshold the table has no
    combined rate for: the tier's rates scaled by what the service tier does to the base rates, type
    by type (LiteLLM's combined rates are that product: gpt-5.6 priority above 272k, $16 / $60 per MTok;
    Anthropic's batch is half of every rate). A guess the report marks unverified; the service tier's
    plain rates, as before, billed such a request at about half."""
    def scale(t: str) -> float | None:
        a, sv, b = getattr(above, t), getattr(service, t), getattr(base, t)
        return None if a is None or sv is None or not b else a * sv / b
    return Rates(*(scale(t) for t in TOKEN_TYPES))


def _unverified(vector: tuple) -> tuple:
    """`_vector`'s (rates, gaps) with every type's rate implied: a call it prices is unverified."""
    per_token, gaps = vector
    if gaps is None:
        return per_token, ((), tuple(range(len(TOKEN_TYPES))), per_token)
    missing, _implied, zeroed = gaps
    return per_token, (missing, tuple(range(len(TOKEN_TYPES))), zeroed)


class Pricer:
    """Prices events against one table; per (model, modifiers) work is done once."""

    def __init__(self, table: PriceTable):
        self.table = table
        self._plans: dict = {}

    def _plan(self, model: str, modifiers) -> tuple | None:
        routing = is_routing_label(model)
        price = None if routing else self.table.lookup(model)
        if price is None:
            _WHY[(model, modifiers)] = ("generic routing label (the model that served it is not named)" if routing
                                        else "unknown model (no rate in the price table)")
            return None
        rates, multiplier, unpriced, tiered = _modifiers(price, modifiers)
        levels = [(0, None, *_vector(rates, price.provider, multiplier))]
        if tiered:
            levels += [(n, n, *_vector(r, price.provider, multiplier)) for n, r in price.tiers]
        else:  # a service tier's request above a long-context threshold (`_service_above`)
            levels += [(n, n, *_unverified(_vector(_service_above(r, rates, price.base), price.provider, multiplier)))
                       for n, r in price.tiers]
        _WHY[(model, modifiers)] = tuple(k for i, k in enumerate(TOKEN_TYPES)
                                         if any(level[2][i] is None for level in levels))
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
        _, tier_above, r, gaps = levels[0]
        if len(levels) > 1 and not event.aggregated:  # a session total is many requests, not one long one
            prompt = t.input + t.cache_read + t.cache_write_5m + t.cache_write_1h
            for threshold, above, rates, g in levels[1:]:
                if prompt > threshold:
                    tier_above, r, gaps = above, rates, g
        verified = price.verified
        if gaps is not None:
            missing, implied, r = gaps  # r: the rates with 0.0 where none (None only where unused)
            counts = (t.input, t.output, t.cache_read, t.cache_write_5m, t.cache_write_1h)
            for j in missing:
                if counts[j]:
                    return None  # a token type it used has no rate: unpriced (unpriced_reason says which)
            if verified:
                for j in implied:
                    if counts[j]:
                        verified = False
                        break
        try:
            return Cost(t.input * r[0], t.output * r[1], t.cache_read * r[2], t.cache_write_5m * r[3],
                        t.cache_write_1h * r[4], multiplier, price.key, price.rate_source, verified, tier_above,
                        unpriced, t.reported_input * naive[0] + t.output * naive[1])
        except OverflowError:  # (a count of hundreds of digits, from a source that passes counts through)
            return None


def price_event(event: UsageEvent, table: PriceTable) -> Cost | None:
    """One event's cost; for many events build one Pricer and call it."""
    return Pricer(table)(event)
