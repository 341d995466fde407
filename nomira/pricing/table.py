"""The bundled, dated price table and version-aware model matching.

Matching is exact after normalising vendor spellings (provider prefixes, Bedrock
and Vertex ids, dots for dashes, a trailing release date). It never falls back to
a prefix: `claude-opus-4-7` is not `claude-opus-4`, and `-fast` is not the base model.
"""
from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from nomira.events import TOKEN_TYPES

_PREFIX = re.compile(r"^(?:[a-z0-9_-]+/)+")
_BEDROCK = re.compile(r"^(?:(?:us|eu|apac|au|jp|global)\.)?anthropic\.(?P<m>.+?)(?:-v\d+(?::\d+)?)?$")
_DATE = re.compile(r"-(?:20\d{6}|\d{4}-\d{2}-\d{2})$")


@dataclass(frozen=True)
class Rates:
    """USD per million tokens; None where the table has no explicit rate."""

    input: float
    output: float
    cache_read: float | None = None
    cache_write_5m: float | None = None
    cache_write_1h: float | None = None

    @classmethod
    def from_dict(cls, d: dict, base: "Rates | None" = None) -> "Rates":
        if base is not None:
            d = {"input": base.input, "output": base.output, **d}
        return cls(**{k: d.get(k) for k in TOKEN_TYPES})


@dataclass(frozen=True)
class ModelPrice:
    key: str
    provider: str
    base: Rates
    tiers: tuple[tuple[int, Rates], ...] = ()
    service_tiers: dict = field(default_factory=dict)  # batch / priority / flex -> Rates
    multipliers: dict = field(default_factory=dict)  # fast, us -> float
    verified: bool = True
    source: str = "bundled"
    as_of: str = ""

    @property
    def rate_source(self) -> str:
        return f"{self.source}:{self.as_of}" if self.as_of else self.source


def model_price_from_dict(key: str, d: dict, source: str | None = None) -> ModelPrice:
    base = Rates.from_dict(d)
    tiers = tuple((int(t["above_tokens"]), Rates.from_dict(t, base)) for t in d.get("tiers", ()))
    service = {name: Rates.from_dict(d[name], base) for name in ("batch", "priority", "flex") if name in d}
    return ModelPrice(key=key, provider=d.get("provider", "other"), base=base, tiers=tiers,
                      service_tiers=service, multipliers=dict(d.get("multipliers", {})),
                      verified=bool(d.get("verified", False)), source=source or d.get("source", "bundled"),
                      as_of=d.get("as_of", ""))


def _bundled_bytes() -> bytes:
    return (Path(__file__).parent / "data" / "prices.json").read_bytes()


@lru_cache(maxsize=1)
def table_digest() -> str:
    """Identifies the rates in force, without parsing them (cached outputs depend on it)."""
    return hashlib.sha1(_bundled_bytes()).hexdigest()


@lru_cache(maxsize=1)
def load_bundled() -> "PriceTable":
    raw = json.loads(_bundled_bytes())
    models = {k: model_price_from_dict(k, v, source="bundled") for k, v in raw["models"].items()}
    return PriceTable(models, generated=raw.get("generated", ""))


def candidate_keys(model: str) -> list[str]:
    """Spellings of `model` to try, most specific first."""
    m = model.strip()
    out = [m]
    low = m.lower()
    out.append(low)
    bare = _PREFIX.sub("", low)
    out.append(bare)
    b = _BEDROCK.match(bare)
    if b:
        out.append(b.group("m"))
    more = []
    for c in out:
        c2 = c.replace("@", "-")
        more.append(c2)
        if "claude" in c2:
            more.append(re.sub(r"(\d)\.(\d)", r"\1-\2", c2))
    out += more
    out += [_DATE.sub("", c) for c in out]
    seen, ordered = set(), []
    for c in out:
        if c and c not in seen:
            seen.add(c)
            ordered.append(c)
    return ordered


class PriceTable:
    """Rates by model. With `above` layers (overrides, fresh feeds), each layer is tried in
    order for every spelling of the model before the next: an override always wins."""

    def __init__(self, models: dict[str, ModelPrice], generated: str = "",
                 above: list[dict[str, ModelPrice]] | None = None):
        self.models = models
        self.generated = generated
        self.layers = [*(above or []), models]
        self._memo: dict[str, ModelPrice | None] = {}

    def lookup(self, model: str) -> ModelPrice | None:
        if model in self._memo:
            return self._memo[model]
        found = None
        keys = candidate_keys(model)
        for layer in self.layers:
            found = next((layer[k] for k in keys if k in layer), None)
            if found is not None:
                break
        self._memo[model] = found
        return found

    def all_keys(self) -> list[str]:
        return sorted({k for layer in self.layers for k in layer})


def resolved(env=None) -> PriceTable:
    """The rates in force: local overrides, then fresh feeds, then the bundled table."""
    import os

    from nomira.pricing import feed
    env = os.environ if env is None else env
    bundled = load_bundled()
    return PriceTable(bundled.models, bundled.generated, [feed.load_overrides(env), *feed.fresh_feeds(env)])


def resolved_digest(env=None) -> str:
    """Changes whenever the rates in force could: bundled table, override file, feed caches."""
    import os

    from nomira.pricing import feed
    env = os.environ if env is None else env
    h = hashlib.sha1(table_digest().encode())
    for p in [feed.override_path(env), *(feed.cache_dir(env) / f"{n}.json" for n in feed.FEEDS)]:
        if p is not None and p.exists():
            st = p.stat()
            h.update(f"{p}:{st.st_size}:{st.st_mtime_ns}".encode())
    from datetime import datetime, timezone
    h.update(datetime.now(timezone.utc).strftime("%Y-%m-%d").encode())  # feeds expire by the day
    return h.hexdigest()
