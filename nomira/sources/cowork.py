"""Claude Cowork (Claude Desktop's local agent mode): `<Claude app data>/local-agent-mode-sessions`.

Layout (agentsview `internal/parser/cowork.go`, `cowork_paths.go`):
`<root>/<org>/<workspace>/local_<uuid>.json` (session metadata) beside
`local_<uuid>/.claude/projects/<encoded dir>/<cli session>.jsonl` (+ `subagents/**`), the
transcript being a standard Claude Code JSONL file ("same uuid/parentUuid DAG,
message.usage token accounting, and event types, so the Claude parser handles it
directly"). Claude Code's parser, token semantics and dedup key (message.id, requestId)
apply as they are (`nomira/sources/claude_code.py`); events carry the source name
`claude_cowork`. Locations: `$COWORK_DIR` (agentsview's; comma list), else the Claude
desktop app's data folder on macOS (`~/Library/Application Support/Claude`), Linux
(`~/.config/Claude`) and Windows (`%APPDATA%/Claude`, the MSIX package's
`LocalCache/Roaming/Claude`). Project: the transcript's `cwd` (a VM path for VM sessions).

Regime: subscription: Cowork runs on the user's Claude plan (API-equivalent value, not a bill).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable, Mapping

from nomira.sources import calls, claude_code, relabel
from nomira.sources.claude_code import merge_records, partition_key, scan_file  # noqa: F401

NAME = "claude_cowork"
SESSIONS = "local-agent-mode-sessions"
APP_DIRS = ("Library/Application Support/Claude", ".config/Claude", "AppData/Roaming/Claude",
            "AppData/Local/Packages/Claude_pzs8sxrjxfjjc/LocalCache/Roaming/Claude")
PLACES = "$COWORK_DIR, the Claude desktop app data (~/.config/Claude, …): local-agent-mode-sessions"


def default_paths(env: Mapping[str, str] = os.environ) -> list[Path]:
    roots = calls.env_paths(env, "COWORK_DIR")
    if roots is None:
        roots = [calls.home(env) / d / SESSIONS for d in APP_DIRS]
        if env.get("APPDATA"):
            roots.append(Path(env["APPDATA"]) / "Claude" / SESSIONS)
    return calls.existing(r for r in roots if r.is_dir())


def claims(name: str, parent: str) -> bool:
    """A transcript under `local-agent-mode-sessions/…/.claude/projects/` (not the metadata JSON)."""
    p = f"{parent}{os.sep}"
    return name.endswith(".jsonl") and SESSIONS in p and f"{os.sep}.claude{os.sep}projects{os.sep}" in p


def find_files(roots: Iterable[Path]) -> list[Path]:
    return calls.find_claimed(roots, claims)


events_from_files = relabel.events_as(NAME, claude_code.events_from_files)
