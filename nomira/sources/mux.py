"""Mux (coder/mux) workspaces: `~/.mux/sessions/<workspace id>/session-usage.json`.

Format (coder/mux `src/common/orpc/schemas` `SessionUsageFileSchema`, written on every
stream end; `src/common/utils/tokens/displayUsage.ts` `createDisplayUsage`): one JSON
document per workspace, rewritten whole: `{version: 1, byModel: {"<provider>:<model>":
{input, cached, cacheCreate, output, reasoning}}, lastRequest?: {model, usage,
timestamp (epoch ms)}}`, each bucket `{tokens, cost_usd?}`. Buckets are disjoint: `input`
is uncached input (Mux subtracts `cachedInputTokens` for `openai:` models; for other
OpenAI-style providers it is the SDK's figure, UNCONFIRMED), `cached` cache reads,
`cacheCreate` Anthropic cache writes, `output` EXCLUDES reasoning (`reasoning` is apart).
Mux's own figure is the sum of the buckets' `cost_usd` (its models.json rates), kept
beside the computed one.

Per model per workspace totals only: one `aggregated` event per model, dated at the
workspace's last request (the only time the file holds; a long-lived workspace's whole
usage lands on that day). Dedup key: (workspace id, model key): a copy counts once.
Project: not in the file (`unknown`).

Sub-agent roll-ups (`src/node/services/sessionUsageService.ts` `rollUpUsageIntoParent`): when a
child workspace is deleted its `byModel` usage is merged into the parent's file and the child id
recorded in the parent's `rolledUpFrom` ledger. A child file still on disk (a removal that failed
or is retried) whose id a sibling parent lists is skipped, counted `mux_rolled_up_child`: its
usage is in the parent's totals. Decided when the child's file is read: a child file unchanged
since an earlier cached scan keeps that scan's result until it changes (`--no-cache` re-reads).

Mux was renamed Xum (coder/mux, `src/common/constants/paths.ts`, the rename notes in its built-in
docs): `~/.xum` (`~/.xum-dev`) is canonical and `~/.mux` (`~/.mux-dev`, `~/.cmux`) become links
to it; `$XUM_ROOT` wins over its alias `$MUX_ROOT`. Homes reached through such a link are read
once (roots deduplicated by their resolved path).

Regime: API. Mux calls the providers with the user's keys: the figures are the bill.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Iterable, Mapping

from nomira.sources.scan import ScanStats
from nomira.sources import calls
from nomira.sources.calls import events_from_files, merge_records, partition_key  # noqa: F401

NAME = "mux"
USAGE = "session-usage.json"


def default_paths(env: Mapping[str, str] = os.environ) -> list[Path]:
    explicit = env.get("XUM_ROOT") or env.get("MUX_ROOT")
    if explicit:
        roots = [Path(explicit).expanduser()]
    else:
        home = calls.home(env)
        roots = [home / d for d in (".xum", ".xum-dev", ".mux", ".mux-dev", ".cmux")]
    out, seen = [], set()
    for r in roots:
        sessions = r / "sessions"
        real = sessions.resolve() if sessions.is_dir() else None
        if real is not None and real not in seen:  # ~/.mux links to ~/.xum after the rename
            seen.add(real)
            out.append(sessions)
    return out


def claims(name: str, parent: str) -> bool:
    return name == USAGE and os.path.basename(os.path.dirname(parent)) == "sessions"


def find_files(roots: Iterable[Path]) -> list[Path]:
    return calls.find_claimed(roots, claims)


def _bucket(m: dict, k: str) -> tuple[int, float | None]:
    b = m.get(k) if isinstance(m.get(k), dict) else {}
    return calls.count(b.get("tokens")), calls.money(b.get("cost_usd"))


_ROLLED_UP: dict[tuple, frozenset] = {}  # (sessions folder, its workspaces' file states) -> child ids rolled up


def _rolled_up(sessions: Path) -> frozenset:
    """Workspace ids that some workspace of this folder lists in its `rolledUpFrom` ledger, read again
    whenever a workspace file of the folder changed (one stat per workspace)."""
    files = sorted(sessions.glob(f"*/{USAGE}"))
    try:
        key = (str(sessions), tuple((f.parent.name, f.stat().st_mtime_ns, f.stat().st_size) for f in files))
    except OSError:
        return frozenset()
    if key not in _ROLLED_UP:
        ids = set()
        for f in files:
            try:
                data = f.read_bytes()
                ledger = json.loads(data).get("rolledUpFrom") if b'"rolledUpFrom"' in data else None
            except (OSError, ValueError, AttributeError):
                continue
            if isinstance(ledger, dict):
                ids.update(k for k in ledger if k != f.parent.name)
        if len(_ROLLED_UP) > 64:
            _ROLLED_UP.clear()
        _ROLLED_UP[key] = frozenset(ids)
    return _ROLLED_UP[key]


def _parse(path: Path, stats: ScanStats) -> list[list]:
    doc = calls.read_json(path, stats)
    if doc is None:
        return []
    if path.parent.name in _rolled_up(path.parent.parent):
        stats.skip("mux_rolled_up_child")
        return []
    by_model = doc.get("byModel")
    if not isinstance(by_model, dict):
        stats.malformed += 1
        return []
    workspace = path.parent.name
    out = []
    for key, m in sorted(by_model.items()):
        if not isinstance(m, dict):
            stats.malformed += 1
            continue
        (inp, c1), (cr, c2), (cw, c3), (out_, c4), (reasoning, c5) = (
            _bucket(m, k) for k in ("input", "cached", "cacheCreate", "output", "reasoning"))
        if not (inp or cr or cw or out_ or reasoning):
            continue
        ts = calls.stamp(stats, calls.dig(doc, "lastRequest", "timestamp"))
        if ts is None:
            continue
        model = key.partition(":")[2] or key
        costs = [c for c in (c1, c2, c3, c4, c5) if c is not None]
        out.append(calls.record(NAME, ts, f"{workspace}:{key}", workspace, model, input=inp,
                                output=out_ + reasoning, cache_read=cr, cache_write=cw, reasoning=reasoning,
                                reported_input=inp, agent_cost=sum(costs) if costs else None, aggregated=True))
    return out


def scan_file(path: Path, start: int = 0, state: dict | None = None) -> tuple[list[list], dict, int, ScanStats]:
    return calls.whole_file(path, _parse)
