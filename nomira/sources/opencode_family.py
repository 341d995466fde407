"""Agents built on OpenCode that keep OpenCode's SQLite store under their own name: Kilo CLI
(`kilo.db`), MiMo Code (`mimocode.db`), IcodeMate (`icodemate.db`); one reader, each agent
its own module (source name, locations, database name).

The store is OpenCode's (tokscale `sessions/kilo.rs`; agentsview `internal/parser/discovery.go`
`openCodeFormat{dbName}` for kilo, mimocode and icodemate, "uses OpenCode's storage format"):
tables `message(id, session_id, data)` and `part(id, message_id, data)`, `data` JSON as
OpenCode writes it: assistant messages `{role, modelID, providerID, time {created}, path
{cwd}, tokens {input, output, reasoning, cache {read, write}}, cost}`, and one
`step-finish` part per API request with its own `tokens` and `cost`. Token semantics, the
step-over-message rule and the record are OpenCode's (`opencode.records_for`); the agent's
own `cost` (of the step, else of the message) is kept beside the computed one. Dedup key:
(message id, step id): a database reached twice counts once. Opened read-only (`sqlite_ro`).
"""
from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path
from typing import Iterable, Mapping

from nomira.sources.scan import ScanStats
from nomira.sources import calls, opencode, sqlite_ro


def records(name: str, db: sqlite3.Connection, stats: ScanStats) -> list[list]:
    """Every step (else message) of an OpenCode-format database as call records under `name`."""
    steps = opencode.step_parts(db, stats)
    out = []
    for mid, sid, data in db.execute("SELECT id, session_id, data FROM message ORDER BY id"):
        stats.candidates += 1
        try:
            msg = json.loads(data)
        except (TypeError, ValueError):
            msg = None
        if not isinstance(msg, dict):
            stats.malformed += 1
            continue
        msg["id"] = mid
        for r in opencode.records_for(msg, steps.get(mid, []), sid, stats):  # (no version: the agent's own numbers)
            step = r[opencode.STEP]
            out.append(calls.record(
                name, r[opencode.TS], f"{mid}:{step}", r[opencode.SESSION], r[opencode.MODEL],
                input=r[opencode.IN], output=opencode.billed_output(r),
                cache_read=r[opencode.CR], cache_write=r[opencode.CW], reasoning=r[opencode.REASONING],
                reported_input=r[opencode.IN] + r[opencode.CR], cwd=r[opencode.PROJECT],
                agent_cost=r[opencode.COST]))
    return out


def functions(name: str, var: str, folder: str, db_name: str):
    """(default_paths, claims, find_files, scan_file) of an OpenCode-format agent: `$var` (comma
    list), else `$XDG_DATA_HOME/<folder>` (`~/.local/share/<folder>`) and `%LOCALAPPDATA%/<folder>`,
    those holding `db_name`."""
    def default_paths(env: Mapping[str, str] = os.environ) -> list[Path]:
        roots = calls.env_paths(env, var)
        if roots is None:
            data = Path(env["XDG_DATA_HOME"]) if env.get("XDG_DATA_HOME") else calls.home(env) / ".local" / "share"
            roots = [data / folder]
            if env.get("LOCALAPPDATA"):
                roots.append(Path(env["LOCALAPPDATA"]) / folder)
        return calls.existing(r for r in roots if (r / db_name).is_file())

    def claims(file: str, parent: str) -> bool:
        return file in (db_name, db_name + "-wal")

    def find_files(roots: Iterable[Path]) -> list[Path]:
        return sqlite_ro.find_db(roots, db_name)

    def scan_file(path: Path, start: int = 0, state: dict | None = None) -> tuple[list[list], dict, int, ScanStats]:
        return sqlite_ro.scan_db(path, lambda db, stats: records(name, db, stats))
    return default_paths, claims, find_files, scan_file
