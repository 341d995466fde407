"""Qwen Code chats: `~/.qwen/projects/<sanitized cwd>/chats/<session id>.jsonl`.

Format (QwenLM/qwen-code `packages/core/src/services/chatRecordingService.ts`,
`ChatRecord`): one record per line, `{uuid, parentUuid, sessionId, timestamp, type:
user|assistant|tool_result|system, cwd, version, model?, usageMetadata?, isSidechain?,
forkedFrom?}`. Usage is on `assistant` records as Gemini-style `usageMetadata`
(`promptTokenCount`, `cachedContentTokenCount`, `candidatesTokenCount`,
`thoughtsTokenCount`, `totalTokenCount`); `system` `ui_telemetry` records repeat the
same usage for the UI and are not calls.

Token semantics: Qwen's OpenAI-compatible converter (`openaiContentGenerator/
converter.ts`, the default path: Qwen OAuth and every OpenAI-compatible key) sets
`promptTokenCount = prompt_tokens` (INCLUDES cached), `candidatesTokenCount =
completion_tokens` (INCLUDES reasoning) and `thoughtsTokenCount = reasoning_tokens`.
The Gemini backend reports thoughts outside candidates. Which one a record follows is
read from its own `totalTokenCount`: when it covers prompt + candidates + thoughts, the
thoughts are extra output; otherwise they are inside candidates.

Dedup key: the record `uuid`. `/branch` copies every record verbatim (same uuid, new
sessionId, `forkedFrom` set), so a forked session's history counts once.
Locations: `QWEN_RUNTIME_DIR` (Qwen's runtime base), else `QWEN_HOME`, else `~/.qwen`
(Qwen's own overrides); `QWEN_DATA_DIR` (ccusage's) is honoured too. The project label
is the record's own `cwd`.

Regime: subscription by default: the default sign-in is Qwen OAuth (a free daily
request quota, not billed per token); with an API key the figures are the bill
(`--regime api`). Qwen models are not in the bundled price table today: unpriced.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable, Mapping

from nomira.sources.scan import ScanStats, scan_json_lines
from nomira.sources import calls
from nomira.sources.calls import events_from_files, merge_records, partition_key  # noqa: F401

NAME = "qwen_code"
MARKERS = (b'"usageMetadata"',)


def default_paths(env: Mapping[str, str] = os.environ) -> list[Path]:
    roots = calls.env_paths(env, "QWEN_DATA_DIR")
    if roots is None:
        base = env.get("QWEN_RUNTIME_DIR") or env.get("QWEN_HOME")
        roots = [Path(base).expanduser() if base else calls.home(env) / ".qwen"]
    return [r / "projects" for r in roots if (r / "projects").is_dir()]


def claims(name: str, parent: str) -> bool:
    """`projects/<project>/chats/<id>.jsonl` (and `chats/archive/`); Gemini's `session-*` are not Qwen's."""
    if not name.endswith(".jsonl") or name.startswith("session-") or "chats" not in parent:  # (cheap tests
        return False  # first: every file of a --path walk is asked)
    if os.path.basename(parent) == "archive":
        parent = os.path.dirname(parent)
    grand = os.path.basename(os.path.dirname(os.path.dirname(parent)))
    return os.path.basename(parent) == "chats" and grand == "projects"


def find_files(roots: Iterable[Path]) -> list[Path]:
    return calls.find_claimed(roots, claims)


def _visit(d: dict, state: dict, stats: ScanStats) -> list[list] | None:
    if d.get("type") != "assistant":
        return None
    u = d.get("usageMetadata")
    if not isinstance(u, dict):
        return None
    ts = calls.stamp(stats, d.get("timestamp"))
    if ts is None:
        return None
    prompt, cached = calls.count(u.get("promptTokenCount")), calls.count(u.get("cachedContentTokenCount"))
    cand, thoughts = calls.count(u.get("candidatesTokenCount")), calls.count(u.get("thoughtsTokenCount"))
    total = calls.count(u.get("totalTokenCount"))
    if not (prompt or cand or thoughts):
        return None
    cached = min(cached, prompt)
    thoughts_extra = thoughts and total >= prompt + cand + thoughts
    output = cand + thoughts if thoughts_extra else cand
    session = d.get("sessionId") if isinstance(d.get("sessionId"), str) and d["sessionId"] else state["stem"]
    uid = d.get("uuid") if isinstance(d.get("uuid"), str) and d["uuid"] else None
    cwd = d.get("cwd") if isinstance(d.get("cwd"), str) else None
    return [calls.record(NAME, ts, uid, session, d.get("model") if isinstance(d.get("model"), str) else None,
                         input=prompt - cached, output=output, cache_read=cached, reasoning=min(thoughts, output),
                         reported_input=prompt, cwd=cwd)]


def scan_file(path: Path, start: int = 0, state: dict | None = None) -> tuple[list[list], dict, int, ScanStats]:
    path = Path(path)
    state = dict(state) if state else {"stem": path.stem}
    return scan_json_lines(path, start, state, MARKERS, _visit)
