"""CodeBuddy Code (Tencent's CLI): `~/.codebuddy/projects/<project>/<session>.jsonl` (+ `<session>/subagents/`).

Format (tokscale `crates/tokscale-core/src/sessions/codebuddy.rs` and its fixtures; agentsview
`internal/parser/codebuddy.go` reads CodeBuddy's and WorkBuddy's project folders as one
layout): WorkBuddy's item-per-line JSONL (`nomira/sources/workbuddy.py`), a completed assistant
message carrying its usage in `message.usage` (`input_tokens`, `output_tokens`, `total_tokens`,
`cache_read_input_tokens`, `cache_creation_input_tokens`), else `providerData.usage` /
`providerData.rawUsage` (`prompt_tokens`, `completion_tokens`, `prompt_cache_hit_tokens`,
`prompt_cache_write_tokens`, `completion_thinking_tokens`); `providerData.model` (else
`requestModelId`), `providerData.messageId`, `sessionId`, `cwd`, `timestamp` (ms). Whether the
input includes the cache is read from each reply's own `total_tokens` (`calls.split_by_total`:
in tokscale's sample 24486 in + 3 out = 24489 total with 14720 cached, so the cache is inside
the input); replies without a total read the cache as inside the input when it fits (OpenAI's
`prompt_tokens` definition), else as beside it, counted `codebuddy_cache_outside_input`;
mismatching totals are counted `codebuddy_total_unmatched`.

Dedup key: (session, `providerData.messageId`), else (session, the usage's counts): a
response's usage repeated on its items and a copied session count once. Locations:
`$CODEBUDDY_DIR` (agentsview's; comma list of `projects` folders), `~/.codebuddy/projects` (a
home-relative folder on every OS). The IDE extension's `CodeBuddyExtension/Data/history` is
another format, not read. Project: the line's `cwd`.

Regime: not established (CodeBuddy plans bill credits; custom models use the user's keys):
API rates, `--regime subscription` to read it as plan value.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable, Mapping

from nomira.sources.scan import ScanStats
from nomira.sources import calls, workbuddy
from nomira.sources.calls import events_from_files, merge_records, partition_key  # noqa: F401

NAME = "codebuddy"
PLACES = "$CODEBUDDY_DIR, ~/.codebuddy/projects"


def default_paths(env: Mapping[str, str] = os.environ) -> list[Path]:
    roots = calls.env_paths(env, "CODEBUDDY_DIR")
    if roots is None:
        roots = [calls.home(env) / ".codebuddy" / "projects"]
    return calls.existing(r for r in roots if r.is_dir())


def claims(name: str, parent: str) -> bool:
    return name.endswith(".jsonl") and f"{os.sep}.codebuddy{os.sep}projects{os.sep}" in f"{parent}{os.sep}"


def find_files(roots: Iterable[Path]) -> list[Path]:
    return workbuddy.find_files(roots)


def scan_file(path: Path, start: int = 0, state: dict | None = None) -> tuple[list[list], dict, int, ScanStats]:
    return workbuddy.scan_file(path, start, state, NAME)
