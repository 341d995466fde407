#!/usr/bin/env python3
"""Regenerate nomira/pricing/data/prices.json from a downloaded LiteLLM price file.

LiteLLM publishes USD *per token*; Nomira's table keeps USD *per million tokens*
(the unit providers publish), one entry per model, with the feed it came from,
the date, and a `verified` flag. `verified` means every token type the provider
bills has an explicit rate in the feed; a model whose cache rates would have to be
derived from provider multipliers is kept but marked unverified.

Per-model dates and flags from the current table are kept when a model's rates
did not change, so a refresh does not pretend that old facts are new.

    python tools/update_prices.py model_prices_and_context_window.json \
        --source "litellm 1.109.1" --date 2026-11-24
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import re
import sys
from pathlib import Path

TABLE = Path(__file__).resolve().parent.parent / "nomira" / "pricing" / "data" / "prices.json"

PROVIDERS = {"anthropic": "anthropic", "openai": "openai", "gemini": "google"}
MODES = {None, "chat", "responses", "completion"}
BASE_FIELDS = {
    "input": "input_cost_per_token",
    "output": "output_cost_per_token",
    "cache_read": "cache_read_input_token_cost",
    "cache_write_5m": "cache_creation_input_token_cost",
    "cache_write_1h": "cache_creation_input_token_cost_above_1hr",
}
TIER_RE = re.compile(r"^(?P<base>.+)_above_(?P<n>\d+)k_tokens$")
MULTIPLIER_KEYS = ("fast", "us")
# Retired Claude models that LiteLLM no longer lists under the direct Anthropic
# provider but that real transcripts still contain. Their base Bedrock entries
# carry the same list rates; they are marked unverified and say where they came from.
LEGACY_ANTHROPIC = {
    "claude-sonnet-4-20250514": "anthropic.claude-sonnet-4-20250514-v1:0",
    "claude-opus-4-20250514": "anthropic.claude-opus-4-20250514-v1:0",
    "claude-opus-4-1-20250805": "anthropic.claude-opus-4-1-20250805-v1:0",
    "claude-3-7-sonnet-20250219": "anthropic.claude-3-7-sonnet-20250219-v1:0",
    "claude-3-5-haiku-20241022": "anthropic.claude-3-5-haiku-20241022-v1:0",
}


def per_mtok(value) -> float | None:
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return None
    return round(float(value) * 1_000_000, 9)


def rates_with_suffix(entry: dict, suffix: str) -> dict:
    out = {}
    for name, field in BASE_FIELDS.items():
        rate = per_mtok(entry.get(field + suffix))
        if rate is not None:
            out[name] = rate
    return out


def convert_entry(entry: dict, provider: str) -> dict:
    model = rates_with_suffix(entry, "")
    model["provider"] = provider
    tiers: dict[int, dict] = {}
    for key, value in entry.items():
        m = TIER_RE.match(key)
        if not m:
            continue
        threshold = int(m.group("n")) * 1000
        for name, field in BASE_FIELDS.items():
            if m.group("base") == field:
                rate = per_mtok(value)
                if rate is not None:
                    tiers.setdefault(threshold, {})[name] = rate
    if tiers:
        model["tiers"] = [dict(above_tokens=n, **rates) for n, rates in sorted(tiers.items())]
    for label, suffix in (("batch", "_batches"), ("priority", "_priority"), ("flex", "_flex")):
        mod = rates_with_suffix(entry, suffix)
        if mod:
            model[label] = mod
    specific = entry.get("provider_specific_entry") or {}
    mults = {k: float(specific[k]) for k in MULTIPLIER_KEYS if isinstance(specific.get(k), (int, float))}
    if mults:
        model["multipliers"] = mults
    model["verified"] = is_complete(model)
    return model


def is_complete(model: dict) -> bool:
    """All token types the provider bills have explicit rates."""
    need = ["input", "output", "cache_read"]
    if model["provider"] == "anthropic":
        need += ["cache_write_5m", "cache_write_1h"]
    return all(k in model for k in need)


def select(feed: dict) -> dict[str, dict]:
    models: dict[str, dict] = {}
    for key, entry in feed.items():
        if key == "sample_spec" or not isinstance(entry, dict):
            continue
        provider = PROVIDERS.get(entry.get("litellm_provider"))
        if provider is None or entry.get("mode") not in MODES:
            continue
        if "input_cost_per_token" not in entry or "output_cost_per_token" not in entry:
            continue
        name = key.split("/", 1)[1] if key.startswith("gemini/") else key
        if "/" in name:
            continue
        models[name] = convert_entry(entry, provider)
    for name, model in models.items():
        # LiteLLM keeps some published long-context tiers only on the model's base
        # Bedrock entry (same list rates); carry them over and say where from.
        if model["provider"] == "anthropic" and "tiers" not in model:
            twin_re = re.compile(rf"^anthropic\.{re.escape(name)}(?:-20\d{{6}})?-v1:0$")
            for twin_key in sorted(k for k in feed if twin_re.match(k)):
                twin = convert_entry(feed[twin_key], "anthropic")
                if twin.get("tiers") and twin.get("input") == model.get("input"):
                    model.update(tiers=twin["tiers"], tiers_from=twin_key)
                    break
    for name, feed_key in LEGACY_ANTHROPIC.items():
        if name not in models and isinstance(feed.get(feed_key), dict):
            model = convert_entry(feed[feed_key], "anthropic")
            model.update(verified=False, derived_from=feed_key)
            models[name] = model
    return models


def merge(new: dict[str, dict], old: dict[str, dict], source: str, date: str) -> dict[str, dict]:
    merged = {}
    for name, model in sorted(new.items()):
        prev = old.get(name)
        rates = {k: v for k, v in model.items() if k != "verified"}
        prev_rates = {k: v for k, v in (prev or {}).items() if k not in ("verified", "source", "as_of")}
        if prev and prev_rates == rates:
            model = dict(prev)
        else:
            model = dict(model, source=source, as_of=date)
            if prev is not None and prev.get("verified") is False:
                model["verified"] = False
        merged[name] = model
    return merged


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("feed", help="LiteLLM model_prices_and_context_window JSON file")
    ap.add_argument("--source", default="litellm", help="feed label stored per model")
    ap.add_argument("--date", default=dt.date.today().isoformat(), help="date the feed was taken")
    ap.add_argument("--out", default=str(TABLE))
    args = ap.parse_args(argv)
    feed = json.loads(Path(args.feed).read_text())
    out = Path(args.out)
    old = json.loads(out.read_text())["models"] if out.exists() else {}
    models = merge(select(feed), old, args.source, args.date)
    table = {
        "about": "USD per million tokens, per model and token type. Generated by tools/update_prices.py "
                 "from the LiteLLM price file (the data ccusage prices with), which mirrors the providers' "
                 "published rates.",
        "generated": args.date,
        "models": models,
    }
    out.write_text(json.dumps(table, indent=1, sort_keys=True) + "\n")
    print(f"{len(models)} models written to {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
