"""Antigravity CLI: `~/.gemini/antigravity-cli/conversations/<uuid>.trajectory.json` sidecars (decoded trajectories).

The CLI's own conversation files are AES-encrypted (`conversations/<uuid>.pb`, `implicit/<uuid>.pb`)
or protobuf rows in SQLite (`conversations/<uuid>.db`, newer releases): neither is read (see
`opaque.py`). Beside them, the agy-reader decoder writes `<uuid>.trajectory.json`: the daemon's
own decode of the trajectory. Format (agentsview `internal/parser/antigravity_cli.go`, the
`agyTrajectory` schema and `extractAgyGeneratorUsage`, and its tests): `{trajectoryId, cascadeId,
steps: [{type, metadata {createdAt}, ...}], generatorMetadata: [{stepIndices: [..],
chatModel {model, usage {model, inputTokens, outputTokens, thinkingOutputTokens,
cacheReadTokens} (counts serialised as strings), chatStartMetadata {createdAt}}}], agyReader
{parentCascadeId}}`. One `generatorMetadata` item is one model generation (one call); an empty
`usage {}` marks a failed or retried one (nothing counted; `retryInfos` are not summed, as
agentsview).

Token semantics as the trackers read them (UNCONFIRMED: closed source, no total to check):
`inputTokens` without the cache reads (context = input + cacheRead), `outputTokens` with the
thinking tokens inside. Models are often `MODEL_PLACEHOLDER_*` ids: kept verbatim, unpriced.

Dedup key: (cascade id, first step index of the generation): no planner step is claimed by two
generations, so a sidecar rewritten as the session grows, or copied, counts each call once. Time:
`chatStartMetadata.createdAt`, else the first step's `createdAt`. Session: the file's uuid
(`implicit-<uuid>` under `implicit/`). Project: the conversation's `workspace` in the CLI's
`history.jsonl`. Locations: `$ANTIGRAVITY_CLI_DIR`, `~/.gemini/antigravity-cli` on every OS.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Iterable, Mapping

from nomira.sources.scan import ScanStats
from nomira.sources import calls
from nomira.sources.calls import events_from_files, merge_records, partition_key  # noqa: F401

NAME = "antigravity_cli"
SUFFIX = ".trajectory.json"
PLACES = "$ANTIGRAVITY_CLI_DIR, ~/.gemini/antigravity-cli: conversations/<uuid>.trajectory.json"


def default_paths(env: Mapping[str, str] = os.environ) -> list[Path]:
    roots = calls.env_paths(env, "ANTIGRAVITY_CLI_DIR") or [calls.home(env) / ".gemini" / "antigravity-cli"]
    return calls.existing(r for r in roots if r.is_dir())


def claims(name: str, parent: str) -> bool:
    return name.endswith(SUFFIX) and os.path.basename(parent) in ("conversations", "implicit")


def find_files(roots: Iterable[Path]) -> list[Path]:
    return calls.find_claimed(roots, claims)


def _workspaces(root: Path) -> dict[str, str]:
    """conversationId -> workspace from the CLI's prompt log (the last row wins)."""
    out: dict[str, str] = {}
    try:
        lines = (root / "history.jsonl").read_bytes().splitlines()
    except OSError:
        return out
    for line in lines:
        try:
            row = json.loads(line)
        except ValueError:
            continue
        conv, ws = (row.get("conversationId"), row.get("workspace")) if isinstance(row, dict) else (None, None)
        if isinstance(conv, str) and isinstance(ws, str):
            out[conv] = ws
    return out


def _parse(path: Path, stats: ScanStats) -> list[list]:
    doc = calls.read_json(path, stats)
    if doc is None:
        return []
    uuid = path.name[:-len(SUFFIX)]
    session = f"implicit-{uuid}" if path.parent.name == "implicit" else uuid
    cascade = doc.get("cascadeId") if isinstance(doc.get("cascadeId"), str) and doc["cascadeId"] else uuid
    cwd = _workspaces(path.parent.parent).get(uuid)
    steps = calls.listed(doc.get("steps"))
    out = []
    for n, gen in enumerate(calls.listed(doc.get("generatorMetadata"))):
        chat = calls.dig(gen, "chatModel")
        u = calls.dig(chat, "usage")
        if not isinstance(u, dict):
            continue
        inp, out_ = calls.count(u.get("inputTokens")), calls.count(u.get("outputTokens"))
        cr, thinking = calls.count(u.get("cacheReadTokens")), calls.count(u.get("thinkingOutputTokens"))
        if not (inp or out_ or cr):
            continue
        first = next((i for i in calls.listed(gen.get("stepIndices")) if type(i) is int and 0 <= i < len(steps)), None)
        ts = calls.stamp(stats, calls.dig(chat, "chatStartMetadata", "createdAt"),
                         calls.dig(steps[first], "metadata", "createdAt") if first is not None else None)
        if ts is None:
            continue
        model = chat.get("model") or u.get("model")
        key = f"{cascade}#step{first}" if first is not None else f"{cascade}#gen{n}"
        out.append(calls.record(NAME, ts, key, session, model if isinstance(model, str) else None, input=inp,
                                output=out_, cache_read=cr, reasoning=min(thinking, out_), cwd=cwd))
    return out


def scan_file(path: Path, start: int = 0, state: dict | None = None) -> tuple[list[list], dict, int, ScanStats]:
    return calls.whole_file(path, _parse)
