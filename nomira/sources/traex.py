"""TraeX (TRAE CLI 2.0): `~/.trae/cli/sessions` and `archived_sessions`, Codex's rollout JSONL.

TRAE CLI 2.0 is a closed-source fork of codex-rs that "writes the same rollout JSONL"
(agentsview `internal/parser/traex.go`; `types.go`: `.trae/cli/sessions`,
`.trae/cli/archived_sessions`, `$TRAEX_SESSIONS_DIR`). Codex's parser, token semantics
(per call: the delta of cumulative `token_count` totals, input including cached, output
including reasoning) and dedup key apply as they are (`nomira/sources/codex.py`); events
carry the source name `traex`. Given by `--path`, its `rollout-*` files are counted
under `codex` unless they lie under a `.trae` folder.

Regime: not established (TRAE accounts have plans); priced at API rates, `--regime
subscription` to read it as plan value.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Mapping

from nomira.sources import calls, codex, relabel
from nomira.sources.codex import find_files, merge_records, partition_key, scan_file  # noqa: F401

NAME = "traex"
PLACES = "$TRAEX_SESSIONS_DIR, ~/.trae/cli/sessions, ~/.trae/cli/archived_sessions"


def default_paths(env: Mapping[str, str] = os.environ) -> list[Path]:
    roots = calls.env_paths(env, "TRAEX_SESSIONS_DIR")
    if roots is None:
        base = calls.home(env) / ".trae" / "cli"
        roots = [base / "sessions", base / "archived_sessions"]
    return calls.existing(r for r in roots if r.is_dir())


def claims(name: str, parent: str) -> bool:
    return name.startswith("rollout-") and name.endswith(".jsonl") \
        and f"{os.sep}.trae{os.sep}" in f"{parent}{os.sep}"


events_from_files = relabel.events_as(NAME, codex.events_from_files)
