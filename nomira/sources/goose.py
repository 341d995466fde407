"""Goose sessions: `~/.local/share/goose/sessions/sessions.db` (SQLite, Goose v1.10+).

Format (block/goose `crates/goose/src/session/session_manager.rs`): table `sessions(id,
name, session_type, working_dir, created_at, updated_at, ..., total_tokens,
input_tokens, output_tokens, accumulated_total_tokens, accumulated_input_tokens,
accumulated_output_tokens, ...)`; newer schemas add `provider_name` and
`model_config_json` (`{"model_name": ...}`, as read by ccusage `adapter/goose`). The
`accumulated_*` columns are the session's totals; the plain ones are the latest turn
and are used only when no accumulated figure exists. Goose keeps no per-call rows with
tokens and no cache split: usage is per session, input priced at the full input rate
(an upper bound when the provider cached), dated at the session's `created_at`. A total
above input + output is counted as reasoning output, as ccusage does.

The database is opened read-only (`file:...?mode=ro`), never locking the running agent.
Dedup key: (session id, created_at): the same database reached twice counts once.
Locations: `GOOSE_PATH_ROOT/data/sessions` (Goose's own override), else
`$XDG_DATA_HOME/goose/sessions`, `~/Library/Application Support/goose/sessions`,
`~/.local/share/Block/goose/sessions`, `%APPDATA%/Block/goose/data/sessions`.
Project: the session's `working_dir`.

Regime: API. Goose brings no plan of its own: it calls the provider with the user's key
(Anthropic, OpenAI, OpenRouter, ...), so the figures are the bill.
"""
from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path
from typing import Iterable, Mapping

from nomira.sources.scan import ScanStats
from nomira.sources import calls, sqlite_ro
from nomira.sources.calls import events_from_files, merge_records, partition_key  # noqa: F401

NAME = "goose"
DB = "sessions.db"
COLUMNS = ("id", "working_dir", "created_at", "provider_name", "model_config_json", "input_tokens", "output_tokens",
           "total_tokens", "accumulated_input_tokens", "accumulated_output_tokens", "accumulated_total_tokens")


def default_paths(env: Mapping[str, str] = os.environ) -> list[Path]:
    if env.get("GOOSE_PATH_ROOT"):
        dirs = [Path(env["GOOSE_PATH_ROOT"]).expanduser() / "data" / "sessions"]
    else:
        home = calls.home(env)
        data = Path(env["XDG_DATA_HOME"]) if env.get("XDG_DATA_HOME") else home / ".local" / "share"
        dirs = [data / "goose" / "sessions", home / "Library" / "Application Support" / "goose" / "sessions",
                home / ".local" / "share" / "Block" / "goose" / "sessions"]
        if env.get("APPDATA"):
            dirs.append(Path(env["APPDATA"]) / "Block" / "goose" / "data" / "sessions")
    return calls.existing(d for d in dirs if (d / DB).is_file())


def claims(name: str, parent: str) -> bool:
    return name in (DB, DB + "-wal")


def find_files(roots: Iterable[Path]) -> list[Path]:
    """The database and its -wal (fingerprinted, never parsed) so a cached report notices new rows."""
    return sqlite_ro.find_db(roots, DB)


def _model(config) -> str | None:
    try:
        cfg = json.loads(config) if isinstance(config, str) and config.strip() else None
    except ValueError:
        return None
    name = cfg.get("model_name") if isinstance(cfg, dict) else None
    return name if isinstance(name, str) and name.strip() else None


def _row(r: dict, stats: ScanStats) -> list | None:
    stats.candidates += 1
    inp = calls.count(r.get("accumulated_input_tokens")) or calls.count(r.get("input_tokens"))
    out = calls.count(r.get("accumulated_output_tokens")) or calls.count(r.get("output_tokens"))
    tot = calls.count(r.get("accumulated_total_tokens")) or calls.count(r.get("total_tokens"))
    if not (inp or out or tot):
        return None
    ts = calls.stamp(stats, r.get("created_at"))
    if ts is None:
        return None
    extra = max(tot - inp - out, 0)
    model = _model(r.get("model_config_json"))
    if model is None:
        stats.skip("model_unknown")
    sid = str(r.get("id"))
    return calls.record(NAME, ts, f"{sid}:{r.get('created_at')}", sid, model, input=inp, output=out + extra,
                        reasoning=extra, cwd=r.get("working_dir") if isinstance(r.get("working_dir"), str) else None,
                        aggregated=True)


def _scan_db(path: Path, stats: ScanStats) -> list[list]:
    db = sqlite3.connect(path.resolve().as_uri() + "?mode=ro", uri=True)
    try:
        have = {row[1] for row in db.execute("PRAGMA table_info(sessions)")}
        cols = [c for c in COLUMNS if c in have]
        if "id" not in have:
            stats.skip("not_a_goose_db")
            return []
        out = []
        for values in db.execute(f"SELECT {', '.join(cols)} FROM sessions"):  # noqa: S608 - names from COLUMNS
            rec = _row(dict(zip(cols, values)), stats)
            if rec is not None:
                out.append(rec)
        return out
    finally:
        db.close()


def scan_file(path: Path, start: int = 0, state: dict | None = None) -> tuple[list[list], dict, int, ScanStats]:
    path = Path(path)
    stats = ScanStats(files=1, bytes=path.stat().st_size)
    if path.name.endswith("-wal"):
        return [], {}, 0, stats
    try:
        records = _scan_db(path, stats)
    except sqlite3.Error as exc:
        stats.skip(f"unreadable_db:{type(exc).__name__}")
        records = []
    return records, {}, 0, stats
