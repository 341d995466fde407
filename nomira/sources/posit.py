"""Posit Assistant (Positron / RStudio): `~/.posit/assistant/workspaces/<workspace>/<conversation>/lm-messages.jsonl`.

Format (agentsview `internal/parser/posit_assistant_provider.go` and its testdata): a
workspace folder holds `workspace.json {path}` (the project folder) and one folder per
conversation with `conversation.json` (the message tree) and `lm-messages.jsonl`, one
AI SDK message per line: `{id, message: {role, content, providerOptions:
{providerMetadata: {positai: {timestamp (ms), modelId, providerId, usage: {inputTokens,
outputTokens, totalTokens, cacheReadTokens, cacheWriteTokens, cacheWrite5mTokens,
cacheWrite1hTokens}}}}}}`; sub-agents under `<conversation>/subagents/<id>/` the same way.
Whether `inputTokens` includes the cache is read from each reply's own `totalTokens`
(`calls.split_by_total`; unmatched replies are read as disjoint and counted
`posit_total_unmatched`). 1-hour cache writes are priced at the 5-minute rate (the shared
record keeps one cache-write count).

Dedup key: (conversation folder, line id): a rewritten file or a copied workspace counts
once. Locations: `$POSIT_ASSISTANT_DIR` (agentsview's; comma list), `~/.posit/assistant/workspaces`.
Project: the workspace's `path`.

Regime: API: usage is billed per token by Posit AI or the user's provider.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Iterable, Mapping

from nomira.sources.scan import ScanStats
from nomira.sources import calls
from nomira.sources.calls import events_from_files, merge_records, partition_key  # noqa: F401

NAME = "posit_assistant"
FILE = "lm-messages.jsonl"
PLACES = "$POSIT_ASSISTANT_DIR, ~/.posit/assistant/workspaces"


def default_paths(env: Mapping[str, str] = os.environ) -> list[Path]:
    roots = calls.env_paths(env, "POSIT_ASSISTANT_DIR")
    if roots is None:
        roots = [calls.home(env) / ".posit" / "assistant" / "workspaces"]
    return calls.existing(r for r in roots if r.is_dir())


def claims(name: str, parent: str) -> bool:
    return name == FILE


def find_files(roots: Iterable[Path]) -> list[Path]:
    return calls.find_claimed(roots, claims)


def _workspace(path: Path) -> tuple[str, str | None]:
    """(conversation id, project folder): sub-agents belong to their conversation."""
    conv = path.parent
    if conv.parent.name == "subagents":
        conv = conv.parent.parent
    try:
        ws = json.loads((conv.parent / "workspace.json").read_bytes())
    except (OSError, ValueError):
        ws = None
    cwd = ws.get("path") if isinstance(ws, dict) else None
    return conv.name, cwd if isinstance(cwd, str) else None


def _parse(path: Path, stats: ScanStats) -> list[list]:
    session, cwd = _workspace(path)
    where = f"{session}:{path.parent.name if path.parent.name != session else ''}"  # sub-agent id, if one
    out = []
    with open(path, "rb") as f:
        for line in f:
            if not line.strip():
                continue
            stats.candidates += 1
            try:
                d = json.loads(line)
            except (ValueError, UnicodeDecodeError):
                stats.malformed += 1
                continue
            meta = calls.dig(d, "message", "providerOptions", "providerMetadata", "positai")
            if not isinstance(meta, dict) or calls.dig(d, "message", "role") != "assistant":
                continue
            u = meta.get("usage")
            if not isinstance(u, dict):
                continue
            inp, out_ = calls.count(u.get("inputTokens")), calls.count(u.get("outputTokens"))
            cr, cw = calls.count(u.get("cacheReadTokens")), calls.count(u.get("cacheWriteTokens"))
            if not (inp or out_ or cr or cw):
                continue
            inp, out_, matched = calls.split_by_total(inp, out_, cr, cw, calls.count(u.get("reasoningTokens")),
                                                      calls.count(u.get("totalTokens")))
            if not matched:
                stats.skip("posit_total_unmatched")
            ts = calls.stamp(stats, meta.get("timestamp"))
            if ts is None:
                continue
            out.append(calls.record(NAME, ts, f"{where}:{d.get('id')}", session, meta.get("modelId"), input=inp,
                                    output=out_, cache_read=cr, cache_write=cw, cwd=cwd))
    return out


def scan_file(path: Path, start: int = 0, state: dict | None = None) -> tuple[list[list], dict, int, ScanStats]:
    return calls.whole_file(path, _parse)
