"""Crush: found and reported, but its local data has no token counts to price.

Crush (charmbracelet/crush) keeps one SQLite database per project, `<data_dir>/crush.db`
(data dirs listed in `projects.json` beside `crush.json` in `$CRUSH_GLOBAL_DATA`, else
`$XDG_DATA_HOME/crush`, else `~/.local/share/crush`, `%LOCALAPPDATA%/crush` on Windows).
Its `sessions` table has `prompt_tokens`, `completion_tokens` and `cost`, but
`internal/agent/agent.go` `updateSessionTokenCounters` OVERWRITES the token columns with
the latest request's counts (the context size), while only `cost` (Crush's own estimate
from its catwalk rates, or OpenRouter's reported cost; 0 on flat-rate models)
accumulates. `messages` rows carry the model but no usage. So no call or session can be
priced from local data: each session with activity is counted as `no_token_data:crush`.
Use instead: `crush stats` (Crush's own cost figures) or the provider's usage API.

The databases are opened read-only (`file:...?mode=ro`).
"""
from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path
from typing import Iterable, Mapping

from nomira.sources.scan import ScanStats
from nomira.sources import calls
from nomira.sources.calls import events_from_files, merge_records, partition_key  # noqa: F401

NAME = "crush"
DB = "crush.db"
NO_TOKEN_DATA = "Crush keeps no token counts; use `crush stats` (its own cost figures) or the provider's usage API"


def _global_dir(env: Mapping[str, str]) -> Path:
    if env.get("CRUSH_GLOBAL_DATA"):
        return Path(env["CRUSH_GLOBAL_DATA"]).expanduser()
    if env.get("XDG_DATA_HOME"):
        return Path(env["XDG_DATA_HOME"]) / "crush"
    if env.get("LOCALAPPDATA"):
        return Path(env["LOCALAPPDATA"]) / "crush"
    return calls.home(env) / ".local" / "share" / "crush"


def default_paths(env: Mapping[str, str] = os.environ) -> list[Path]:
    """The data dirs of the projects Crush tracks (one stat when Crush is absent)."""
    try:
        listing = json.loads((_global_dir(env) / "projects.json").read_bytes())
    except (OSError, ValueError):
        return []
    dirs = []
    for p in listing.get("projects") or [] if isinstance(listing, dict) else []:
        if isinstance(p, dict) and isinstance(p.get("data_dir"), str):
            d = Path(p["data_dir"])
            if not d.is_absolute() and isinstance(p.get("path"), str):
                d = Path(p["path"]) / d
            dirs.append(d)
    return calls.existing(d for d in dirs if (d / DB).is_file())


def claims(name: str, parent: str) -> bool:
    return name == DB


def find_files(roots: Iterable[Path]) -> list[Path]:
    out = [Path(r) if Path(r).is_file() else Path(r) / DB for r in roots]
    return sorted({p for p in out if p.is_file()}, key=str)


def scan_file(path: Path, start: int = 0, state: dict | None = None) -> tuple[list[list], dict, int, ScanStats]:
    path = Path(path)
    stats = ScanStats(files=1, bytes=path.stat().st_size)
    try:
        db = sqlite3.connect(path.resolve().as_uri() + "?mode=ro", uri=True)
        try:
            (n,) = db.execute("SELECT COUNT(*) FROM sessions WHERE message_count > 0 OR cost > 0").fetchone()
        finally:
            db.close()
    except sqlite3.Error as exc:
        stats.skip(f"unreadable_db:{type(exc).__name__}")
        return [], {}, 0, stats
    stats.candidates += n
    if n:
        stats.skip("no_token_data:crush", n)
    return [], {}, 0, stats
