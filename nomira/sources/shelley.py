"""Shelley (exe.dev): `~/.config/shelley/shelley.db`, one SQLite database for every conversation.

Format (boldsoftware/shelley `db/schema/*.sql`, `llm/llm.go` `Usage`; agentsview
`internal/parser/shelley.go`): `conversations(conversation_id, cwd, model, ...)` and
`messages(message_id, conversation_id, sequence_id, type, usage_data, created_at,
model_name, forked_from_message_id, other_usage_data, ...)`. `usage_data` is the JSON of
`llm.Usage {input_tokens, cache_creation_input_tokens, cache_read_input_tokens,
output_tokens, cost_usd, model, start_time, end_time}` for each agent reply (one LLM
request), in Anthropic terms for every provider: the OpenAI adapter stores
`prompt_tokens - cached_tokens` as `input_tokens` and the cached tokens as cache reads
(`llm/oai/oai.go`). `other_usage_data` is an array of the same usages plus `purpose` for
the indirect calls a message hosts (compaction, slug generation, LLM-backed tools).
`cost_usd` is Shelley's own figure, kept beside the computed one.

Dedup key: the source message (`forked_from_message_id`, else `message_id`; indirect calls
by their index): a forked conversation copies its source's messages with the same usage
("filter WHERE forked_from_message_id IS NULL" to count each call once, schema 032), and a
database reached twice counts once. Time: the usage's `start_time`, else the row's
`created_at` (UTC). Model: the usage's, else the row's `model_name`, else the
conversation's. Project: the conversation's `cwd`. Locations: `$SHELLEY_DIR`
(agentsview's; comma list), `$XDG_CONFIG_HOME/shelley` (`~/.config/shelley`). Opened
read-only (`sqlite_ro`); databases older than a column read without it.

Regime: API: Shelley calls providers with the user's keys (or exe.dev's gateway, billed).
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

NAME = "shelley"
DB = "shelley.db"
PLACES = "$SHELLEY_DIR, $XDG_CONFIG_HOME/shelley (~/.config/shelley): shelley.db"
OPTIONAL = ("model_name", "forked_from_message_id", "other_usage_data")


def default_paths(env: Mapping[str, str] = os.environ) -> list[Path]:
    roots = calls.env_paths(env, "SHELLEY_DIR")
    if roots is None:
        config = Path(env["XDG_CONFIG_HOME"]) if env.get("XDG_CONFIG_HOME") else calls.home(env) / ".config"
        roots = [config / "shelley"]
    return calls.existing(r for r in roots if (r / DB).is_file())


def claims(name: str, parent: str) -> bool:
    return name in (DB, DB + "-wal")


def find_files(roots: Iterable[Path]) -> list[Path]:
    return sqlite_ro.find_db(roots, DB)


def _record(u, key: str, conv: str, model, created, cwd, stats: ScanStats) -> list | None:
    if not isinstance(u, dict):
        stats.malformed += 1
        return None
    inp, out = calls.count(u.get("input_tokens")), calls.count(u.get("output_tokens"))
    cr, cw = calls.count(u.get("cache_read_input_tokens")), calls.count(u.get("cache_creation_input_tokens"))
    if not (inp or out or cr or cw):
        return None
    ts = calls.stamp(stats, u.get("start_time"), u.get("end_time"), created)
    if ts is None:
        return None
    used = u.get("model") if isinstance(u.get("model"), str) and u["model"] else model
    return calls.record(NAME, ts, key, conv, used, input=inp, output=out, cache_read=cr, cache_write=cw, cwd=cwd,
                        agent_cost=calls.money(u.get("cost_usd")))


def _json(text, stats: ScanStats):
    try:
        return json.loads(text)
    except (TypeError, ValueError):
        stats.malformed += 1
        return None


def _scan_db(db: sqlite3.Connection, stats: ScanStats) -> list[list]:
    have = sqlite_ro.columns(db, "messages")
    if "usage_data" not in have:
        stats.skip("not_a_shelley_db")
        return []
    conv_cols = sqlite_ro.columns(db, "conversations")
    convs = {cid: (cwd, model) for cid, cwd, model in db.execute(
        f"SELECT conversation_id, {'cwd' if 'cwd' in conv_cols else 'NULL'}, "  # noqa: S608 - column names
        f"{'model' if 'model' in conv_cols else 'NULL'} FROM conversations")}
    extra = ", ".join(c if c in have else "NULL" for c in OPTIONAL)
    out = []
    for mid, conv, created, usage, row_model, forked, other in db.execute(
            f"SELECT message_id, conversation_id, created_at, usage_data, {extra} FROM messages "  # noqa: S608
            "WHERE usage_data IS NOT NULL OR " + ("other_usage_data IS NOT NULL" if "other_usage_data" in have
                                                   else "0") + " ORDER BY conversation_id, sequence_id"):
        cwd, conv_model = convs.get(conv, (None, None))
        model = row_model or conv_model
        origin = forked or mid
        if usage is not None:
            stats.candidates += 1
            u = _json(usage, stats)
            if u is not None:
                rec = _record(u, str(origin), conv, model, created, cwd, stats)
                if rec is not None:
                    out.append(rec)
        if other is not None:
            for i, u in enumerate(calls.listed(_json(other, stats))):
                stats.candidates += 1
                rec = _record(u, f"{origin}:other:{i}", conv, model, created, cwd, stats)
                if rec is not None:
                    out.append(rec)
    return out


def scan_file(path: Path, start: int = 0, state: dict | None = None) -> tuple[list[list], dict, int, ScanStats]:
    return sqlite_ro.scan_db(path, _scan_db)
