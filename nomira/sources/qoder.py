"""Qoder CLI and QoderWork: `~/.qoder/projects/<encoded cwd>/<session>.jsonl`, Claude Code's transcript format.

Qoder keeps Claude Code's JSONL transcripts (agentsview `internal/parser/qoder.go`: parsed by
the Claude parser, `claudeParseWithExclusions`, with a `<session>-session.json` sidecar for
title and fork origin; sub-agents under `<session>/subagents/`). Locations (agentsview
`qoder_paths.go`): `$QODER_PROJECTS_DIR` (comma list), `~/.qoder/projects`,
`~/.qoderwork/projects`, and the IDE's flat `SharedClientCache/cli/projects` under the
Qoder app data folder on macOS, Linux and Windows. Claude Code's parser, token semantics
and dedup key (message.id, requestId) apply as they are (`nomira/sources/claude_code.py`);
events carry the source name `qoder`. Qoder's own model tiers (names not in the bundled
table) are unpriced, never guessed.

Regime: subscription: Qoder is used on a Qoder plan (credits), not per-token API billing.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Mapping

from nomira.sources import calls, claude_code, relabel
from nomira.sources.claude_code import find_files, merge_records, partition_key, scan_file  # noqa: F401

NAME = "qoder"
DIRS = (".qoder/projects", ".qoderwork/projects", "Library/Application Support/Qoder/SharedClientCache/cli/projects",
        ".config/Qoder/SharedClientCache/cli/projects", "AppData/Roaming/Qoder/SharedClientCache/cli/projects")
PLACES = "$QODER_PROJECTS_DIR, ~/.qoder/projects, ~/.qoderwork/projects, Qoder's SharedClientCache/cli/projects"


def default_paths(env: Mapping[str, str] = os.environ) -> list[Path]:
    roots = calls.env_paths(env, "QODER_PROJECTS_DIR")
    if roots is None:
        roots = [calls.home(env) / d for d in DIRS]
    return calls.existing(r for r in roots if r.is_dir())


def claims(name: str, parent: str) -> bool:
    if not name.endswith(".jsonl") or "oder" not in parent:  # (cheap tests first: every file of a --path walk
        return False  # is asked; "oder" is in each folder name)
    p = f"{parent}{os.sep}"
    return any(f"{os.sep}{m}{os.sep}" in p for m in (".qoder", ".qoderwork", "Qoder"))


events_from_files = relabel.events_as(NAME, claude_code.events_from_files)
