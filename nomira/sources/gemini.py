"""Gemini CLI chats: `~/.gemini/tmp/<project>/chats/session-*.jsonl` (and legacy `.json`).

Format (google-gemini/gemini-cli `packages/core/src/services/chatRecordingService.ts`,
`chatRecordingTypes.ts`): current builds append JSONL: a metadata line
`{sessionId, projectHash, startTime, kind?, directories?}`, then message records
`{id, timestamp, type, content, model?, tokens?}`, `{"$set": {...}}` metadata updates
(which may carry the whole `messages` list) and `{"$rewindTo": id}`. A message is
re-appended whole each time it changes (tokens arrive after the text), so the same `id`
appears several times: the copy with the most tokens is the call. Older builds wrote
one pretty-printed `.json` document `{sessionId, messages: [...]}`; resuming one copies
every message into a new `.jsonl` under the same ids, so both files may exist.
Sub-agents write `chats/<parent session id>/<session id>.jsonl`.

`tokens` mirrors the API's usageMetadata: `input` = promptTokenCount, which INCLUDES
`cached` (cachedContentTokenCount), `output` = candidatesTokenCount (excludes
`thoughts`), `tool` = toolUsePromptTokenCount (extra input). So uncached input is
`input - cached + tool`, output billed is `output + thoughts`.

Dedup key: (sessionId, message id). A rewound message was still a billed call: kept.
Project: the `<project>` folder is a slug (v0.29+: `.project_root` in it holds the
workspace path, and `projects.json` maps path -> slug) or sha256 of the workspace path
(older builds, resolved through `projects.json` too). `GEMINI_CLI_HOME` moves `~/.gemini` (Gemini CLI's
own override); `GEMINI_DATA_DIR` (ccusage's) names tmp folders directly.

Regime: subscription by default. The default sign-in is "Login with Google" (free
quota or a Gemini Code Assist licence, not billed per token); with an API key or Vertex
(`security.auth.selectedType` in settings.json) the figures are the bill: `--regime api`.
"""
from __future__ import annotations

import hashlib
import json
import os
from functools import lru_cache
from pathlib import Path
from typing import Iterable, Mapping

from nomira.sources.scan import ScanStats, scan_json_lines
from nomira.sources import calls
from nomira.sources.calls import events_from_files, merge_records, partition_key  # noqa: F401

NAME = "gemini_cli"
MARKERS = (b'"tokens"', b'"sessionId"', b'"directories"')


def default_paths(env: Mapping[str, str] = os.environ) -> list[Path]:
    roots = calls.env_paths(env, "GEMINI_DATA_DIR")
    if roots is None:
        base = Path(env["GEMINI_CLI_HOME"]) if env.get("GEMINI_CLI_HOME") else calls.home(env)
        roots = [base / ".gemini" / "tmp"]
    return [r for r in roots if r.is_dir()]


def claims(name: str, parent: str) -> bool:
    """A chat file by its place: `chats/session-*.json(l)` or `chats/<parent session>/*.jsonl`."""
    if not name.endswith((".json", ".jsonl")) or "chats" not in parent:  # (cheap tests first: every file
        return False  # of a --path walk is asked)
    up = os.path.basename(parent)
    return (up == "chats" and name.startswith("session-")) or os.path.basename(os.path.dirname(parent)) == "chats"


def find_files(roots: Iterable[Path]) -> list[Path]:
    return calls.find_claimed(roots, claims)


@lru_cache(maxsize=16)
def _workspaces(gemini_dir: str, _mtime: int) -> dict[str, str]:
    """project folder name (short id or sha256 of the path) -> workspace path, from projects.json."""
    try:
        data = json.loads(Path(gemini_dir, "projects.json").read_bytes())
    except (OSError, ValueError):
        return {}
    projects = calls.dig(data, "projects")
    out: dict[str, str] = {}
    for path, short in projects.items() if isinstance(projects, dict) else ():
        if isinstance(path, str):
            out[hashlib.sha256(path.encode()).hexdigest()] = path
            if isinstance(short, str) and short:
                out[short] = path
    return out


def _workspace_of(path: Path) -> str | None:
    """The workspace path of a chat file, from the `<project>` folder above `chats`."""
    parts = path.parts
    if "chats" not in parts:
        return None
    i = len(parts) - 1 - parts[::-1].index("chats")
    if i < 2:
        return None
    gemini_dir = Path(*parts[:i - 2])
    try:  # v0.29+ keeps the path beside the chats: tmp/<slug>/.project_root
        return Path(*parts[:i], ".project_root").read_text().strip() or None
    except (OSError, UnicodeDecodeError):
        pass
    try:
        mtime = os.stat(gemini_dir / "projects.json").st_mtime_ns
    except OSError:
        return None
    return _workspaces(str(gemini_dir), mtime).get(parts[i - 1])


def _message_record(m: dict, state: dict, stats: ScanStats) -> list | None:
    if m.get("type") != "gemini":
        return None
    if isinstance(m.get("model"), str) and m["model"]:
        state["model"] = m["model"]
    t = m.get("tokens")
    if not isinstance(t, dict):
        return None
    ts = calls.stamp(stats, m.get("timestamp"))
    if ts is None:
        return None
    prompt, cached, tool = calls.count(t.get("input")), calls.count(t.get("cached")), calls.count(t.get("tool"))
    out, thoughts = calls.count(t.get("output")), calls.count(t.get("thoughts"))
    if not (prompt or cached or tool or out or thoughts):
        return None
    mid = m.get("id") if isinstance(m.get("id"), str) and m["id"] else None
    session = state.get("session") or state["stem"]
    return calls.record(NAME, ts, f"{session}:{mid}" if mid else None, session, m.get("model") or state.get("model"),
                        provider="google", input=max(prompt - cached, 0) + tool, output=out + thoughts,
                        cache_read=cached, reasoning=thoughts, reported_input=prompt, cwd=state.get("cwd"))


def _note_metadata(d: dict, state: dict) -> None:
    if isinstance(d.get("sessionId"), str) and d["sessionId"]:
        state["session"] = d["sessionId"]
    dirs = d.get("directories")
    if not state.get("cwd") and isinstance(dirs, list) and dirs and isinstance(dirs[0], str):
        state["cwd"] = dirs[0]


def _visit(d: dict, state: dict, stats: ScanStats) -> list[list] | None:
    if isinstance(d.get("$set"), dict):
        upd = d["$set"]
        _note_metadata(upd, state)
        msgs = upd.get("messages")
        return [r for m in msgs if isinstance(m, dict) for r in [_message_record(m, state, stats)] if r] \
            if isinstance(msgs, list) else None
    if "id" not in d:
        _note_metadata(d, state)
        return None
    rec = _message_record(d, state, stats)
    return [rec] if rec else None


def _new_state(path: Path) -> dict:
    stem = path.stem
    return {"session": None, "stem": stem, "cwd": _workspace_of(path), "model": None}


def _scan_legacy(path: Path, stats: ScanStats) -> list[list]:
    doc = calls.read_json(path, stats)
    if doc is None:
        return []
    state = _new_state(path)
    _note_metadata(doc, state)
    msgs = doc.get("messages") if isinstance(doc.get("messages"), list) else []
    return [r for m in msgs if isinstance(m, dict) for r in [_message_record(m, state, stats)] if r]


def scan_file(path: Path, start: int = 0, state: dict | None = None) -> tuple[list[list], dict, int, ScanStats]:
    path = Path(path)
    if path.suffix == ".json":
        return calls.whole_file(path, _scan_legacy)
    state = dict(state) if state else _new_state(path)
    return scan_json_lines(path, start, state, MARKERS, _visit)
