"""Zed Agent threads: `threads/threads.db` in Zed's data folder (SQLite).

Format (zed-industries/zed `crates/agent/src/db.rs` `ThreadsDatabase`, as read by tokscale
`sessions/zed.rs` and agentsview `internal/parser/zed.go`): table `threads(id, summary,
updated_at, data_type, data, parent_id?, folder_paths?, folder_paths_order?,
created_at?)`; `data` is the thread serialised as JSON, stored zstd-compressed
(`data_type = "zstd"`, current builds) or plain (`"json"`): `{version, title, messages,
updated_at, model: {provider, model}, request_token_usage: {<user message id>: {input_tokens,
output_tokens, cache_creation_input_tokens, cache_read_input_tokens}},
cumulative_token_usage: {...}, imported?}`. `language_model::TokenUsage` is in Anthropic
terms: `input_tokens` is uncached input.

Each `request_token_usage` entry is one request (key: thread id + message id); a thread
with only `cumulative_token_usage` is one aggregated event. Requests carry no time: each
is dated at the thread's `created_at` (else `updated_at`). Threads marked `imported`
(copied from another store) are skipped, as tokscale does.

zstd: decoded by `compressed` (Python 3.14, or the `zstandard` package); without a decoder
zstd rows cannot be read and are counted `compressed.ZSTD_MISSING` (shown by
`nomira sources`), never guessed.

Locations: `$ZED_DIR` (agentsview's; comma list), `$XDG_DATA_HOME/zed` (`~/.local/share/zed`),
`~/Library/Application Support/Zed`, `%LOCALAPPDATA%/Zed`. Opened read-only
(`sqlite_ro`). Project: the first of `folder_paths` in `folder_paths_order`.

Regime: API. Zed-hosted models are billed per token beyond the plan's included amount;
other providers use the user's key.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Iterable, Mapping

from nomira.sources.scan import ScanStats
from nomira.sources import calls, compressed, sqlite_ro
from nomira.sources.calls import events_from_files, merge_records, partition_key  # noqa: F401

NAME = "zed"
PLACES = "$ZED_DIR, ~/.local/share/zed, ~/Library/Application Support/Zed, %LOCALAPPDATA%/Zed: threads/threads.db"
DB = "threads.db"


def default_paths(env: Mapping[str, str] = os.environ) -> list[Path]:
    roots = calls.env_paths(env, "ZED_DIR")
    if roots is None:
        home = calls.home(env)
        data = Path(env["XDG_DATA_HOME"]) if env.get("XDG_DATA_HOME") else home / ".local" / "share"
        roots = [data / "zed", home / "Library" / "Application Support" / "Zed"]
        if env.get("LOCALAPPDATA"):
            roots.append(Path(env["LOCALAPPDATA"]) / "Zed")
    return calls.existing(r / "threads" for r in roots if (r / "threads" / DB).is_file())


def claims(name: str, parent: str) -> bool:
    return name in (DB, DB + "-wal") and os.path.basename(parent) == "threads"


def find_files(roots: Iterable[Path]) -> list[Path]:
    return sqlite_ro.find_db(roots, DB)


def _decompress(kind: str, data: bytes) -> bytes | None:
    if kind == "json":
        return data
    if kind == "zstd":
        return compressed.decompress(data)
    raise ValueError(kind)


def _folder(paths, order) -> str | None:
    items = [p.strip() for p in paths.splitlines() if p.strip()] if isinstance(paths, str) else []
    if not items:
        return None
    try:
        ranks = [int(x) for x in order.split(",")] if isinstance(order, str) else []
    except ValueError:
        ranks = []
    if len(ranks) == len(items):
        return items[ranks.index(min(ranks))]
    return items[0]


def _usage(u: dict) -> tuple[int, int, int, int]:
    return (calls.count(u.get("input_tokens")), calls.count(u.get("output_tokens")),
            calls.count(u.get("cache_read_input_tokens")), calls.count(u.get("cache_creation_input_tokens")))


def _thread(row: dict, stats: ScanStats) -> list[list]:
    try:
        data = row["data"] or b""
        raw = _decompress(str(row.get("data_type") or "").strip().lower(),
                          data.encode() if isinstance(data, str) else bytes(data))
    except Exception:  # noqa: BLE001 - a corrupt blob is counted, never fatal
        stats.malformed += 1
        return []
    if raw is None:
        stats.skip(compressed.ZSTD_MISSING)
        return []
    try:
        doc = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        doc = None
    if not isinstance(doc, dict):
        stats.malformed += 1
        return []
    if doc.get("imported") is True:
        stats.skip("imported_thread")
        return []
    tid = str(row["id"])
    ts = calls.stamp(stats, row.get("created_at"), row.get("updated_at"), doc.get("updated_at"))
    if ts is None:
        return []
    model = calls.dig(doc, "model", "model")
    cwd = _folder(row.get("folder_paths"), row.get("folder_paths_order"))
    per_request = calls.dig(doc, "request_token_usage")
    entries = per_request.items() if isinstance(per_request, dict) else enumerate(calls.listed(per_request))
    out = []
    for mid, u in entries:
        if not isinstance(u, dict):
            continue
        inp, out_, cr, cw = _usage(u)
        if inp or out_ or cr or cw:
            out.append(calls.record(NAME, ts, f"{tid}:{mid}", tid, model, input=inp, output=out_, cache_read=cr,
                                    cache_write=cw, cwd=cwd))
    if not out and isinstance(doc.get("cumulative_token_usage"), dict):
        inp, out_, cr, cw = _usage(doc["cumulative_token_usage"])
        if inp or out_ or cr or cw:
            out.append(calls.record(NAME, ts, f"{tid}:total", tid, model, input=inp, output=out_, cache_read=cr,
                                    cache_write=cw, cwd=cwd, aggregated=True))
    return out


def _scan_db(db, stats: ScanStats) -> list[list]:
    have = sqlite_ro.columns(db, "threads")
    if not {"id", "data_type", "data"} <= have:
        stats.skip("not_a_zed_db")
        return []
    cols = [c for c in ("id", "updated_at", "created_at", "data_type", "data", "folder_paths", "folder_paths_order")
            if c in have]
    out: list[list] = []
    for values in db.execute(f"SELECT {', '.join(cols)} FROM threads"):  # noqa: S608 - known names
        stats.candidates += 1
        out += _thread(dict(zip(cols, values)), stats)
    return out


def scan_file(path: Path, start: int = 0, state: dict | None = None) -> tuple[list[list], dict, int, ScanStats]:
    return sqlite_ro.scan_db(path, _scan_db)
