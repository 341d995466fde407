"""Price feeds (LiteLLM's price JSON, OpenRouter's models list) and local overrides.

Feeds are fetched only by `nomira prices --update` (never during a report), cached
under `$XDG_CACHE_HOME/nomira/prices/` with the date they were fetched, and used for
24 hours. A failed fetch keeps the last good cache and says so. Resolution for each
model: local override file -> fresh feed (LiteLLM, then OpenRouter) -> bundled table.
Feed values that are decimal strings are parsed with Decimal, so no float drift
enters a rate.
"""
from __future__ import annotations

import json
import os
import re
from datetime import datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Mapping

from nomira.ledger.events import TOKEN_TYPES
from nomira.pricing import stamp
from nomira.pricing.stamp import override_path
from nomira.pricing.table import LazyModels, ModelPrice, PriceTable, load_bundled, model_price_from_dict

LITELLM_URL = "https://raw.githubusercontent.com/BerriAI/litellm/main/model_prices_and_context_window.json"
OPENROUTER_URL = "https://openrouter.ai/api/v1/models"
FRESH_FOR = timedelta(hours=24)
# LiteLLM provider -> the vendor whose cache semantics apply (fallback multipliers); others keep their name.
LITELLM_PROVIDERS = {"anthropic": "anthropic", "openai": "openai", "text-completion-openai": "openai",
                     "gemini": "google", "vertex_ai-language-models": "google"}
# Token-priced text modes a coding agent calls (chat completions, the Responses API, legacy completions);
# image, audio, embedding, rerank, realtime... entries are not agent calls and are left out.
LITELLM_MODES = {"chat", "responses", "completion"}
BASE_FIELDS = {
    "input": "input_cost_per_token",
    "output": "output_cost_per_token",
    "cache_read": "cache_read_input_token_cost",
    "cache_write_5m": "cache_creation_input_token_cost",
    "cache_write_1h": "cache_creation_input_token_cost_above_1hr",
}
TIER_RE = re.compile(r"^(?P<base>.+)_above_(?P<n>\d+)k_tokens$")
MULTIPLIER_KEYS = ("fast", "us")


def per_mtok(value) -> float | None:
    """USD per token (number or decimal string) -> USD per million tokens, exactly where the input is exact."""
    if isinstance(value, bool) or value is None:
        return None
    try:
        d = Decimal(str(value)) if isinstance(value, (int, float)) else Decimal(value.strip())
    except (InvalidOperation, AttributeError):
        return None
    if not d.is_finite() or d < 0:
        return None
    return float(d * 1_000_000)


# --- LiteLLM ---

def _rates(entry: dict, suffix: str) -> dict:
    out = {}
    for name, field in BASE_FIELDS.items():
        rate = per_mtok(entry.get(field + suffix))
        if rate is not None:
            out[name] = rate
    return out


def litellm_entry(entry: dict, provider: str) -> dict:
    """One LiteLLM entry as a Nomira table entry (rates per MTok, tiers, service tiers, multipliers)."""
    model = _rates(entry, "")
    model["provider"] = provider
    tiers: dict[int, dict] = {}
    for key, value in entry.items():
        m = TIER_RE.match(key)
        if not m:
            continue
        for name, field in BASE_FIELDS.items():
            if m.group("base") == field and per_mtok(value) is not None:
                tiers.setdefault(int(m.group("n")) * 1000, {})[name] = per_mtok(value)
    ranged = _ranged_tiers(entry.get("tiered_pricing"))
    if ranged and "input" not in model:
        model.update(ranged.pop(0))
        tiers.update(ranged)
    if tiers:
        model["tiers"] = [dict(above_tokens=n, **r) for n, r in sorted(tiers.items())]
    for label, suffix in (("batch", "_batches"), ("priority", "_priority"), ("flex", "_flex")):
        mod = _rates(entry, suffix)
        if mod:
            model[label] = mod
    specific = entry.get("provider_specific_entry") or {}
    mults = {k: float(specific[k]) for k in MULTIPLIER_KEYS if isinstance(specific.get(k), (int, float))}
    if mults:
        model["multipliers"] = mults
    model["verified"] = is_complete(model) and not any(
        "output_cost_per_reasoning_token" in t for t in entry.get("tiered_pricing") or () if isinstance(t, dict))
    return model


