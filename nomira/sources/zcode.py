"""ZCode (Z.ai): `~/.zcode/cli/db/db.sqlite`, the `model_usage` table: one row per model request.

Format (agentsview `internal/parser/zcode.go`, `types.go`: `.zcode/cli/db`, `$ZCODE_DIR`):
`session(id, directory, title, time_created, time_updated)` and `model_usage(session_id,
turn_id, provider_id, model_id, status, input_tokens, output_tokens, reasoning_tokens,
cache_creation_input_tokens, cache_read_input_tokens, computed_total_tokens, started_at,
completed_at, duration_ms, tool_call_count)`. Times are ISO strings or epoch numbers.

ZCode is closed source, so whether `input_tokens` includes the cache counts is read from
each row's own `computed_total_tokens`: when it equals input + output + cache read + cache
write (reasoning inside output or beside it), the counts are disjoint; when it equals input +
output, the cache counts are inside `input_tokens` and are taken out of it. A row whose
total is absent or matches neither is read as disjoint and counted `zcode_total_unmatched`
(an upper bound, never hidden). Reasoning is added to output only when the total says it is apart.

Dedup key: (session, turn, started_at, model, status) within the table: a database reached
twice counts once. Project: the session's `directory`. Opened read-only (`sqlite_ro`).

Regime: not established (ZCode signs in to Z.ai, whose GLM Coding Plan is a subscription);
priced at API rates, `--regime subscription` to read it as plan value.
"""
from __future__ import annotations

import os
import sqlite3
from pathlib import Path
from typing import Iterable, Mapping

from nomira.sources.scan import ScanStats
from nomira.sources import calls, sqlite_ro
from nomira.sources.calls import events_from_files, merge_records, partition_key  # noqa: F401

NAME = "zcode"
DB = "db.sqlite"
PLACES = "$ZCODE_DIR, ~/.zcode/cli/db: db.sqlite"
COLUMNS = ("session_id", "turn_id", "provider_id", "model_id", "status", "input_tokens", "output_tokens",
           "reasoning_tokens", "cache_creation_input_tokens", "cache_read_input_tokens", "computed_total_tokens",
           "started_at", "completed_at")


def default_paths(env: Mapping[str, str] = os.environ) -> list[Path]:
    roots = calls.env_paths(env, "ZCODE_DIR")
    if roots is None:
        roots = [calls.home(env) / ".zcode" / "cli"]
    roots = [r if r.name == "db" else r / "db" for r in roots]  # agentsview's root rule: `<root>/db`
    return calls.existing(r for r in roots if (r / DB).is_file())


def claims(name: str, parent: str) -> bool:
    return name in (DB, DB + "-wal") and os.path.basename(parent) == "db" and ".zcode" in parent


def find_files(roots: Iterable[Path]) -> list[Path]:
    return sqlite_ro.find_db(roots, DB)


def _scan_db(db: sqlite3.Connection, stats: ScanStats) -> list[list]:
    have = sqlite_ro.columns(db, "model_usage")
    if "input_tokens" not in have:
        stats.skip("not_a_zcode_db")
        return []
    dirs = {}
    scols = sqlite_ro.columns(db, "session")
    if {"id", "directory"} <= scols:
        dirs = {str(sid): (d, t) for sid, d, t in db.execute(
            f"SELECT id, directory, {'time_created' if 'time_created' in scols else 'NULL'} FROM session")}  # noqa: S608
    cols = ", ".join(c if c in have else "NULL" for c in COLUMNS)
    out = []
    for row in db.execute(f"SELECT {cols} FROM model_usage"):  # noqa: S608 - column names
        stats.candidates += 1
        sid, turn, _prov, model, status, inp, out_, reasoning, cw, cr, total, started, completed = row
        inp, out_, reasoning, cw, cr, total = (calls.count(v) for v in (inp, out_, reasoning, cw, cr, total))
        if not (inp or out_ or cr or cw):
            continue
        inp, out_, matched = calls.split_by_total(inp, out_, cr, cw, reasoning, total)
        if not matched:
            stats.skip("zcode_total_unmatched")
        cwd, created = dirs.get(str(sid), (None, None))
        ts = calls.stamp(stats, completed, started, created)
        if ts is None:
            continue
        key = f"{sid}:{turn}:{started}:{model}:{status}"
        out.append(calls.record(NAME, ts, key, str(sid), model, input=inp, output=out_, cache_read=cr, cache_write=cw,
                                reasoning=min(reasoning, out_), cwd=cwd))
    return out


def scan_file(path: Path, start: int = 0, state: dict | None = None) -> tuple[list[list], dict, int, ScanStats]:
    return sqlite_ro.scan_db(path, _scan_db)
