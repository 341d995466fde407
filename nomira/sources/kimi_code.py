"""Kimi Code: `~/.kimi-code/sessions/<work dir hash>/<session id>/wire.jsonl`, Kimi CLI's wire format.

Kimi Code keeps Kimi CLI's session layout and wire protocol under its own share folder
(agentsview `internal/parser/types.go` lists `.kimi-code/sessions` beside `.kimi/sessions`
for the same parser; the Kimi desktop app's runtime is a kimi-code home too). Format,
token semantics, dedup key, the assumed model from the share folder's `config.toml` and
the project from its `kimi.json` are Kimi CLI's (`nomira/sources/kimi.py`). Given
explicitly (`--path`), its files are named like Kimi CLI's and are counted under `kimi`.

Regime: subscription by default, as Kimi CLI (a Kimi membership's quota).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable, Mapping

from nomira.sources.scan import ScanStats
from nomira.sources import calls, kimi
from nomira.sources.calls import events_from_files, merge_records, partition_key  # noqa: F401

NAME = "kimi_code"
PLACES = "~/.kimi-code/sessions"


def default_paths(env: Mapping[str, str] = os.environ) -> list[Path]:
    return calls.existing(r for r in [calls.home(env) / ".kimi-code" / "sessions"] if r.is_dir())


claims = kimi.claims


def find_files(roots: Iterable[Path]) -> list[Path]:
    return calls.find_claimed(roots, claims)


def scan_file(path: Path, start: int = 0, state: dict | None = None) -> tuple[list[list], dict, int, ScanStats]:
    return calls.as_source(NAME, kimi.scan_file(path, start, state))