def _ranged_tiers(tiered) -> dict[int, dict]:
    """LiteLLM's `tiered_pricing` (Qwen: rates by the request's input size, `range: [from, to]`) as
    {from: rates}, the first one from 0. A separate thinking-output rate is not kept: unverified."""
    out: dict[int, dict] = {}
    for t in tiered if isinstance(tiered, list) else ():
        if isinstance(t, dict) and isinstance(t.get("range"), list) and t["range"]:
            rates = _rates(t, "")
            if "input" in rates and "output" in rates:
                out[int(t["range"][0])] = rates
    return dict(sorted(out.items())) if 0 in out else {}


def is_complete(model: dict) -> bool:
    """Every token type the provider bills has an explicit rate."""
    need = ["input", "output", "cache_read"] + (["cache_write_5m", "cache_write_1h"]
                                                if model["provider"] == "anthropic" else [])
    return all(k in model for k in need)


def litellm_models(feed: dict) -> dict[str, dict]:
    """Every token-priced text model in a LiteLLM price file, under LiteLLM's own key (prefixes kept:
    `deepseek/deepseek-chat`, `us.anthropic.claude-...`, `vertex_ai/...`; matching resolves spellings)."""
    models: dict[str, dict] = {}
    for key, entry in feed.items():
        if key == "sample_spec" or not isinstance(entry, dict) or entry.get("mode") not in LITELLM_MODES:
            continue
        priced = per_mtok(entry.get("input_cost_per_token")) is not None and per_mtok(
            entry.get("output_cost_per_token")) is not None
        if not priced and not _ranged_tiers(entry.get("tiered_pricing")):
            continue
        provider = entry.get("litellm_provider")
        if not isinstance(provider, str):
            continue
        if provider.startswith("bedrock") and "anthropic." in key:
            provider = "anthropic"
        elif provider == "vertex_ai-anthropic_models":
            provider = "anthropic"
        elif provider.startswith("vertex_ai") and "gemini" in key:
            provider = "gemini"
        models[key] = litellm_entry(entry, LITELLM_PROVIDERS.get(provider, provider))
    return models


# --- OpenRouter ---

OPENROUTER_PROVIDERS = {"anthropic": "anthropic", "openai": "openai", "google": "google"}


def openrouter_models(feed: dict) -> dict[str, dict]:
    """OpenRouter's /models list as table entries. Its ids use dots (claude-sonnet-4.5); Nomira's
    matching normalises both spellings. It publishes no long-context tiers and one cache-write rate."""
    models = {}
    for m in feed.get("data", []) if isinstance(feed, dict) else []:
        if not isinstance(m, dict) or not isinstance(m.get("id"), str) or "/" not in m["id"]:
            continue
        vendor, name = m["id"].split("/", 1)
        p = m.get("pricing") or {}
        inp, out = per_mtok(p.get("prompt")), per_mtok(p.get("completion"))
        if inp is None or out is None or inp < 0:
            continue
        entry = {"provider": OPENROUTER_PROVIDERS.get(vendor, vendor), "input": inp, "output": out}
        if per_mtok(p.get("input_cache_read")) is not None:
            entry["cache_read"] = per_mtok(p.get("input_cache_read"))
        if per_mtok(p.get("input_cache_write")) is not None:
            entry["cache_write_5m"] = per_mtok(p.get("input_cache_write"))
        entry["verified"] = False  # one cache-write rate for every TTL: the 1h rate is derived
        models.setdefault(name.split(":")[0], entry)
    return models


# --- cache of fetched feeds ---

FEEDS = {"litellm": (LITELLM_URL, "NOMIRA_LITELLM_URL", litellm_models),
         "openrouter": (OPENROUTER_URL, "NOMIRA_OPENROUTER_URL", openrouter_models)}
assert tuple(FEEDS) == stamp.FEED_NAMES  # (the stamp names each feed's cache file without importing this)


