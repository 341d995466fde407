"""Tool calls from the local transcripts, keyed like the calls they belong to (for the optimizer).

Read on the machine that has the transcripts, on demand: paths and tool inputs never enter
an event or a store.
"""
from __future__ import annotations

from pathlib import Path

from nomira.sources import claude_code, codex


def tool_uses(found: dict[str, list[Path]]) -> tuple[dict, dict]:
    """call key -> [(use id, tool, file)], each use counted once across streamed or copied lines;
    and use id -> characters of its result. Claude calls are keyed (message.id, requestId), Codex
    calls (session, time) as `optimizer.call_key` reads them."""
    by_call: dict[tuple, dict] = {}
    sizes: dict[str, int] = {}
    for f in found.get("claude", ()):
        try:
            for msg_id, req_id, use_id, name, target in claude_code.iter_tool_uses(f):
                by_call.setdefault((msg_id, req_id), {})[use_id] = (use_id, name, target)
            for use_id, chars in claude_code.iter_tool_results(f):
                sizes[use_id] = max(chars, sizes.get(use_id, 0))
        except OSError:  # (gone or unreadable since the scan, which reported it: its tool calls unknown)
            continue
    for f in found.get("codex", ()):
        try:
            for item in codex.iter_tool_calls(f):
                if item[0] == "result":
                    sizes[item[1]] = max(item[2], sizes.get(item[1], 0))
                elif item[2] is not None:
                    _, session, when, call_id, name, target = item
                    by_call.setdefault((session, when), {})[call_id] = (call_id, name, target)
        except OSError:
            continue
    return {k: list(v.values()) for k, v in by_call.items()}, sizes
