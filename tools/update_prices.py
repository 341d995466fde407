#!/usr/bin/env python3
"""Regenerate nomira/pricing/data/prices.json from a downloaded LiteLLM price file.

LiteLLM publishes USD *per token*; Nomira's table keeps USD *per million tokens*
(the unit providers publish). Every token-priced text model (modes chat, responses,
completion) of every provider is kept under LiteLLM's own key, one compact line per
model; the feed's name and date are recorded once, in the header. `verified: false`
marks a model whose billed cache rates would have to be derived from provider
multipliers. The output depends only on the file and the header's source and date,
so the same file regenerates the table byte for byte:

    pip download --no-deps litellm -d /tmp/litellm && unzip -o /tmp/litellm/litellm-*.whl \
        'litellm/model_prices_and_context_window_backup.json' -d /tmp/litellm
    python tools/update_prices.py /tmp/litellm/litellm/model_prices_and_context_window_backup.json \
        --source "litellm 1.110.2 model_prices_and_context_window_backup.json" --date 2026-12-02

Without --source/--date the current table's are kept (a regeneration, not a refresh).
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from nomira.pricing.feed import litellm_entry, litellm_models  # noqa: E402  (one conversion, shared)

TABLE = ROOT / "nomira" / "pricing" / "data" / "prices.json"

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


# Published fast-mode rules missing from the feed: Anthropic priced Opus 4.6 and Opus 4.7 fast mode
# at $30 / $150 per MTok, 6x their standard rates (the multiplier ccusage also applies; Claude Code's
# fast-mode page: Opus 4.7's fast mode deprecated 2026-06-25, removed 2026-07-24, so transcripts
# before then hold fast calls billed at 6x).
PUBLISHED_FAST = {"claude-opus-4-6": 6.0, "claude-opus-4-6-20260205": 6.0,
                  "claude-opus-4-7": 6.0, "claude-opus-4-7-20260416": 6.0}


# Published rates of Claude models the feed lists only under a reseller's key without cache rates, whose
# cache rates do not follow Anthropic's usual multipliers: Claude Haiku 3 (Anthropic's pricing page:
# $0.25 input, $0.30 5-minute write, $0.50 1-hour write, $0.03 cache read, $1.25 output per MTok,
# 1.2x and 0.12x input, not 1.25x and 0.1x), kept while the feed still lists the model (its key there).
PUBLISHED_ANTHROPIC = {
    "claude-3-haiku-20240307": ("vertex_ai/claude-3-haiku@20240307", {
        "input": 0.25, "output": 1.25, "cache_write_5m": 0.30, "cache_write_1h": 0.50, "cache_read": 0.03}),
}


# Anthropic's documented aliases of retired dated models (the API answers with the dated id, but a proxy
# may log the alias it was asked for): the dated model's rates, `alias_of` it.
ANTHROPIC_ALIASES = {
    "claude-opus-4-1": "claude-opus-4-1-20250805",
    "claude-opus-4-0": "claude-opus-4-20250514",
    "claude-sonnet-4-0": "claude-sonnet-4-20250514",
    "claude-3-7-sonnet-latest": "claude-3-7-sonnet-20250219",
    "claude-3-5-haiku-latest": "claude-3-5-haiku-20241022",
    # the undated id of a model with one snapshot, as OpenRouter (`anthropic/claude-sonnet-4`) and OpenCode's
    # GitHub Copilot provider (`claude-3.7-sonnet`) log it: without them `claude-3-5-haiku` fell to Vertex's
    # resale entry ($1 / $5 against Anthropic's $0.80 / $4), `claude-3-haiku` to Vertex's (no cache rates of
    # its own), and the others were unpriced (ccusage 20.0.24 prices them at the dated model's rates)
    "claude-3-5-haiku": "claude-3-5-haiku-20241022",
    "claude-sonnet-4": "claude-sonnet-4-20250514",
    "claude-opus-4": "claude-opus-4-20250514",
    "claude-3-7-sonnet": "claude-3-7-sonnet-20250219",
    "claude-3-haiku": "claude-3-haiku-20240307",
}


def select(feed: dict) -> dict[str, dict]:
    models = litellm_models(feed)
    for name, model in models.items():
        # LiteLLM keeps some published long-context tiers only on the model's base
        # Bedrock entry (same list rates); carry them over and say where from.
        if model["provider"] == "anthropic" and "tiers" not in model:
            twin_re = re.compile(rf"^anthropic\.{re.escape(name)}(?:-20\d{{6}})?-v1:0$")
            for twin_key in sorted(k for k in feed if twin_re.match(k)):
                twin = litellm_entry(feed[twin_key], "anthropic")
                if twin.get("tiers") and twin.get("input") == model.get("input"):
                    model.update(tiers=twin["tiers"], tiers_from=twin_key)
                    break
    for name, mult in PUBLISHED_FAST.items():
        if name in models and "fast" not in models[name].get("multipliers", {}):
            models[name].setdefault("multipliers", {})["fast"] = mult
            models[name]["fast_from"] = "Anthropic fast-mode pricing (6x standard)"
    for name, (feed_key, rates) in PUBLISHED_ANTHROPIC.items():
        if name not in models and feed_key in feed:
            models[name] = dict(rates, provider="anthropic", rates_from="Anthropic pricing page (Claude Haiku 3)")
    for name, feed_key in LEGACY_ANTHROPIC.items():
        if name not in models and isinstance(feed.get(feed_key), dict):
            model = litellm_entry(feed[feed_key], "anthropic")
            model.update(verified=False, derived_from=feed_key)
            models[name] = model
    for alias, dated in ANTHROPIC_ALIASES.items():
        if alias not in models and dated in models:
            models[alias] = dict(models[dated], alias_of=dated)
    return models


def render(models: dict[str, dict], source: str, date: str) -> str:
    """One model per line (readable diffs), no spaces (small), sorted (deterministic)."""
    def dumps(o) -> str:
        return json.dumps(o, sort_keys=True, separators=(",", ":"))
    head = {"about": "USD per million tokens, per model and token type, from the LiteLLM price file "
                     "(the data ccusage prices with), which mirrors the providers' published rates. "
                     "Generated by tools/update_prices.py; source and date below apply to every entry.",
            "generated": date, "source": source}
    lines = [f"{dumps(name)}:{dumps(compact(model))}" for name, model in sorted(models.items())]
    return dumps(head)[:-1] + ',"models":{\n' + ",\n".join(lines) + "\n}}\n"


def compact(model: dict) -> dict:
    model = dict(model)
    if model.get("verified", True):
        model.pop("verified", None)  # the default
    return model


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("feed", help="LiteLLM model_prices_and_context_window(_backup).json")
    ap.add_argument("--source", help="feed label, e.g. 'litellm 1.110.2 ...' (default: the current table's)")
    ap.add_argument("--date", help="date the feed was taken, YYYY-MM-DD (default: the current table's)")
    ap.add_argument("--out", default=str(TABLE))
    args = ap.parse_args(argv)
    feed = json.loads(Path(args.feed).read_text())
    out = Path(args.out)
    old = json.loads(out.read_text()) if out.exists() else {}
    source = args.source or old.get("source") or "litellm"
    date = args.date or old.get("generated") or dt.date.today().isoformat()
    dt.date.fromisoformat(date)
    models = select(feed)
    out.write_text(render(models, source, date))
    print(f"{len(models)} models written to {out} ({out.stat().st_size:,} bytes)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
