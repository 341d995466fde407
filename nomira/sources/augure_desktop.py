"""Augure Desktop: `~/.augure-desktop/state.db`, Hermes Agent's SQLite store.

"Augure Desktop v3 embeds a fork of Hermes Agent renamed to ~/.augure-desktop. The
state.db schema matches Hermes's" (agentsview `internal/parser/types.go`, the
`AgentAugureDesktop` entry, and its README table: `~/.augure-desktop/` on macOS and
Linux, `%LOCALAPPDATA%\\augure-desktop\\` on Windows; `$AUGURE_DESKTOP_DIR` is
agentsview's override). Hermes' reading applies as it is (`nomira/sources/hermes.py`:
per session and model `session_model_usage` rows in `CanonicalUsage` terms, else the
session's totals; Hermes' own cost beside; read-only, copy-on-read under WAL; dedup key
(session id, model, billing route, task)); records carry the source name
`augure_desktop`. The folder's own name marks the fork, so a stock `~/.hermes` store is
never claimed here.

Regime: API, as Hermes (the user's provider keys); not established for Augure's own plans.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable, Mapping

from nomira.sources.scan import ScanStats
from nomira.sources import calls, hermes, sqlite_ro
from nomira.sources.calls import events_from_files, merge_records, partition_key  # noqa: F401

NAME = "augure_desktop"
PLACES = "$AUGURE_DESKTOP_DIR, ~/.augure-desktop, %LOCALAPPDATA%/augure-desktop: state.db"
FOLDERS = (".augure-desktop", "augure-desktop")


def default_paths(env: Mapping[str, str] = os.environ) -> list[Path]:
    roots = calls.env_paths(env, "AUGURE_DESKTOP_DIR")
    if roots is None:
        roots = [calls.home(env) / ".augure-desktop"]
        local = env.get("LOCALAPPDATA")
        roots.append(Path(local) / "augure-desktop" if local else calls.home(env) / "AppData" / "Local" / "augure-desktop")
    return calls.existing(r for r in roots if (r / hermes.DB).is_file())


def claims(name: str, parent: str) -> bool:
    return name in (hermes.DB, hermes.DB + "-wal") and os.path.basename(parent) in FOLDERS


def find_files(roots: Iterable[Path]) -> list[Path]:
    return sqlite_ro.find_db(roots, hermes.DB)


def scan_file(path: Path, start: int = 0, state: dict | None = None) -> tuple[list[list], dict, int, ScanStats]:
    return calls.as_source(NAME, hermes.scan_file(path, start, state))
