"""Command Code: `~/.commandcode/projects/<cwd slug>/<session id>.jsonl`, a v3 session tree with per-call usage.

Format (Command Code's own distribution, npm `command-code` 1.64.0 `dist/cli.mjs`: the repository holds no
product source; the same layout is noted from 1.69.0 by other trackers): `getProjectsBasePath` =
`$HOME` (else `USERPROFILE`) `/.commandcode/projects`, one folder per slugified working directory,
sessions at `<folder>/<id>.jsonl` beside sidecars (`.meta.json`, `.share.json`, `.checkpoints.jsonl`,
`.prompts.jsonl`, `.scheduled-tasks.json`, `.v2.bak`: not read). Line one is the header
`{"type": "session", "version": 3, "id", "timestamp", "cwd", "parentSession"?}`; then entries
`{"type": "message", "id", "parentId", "timestamp", "message": {...}, "usage"?, "model"?, "effort"?}`
(`appendMessage`), `model_change`, `effort_change`, `compaction`, .... An assistant message entry
carries the call's usage (`toSessionUsage`): `{inputTokens, outputTokens, cacheReadTokens,
cacheWriteTokens, cacheWriteTokens1h?, costUsd?}`, from the AI SDK's `totalUsage`
(`inputTokenDetails.cacheReadTokens` / `cacheWriteTokens`).

Token semantics (Command Code's `estimateSessionCostUsd`): `inputTokens` INCLUDES the cache reads and
writes (uncached input = inputTokens - cacheReadTokens - cacheWriteTokens), `cacheWriteTokens1h` is
the part of the writes held for an hour (priced here at the 5-minute write rate: the call record
keeps one write bucket), output as the AI SDK reports it (reasoning included). `costUsd` is Command
Code's own estimate from its display rates, kept beside the computed cost. The model is the entry's
`model`, else the last `model_change`. Files of the old v2 layout carry no usage (nothing counted).

Dedup key: (entry id, timestamp): a fork copies its parent's entries with their ids into a new
session file, and each call counts once; rewound branches stay in the file and are counted (they
were billed). Locations: `$COMMANDCODE_PROJECTS_DIR` (Nomira's, comma list), `~/.commandcode/projects`.
Project: the header's `cwd`.

Regime: not established (Command Code plans and credits); priced at API rates.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable, Mapping

from nomira.sources.scan import ScanStats, scan_json_lines
from nomira.sources import calls
from nomira.sources.calls import events_from_files, merge_records, partition_key  # noqa: F401

NAME = "commandcode"
PLACES = "$COMMANDCODE_PROJECTS_DIR, ~/.commandcode/projects: <cwd slug>/<session>.jsonl"
MARKERS = (b'"usage"', b'"session"', b'"model_change"')
SIDECARS = (".checkpoints.jsonl", ".prompts.jsonl")


def default_paths(env: Mapping[str, str] = os.environ) -> list[Path]:
    roots = calls.env_paths(env, "COMMANDCODE_PROJECTS_DIR")
    if roots is None:
        roots = [calls.home(env) / ".commandcode" / "projects"]
    return calls.existing(r for r in roots if r.is_dir())


def _session_file(name: str) -> bool:
    return name.endswith(".jsonl") and not name.endswith(SIDECARS)


def claims(name: str, parent: str) -> bool:
    return _session_file(name) and f"{os.sep}.commandcode{os.sep}projects{os.sep}" in f"{parent}{os.sep}"


def find_files(roots: Iterable[Path]) -> list[Path]:
    return calls.find_claimed(roots, lambda name, parent: _session_file(name))


def _visit(d: dict, state: dict, stats: ScanStats) -> list[list]:
    kind = d.get("type")
    if kind == "session":
        if isinstance(d.get("id"), str) and d["id"]:
            state["session"] = d["id"]
        if isinstance(d.get("cwd"), str) and d["cwd"]:
            state["cwd"] = d["cwd"]
        return []
    if kind == "model_change":
        if isinstance(d.get("model"), str) and d["model"]:
            state["model"] = d["model"]
        return []
    if kind != "message" or "usage" not in d:
        return []
    u = d["usage"]
    if not isinstance(u, dict):
        stats.malformed += 1
        return []
    inp, out, cr, cw = (calls.count(u.get(k)) for k in ("inputTokens", "outputTokens", "cacheReadTokens",
                                                         "cacheWriteTokens"))
    if not (inp or out or cr or cw):
        return []
    ts = calls.stamp(stats, d.get("timestamp"))
    if ts is None:
        return []
    model = d.get("model") if isinstance(d.get("model"), str) and d["model"] else state.get("model")
    if isinstance(d.get("model"), str) and d["model"]:
        state["model"] = d["model"]
    eid = d.get("id") if isinstance(d.get("id"), str) and d["id"] else None
    return [calls.record(NAME, ts, f"{eid}:{d.get('timestamp')}" if eid else None, state["session"], model,
                         input=max(inp - cr - cw, 0), output=out, cache_read=cr, cache_write=cw, reported_input=inp,
                         cwd=state.get("cwd"), agent_cost=calls.money(u.get("costUsd")))]


def scan_file(path: Path, start: int = 0, state: dict | None = None) -> tuple[list[list], dict, int, ScanStats]:
    path = Path(path)
    state = dict(state) if state else {"session": path.stem, "cwd": None, "model": None}
    return scan_json_lines(path, start, state, MARKERS, _visit)
