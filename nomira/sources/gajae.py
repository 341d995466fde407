"""Gajae Code (gjc): an Oh My Pi fork whose v5 session files are replayed from `header_patch`/`entry_patch` records.

Format (Yeachan-Heo/gajae-code `packages/coding-agent/src/session/session-manager.ts`,
`packages/ai/src/types.ts` `Usage`; ccstats `src/source/pi_forks.rs`, `pi_fork_schema.rs`,
`pi_fork_paths.rs`): pi's JSONL session tree, a header `{type: "session", version (3..5), id,
timestamp, cwd, parentSession?}`, `message` entries whose assistant `message {provider, model,
timestamp (epoch ms), usage {input, output, cacheRead, cacheWrite, totalTokens, reasoningTokens?,
cttl? {ephemeral5m, ephemeral1h}, cost {..., total}}}` is pi-ai's (input uncached, output with the
reasoning inside), plus two append-only replacement records: `{type: "header_patch", patch:
{title?, titleSource?, cwd?}}` and `{type: "entry_patch", entryId, patch: {message}}` (the
message of an existing entry, re-written when its replay metadata is sanitised on reopen).

An entry_patch's assistant message is the same call as the entry it patches: it is keyed like it
(entry id, message timestamp), so the two count once (the copy with the most tokens). A cwd from
a header_patch labels the calls read after it.

Sub-agents: the `task` tool runs each child in `<session file without .jsonl>/<child id>.jsonl`,
a transcript of its own, read per call (files are found recursively); a fork (header
`parentSession`, a path or an id) finds its copied task's children in its parent's folder. Its tool result
(`toolName: "task"`) carries `details {usage, results: [{id, usage}]}`: for a child whose
transcript is missing or holds no usage, its `results[].usage` is counted as one `aggregated`
record; what `details.usage` holds beyond the children's sum (the partial roll-up residual) is
one more, model unknown (unpriced, never guessed).

Not counted: `usage.discarded` (failed retry attempts, as other trackers), `orchestration`
(Oh My Pi only). 1-hour cache writes (`cttl.ephemeral1h`) are priced at the 5-minute rate.

Dedup key: (entry id, message timestamp), as pi: a fork's copied entries count once; roll-ups by
child id. Locations: `$GJC_CODING_AGENT_DIR/sessions` when set, else `~/<$GJC_CONFIG_DIR or
.gjc>/agent/sessions`, and the migrated data root (`$XDG_DATA_HOME/gjc/sessions`,
`~/.local/share/gjc/sessions`, `~/Library/Application Support/gjc/sessions`). Given by `--path`,
`.jsonl` files under a `.gjc`/`gjc` folder are Gajae Code's.

Regime: API (the user's own provider keys and plans).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable, Mapping

from nomira.sources.scan import ScanStats, scan_json_lines
from nomira.sources import calls, pi
from nomira.sources.calls import events_from_files, merge_records, partition_key  # noqa: F401

NAME = "gajae_code"
PLACES = "$GJC_CODING_AGENT_DIR/sessions, ~/.gjc/agent/sessions, $XDG_DATA_HOME/gjc/sessions"
MARKERS = (b'"usage"', b'"session"', b'"header_patch"')
FOLDERS = (".gjc", "gjc")
FIELDS = ("input", "output", "cacheRead", "cacheWrite")


def default_paths(env: Mapping[str, str] = os.environ) -> list[Path]:
    home = calls.home(env)
    if env.get("GJC_CODING_AGENT_DIR"):
        found = [Path(env["GJC_CODING_AGENT_DIR"]).expanduser() / "sessions"]
    else:
        config = (env.get("GJC_CONFIG_DIR") or "").strip().strip("/\\") or ".gjc"
        data = [Path(env["XDG_DATA_HOME"])] if env.get("XDG_DATA_HOME") else []
        data += [home / ".local" / "share", home / "Library" / "Application Support"]
        found = [home / config / "agent" / "sessions", *(d / "gjc" / "sessions" for d in data)]
    return calls.existing(p for p in found if p.is_dir())


def claims(name: str, parent: str) -> bool:
    if not name.endswith(".jsonl") or "gjc" not in parent:  # (cheap tests first: every file of a --path
        return False  # walk is asked; both folder names hold "gjc")
    parts = (parent.replace(os.altsep, os.sep) if os.altsep else parent).split(os.sep)
    return any(f in parts for f in FOLDERS)  # (folder names: no Path built per file walked)


def find_files(roots: Iterable[Path]) -> list[Path]:
    return calls.find_claimed(roots, lambda name, parent: name.endswith(".jsonl"))


def _usage(u) -> tuple[int, int, int, int] | None:
    if not isinstance(u, dict):
        return None
    got = tuple(calls.count(u.get(k)) for k in FIELDS)
    return got if any(got) else None


def _call(eid, ts_entry, msg: dict, state: dict, stats: ScanStats) -> list[list]:
    if msg.get("role") != "assistant":
        return []
    got = _usage(msg.get("usage"))
    if got is None:
        return []
    inp, out, cr, cw = got
    ts = calls.stamp(stats, msg.get("timestamp"), ts_entry)
    if ts is None:
        return []
    u = msg["usage"]
    model = msg.get("model") if isinstance(msg.get("model"), str) else None
    key = f"{eid}:{msg.get('timestamp', ts)}" if isinstance(eid, str) and eid else f"{ts}:{model}:{inp}:{out}:{cr}:{cw}"
    provider = pi.PROVIDERS.get(msg.get("provider")) if isinstance(msg.get("provider"), str) else None
    cost = u.get("cost") if isinstance(u.get("cost"), dict) else {}
    return [calls.record(NAME, ts, key, state["session"], model, provider=provider, input=inp, output=out,
                         cache_read=cr, cache_write=cw, reasoning=min(calls.count(u.get("reasoningTokens")), out),
                         cwd=state["cwd"], agent_cost=calls.money(cost.get("total")))]


def _artifact_dirs(path: Path, parent_session) -> list[Path]:
    """Where a session's task children live: its own artifact folder, then (a fork) its parent session's."""
    dirs = [path.with_suffix("")]
    if isinstance(parent_session, str) and parent_session:
        p = Path(parent_session)
        if p.suffix == ".jsonl":
            dirs.append(p.with_suffix(""))
            dirs.append(path.parent / p.stem)  # a moved or copied history: the parent beside this file
        elif parent_session.replace("-", "").isalnum():
            dirs += [f.with_suffix("") for f in path.parent.glob(f"*_{parent_session}.jsonl")]
    return dirs


def _child_counted(path: Path, child: str, parent_session, seen: dict) -> bool:
    """The child's transcript is in an artifact folder of this session (or the one it was forked from)
    and holds usage: then it is counted per call, not from the roll-up (remembered per scan in `seen`)."""
    if child not in seen:
        seen[child] = _child_on_disk(path, child, parent_session)
    return seen[child]


def _child_on_disk(path: Path, child: str, parent_session) -> bool:
    for d in _artifact_dirs(path, parent_session):
        try:
            data = (d / f"{child}.jsonl").read_bytes()
        except (OSError, ValueError):
            continue
        if b'"usage"' in data and b'"assistant"' in data:
            return True
    return False


def _task(d: dict, msg: dict, path: Path, state: dict, stats: ScanStats, seen: dict) -> list[list]:
    details = msg.get("details") if isinstance(msg.get("details"), dict) else {}
    ts = calls.stamp(stats, d.get("timestamp"), msg.get("timestamp"))
    if ts is None:
        return []
    out, children = [], [0, 0, 0, 0]
    for r in calls.listed(details.get("results")):
        child, got = calls.dig(r, "id"), _usage(calls.dig(r, "usage"))
        if not isinstance(child, str) or not child or got is None:
            continue
        children = [a + b for a, b in zip(children, got)]
        if _child_counted(path, child, state.get("parent"), seen):
            continue
        out.append(calls.record(NAME, ts, f"task:{child}", child, None, input=got[0], output=got[1],
                                cache_read=got[2], cache_write=got[3], cwd=state["cwd"], aggregated=True))
    total = _usage(details.get("usage"))
    if total is not None:
        rest = [t - c for t, c in zip(total, children)]
        if any(v < 0 for v in rest):
            stats.skip("gjc_task_children_above_rollup")
        elif any(rest):
            out.append(calls.record(NAME, ts, f"task-residual:{d.get('id')}", state["session"], None, input=rest[0],
                                    output=rest[1], cache_read=rest[2], cache_write=rest[3], cwd=state["cwd"],
                                    aggregated=True))
    return out


def scan_file(path: Path, start: int = 0, state: dict | None = None) -> tuple[list[list], dict, int, ScanStats]:
    path = Path(path)
    state = dict(state) if state else {"session": path.stem.split("_", 1)[-1], "cwd": None}
    seen: dict = {}

    def visit(d: dict, st: dict, stats: ScanStats):
        kind = d.get("type")
        if kind == "session":
            if isinstance(d.get("cwd"), str):
                st["cwd"] = d["cwd"]
            if isinstance(d.get("id"), str) and d["id"]:
                st["session"] = d["id"]
            st["parent"] = d.get("parentSession") if isinstance(d.get("parentSession"), str) else None
            return None
        if kind == "header_patch":
            cwd = calls.dig(d, "patch", "cwd")
            if isinstance(cwd, str) and cwd.strip():
                st["cwd"] = cwd
            return None
        if kind == "entry_patch":
            msg = calls.dig(d, "patch", "message")
            return _call(d.get("entryId"), None, msg, st, stats) if isinstance(msg, dict) else None
        msg = d.get("message")
        if kind != "message" or not isinstance(msg, dict):
            return None
        if msg.get("role") == "toolResult" and msg.get("toolName") == "task":
            return _task(d, msg, path, st, stats, seen)
        return _call(d.get("id"), d.get("timestamp"), msg, st, stats)
    return scan_json_lines(path, start, state, MARKERS, visit)
