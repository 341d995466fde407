"""LM Studio chats: `~/.lmstudio/conversations/<id>.conversation.json` (local models).

Format (LM Studio is closed source; its docs, "Manage chats", name the folder and say the
JSON may change; the structure as third-party readers document it): one JSON document
per chat, rewritten whole: `{createdAt, assistantLastMessagedAt?, messages: [{versions:
[{role, steps: [{stepIdentifier: "<epoch ms>-<random>", genInfo: {identifier,
indexedModelIdentifier?, stats: {promptTokensCount, predictedTokensCount,
totalTokensCount, tokensPerSecond, ...}}}]}]}]}`. Every step with `genInfo.stats` is one
generation (regenerated versions too: each ran); it is dated by its `stepIdentifier`'s
millisecond prefix, else the chat's last message time, else its creation.

Local models: tokens are counted and the cost is $0 with the reason "local model"
(provider `local`, `nomira/reports/local_models.py`), never "unpriced". The local
server's logs (`server-logs/`, which hold usage only with file logging set to `full`)
are not read.

Dedup key: (chat id, step identifier). Locations: `$LM_STUDIO_CONVERSATIONS_DIR` (as other
readers name it), `~/.lmstudio/conversations`, `~/.cache/lm-studio/conversations` (older
builds). Project: none (chats are not tied to a folder).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable, Mapping

from nomira.sources.scan import ScanStats
from nomira.sources import calls
from nomira.sources.calls import events_from_files, merge_records, partition_key  # noqa: F401

NAME = "lmstudio"
SUFFIX = ".conversation.json"
PROVIDER = "local"  # nomira.reports.local_models.PROVIDER (sources do not import reports)


def default_paths(env: Mapping[str, str] = os.environ) -> list[Path]:
    roots = calls.env_paths(env, "LM_STUDIO_CONVERSATIONS_DIR")
    if roots is None:
        home = calls.home(env)
        roots = [home / ".lmstudio" / "conversations", home / ".cache" / "lm-studio" / "conversations"]
    return calls.existing(r for r in roots if r.is_dir())


def claims(name: str, parent: str) -> bool:
    return name.endswith(SUFFIX)


def find_files(roots: Iterable[Path]) -> list[Path]:
    return calls.find_claimed(roots, claims)


def _step_time(step_id) -> str | None:
    head = step_id.split("-", 1)[0] if isinstance(step_id, str) else ""
    return calls.iso_ms(head) if head.isdigit() and 1e12 < int(head) < 4e12 else None


def _parse(path: Path, stats: ScanStats) -> list[list]:
    doc = calls.read_json(path, stats)
    if doc is None:
        return []
    chat = path.name[:-len(SUFFIX)]
    fallback = calls.iso_ms(doc.get("assistantLastMessagedAt")) or calls.iso_ms(doc.get("createdAt"))
    out = []
    for m in calls.listed(doc.get("messages")):
        for v in calls.listed(calls.dig(m, "versions")):
            for step in calls.listed(calls.dig(v, "steps")):
                st = calls.dig(step, "genInfo", "stats")
                if not isinstance(st, dict):
                    continue
                inp, out_ = calls.count(st.get("promptTokensCount")), calls.count(st.get("predictedTokensCount"))
                if not (inp or out_):
                    continue
                sid = step.get("stepIdentifier")
                ts = _step_time(sid) or fallback
                if ts is None:
                    stats.skip("no_timestamp")
                    continue
                gen = step["genInfo"]
                model = gen.get("identifier") or gen.get("indexedModelIdentifier")
                key = f"{chat}#{sid}" if isinstance(sid, str) and sid else None
                out.append(calls.record(NAME, ts, key, chat, model, provider=PROVIDER, input=inp, output=out_))
    return out


def scan_file(path: Path, start: int = 0, state: dict | None = None) -> tuple[list[list], dict, int, ScanStats]:
    return calls.whole_file(path, _parse)
