"""Cherry Studio's agent sessions: Claude Code transcripts under the app's data folder.

Cherry Studio (CherryHQ/cherry-studio) runs its Agents through the Claude Agent SDK, whose
bundled Claude Code CLI writes the standard JSONL transcripts: the app sets `CLAUDE_CONFIG_DIR`
to `<userData>/.claude` (`src/main/services/agents/services/claudecode/index.ts`, "to avoid path
encoding issues on Windows"); v2 moved it to `<userData>/Data/Agents/.claude`
(`src/main/core/paths/__tests__/pathRegistry.test.ts`: `feature.agents.claude.root`, the v1
`v1.agents.claude` kept for clean-up only), so both roots are read: `projects/<encoded cwd>/
<session>.jsonl`. tokscale reads the same two roots (`sessions/cherrystudio.rs`, `clients.rs`).
`userData` is Electron's per-user folder `CherryStudio`: `~/.config/CherryStudio` (Linux,
`$XDG_CONFIG_HOME`), `~/Library/Application Support/CherryStudio` (macOS),
`%APPDATA%/CherryStudio` (Windows). `$CHERRY_STUDIO_CLAUDE_DIR` (Nomira's, comma list of
`projects` folders) points elsewhere.

Claude Code's parser, token semantics and dedup key (message.id, requestId) apply as they are
(`nomira/sources/claude_code.py`): Cherry Studio appends one streamed call several times (new
`uuid`, the same requestId, message.id and usage, tokscale measured ~3x when summed naively), which
that key counts once. Events carry the source name `cherry_studio`. Models are whatever
Anthropic-compatible endpoint the user configured (e.g. DeepSeek's): one not in the bundled
table is unpriced, never guessed. Cherry Studio's plain chats stay unreadable (IndexedDB:
`nomira/sources/opaque.py`).

Regime: API: the Agents call the provider with the user's own key.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable, Mapping

from nomira.sources import calls, claude_code, relabel
from nomira.sources.claude_code import merge_records, partition_key, scan_file  # noqa: F401

NAME = "cherry_studio"
APP_DIRS = (".config/CherryStudio", "Library/Application Support/CherryStudio", "AppData/Roaming/CherryStudio")
CLAUDE_DIRS = ("Data/Agents/.claude/projects", ".claude/projects")  # v2, v1
PLACES = "$CHERRY_STUDIO_CLAUDE_DIR, Cherry Studio's app data (~/.config/CherryStudio, …): Data/Agents/.claude/projects"


def app_dirs(env: Mapping[str, str]) -> list[Path]:
    """Cherry Studio's per-user data folders (Electron `userData`) on Linux, macOS and Windows."""
    apps = [calls.home(env) / d for d in APP_DIRS]
    for var in ("XDG_CONFIG_HOME", "APPDATA"):
        if env.get(var):
            apps.insert(0, Path(env[var]) / "CherryStudio")
    return apps


def default_paths(env: Mapping[str, str] = os.environ) -> list[Path]:
    roots = calls.env_paths(env, "CHERRY_STUDIO_CLAUDE_DIR")
    if roots is None:
        roots = [a / c for a in app_dirs(env) for c in CLAUDE_DIRS]
    return calls.existing(r for r in roots if r.is_dir())


def claims(name: str, parent: str) -> bool:
    """A transcript under a `CherryStudio/…/.claude/projects/` folder."""
    p = f"{parent}{os.sep}"
    return (name.endswith(".jsonl") and f"{os.sep}CherryStudio{os.sep}" in p
            and f"{os.sep}.claude{os.sep}projects{os.sep}" in p)


def find_files(roots: Iterable[Path]) -> list[Path]:
    return claude_code.find_files(roots)


events_from_files = relabel.events_as(NAME, claude_code.events_from_files)
