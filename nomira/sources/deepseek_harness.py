"""DeepSeek Harness (dsh): `~/.dsh/sessions/--<cwd>--/<id>/session.jsonl[.zstd]`, a versioned event log.

Format (agentsview `internal/parser/deepseek_harness.go`, `deepseek_harness_format.go`,
`deepseek_harness_provider.go`; ccstats `src/source/dsh_usage.rs`): the first line is the header
`{type: "session", version: 0, id, createdAt, cwd?, parentSession?, seedLength?, delegationDepth}`,
then one event per line `{type, seq, time (epoch ms), data, surfaceOp?}`. Usage
`{inputTokens, outputTokens, totalTokens?, cacheReadTokens?, cacheWriteTokens?, reasoningTokens?}`
(input without the cache, output with the reasoning inside; `totalTokens`, when logged, is checked
with `calls.split_by_total`) comes on:
- `assistant/message` (`data {turn, step, message {source {kind: "model", provider, model}}, usage}`)
  appended to the surface (`surfaceOp: "append"`), else a stream's `assistant/chunk` of type
  `usage` for the same step: one call per (turn, step), the copy with the most tokens;
- `compaction/summary` (`data {compactionId, provider, model, usage}`): one call each.
The model is the message's `source.model`, else the last `request/header`'s `header.config.model`.

A forked session copies its parent's first `seedLength` events: those are the parent's calls and
are skipped (read in the parent's own log). Retried attempts are not counted apart (one usage per
step, as agentsview). Version other than 0: the session is counted `unreadable:unsupported_version`.

zstd: `session.jsonl.zstd` (the default encoding) is decoded by `compressed` (Python 3.14, or the
`zstandard` package); without a decoder such logs are counted `compressed.ZSTD_MISSING` (shown by
`nomira sources`), never guessed.

Dedup key: (session id, turn, step) and (session id, compaction seq). Project: the header's `cwd`.
Locations: `$DEEPSEEK_HARNESS_SESSIONS_DIR` (agentsview's), `$DSH_HOME/sessions`, `~/.dsh/sessions`.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable, Mapping

from nomira.sources.scan import ScanStats, scan_compressed_lines, scan_json_lines
from nomira.sources import calls
from nomira.sources.calls import events_from_files, merge_records, partition_key  # noqa: F401

NAME = "deepseek_harness"
PLACES = "$DEEPSEEK_HARNESS_SESSIONS_DIR, $DSH_HOME/sessions, ~/.dsh/sessions: <cwd>/<id>/session.jsonl[.zstd]"
FILES = ("session.jsonl", "session.jsonl.zstd")
MARKERS = (b'"usage"', b'"session"', b'"request/header"')


def default_paths(env: Mapping[str, str] = os.environ) -> list[Path]:
    roots = calls.env_paths(env, "DEEPSEEK_HARNESS_SESSIONS_DIR")
    if roots is None:
        base = Path(env["DSH_HOME"]).expanduser() if env.get("DSH_HOME") else calls.home(env) / ".dsh"
        roots = [base / "sessions"]
    return calls.existing(r for r in roots if r.is_dir())


def claims(name: str, parent: str) -> bool:
    return name in FILES and os.path.basename(os.path.dirname(parent)).startswith(("--", "_no-cwd"))


def find_files(roots: Iterable[Path]) -> list[Path]:
    return calls.find_claimed(roots, claims)


def _usage(u, key: str, ts: str, state: dict, model, stats: ScanStats) -> list | None:
    if not isinstance(u, dict):
        stats.malformed += 1
        return None
    inp, out = calls.count(u.get("inputTokens")), calls.count(u.get("outputTokens"))
    cr, cw, reasoning = (calls.count(u.get(k)) for k in ("cacheReadTokens", "cacheWriteTokens", "reasoningTokens"))
    if not (inp or out or cr or cw):
        return None
    if u.get("totalTokens") is not None:
        inp, out, matched = calls.split_by_total(inp, out, cr, cw, 0, calls.count(u.get("totalTokens")))
        if not matched:
            stats.skip("dsh_total_unmatched")
    return calls.record(NAME, ts, key, state["session"], model if isinstance(model, str) else None, input=inp,
                        output=out, cache_read=cr, cache_write=cw, reasoning=min(reasoning, out), cwd=state["cwd"])


def _visit(d: dict, state: dict, stats: ScanStats) -> list[list] | None:
    kind = d.get("type")
    if kind == "session" and "seq" not in d:
        if d.get("version") != 0:
            stats.skip("unreadable:unsupported_version")
            state["skip"] = True
        state["session"] = d["id"] if isinstance(d.get("id"), str) and d["id"] else state["session"]
        state["cwd"] = d.get("cwd") if isinstance(d.get("cwd"), str) else None
        state["seed"] = calls.count(d.get("seedLength"))
        return None
    data = d.get("data") if isinstance(d.get("data"), dict) else {}
    if kind == "request/header":
        model = calls.dig(data, "header", "config", "model")
        if isinstance(model, str) and model:
            state["model"] = model
        return None
    seq = d.get("seq")
    if state.get("skip") or not isinstance(seq, int) or seq < state.get("seed", 0):
        return None  # a fork's copy of its parent's events (seq < seedLength)
    if kind not in ("assistant/message", "assistant/chunk", "compaction/summary"):
        return None
    ts = calls.iso_ms(d.get("time"))
    if ts is None:
        stats.skip("no_timestamp")
        return None
    session = state["session"]
    if kind == "compaction/summary":
        got = _usage(data.get("usage"), f"{session}#compaction{seq}", ts, state, data.get("model"), stats) \
            if "usage" in data else None
        return [got] if got else None
    step = f"{session}#t{data.get('turn')}s{data.get('step')}"
    if kind == "assistant/chunk":
        chunk = data.get("chunk")
        if not isinstance(chunk, dict) or chunk.get("type") != "usage":
            return None
        got = _usage(chunk.get("usage"), step, ts, state, state.get("model"), stats)
        return [got] if got else None
    if d.get("surfaceOp") != "append" or "usage" not in data:
        return None
    model = calls.dig(data, "message", "source", "model") or state.get("model")
    got = _usage(data.get("usage"), step, ts, state, model, stats)
    return [got] if got else None


def _start(path: Path) -> dict:
    return {"session": path.parent.name, "cwd": None, "seed": 0}


def scan_file(path: Path, start: int = 0, state: dict | None = None) -> tuple[list[list], dict, int, ScanStats]:
    path = Path(path)
    if path.name.endswith(".zstd"):
        return scan_compressed_lines(path, _start(path), MARKERS, _visit)
    return scan_json_lines(path, start, dict(state) if state else _start(path), MARKERS, _visit)
