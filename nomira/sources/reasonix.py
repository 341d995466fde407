"""Reasonix (esengine/DeepSeek-Reasonix): per-call usage records in `<state root>/stats/YYYY-MM-DD.jsonl`.

Format (Reasonix `internal/stats/record.go` `record`, written by `recorder.go`
`recordProviderUsage` for every provider usage event of the desktop app, CLI, serve and bots;
tokscale's `sessions/reasonix.rs` reads the same files): append-only daily JSONL (O_APPEND under a
lock; a torn line is closed before the next append), one object per line: `{"ts": RFC 3339 with
the local offset, "model": "<provider>/<model>", "source": "desktop|cli|serve|bot|remote",
"prompt", "completion", "reasoning", "cache_hit", "cache_miss", "total", "requests"}` (every
field `omitempty`), plus optional cost-quote fields (`cost_amount`/`cost_currency`,
`valuation_usd`, ...). `{"ts", "turn": true}` rows mark completed turns and rows with a
`compaction` object record compaction passes: neither is a call.

Token semantics (`internal/provider/provider.go` `Usage`): `cache_hit` is the prompt served from
cache, `cache_miss` the rest of the prompt INCLUDING any cache writes (the stats row does not keep
`CacheWriteTokens`, so writes are priced at the input rate: a lower bound where a provider
charges more for them), `reasoning` a subset of `completion`. As Reasonix's own `Pricing.Cost`
does: a row without the hit/miss split bills the whole `prompt` as uncached, and a row with hits
but no misses bills `prompt - cache_hit` as uncached. `requests` > 1 marks a row that folds several
provider attempts (recovery) into one: `aggregated`. Reasonix's USD valuation (`valuation_usd`,
else `cost_amount` when `cost_currency` is USD) is kept beside the computed cost.

The session transcripts (`sessions/`) carry no token counts and are not read. Dedup key: the
row's own content (ts to the nanosecond, model, counts): a copied stats folder, or the same root
reached through two overrides, counts once. Locations: Reasonix's state root is
`$REASONIX_STATE_HOME`, else `$REASONIX_HOME`, else `~/.reasonix` (macOS, Linux) or
`%APPDATA%\\reasonix` (Windows) (Reasonix's README, "Memory"; `config.StatsDir`). Project: not
recorded (`unknown`); the session is the day's file.

Regime: API: Reasonix calls DeepSeek (or another configured provider) with the user's key.
"""
from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Iterable, Mapping

from nomira.sources.scan import ScanStats, scan_json_lines
from nomira.sources import calls
from nomira.sources.calls import events_from_files, merge_records, partition_key  # noqa: F401

NAME = "reasonix"
PLACES = "$REASONIX_STATE_HOME, $REASONIX_HOME, ~/.reasonix, %APPDATA%/reasonix: stats/YYYY-MM-DD.jsonl"
MARKERS = (b'"total"', b'"prompt"', b'"completion"')
DAY = re.compile(r"\d{4}-\d{2}-\d{2}\.jsonl")


def default_paths(env: Mapping[str, str] = os.environ) -> list[Path]:
    roots = []
    for var in ("REASONIX_STATE_HOME", "REASONIX_HOME"):
        if env.get(var, "").strip():
            roots.append(Path(env[var].strip()).expanduser())
            break
    else:
        roots.append(calls.home(env) / ".reasonix")
        if env.get("APPDATA"):
            roots.append(Path(env["APPDATA"]) / "reasonix")
    return calls.existing(r / "stats" for r in roots if (r / "stats").is_dir())


def claims(name: str, parent: str) -> bool:
    """A day file in a `stats` folder of a Reasonix state root (given by `--path`)."""
    return (DAY.fullmatch(name) is not None and os.path.basename(parent) == "stats"
            and "reasonix" in os.path.basename(os.path.dirname(parent)).lower())


def find_files(roots: Iterable[Path]) -> list[Path]:
    return calls.find_claimed(roots, lambda name, parent: DAY.fullmatch(name) is not None)


def _usd(d: dict) -> float | None:
    """Reasonix's own USD figure for the row, when it recorded one."""
    for value, currency in ((d.get("valuation_usd"), "USD"), (d.get("cost_amount"), d.get("cost_currency"))):
        if isinstance(value, str) and isinstance(currency, str) and currency.upper() == "USD":
            try:
                return calls.money(float(value))
            except ValueError:
                continue
    return None


def _visit(d: dict, state: dict, stats: ScanStats) -> list[list]:
    if d.get("turn") is True or "compaction" in d:
        return []
    prompt, out, hit, miss = (calls.count(d.get(k)) for k in ("prompt", "completion", "cache_hit", "cache_miss"))
    if hit + miss == 0:
        miss = prompt
    elif miss == 0 and prompt > hit:
        miss = prompt - hit
    if not (miss or hit or out):
        return []  # a request-only row: a failed call that carried no usage
    ts = calls.stamp(stats, d.get("ts"))
    if ts is None:
        return []
    ref = d.get("model") if isinstance(d.get("model"), str) else ""
    provider, _, model = ref.partition("/") if "/" in ref else ("", "", ref)
    requests = calls.count(d.get("requests"))
    key = f"{d.get('ts')}|{ref}|{prompt}|{out}|{hit}|{miss}|{requests}"
    return [calls.record(NAME, ts, key, state["session"], model, provider=provider or None, input=miss, output=out,
                         cache_read=hit, reasoning=min(calls.count(d.get("reasoning")), out),
                         reported_input=prompt or hit + miss, agent_cost=_usd(d), aggregated=requests > 1)]


def scan_file(path: Path, start: int = 0, state: dict | None = None) -> tuple[list[list], dict, int, ScanStats]:
    path = Path(path)
    state = dict(state) if state else {"session": f"stats/{path.stem}"}
    return scan_json_lines(path, start, state, MARKERS, _visit)
