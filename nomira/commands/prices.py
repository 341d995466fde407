"""`nomira prices [MODEL]`: the rates that would be used and where they come from;
`--update` refreshes the feeds (alias `--update-prices`); `--diff` shows where feeds
disagree with the bundled table."""
from __future__ import annotations

import json
import os
import sys

from nomira.cli import UserError
from nomira.reports.money import stamp

from nomira.ledger.events import TOKEN_TYPES as FIELDS


def add_arguments(name, p) -> None:
    p.add_argument("model", nargs="?", help="a model name as agents log it (e.g. claude-opus-4-7)")
    p.add_argument("--update", action="store_true", help="refresh the LiteLLM and OpenRouter feeds (24 h cache)")
    p.add_argument("--force", action="store_true", help="with --update: fetch even if the cache is fresh")
    p.add_argument("--diff", action="store_true", help="models whose feed rates differ from the bundled table")
    p.set_defaults(func=cmd_prices)


def describe(price) -> dict:
    from nomira.pricing.engine import _rate
    rates = {}
    for f in FIELDS:
        rate, explicit = _rate(price.base, f, price.provider)
        rates[f] = {"usd_per_mtok": rate, "explicit": explicit}
    return {"model": price.key, "provider": price.provider, "rate_source": price.rate_source,
            "verified": price.verified, "rates": rates,
            "tiers": [{"above_tokens": n, **{f: getattr(r, f) for f in FIELDS}} for n, r in price.tiers],
            "service_tiers": sorted(price.service_tiers), "multipliers": price.multipliers,
            "not_priced": list(price.unpriced)}


def cmd_prices(args) -> int:
    from nomira.pricing import feed
    from nomira.pricing.feed import resolved
    from nomira.pricing.table import load_bundled
    env = os.environ
    out: dict = {}
    if args.update:
        out["update"] = feed.update(env, force=args.force)
        if not args.json:
            for name, status in out["update"].items():
                print(f"{name}: {status}", file=sys.stderr)
    try:
        table = resolved(env)
    except ValueError as exc:
        raise UserError(str(exc)) from exc
    if args.diff:
        out["diff"] = diff(load_bundled(), feed.fresh_feeds(env))
    if args.model:
        price = table.lookup(args.model)
        out["model"] = describe(price) if price else {"model": args.model, "rate_source": None,
                                                      "note": "unpriced: no rate in any layer; never guessed"}
    if not args.model and not args.diff:
        out["layers"] = layers(env, table)
    if args.json:
        print(json.dumps(stamp(out), indent=1))
        return 0
    if "layers" in out:
        for layer in out["layers"]:
            print(f"{layer['name']:<11} {layer['models']:>5} models  {layer['detail']}")
    if "diff" in out:
        rows = out["diff"]
        print("no fresh feed to compare (run `nomira prices --update`)" if rows is None else
              f"{len(rows)} models where a feed disagrees with the bundled table")
        for r in rows or []:
            print(f"  {r['model']} [{r['feed']}]: " + ", ".join(
                f"{f} {r['bundled'].get(f)} -> {r['feed_rates'].get(f)}" for f in r["fields"]))
    if "model" in out:
        m = out["model"]
        if m.get("rate_source") is None:
            print(f"{args.model}: {m['note']}")
        else:
            flag = "" if m["verified"] else " (unverified)"
            print(f"{args.model} -> {m['model']} ({m['provider']}), rates from {m['rate_source']}{flag}")
            for f, r in m["rates"].items():
                if r["usd_per_mtok"] is None:  # no published rate: a call that uses this type is unpriced
                    print(f"  {f:<15} no published rate (a call using it is unpriced)")
                    continue
                print(f"  {f:<15} ${r['usd_per_mtok']:,.4f} / MTok" + ("" if r["explicit"] else "  (derived)"))
            for t in m["tiers"]:
                print(f"  above {t['above_tokens']:,} input tokens: whole request at " + ", ".join(
                    f"{f} ${t[f]}" for f in FIELDS if t[f] is not None))
            if m["multipliers"]:
                print("  multipliers: " + ", ".join(f"{k} x{v}" for k, v in m["multipliers"].items()))
            if m["not_priced"]:
                print("  modifier not priced: " + ", ".join(m["not_priced"]))
    return 0


def layers(env, table) -> list[dict]:
    from nomira.pricing import feed
    out = []
    path = feed.override_path(env)
    out.append({"name": "override", "models": len(table.layers[0]),
                "detail": str(path) if path else f"none ({feed.config_home_hint(env)})"})
    for name in feed.FEEDS:
        cached = feed.read_cached(name, env)
        detail = "not fetched (nomira prices --update)"
        if cached:
            age = "fresh" if cached[1] > feed.now_utc() - feed.FRESH_FOR else "stale, not used"
            detail = f"fetched {cached[1]:%Y-%m-%d %H:%M} UTC ({age})"
        out.append({"name": name, "models": len(cached[0]) if cached else 0, "detail": detail})
    out.append({"name": "bundled", "models": len(table.models), "detail": f"as of {table.generated}"})
    return out


def diff(bundled, feeds) -> list[dict] | None:
    if not feeds:
        return None
    rows = []
    for layer in feeds:
        for key, fp in sorted(layer.items()):
            bp = bundled.models.get(key)
            if bp is None:
                continue
            b = {f: getattr(bp.base, f) for f in FIELDS}
            r = {f: getattr(fp.base, f) for f in FIELDS}
            fields = [f for f in FIELDS if r[f] is not None and b[f] is not None and abs(r[f] - b[f]) > 1e-9]
            if fields:
                rows.append({"model": key, "feed": fp.source, "fields": fields, "bundled": b, "feed_rates": r})
    return rows
