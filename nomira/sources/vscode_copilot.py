"""VS Code Copilot Chat sessions: `User/workspaceStorage/<hash>/chatSessions/<session>.json|.jsonl`.

Format (VS Code's chat session store, `ISerializableChatData` v3 in microsoft/vscode's chatModel;
as agentsview's `vscode_copilot.go` and rajbos/github-copilot-token-usage's
`docs/logFilesSchema/session-file-schema.json` read it): a `.json` file is the whole session,
`{version, sessionId, creationDate (ms), requests: [{requestId, modelId: "copilot/<id>",
timestamp (ms), result: {metadata: {promptTokens, outputTokens, resolvedModel?}}}]}`, rewritten
whole. Newer builds write `.jsonl` instead: an operation log whose first line `{"kind": 0, "v":
<session>}` is the snapshot and whose later lines mutate it at the key path `k` (`kind` 1 set
`v`, 2 push the items `v` onto the array, spliced at `i` when given, 3 delete). The log is
replayed whole on every change.

Per request (one user turn, answered by the Copilot Chat extension) `result.metadata` carries
`promptTokens` (the prompt sent, cached part included: no cache split is logged) and
`outputTokens`; the model is `resolvedModel`, else `modelId` without its `copilot/` vendor
prefix. Input is priced at the full input rate: an upper bound where the provider cached part
of the prompt. Requests without token metadata (older builds) are counted
`no_token_data:vscode_copilot` per session, never guessed.

Regime: subscription (a Copilot plan's premium requests), so reports show the API-rate figure
as what the same tokens would cost, not the bill.

Dedup key: (sessionId, requestId): the `.json` and `.jsonl` copies of one session (VS Code
migrates the first into the second) and rewrites count once. Locations: `$VSCODE_COPILOT_DIR`
(comma-separated `User` folders or session folders), else every VS Code-family `User` folder
(Code, Insiders, VSCodium, Cursor, ... on Linux, macOS and Windows, and `~/.vscode-server/data`):
`workspaceStorage/*/chatSessions` and `globalStorage/emptyWindowChatSessions`. Project: the
workspace's folder (`workspace.json` `folder`, a `file://` URI) when it has one.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Iterable, Mapping
from urllib.parse import unquote, urlparse

from nomira.sources.scan import ScanStats
from nomira.sources import calls
from nomira.sources.cline import user_dirs
from nomira.sources.calls import events_from_files, merge_records, partition_key  # noqa: F401

NAME = "vscode_copilot"
PLACES = ("$VSCODE_COPILOT_DIR, VS Code-family User folders (Code, Insiders, VSCodium, Cursor; ~/.config, "
          "~/Library/Application Support, %APPDATA%): workspaceStorage/*/chatSessions, globalStorage/emptyWindowChatSessions")
SESSION_DIRS = ("chatSessions", "emptyWindowChatSessions")
NO_TOKEN_DATA = "Copilot's usage metrics API or the billing page (this build logs no token counts)"


def default_paths(env: Mapping[str, str] = os.environ) -> list[Path]:
    roots = calls.env_paths(env, "VSCODE_COPILOT_DIR")
    if roots is None:
        users = [u for u in user_dirs(env) if u.is_dir()]  # one stat per absent editor
        roots = [u / "workspaceStorage" for u in users] + [u / "globalStorage" / "emptyWindowChatSessions" for u in users]
    return calls.existing(r for r in roots if r.is_dir())


def claims(name: str, parent: str) -> bool:
    return (name.endswith(".json") or name.endswith(".jsonl")) and os.path.basename(parent) in SESSION_DIRS


def _session_dirs(root: Path) -> list[Path]:
    """Only each workspace's chatSessions folder: a workspaceStorage tree holds every extension's state.
    Any other folder (given by the override) is walked whole."""
    if root.name == "User":
        return _session_dirs(root / "workspaceStorage") + [root / "globalStorage" / "emptyWindowChatSessions"]
    if root.name != "workspaceStorage":
        return [root]
    try:
        return [Path(e.path) / "chatSessions" for e in os.scandir(root) if e.is_dir()]
    except OSError:
        return []


def find_files(roots: Iterable[Path]) -> list[Path]:
    return calls.find_claimed((d for r in roots for d in _session_dirs(Path(r)) if d.exists()), claims)


def _child(node, key):
    if isinstance(node, dict):
        return node.get(key)
    if isinstance(node, list) and isinstance(key, int) and 0 <= key < len(node):
        return node[key]
    return None


def _apply(state, op: dict) -> None:
    """One mutation of the operation log (kind 1 set, 2 push/splice, 3 delete) applied in place."""
    keys = op.get("k")
    if not isinstance(keys, list) or not keys:
        return
    parent = state
    for k in keys[:-1]:
        parent = _child(parent, k)
    last, kind = keys[-1], op.get("kind")
    if isinstance(parent, list) and not (isinstance(last, int) and 0 <= last < len(parent)):
        return
    if not isinstance(parent, (dict, list)) or (isinstance(parent, dict) and not isinstance(last, str)):
        return
    if kind == 1:
        parent[last] = op.get("v")
    elif kind == 2:
        arr, items, i = _child(parent, last), op.get("v"), op.get("i")
        if isinstance(arr, list) and isinstance(items, list):
            if isinstance(i, int):
                i = max(0, min(i, len(arr)))
                arr[i:i + len(items)] = items
            else:
                arr.extend(items)
    elif kind == 3 and isinstance(parent, dict):
        parent.pop(last, None)


def _replay(path: Path, stats: ScanStats):
    """The session a `.jsonl` operation log ends in; malformed lines counted and skipped."""
    stats.candidates += 1
    state = None
    with open(path, "rb") as f:
        for line in f:
            if not line.strip():
                continue
            try:
                op = json.loads(line)
            except (ValueError, UnicodeDecodeError):
                op = None
            if not isinstance(op, dict):
                stats.malformed += 1
                continue
            if op.get("kind") == 0:
                state = op.get("v")
            elif state is not None:
                _apply(state, op)
    return state if isinstance(state, dict) else None


def _project(path: Path) -> str | None:
    """The workspace folder of `<hash>/chatSessions/<file>`, from `<hash>/workspace.json`."""
    try:
        doc = json.loads((path.parent.parent / "workspace.json").read_bytes())
    except (OSError, ValueError, UnicodeDecodeError):
        return None
    folder = doc.get("folder") if isinstance(doc, dict) else None
    if not isinstance(folder, str) or not folder:
        return None
    return unquote(urlparse(folder).path).rstrip("/") or None


def _parse(path: Path, stats: ScanStats) -> list[list]:
    doc = _replay(path, stats) if path.suffix == ".jsonl" else calls.read_json(path, stats)
    if doc is None:
        return []
    session = doc.get("sessionId") if isinstance(doc.get("sessionId"), str) else path.stem
    cwd = _project(path) if path.parent.name == "chatSessions" else None
    out, untokened = [], 0
    for req in calls.listed(doc.get("requests")):
        md = calls.dig(req, "result", "metadata")
        inp = calls.count(md.get("promptTokens")) if isinstance(md, dict) else 0
        out_ = calls.count(md.get("outputTokens")) if isinstance(md, dict) else 0
        if not (inp or out_):
            untokened += isinstance(req, dict) and isinstance(req.get("result"), dict)
            continue
        ts = calls.iso_ms(req.get("timestamp")) or calls.stamp(stats, calls.iso_ms(doc.get("creationDate")))
        if ts is None:
            continue
        model = md.get("resolvedModel")
        if not isinstance(model, str) or not model:
            model = req.get("modelId") if isinstance(req.get("modelId"), str) else None
            model = model.split("/", 1)[1] if model and model.startswith("copilot/") else model
        rid = req.get("requestId")
        key = f"{session}#{rid}" if isinstance(rid, str) and rid else None
        out.append(calls.record(NAME, ts, key, session, model, input=inp, output=out_, cwd=cwd))
    if untokened and not out:
        stats.skip(f"no_token_data:{NAME}")
    return out


def scan_file(path: Path, start: int = 0, state: dict | None = None) -> tuple[list[list], dict, int, ScanStats]:
    return calls.whole_file(path, _parse)
