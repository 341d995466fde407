"""Augure Code: `~/.augure/sessions/YYYY/MM/DD/rollout-*.jsonl`, Codex's rollout JSONL.

Augure Code (augureai.ca) is "a closed-source rebrand of codex-rs, byte-compatible with
Codex rollout JSONL", its sessions "under a dated YYYY/MM/DD tree at ~/.augure/sessions"
(agentsview `internal/parser/types.go`, the `AgentAugureCode` entry and README table;
`$AUGURE_CODE_SESSIONS_DIR` is agentsview's override, the only one documented). Codex's
parser, token semantics (per call: the delta of cumulative `token_count` totals, input
including cached, output including reasoning) and dedup key apply as they are
(`nomira/sources/codex.py`); events carry the source name `augure_code`. Given by
`--path`, its `rollout-*` files are counted under `codex` unless they lie under a
`.augure` folder. The same layout on every OS (a home-relative folder).

Regime: not established (Augure sells plans); priced at API rates, `--regime
subscription` to read it as plan value.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Mapping

from nomira.sources import calls, codex, relabel
from nomira.sources.codex import find_files, merge_records, partition_key, scan_file  # noqa: F401

NAME = "augure_code"
PLACES = "$AUGURE_CODE_SESSIONS_DIR, ~/.augure/sessions"


def default_paths(env: Mapping[str, str] = os.environ) -> list[Path]:
    roots = calls.env_paths(env, "AUGURE_CODE_SESSIONS_DIR")
    if roots is None:
        roots = [calls.home(env) / ".augure" / "sessions"]
    return calls.existing(r for r in roots if r.is_dir())


def claims(name: str, parent: str) -> bool:
    return name.startswith("rollout-") and name.endswith(".jsonl") \
        and f"{os.sep}.augure{os.sep}" in f"{parent}{os.sep}"


events_from_files = relabel.events_as(NAME, codex.events_from_files)
