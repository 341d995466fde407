"""Oh My Pi: `~/.omp/agent/sessions`, pi's format and layout (see `pi_family`)."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable, Mapping

from nomira.scan import ScanStats
from nomira.sources import calls, pi_family
from nomira.sources.calls import events_from_files, merge_records, partition_key  # noqa: F401

NAME = "oh_my_pi"
PLACES = "$OMP_DIR, " + ", ".join(f"~/{d}" for d in (".omp/agent/sessions",))


def default_paths(env: Mapping[str, str] = os.environ) -> list[Path]:
    return pi_family.roots(env, "OMP_DIR", (".omp/agent/sessions",))


claims = pi_family.under(".omp")


def find_files(roots: Iterable[Path]) -> list[Path]:
    return calls.find_claimed(roots, claims)


def scan_file(path: Path, start: int = 0, state: dict | None = None) -> tuple[list[list], dict, int, ScanStats]:
    return pi_family.scan_as(NAME, path, start, state)
