"""gptme conversations: `~/.local/share/gptme/logs/<conversation>/conversation.jsonl`.

Format (gptme/gptme `gptme/message.py` `Message.to_dict`, `MessageMetadata`, `UsageData`;
`gptme/llm/llm_anthropic.py` and `llm/openai_responses.py` `_record_usage`): one message
per line `{role, content, timestamp (ISO, naive local time: read as this machine's), metadata?: {model,
resolved_model?, cost?, usage: {input_tokens, output_tokens, cache_read_tokens,
cache_creation_tokens}}}`; usage on assistant messages when telemetry recorded it.
gptme normalises every provider to Anthropic terms: `input_tokens` is uncached
(`prompt - cached - cache writes` for OpenAI-style APIs), `output_tokens` the
completion (reasoning included). Logs older than the nested `usage` key kept the four
counts flat in `metadata` (gptme's `_migrate_metadata`): read too. `cost` is gptme's own
estimate, kept beside the computed one. The log is rewritten whole on undo/edit; the
scan cache resumes only when the bytes already read are unchanged.

Dedup key: (conversation folder, message timestamp): the same log reached twice counts
once. Locations: `$GPTME_LOGS_HOME` (gptme's own override), `$XDG_DATA_HOME/gptme/logs`,
`~/.local/share/gptme/logs`, `~/Library/Application Support/gptme/logs`,
`%LOCALAPPDATA%/gptme/logs`. Project: `chat.workspace` in the conversation's
`config.toml`, else none.

Regime: API. gptme calls providers with the user's keys: the figures are the bill.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable, Mapping

from nomira.sources.scan import ScanStats, scan_json_lines
from nomira.sources import calls
from nomira.sources.calls import events_from_files, merge_records, partition_key  # noqa: F401

NAME = "gptme"
LOG = "conversation.jsonl"
MARKERS = (b'"input_tokens"', b'"output_tokens"')


def default_paths(env: Mapping[str, str] = os.environ) -> list[Path]:
    if env.get("GPTME_LOGS_HOME"):
        roots = [Path(env["GPTME_LOGS_HOME"]).expanduser()]
    else:
        home = calls.home(env)
        data = [Path(env["XDG_DATA_HOME"]) / "gptme"] if env.get("XDG_DATA_HOME") else []
        data += [home / ".local" / "share" / "gptme", home / "Library" / "Application Support" / "gptme"]
        if env.get("LOCALAPPDATA"):
            data.append(Path(env["LOCALAPPDATA"]) / "gptme")
        roots = [d / "logs" for d in data]
    return calls.existing(r for r in roots if r.is_dir())


def claims(name: str, parent: str) -> bool:
    return name == LOG


def find_files(roots: Iterable[Path]) -> list[Path]:
    return calls.find_claimed(roots, claims)


def _workspace(conv: Path) -> str | None:
    from nomira.sources import toml_lite  # (tomllib's results, without its import for a plain config)
    try:
        with open(conv / "config.toml", "rb") as fh:
            ws = calls.dig(toml_lite.load(fh), "chat", "workspace")
    except (OSError, ValueError):
        return None
    return ws if isinstance(ws, str) and ws else None


def _visit(d: dict, state: dict, stats: ScanStats) -> list[list] | None:
    if d.get("role") != "assistant" or not isinstance(d.get("metadata"), dict):
        return []
    meta = d["metadata"]
    u = meta.get("usage") if isinstance(meta.get("usage"), dict) else meta  # flat before the nested key
    inp, out = calls.count(u.get("input_tokens")), calls.count(u.get("output_tokens"))
    cr, cw = calls.count(u.get("cache_read_tokens")), calls.count(u.get("cache_creation_tokens"))
    if not (inp or out or cr or cw):
        return []
    ts = calls.iso_local(d.get("timestamp"))  # naive local time (datetime.now())
    if ts is None:
        stats.skip("no_timestamp")
        return []
    conv = state["conv"]
    return [calls.record(NAME, ts, f"{conv}:{d.get('timestamp')}", conv, meta.get("model"), input=inp, output=out,
                         cache_read=cr, cache_write=cw, cwd=state.get("cwd"), agent_cost=calls.money(meta.get("cost")))]


def scan_file(path: Path, start: int = 0, state: dict | None = None) -> tuple[list[list], dict, int, ScanStats]:
    path = Path(path)
    state = dict(state) if state else {"conv": path.parent.name, "cwd": _workspace(path.parent)}
    return scan_json_lines(path, start, state, MARKERS, _visit)
