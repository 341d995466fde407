"""Hermes Agent (Nous Research): `~/.hermes/state.db` (SQLite, WAL).

Format (NousResearch/hermes-agent `hermes_state.py` / `hermes_state_schema.py`,
`agent/usage_pricing.py` `CanonicalUsage`): table `sessions(id, source, model,
started_at (epoch s), ended_at, input_tokens, output_tokens, cache_read_tokens,
cache_write_tokens, reasoning_tokens, cwd?, billing_provider?, estimated_cost_usd,
actual_cost_usd, cost_status?, ...)`, and in newer schemas `session_model_usage(session_id,
model, billing_provider, billing_base_url, billing_mode, task, api_call_count,
input_tokens, ..., estimated_cost_usd, actual_cost_usd, cost_status, first_seen,
last_seen)`: one row per model (and billing route, task) a session used. Hermes
normalises every provider to `CanonicalUsage`: `input_tokens` is uncached input, cache
reads and writes apart, `output_tokens` the completion (reasoning counted as telemetry,
not added). Hermes' own cost is kept beside the computed one: `actual_cost_usd` when
the provider reported it (`cost_status = 'actual'`), else its estimate.

Per-model rows are read where the table has them (dated at `first_seen`), else the
session's totals (one `aggregated` event per session, dated at `started_at`). Dedup key:
(session id, model, billing route, task): the same database reached twice counts once.
Opened read-only (`sqlite_ro`, copy-on-read if WAL forbids it). Locations: `$HERMES_HOME`
(Hermes' own override), `~/.hermes`. Project: the session's `cwd` (newer schemas).

Regime: API. Hermes calls the provider the user configured with its key (Nous Portal,
OpenRouter, Anthropic, ...); `cost_status = 'included'` rows (a plan) still count tokens.
"""
from __future__ import annotations

import os
import sqlite3
from pathlib import Path
from typing import Iterable, Mapping

from nomira.sources.scan import ScanStats
from nomira.sources import calls, sqlite_ro
from nomira.sources.calls import events_from_files, merge_records, partition_key  # noqa: F401

NAME = "hermes"
PLACES = "$HERMES_HOME, ~/.hermes: state.db"
DB = "state.db"
TOKENS = ("input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens", "reasoning_tokens")


def default_paths(env: Mapping[str, str] = os.environ) -> list[Path]:
    base = Path(env["HERMES_HOME"]).expanduser() if env.get("HERMES_HOME") else calls.home(env) / ".hermes"
    return [base] if (base / DB).is_file() else []


def claims(name: str, parent: str) -> bool:
    return name in (DB, DB + "-wal") and os.path.basename(parent).endswith("hermes")


def find_files(roots: Iterable[Path]) -> list[Path]:
    return sqlite_ro.find_db(roots, DB)


def _cost(row: dict) -> float | None:
    """The provider's figure when Hermes recorded one, else Hermes' estimate."""
    actual, estimated = calls.money(row.get("actual_cost_usd")), calls.money(row.get("estimated_cost_usd"))
    if actual is not None and (row.get("cost_status") == "actual" or (actual and not estimated)):
        return actual
    return estimated


def _record(row: dict, key: str, sid: str, model, ts: str, cwd) -> list | None:
    inp, out, cr, cw, reasoning = (calls.count(row.get(k)) for k in TOKENS)
    if not (inp or out or cr or cw):
        return None
    return calls.record(NAME, ts, key, sid, model, input=inp, output=out, cache_read=cr, cache_write=cw,
                        reasoning=min(reasoning, out), cwd=cwd if isinstance(cwd, str) else None,
                        agent_cost=_cost(row), aggregated=True)


def _rows(db: sqlite3.Connection, table: str, wanted: tuple[str, ...]) -> list[dict]:
    cols = [c for c in wanted if c in sqlite_ro.columns(db, table)]
    return [dict(zip(cols, v)) for v in db.execute(f"SELECT {', '.join(cols)} FROM {table}")]  # noqa: S608


def _scan_db(db: sqlite3.Connection, stats: ScanStats) -> list[list]:
    if "id" not in sqlite_ro.columns(db, "sessions"):
        stats.skip("not_a_hermes_db")
        return []
    sessions = {str(r["id"]): r for r in _rows(db, "sessions", ("id", "model", "started_at", "cwd", *TOKENS,
                                                                 "estimated_cost_usd", "actual_cost_usd",
                                                                 "cost_status"))}
    per_model = _rows(db, "session_model_usage", ("session_id", "model", "billing_provider", "billing_base_url",
                                                  "billing_mode", "task", *TOKENS, "estimated_cost_usd",
                                                  "actual_cost_usd", "cost_status", "first_seen")) \
        if sqlite_ro.columns(db, "session_model_usage") else []
    out, covered = [], set()
    for r in per_model:
        stats.candidates += 1
        sid = str(r.get("session_id"))
        s = sessions.get(sid, {})
        ts = calls.stamp(stats, r.get("first_seen"), s.get("started_at"))
        route = ":".join(str(r.get(k) or "") for k in ("model", "billing_provider", "billing_base_url",
                                                       "billing_mode", "task"))
        rec = _record(r, f"{sid}:{route}", sid, r.get("model"), ts, s.get("cwd")) if ts else None
        if rec is not None:
            out.append(rec)
            covered.add(sid)
    for sid, s in sessions.items():
        if sid in covered:
            continue
        stats.candidates += 1
        if not any(calls.count(s.get(k)) for k in TOKENS):
            continue
        ts = calls.stamp(stats, s.get("started_at"))
        rec = _record(s, f"{sid}:{s.get('model')}::::", sid, s.get("model"), ts, s.get("cwd")) if ts else None
        if rec is not None:
            out.append(rec)
    return out


def scan_file(path: Path, start: int = 0, state: dict | None = None) -> tuple[list[list], dict, int, ScanStats]:
    return sqlite_ro.scan_db(path, _scan_db)
