"""Kimchi (CAST AI): a pi-based harness keeping pi's session files under `~/.config/kimchi/harness/sessions`.

Format (castai/kimchi-dev, read at commit 1658bdb): `src/entry.ts` sets the agent dir to
`~/.config/kimchi/harness` (the home's `.config`, on every OS) as `KIMCHI_CODING_AGENT_DIR` and
`PI_CODING_AGENT_DIR`, so sessions are pi's (`nomira/sources/pi.py`: header, `message` entries,
pi-ai usage, `cost.total`) in `sessions/--<cwd>--/<timestamp>_<id>.jsonl`.

Sub-agents (`src/extensions/subagent.ts`): the `subagent` tool pre-writes the child's own pi
session file beside the parent's (`<timestamp>_<child id>.jsonl`, header `parentSession`) and
runs the child there, so the child's calls are in its own transcript, counted per call. The
parent's tool result (`role: "toolResult"`, `toolName: "subagent"`) also carries `details
{tokenUsage {input, output, cacheRead, cacheWrite}, sessionId, sessionFile, durationMs}`: the
child's calls summed from its event stream. That roll-up is counted only when the child's
transcript is not there, or holds no assistant usage (a remote or failed child, a parent
run with `--no-session` children): one `aggregated` record under the child's session id, dated
at the tool result, the model the parent asked for (`arguments.model` of its `subagent` tool
call), else unknown. So a child is counted once either way (ccstats documents the same rule).

Dedup key: pi's (entry id, message timestamp); a roll-up by the child session id (a forked
parent's copies count once). Locations: `$KIMCHI_CODING_AGENT_DIR/sessions` when set, else
`~/.config/kimchi/harness/sessions` and `$XDG_CONFIG_HOME/kimchi/harness/sessions`. Given by
`--path`, pi-named files under a `kimchi` folder are Kimchi's.

Regime: API (CAST AI's Kimchi gateway or the user's own keys; `cost.total` kept beside).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Mapping

from nomira.sources.scan import ScanStats, scan_json_lines
from nomira.sources import calls, pi, pi_family
from nomira.sources.calls import events_from_files, merge_records, partition_key  # noqa: F401

NAME = "kimchi"
PLACES = "$KIMCHI_CODING_AGENT_DIR/sessions, ~/.config/kimchi/harness/sessions"
MARKERS = (*pi.MARKERS, b'"subagent"')

claims = pi_family.under("kimchi")
_, find_files, _ = pi_family.functions(NAME, "", (), claims)


def default_paths(env: Mapping[str, str] = os.environ) -> list[Path]:
    if env.get("KIMCHI_CODING_AGENT_DIR"):
        return calls.existing(p for p in [Path(env["KIMCHI_CODING_AGENT_DIR"]).expanduser() / "sessions"]
                              if p.is_dir())
    found = [calls.home(env) / ".config" / "kimchi" / "harness" / "sessions"]
    if env.get("XDG_CONFIG_HOME"):
        found.append(Path(env["XDG_CONFIG_HOME"]) / "kimchi" / "harness" / "sessions")
    return calls.existing(p for p in found if p.is_dir())


def _child_counted(parent: Path, details: dict, seen: dict) -> bool:
    """The child's own transcript is on disk with assistant usage (then it is counted per call);
    `seen` remembers the answer per child for the rest of the file's scan."""
    child = details.get("sessionId")
    if child in seen:
        return seen[child]
    seen[child] = _child_on_disk(parent, details)
    return seen[child]


def _child_on_disk(parent: Path, details: dict) -> bool:
    child = details.get("sessionId")
    candidates = list(parent.parent.glob(f"*_{child}.jsonl")) \
        if isinstance(child, str) and child.replace("-", "").isalnum() else []
    if isinstance(details.get("sessionFile"), str):
        candidates.append(Path(details["sessionFile"]))
    for f in candidates:
        try:
            data = f.read_bytes()
        except OSError:
            continue
        if b'"usage"' in data and b'"assistant"' in data:
            return True
    return False


def _rollup(d: dict, msg: dict, path: Path, state: dict, stats: ScanStats, seen: dict) -> list[list]:
    details = msg.get("details")
    tu = calls.dig(details, "tokenUsage")
    if not isinstance(tu, dict):
        return []
    inp, out = calls.count(tu.get("input")), calls.count(tu.get("output"))
    cr, cw = calls.count(tu.get("cacheRead")), calls.count(tu.get("cacheWrite"))
    if not (inp or out or cr or cw):
        return []
    if _child_counted(path, details, seen):
        stats.skip("kimchi_rollup_child_counted")
        return []
    ts = calls.stamp(stats, d.get("timestamp"), msg.get("timestamp"))
    if ts is None:
        return []
    child = details.get("sessionId") if isinstance(details.get("sessionId"), str) else None
    call = msg.get("toolCallId")
    key = f"subagent:{child or call or d.get('id')}"
    model = state["subagent_models"].get(call) if isinstance(call, str) else None
    return [calls.record(NAME, ts, key, child or state["session"], model, input=inp, output=out, cache_read=cr,
                         cache_write=cw, cwd=state["cwd"], aggregated=True)]


def _note_subagent_calls(msg: dict, state: dict) -> None:
    for block in calls.listed(msg.get("content")):
        if isinstance(block, dict) and block.get("type") == "toolCall" and block.get("name") == "subagent":
            model = calls.dig(block, "arguments", "model")
            if isinstance(block.get("id"), str) and isinstance(model, str):
                state["subagent_models"][block["id"]] = model


def scan_file(path: Path, start: int = 0, state: dict | None = None) -> tuple[list[list], dict, int, ScanStats]:
    path = Path(path)
    state = dict(state) if state else {"session": path.stem.split("_", 1)[-1], "cwd": None}
    state["subagent_models"] = dict(state.get("subagent_models") or {})
    seen: dict = {}

    def visit(d: dict, st: dict, stats: ScanStats):
        got = pi._visit(d, st, stats)
        msg = d.get("message")
        if d.get("type") != "message" or not isinstance(msg, dict):
            return got
        if msg.get("role") == "assistant":
            _note_subagent_calls(msg, st)
        elif msg.get("role") == "toolResult" and msg.get("toolName") == "subagent":
            return (got or []) + _rollup(d, msg, path, st, stats, seen)
        return got
    return calls.as_source(NAME, scan_json_lines(path, start, state, MARKERS, visit))
