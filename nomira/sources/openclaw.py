"""OpenClaw: `~/.openclaw/agents/<agent>/sessions/<session id>.jsonl`, pi's format (see `pi_family`)."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable, Mapping

from nomira.scan import ScanStats
from nomira.sources import calls, pi_family
from nomira.sources.calls import events_from_files, merge_records, partition_key  # noqa: F401

NAME = "openclaw"
PLACES = "$OPENCLAW_DIR, " + ", ".join(f"~/{d}" for d in (".openclaw/agents", ".kimi_openclaw/agents"))


def default_paths(env: Mapping[str, str] = os.environ) -> list[Path]:
    return pi_family.roots(env, "OPENCLAW_DIR", (".openclaw/agents", ".kimi_openclaw/agents"))


def claims(name: str, parent: str) -> bool:
    """`agents/<agent>/sessions/<id>.jsonl`."""
    return name.endswith(".jsonl") and os.path.basename(parent) == "sessions" \
        and os.path.basename(os.path.dirname(os.path.dirname(parent))) == "agents"


def find_files(roots: Iterable[Path]) -> list[Path]:
    return calls.find_claimed(roots, claims)


def scan_file(path: Path, start: int = 0, state: dict | None = None) -> tuple[list[list], dict, int, ScanStats]:
    return pi_family.scan_as(NAME, path, start, state)