def cache_dir(env: Mapping[str, str] = os.environ) -> Path:
    return stamp.feed_cache_dir(env)


def read_cached(name: str, env: Mapping[str, str] = os.environ) -> tuple[dict, datetime] | None:
    path = cache_dir(env) / f"{name}.json"
    try:
        doc = json.loads(path.read_text())
        return doc["models"], datetime.fromisoformat(doc["fetched_at"])
    except (OSError, ValueError, KeyError):
        return None


def update(env: Mapping[str, str] = os.environ, force: bool = False, now: datetime | None = None,
           timeout: float = 20.0) -> dict[str, str]:
    """Refresh each feed older than 24 hours (or all with `force`); returns a status line per feed."""
    import urllib.error
    import urllib.request  # only here: reports never touch the network
    now = now or datetime.now(timezone.utc)
    status = {}
    for name, (url, env_var, convert) in FEEDS.items():
        cached = read_cached(name, env)
        if cached and not force and now - cached[1] < FRESH_FOR:
            status[name] = f"fresh (fetched {cached[1]:%Y-%m-%d %H:%M} UTC, {len(cached[0])} models)"
            continue
        try:
            with urllib.request.urlopen(env.get(env_var) or url, timeout=timeout) as resp:
                models = convert(json.loads(resp.read()))
            if not models:
                raise ValueError("no usable models in the feed")
        except (urllib.error.URLError, OSError, ValueError) as exc:
            kept = f"keeping the cache from {cached[1]:%Y-%m-%d}" if cached else "no cache: bundled rates apply"
            status[name] = f"fetch failed ({getattr(exc, 'reason', exc)}); {kept}"
            continue
        d = cache_dir(env)
        d.mkdir(parents=True, exist_ok=True)
        tmp = d / f".{name}.json.tmp"
        tmp.write_text(json.dumps({"fetched_at": now.isoformat(), "source": env.get(env_var) or url,
                                   "models": models}))
        os.replace(tmp, d / f"{name}.json")
        status[name] = f"updated ({len(models)} models)"
    return status


def fresh_feeds(env: Mapping[str, str] = os.environ, now: datetime | None = None) -> list[Mapping[str, ModelPrice]]:
    """Cached feeds younger than 24 hours, in resolution order, as ModelPrice tables (built per model
    on first use: a feed holds thousands)."""
    now = now or datetime.now(timezone.utc)
    out = []
    for name in FEEDS:
        cached = read_cached(name, env)
        if cached and now - cached[1] < FRESH_FOR:
            day = f"{cached[1]:%Y-%m-%d}"
            out.append(LazyModels(cached[0], name, day))
    return out


def now_utc() -> datetime:
    return datetime.now(timezone.utc)


def config_home_hint(env: Mapping[str, str] = os.environ) -> str:
    from nomira.dirs import config_home
    return f"create {config_home(env) / 'prices.toml'} to override rates"


def load_overrides(env: Mapping[str, str] = os.environ) -> dict[str, ModelPrice]:
    """`$XDG_CONFIG_HOME/nomira/prices.toml` (or .json): [models."name"] with per-MTok rates."""
    path = override_path(env)
    if path is None:
        return {}
    import tomllib
    try:
        raw = tomllib.loads(path.read_text()) if path.suffix == ".toml" else json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ValueError(f"cannot read price overrides {path}: {exc}") from exc
    out = {}
    for name, rates in (raw.get("models") or {}).items():
        if not isinstance(rates, dict) or "input" not in rates or "output" not in rates:
            raise ValueError(f"{path}: model {name!r} needs at least input and output rates (USD per MTok)")
        entry = {k: float(v) for k, v in rates.items() if k in TOKEN_TYPES}
        entry.update(provider=rates.get("provider", "anthropic" if "claude" in name else "other"), verified=True)
        out[name] = model_price_from_dict(name, entry, source="override")
    return out


def resolved(env=None) -> PriceTable:
    """The rates in force: local overrides, then fresh feeds, then the bundled table."""
    env = os.environ if env is None else env
    bundled = load_bundled()
    return PriceTable(bundled.models, bundled.generated, [load_overrides(env), *fresh_feeds(env)])
