"""Grok Build (xAI's coding agent): `~/.grok/sessions/<url-encoded cwd>/<session id>/updates.jsonl`.

Format (xai-org/grok-build's persisted session, as agentsview's `grok.go` reads it and its goldens
generated through Grok Build's own Rust types pin it): `updates.jsonl` is an append-only log of
Agent Client Protocol session updates, `{"timestamp": <epoch s>, "params": {"update":
{"sessionUpdate": "turn_completed", "prompt_id", "usage": {inputTokens, outputTokens,
cachedReadTokens, reasoningTokens?, totalTokens?, costUsdTicks?, modelUsage: {<model>: {same
counts}}}}}}`. One usage payload per completed turn, a per-turn measurement (not cumulative), split
per model in `modelUsage` (the turn's own counts when it has none, under the session's model from
`summary.json`'s `current_model_id`). `inputTokens` includes the cached reads (ACP; agentsview subtracts them): where a
`totalTokens` is logged it decides (`calls.split_by_total`), else the cache is taken out of input.
`costUsdTicks` is Grok's cost in 1e-10 USD, kept beside the computed one. `signals.json`
(session totals: peak context, output) is not needed.

Prices: xAI's rates from the bundled table (`xai/grok-4.5`, `xai/grok-code-fast-1`, ...); a model not
in it is reported unpriced (Grok's own cost beside), never guessed. Regime: not established (priced at
API rates; `--regime`).

Dedup key: (session, prompt_id, model): a re-emitted payload for the same turn counts once (the
copy with the most tokens). Payloads from before `prompt_id` are keyed by their turn ordinal in the
file. Locations: `$GROK_DIR` (as agentsview names it), `~/.grok/sessions`. Project: `summary.json`'s
`info.cwd`, else the session's folder (the url-encoded working directory).
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Iterable, Mapping
from urllib.parse import unquote

from nomira.sources.scan import ScanStats, scan_json_lines
from nomira.sources import calls
from nomira.sources.calls import events_from_files, merge_records, partition_key  # noqa: F401

NAME = "grok"
PLACES = "$GROK_DIR, ~/.grok/sessions: <url-encoded cwd>/<session>/updates.jsonl"
FILE = "updates.jsonl"
MARKERS = (b'"usage"',)
TICKS_PER_USD = 1e10


def default_paths(env: Mapping[str, str] = os.environ) -> list[Path]:
    roots = calls.env_paths(env, "GROK_DIR")
    if roots is None:
        roots = [calls.home(env) / ".grok" / "sessions"]
    return calls.existing(r for r in roots if r.is_dir())


def claims(name: str, parent: str) -> bool:
    return name == FILE and os.sep + ".grok" + os.sep in parent + os.sep


def find_files(roots: Iterable[Path]) -> list[Path]:
    return calls.find_claimed(roots, lambda name, parent: name == FILE)


def _summary(path: Path) -> tuple[str | None, str | None]:
    """(model, working directory) of the session's `summary.json` (`current_model_id`, `info.cwd`)."""
    try:
        doc = json.loads((path.parent / "summary.json").read_bytes())
    except (OSError, ValueError, UnicodeDecodeError):
        return None, None
    if not isinstance(doc, dict):
        return None, None
    model = next((m for m in (doc.get(k) for k in ("current_model_id", "modelId", "model_id")) if isinstance(m, str) and m),
                 None)
    cwd = calls.dig(doc, "info", "cwd")
    return model, cwd if isinstance(cwd, str) else None


def _record(u: dict, model, key: str, ts: str, state: dict) -> list | None:
    inp, out = calls.count(u.get("inputTokens")), calls.count(u.get("outputTokens"))
    cr, cw = calls.count(u.get("cachedReadTokens")), calls.count(u.get("cachedWriteTokens"))
    reasoning = calls.count(u.get("reasoningTokens")) or calls.count(u.get("thoughtTokens"))
    if not (inp or out or cr or cw):
        return None
    total = calls.count(u.get("totalTokens"))
    if total:
        inp, out, _ = calls.split_by_total(inp, out, cr, cw, reasoning, total)
    else:
        inp, out = max(inp - cr - cw, 0), out + reasoning
    ticks = u.get("costUsdTicks")
    cost = calls.money(ticks / TICKS_PER_USD) if isinstance(ticks, (int, float)) and type(ticks) is not bool else None
    return calls.record(NAME, ts, key, state["session"], model, input=inp, output=out, cache_read=cr, cache_write=cw,
                        reasoning=reasoning, cwd=state["cwd"], agent_cost=cost)


def _visit(d: dict, state: dict, stats: ScanStats) -> list[list] | None:
    usage = calls.dig(d, "params", "update", "usage")
    if not isinstance(usage, dict):
        return []
    state["turn"] += 1
    ts = calls.stamp(stats, d.get("timestamp"))
    if ts is None:
        return []
    pid = calls.dig(d, "params", "update", "prompt_id")
    turn = pid if isinstance(pid, str) and pid else f"turn-{state['turn']}"
    per_model = usage.get("modelUsage")
    parts = [(m, u) for m, u in per_model.items() if isinstance(u, dict)] if isinstance(per_model, dict) else []
    parts = parts or [(state["model"], usage)]
    out = []
    for model, u in parts:
        rec = _record(u, model, f"{state['session']}#{turn}#{model}", ts, state)
        if rec is not None:
            out.append(rec)
    return out


def scan_file(path: Path, start: int = 0, state: dict | None = None) -> tuple[list[list], dict, int, ScanStats]:
    path = Path(path)
    if not state:
        model, cwd = _summary(path)
        folder = unquote(path.parent.parent.name)
        state = {"session": path.parent.name, "cwd": cwd or (folder if folder.startswith("/") else None),
                 "model": model, "turn": 0}
    return scan_json_lines(path, start, dict(state), MARKERS, _visit)
