"""Unsloth Studio: `~/.unsloth/studio/studio.db`, the chat history of Studio's local (and external) models.

Format (unslothai/unsloth `studio/backend/storage/studio_db.py`, read at commit 015bdef):
`chat_projects(id, name, root_path, ...)`, `chat_threads(id, model_type, model_id, pair_id,
project_id, created_at (epoch ms), forked_from_thread_id, ...)` and `chat_messages(id,
thread_id, role, content_json, metadata_json, created_at (epoch ms))`. An assistant
message's `metadata_json` carries what the chat page stored after the reply
(`studio/frontend/src/features/chat/api/chat-adapter.ts`): `contextUsage {promptTokens,
completionTokens, totalTokens, cachedTokens, cacheWriteTokens, modelId}`, llama-server's
`serverTimings {prompt_n, predicted_n, cache_n, ...}`, `timing {tokenCount, ...}` and
`responseDetails {modelId, responseModelId, providerType ("local" or the external
provider's type), ...}`. Studio's own statistics (`storage/profile_stats_db.py`) read the
same fields in the same order: contextUsage, else serverTimings, else `timing.tokenCount`
for the completion; the model that answered is `responseModelId`, else `contextUsage.modelId`.

Token semantics: `promptTokens` includes the cache (`external_provider._build_usage_chunk`
sums Anthropic's uncached input, cache reads and writes into it; OpenAI's input already holds
its cached tokens), checked against `totalTokens` with `calls.split_by_total` (unmatched
rows read as disjoint, counted `unsloth_total_unmatched`). llama-server's `prompt_n` counts
only the prompt tokens it evaluated, `cache_n` those it reused: disjoint.

Local models (`providerType` "local", or llama-server timings without response details):
provider `local`, $0 with the reason "local model"; external providers are priced as usual.

Dedup: forking clones a thread's whole ancestry into the new thread, each copy keeping its
original `created_at` (Studio's statistics skip such clones the same way): a message is keyed
by the thread it was first written in (the fork chain followed back while the message is older
than the fork), its time and role, so a fork's copies count once, also when the original was
deleted. Session: the thread's `pair_id` (compare mode: one conversation, two panes), else the
thread. Project: the thread's project `root_path`. Opened read-only (`sqlite_ro`). Locations:
`$UNSLOTH_STUDIO_HOME`, then `$STUDIO_HOME` (Studio's own overrides, `utils/paths/storage_roots.py`),
else `~/.unsloth/studio` on every OS. Not read: the credentials, training runs, RAG stores.
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

NAME = "unsloth_studio"
DB = "studio.db"
PLACES = "$UNSLOTH_STUDIO_HOME, $STUDIO_HOME, ~/.unsloth/studio: studio.db"
PROVIDER = "local"  # nomira.reports.local_models.PROVIDER (sources do not import reports)


def default_paths(env: Mapping[str, str] = os.environ) -> list[Path]:
    root = (env.get("UNSLOTH_STUDIO_HOME") or "").strip() or (env.get("STUDIO_HOME") or "").strip()
    base = Path(root).expanduser() if root else calls.home(env) / ".unsloth" / "studio"
    return [base] if (base / DB).is_file() else []


def claims(name: str, parent: str) -> bool:
    return name in (DB, DB + "-wal") and os.path.basename(parent) == "studio"


def find_files(roots: Iterable[Path]) -> list[Path]:
    return sqlite_ro.find_db(roots, DB)


def _origin(thread: str, created: int, threads: dict) -> str:
    """The thread a message was first written in: a fork's clones are older than the fork."""
    seen = set()
    while thread not in seen:
        seen.add(thread)
        parent, fork_created = threads.get(thread, (None,) * 4)[1:3]
        if not parent or not isinstance(fork_created, int) or created >= fork_created:
            break
        thread = parent
    return thread


def _tokens(meta: dict, stats: ScanStats) -> tuple[int, int, int, int] | None:
    """(uncached input, output, cache read, cache write) of one reply, as Studio's statistics read them."""
    usage = meta.get("contextUsage") if isinstance(meta.get("contextUsage"), dict) else {}
    server = meta.get("serverTimings") if isinstance(meta.get("serverTimings"), dict) else {}
    out = calls.count(usage.get("completionTokens")) or calls.count(server.get("predicted_n")) \
        or calls.count(calls.dig(meta, "timing", "tokenCount"))
    prompt = calls.count(usage.get("promptTokens"))
    if prompt:
        cr, cw = calls.count(usage.get("cachedTokens")), calls.count(usage.get("cacheWriteTokens"))
        total = calls.count(usage.get("totalTokens")) or prompt + out
        inp, out, matched = calls.split_by_total(prompt, out, cr, cw, 0, total)
        if not matched:
            stats.skip("unsloth_total_unmatched")
        return inp, out, cr, cw
    return calls.count(server.get("prompt_n")), out, calls.count(server.get("cache_n")), 0


def _record(row: tuple, threads: dict, projects: dict, stats: ScanStats) -> list | None:
    mid, thread, created, raw = row
    stats.candidates += 1
    try:
        meta = json.loads(raw)
    except (TypeError, ValueError):
        meta = None
    if not isinstance(meta, dict):
        stats.malformed += 1
        return None
    inp, out, cr, cw = _tokens(meta, stats)
    if not (inp or out or cr or cw):
        return None
    ts = calls.iso_ms(created)
    if ts is None:
        stats.skip("no_timestamp")
        return None
    details = meta.get("responseDetails") if isinstance(meta.get("responseDetails"), dict) else {}
    model = details.get("responseModelId") or calls.dig(meta, "contextUsage", "modelId")
    kind = details.get("providerType")
    local = kind == "local" or (kind is None and isinstance(meta.get("serverTimings"), dict))
    pair, _parent, _created, project = threads.get(thread, (None,) * 4)
    key = f"{_origin(thread, created, threads)}@{created}:assistant"
    return calls.record(NAME, ts, key, pair or thread, model if isinstance(model, str) else None,
                        provider=PROVIDER if local else None, input=inp, output=out, cache_read=cr, cache_write=cw,
                        cwd=projects.get(project))


def _scan_db(db: sqlite3.Connection, stats: ScanStats) -> list[list]:
    have = sqlite_ro.columns(db, "chat_messages")
    if "metadata_json" not in have:
        stats.skip("not_a_unsloth_studio_db")
        return []
    cols = sqlite_ro.columns(db, "chat_threads")
    pick = ", ".join(c if c in cols else "NULL" for c in ("pair_id", "forked_from_thread_id", "created_at",
                                                          "project_id"))
    threads = {t: rest for t, *rest in db.execute(f"SELECT id, {pick} FROM chat_threads")}  # noqa: S608 - names
    projects = {}
    if "root_path" in sqlite_ro.columns(db, "chat_projects"):
        projects = dict(db.execute("SELECT id, root_path FROM chat_projects WHERE root_path IS NOT NULL"))
    out = []
    for row in db.execute("SELECT id, thread_id, created_at, metadata_json FROM chat_messages "
                          "WHERE role = 'assistant' AND metadata_json IS NOT NULL ORDER BY thread_id, created_at, id"):
        rec = _record(row, threads, projects, stats)
        if rec is not None:
            out.append(rec)
    return out


def scan_file(path: Path, start: int = 0, state: dict | None = None) -> tuple[list[list], dict, int, ScanStats]:
    return sqlite_ro.scan_db(path, _scan_db)
