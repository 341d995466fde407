"""fx (vercel-labs/fx, a coding agent on the Vercel AI Gateway): `~/.fx/sessions/<session id>/usage-v2.json`.

Format (vercel-labs/fx `src/core/session/session_usage_sidecar.zig` `encode` and
`session_usage.zig` `writeRichSnapshot`; tokscale's `sessions/fx.rs` reads the same file): one
JSON document per session, replaced whole at every usage checkpoint: `{"schema_version": 1,
"session_id", "snapshot": {"schema_version": 2, "billing", ..., "total_cost", "input_tokens",
"output_tokens", "cache_read_tokens", "cache_write_tokens", "reasoning_tokens" (or null),
"request_count" (or null), ..., "models": [{"model", "first_sequence", "total_cost",
"input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens", "reasoning_tokens",
"request_count", ...}], "pending": [...], ...}}`. The session's running totals per model, summed
from the Gateway's settled generation records (`applyGenerationUnlocked`); generations not yet
settled (`pending`) are not in them yet.

Token semantics (`src/gateway/client.zig` `parseSseBilling`): each generation's counts are the
AI SDK's `usage.inputTokens.total` (cache reads and writes INCLUDED: fx rejects a record whose
`cacheRead` or `cacheWrite` exceeds it), `outputTokens.total` (reasoning included: `reasoning`
must not exceed it), `cacheRead`, `cacheWrite`, `reasoning`; `total_cost` is the Gateway's
charged `cost` in USD, kept beside the computed one. `model` is the Gateway's canonical slug
`<provider>/<model>` (e.g. `anthropic/claude-sonnet-4.5`): the part after the slash is the model.

Per model per session totals only: one `aggregated` event per model, dated at the session's
`updated_at_ms` in the sibling `session.json` (else `created_at_ms`; fx writes
`{"schema_version": 1, "id", "created_at_ms", "updated_at_ms", "workspace_root", ...}`:
`session_json.zig` `renderSessionJson`), else at the sidecar's own modification time (the last
checkpoint). Dedup key: (session id, model): a copied session folder
counts once, a rewritten sidecar replaces its totals. Locations: fx keeps every session under
`$HOME/.fx/sessions` (`src/core/shared/profile_paths.zig`; `USERPROFILE` on Windows) with no
override of its own: `$FX_SESSIONS_DIR` (Nomira's, comma list) points elsewhere. Project:
`workspace_root`.

Regime: API: fx bills each Gateway generation to the user's Vercel account (credits are dollars).
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Iterable, Mapping

from nomira.sources.scan import ScanStats
from nomira.sources import calls
from nomira.sources.calls import events_from_files, merge_records, partition_key  # noqa: F401

NAME = "fx"
USAGE = "usage-v2.json"
PLACES = "$FX_SESSIONS_DIR, ~/.fx/sessions: <session>/usage-v2.json"


def default_paths(env: Mapping[str, str] = os.environ) -> list[Path]:
    roots = calls.env_paths(env, "FX_SESSIONS_DIR")
    if roots is None:
        roots = [calls.home(env) / ".fx" / "sessions"]
    return calls.existing(r for r in roots if r.is_dir())


def claims(name: str, parent: str) -> bool:
    """A sidecar in a session folder of a `sessions` folder (given by `--path`)."""
    return name == USAGE and os.path.basename(os.path.dirname(parent)) == "sessions"


def find_files(roots: Iterable[Path]) -> list[Path]:
    return calls.find_claimed(roots, lambda name, parent: name == USAGE)


def _session(path: Path) -> dict:
    """The sibling `session.json` (times, workspace), or nothing when absent or unreadable."""
    try:
        doc = json.loads((path.parent / "session.json").read_bytes())
    except (OSError, ValueError, UnicodeDecodeError):
        return {}
    return doc if isinstance(doc, dict) else {}


def _split(inp: int, cr: int, cw: int) -> int:
    """Uncached input: the Gateway's input total includes the cache reads and writes."""
    return max(inp - cr - cw, 0)


def _parse(path: Path, stats: ScanStats) -> list[list]:
    doc = calls.read_json(path, stats)
    if doc is None:
        return []
    snap = doc.get("snapshot")
    models = snap.get("models") if isinstance(snap, dict) else None
    if not isinstance(models, list):
        stats.malformed += 1
        return []
    meta = _session(path)
    sid = doc.get("session_id") if isinstance(doc.get("session_id"), str) else path.parent.name
    cwd = meta.get("workspace_root")
    out = []
    for m in models:
        if not isinstance(m, dict) or not isinstance(m.get("model"), str):
            stats.malformed += 1
            continue
        inp, out_, cr, cw, reasoning = (calls.count(m.get(k)) for k in (
            "input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens", "reasoning_tokens"))
        if not (inp or out_ or cr or cw):
            continue
        ts = calls.stamp(stats, meta.get("updated_at_ms"), meta.get("created_at_ms"), os.path.getmtime(path) * 1000)
        if ts is None:
            continue
        provider, _, model = m["model"].partition("/") if "/" in m["model"] else ("", "", m["model"])
        out.append(calls.record(NAME, ts, f"{sid}:{m['model']}", sid, model, provider=provider or None,
                                input=_split(inp, cr, cw), output=out_, cache_read=cr, cache_write=cw,
                                reasoning=min(reasoning, out_), reported_input=inp, cwd=cwd,
                                agent_cost=calls.money(m.get("total_cost")), aggregated=True))
    return out


def scan_file(path: Path, start: int = 0, state: dict | None = None) -> tuple[list[list], dict, int, ScanStats]:
    return calls.whole_file(path, _parse)
