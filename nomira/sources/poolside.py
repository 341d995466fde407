"""Poolside Agent CLI (`pool`) trajectories: `<poolside data>/trajectories/trajectory-*.ndjson`.

Format (Poolside is closed source; the trajectory events as agentsview
`internal/parser/poolside.go` reads them, checked there against a real trajectory): one
JSON event per line `{id, step_id?, timestamp (ISO with offset), type, <type payload>}`:
`session.start {working_directories}`, `tool_call.inference.start {chat_completion_request:
{model}}` and, for the same `step_id`, `tool_call.inference.end {input_tokens,
output_tokens, cache_read_input_tokens, cache_write_input_tokens}`: one per model
request, so a mid-session model switch is attributed per request. Token semantics
UNCONFIRMED: the four counts are read as disjoint (Anthropic-style, as agentsview
does). Poolside's own models are not in the bundled price table: unpriced, tokens
counted.

Dedup key: (trajectory, inference.end event id): a copied trajectory counts once.
Locations: `$POOLSIDE_DIR` (agentsview's), `~/Library/Application Support/poolside`,
`$XDG_STATE_HOME/poolside` (`~/.local/state/poolside`), `%APPDATA%/poolside`.
Project: the first of `session.start.working_directories`.

Regime: API (Poolside's own plans bill per use; no local sign-in evidence either way).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable, Mapping

from nomira.sources.scan import ScanStats, scan_json_lines
from nomira.sources import calls
from nomira.sources.calls import events_from_files, merge_records, partition_key  # noqa: F401

NAME = "poolside"
PLACES = "$POOLSIDE_DIR, ~/Library/Application Support/poolside, ~/.local/state/poolside: trajectories/*.ndjson"
MARKERS = (b'"tool_call.inference.', b'"session.start"')


def default_paths(env: Mapping[str, str] = os.environ) -> list[Path]:
    roots = calls.env_paths(env, "POOLSIDE_DIR")
    if roots is None:
        home = calls.home(env)
        state = Path(env["XDG_STATE_HOME"]) if env.get("XDG_STATE_HOME") else home / ".local" / "state"
        roots = [home / "Library" / "Application Support" / "poolside", state / "poolside"]
        if env.get("APPDATA"):
            roots.append(Path(env["APPDATA"]) / "poolside")
    return calls.existing(r for r in roots if r.is_dir())


def claims(name: str, parent: str) -> bool:
    return name.startswith("trajectory") and name.endswith(".ndjson")


def find_files(roots: Iterable[Path]) -> list[Path]:
    return calls.find_claimed(roots, claims)


def _visit(d: dict, state: dict, stats: ScanStats) -> list[list] | None:
    kind = d.get("type")
    if kind == "session.start":
        dirs = calls.listed(calls.dig(d, "session_start", "working_directories"))
        if dirs and isinstance(dirs[0], str) and not state.get("cwd"):
            state["cwd"] = dirs[0]
        return []
    if kind == "tool_call.inference.start":
        model = calls.dig(d, "tool_call_inference_start", "chat_completion_request", "model")
        if isinstance(model, str) and model:
            state["models"][str(d.get("step_id"))] = model
            state["model"] = model
        return []
    if kind != "tool_call.inference.end":
        return []
    u = d.get("tool_call_inference_end")
    if not isinstance(u, dict):
        stats.malformed += 1
        return []
    inp, out = calls.count(u.get("input_tokens")), calls.count(u.get("output_tokens"))
    cr, cw = calls.count(u.get("cache_read_input_tokens")), calls.count(u.get("cache_write_input_tokens"))
    if not (inp or out or cr or cw):
        return []
    ts = calls.stamp(stats, d.get("timestamp"))
    if ts is None:
        return []
    model = state["models"].pop(str(d.get("step_id")), None) or state.get("model")
    eid = d.get("id") if isinstance(d.get("id"), str) and d["id"] else None
    return [calls.record(NAME, ts, f"{state['session']}:{eid}" if eid else None, state["session"], model,
                         input=inp, output=out, cache_read=cr, cache_write=cw, cwd=state.get("cwd"))]


def scan_file(path: Path, start: int = 0, state: dict | None = None) -> tuple[list[list], dict, int, ScanStats]:
    path = Path(path)
    state = dict(state) if state else {"session": path.stem.split("_", 1)[-1], "cwd": None, "model": None,
                                       "models": {}}
    state["models"] = dict(state.get("models") or {})
    return scan_json_lines(path, start, state, MARKERS, _visit)
