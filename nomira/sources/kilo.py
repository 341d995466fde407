"""Kilo CLI (and the Kilo Code extension since its OpenCode core): `~/.local/share/kilo/kilo.db`.

Format: Kilo CLI is built on OpenCode and keeps OpenCode's SQLite store under its own
name (tokscale `sessions/kilo.rs`, agentsview `internal/parser/kilo.go`: "Kilo uses
OpenCode's storage format"): tables `message(id, session_id, data)` and `part(id,
message_id, data)`, `data` JSON as OpenCode writes it: assistant messages `{role,
modelID, providerID, time {created}, path {cwd}, tokens {input, output, reasoning,
cache {read, write}}, cost}`, and one `step-finish` part per API request with its own
`tokens` and `cost`. Token semantics, the step-over-message rule and the record are
OpenCode's (`opencode.records_for`, one definition); Kilo's own `cost` (of the step,
else of the message) is kept beside the computed one.

Dedup key: (message id, step id): a database reached twice counts once. Locations:
`$KILO_DIR` (agentsview's; comma list), `$XDG_DATA_HOME/kilo` (`~/.local/share/kilo`),
`%LOCALAPPDATA%/kilo`. Opened read-only (`sqlite_ro`). The pre-OpenCode Kilo Code
extension's task folders are read by the `cline` source. Project: the message's `path.cwd`.

Regime: API. Kilo bills its gateway credits per request at provider cost (or the user's
own key): the figures are the bill.
"""
from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path
from typing import Iterable, Mapping

from nomira.sources.scan import ScanStats
from nomira.sources import calls, opencode, sqlite_ro
from nomira.sources.calls import events_from_files, merge_records, partition_key  # noqa: F401

NAME = "kilo_cli"
PLACES = "$KILO_DIR, $XDG_DATA_HOME/kilo (~/.local/share/kilo), %LOCALAPPDATA%/kilo: kilo.db"
DB = "kilo.db"


def default_paths(env: Mapping[str, str] = os.environ) -> list[Path]:
    roots = calls.env_paths(env, "KILO_DIR")
    if roots is None:
        data = Path(env["XDG_DATA_HOME"]) if env.get("XDG_DATA_HOME") else calls.home(env) / ".local" / "share"
        roots = [data / "kilo"]
        if env.get("LOCALAPPDATA"):
            roots.append(Path(env["LOCALAPPDATA"]) / "kilo")
    return calls.existing(r for r in roots if (r / DB).is_file())


def claims(name: str, parent: str) -> bool:
    return name in (DB, DB + "-wal")


def find_files(roots: Iterable[Path]) -> list[Path]:
    return sqlite_ro.find_db(roots, DB)


def _scan_db(db: sqlite3.Connection, stats: ScanStats) -> list[list]:
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
        costs = {pid: calls.money(p.get("cost")) for pid, p in steps.get(mid, [])}
        for r in opencode.records_for(msg, steps.get(mid, []), sid):
            step = r[opencode.STEP]
            google = "google" in str(r[opencode.PROVIDER]) or "gemini" in r[opencode.MODEL]
            out.append(calls.record(
                NAME, r[opencode.TS], f"{mid}:{step}", r[opencode.SESSION], r[opencode.MODEL],
                input=r[opencode.IN], output=r[opencode.OUT] + (r[opencode.REASONING] if google else 0),
                cache_read=r[opencode.CR], cache_write=r[opencode.CW], reasoning=r[opencode.REASONING],
                reported_input=r[opencode.IN] + r[opencode.CR], cwd=r[opencode.PROJECT],
                agent_cost=costs.get(step) if step is not None else calls.money(msg.get("cost"))))
    return out


def scan_file(path: Path, start: int = 0, state: dict | None = None) -> tuple[list[list], dict, int, ScanStats]:
    return sqlite_ro.scan_db(path, _scan_db)
