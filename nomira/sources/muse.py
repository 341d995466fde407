"""Muse Code (Meta's coding agent): `~/.local/share/muse/sessions/YYYY/MM/DD/<session>/session.jsonl`.

Format (closed source; read as tokscale's `sessions/muse.rs` documents it from real sessions, the
layout confirmed by other trackers' scanners (yggterm `agent_cli.rs`, `muse_sessions_dir`): the same
XDG path on every platform, `$XDG_DATA_HOME/muse/sessions` when set): an append-only, event-sourced
JSONL log, one record per line `{"schema_version": 1, "stream": {"kind": "session", "id"},
"sequence", "recorded_at" (epoch microseconds), "record_type": "event", "payload_type",
"payload"}`. Calls are `payload_type: "runtime.session"` records whose `payload.event.kind` is
`model_completed`: `{"usage": {input_tokens, output_tokens, cached_tokens, cache_read_tokens,
cache_write_tokens, reasoning_tokens}, "duration_ms", "finish_reason", "model"}`. The
`runtime.session.metadata` record gives `payload.record.workspace_root` (the project) and the
`provider_id`/`model_id` pair. Sub-agents log to their own `subagent/<child>/session.jsonl` beside
the parent and are read there; the parent's `workflow_child_lifecycle` usage aggregates repeat
them and are not counted.

Token semantics (UNCONFIRMED: Muse Code is closed source): Responses-shaped usage. The cached
tokens are a subset of `input_tokens` (Meta's API documentation: "cached_tokens is a subset of
your input tokens"; `cache_read_tokens` carries the same count) and are taken out of it;
`reasoning_tokens` is inside `output_tokens` (every observed record has reasoning <= output);
`cache_write_tokens` is read as apart from input (every observed record holds 0). Meta's Muse
models (`muse-spark-*`) are not in the bundled table: unpriced, never guessed. Time: `recorded_at`,
when the completion was recorded (the call's end).

Dedup key: (stream id, sequence): a replayed event and a copied session count once. Locations:
`$MUSE_SESSIONS_DIR` (Nomira's, comma list), `$XDG_DATA_HOME/muse/sessions`,
`~/.local/share/muse/sessions`.

Regime: not established (Muse Code's own plans); priced at API rates where a model is known.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable, Mapping

from nomira.sources.scan import ScanStats, scan_json_lines
from nomira.sources import calls
from nomira.sources.calls import events_from_files, merge_records, partition_key  # noqa: F401

NAME = "muse"
FILE = "session.jsonl"
PLACES = "$MUSE_SESSIONS_DIR, $XDG_DATA_HOME/muse/sessions, ~/.local/share/muse/sessions"
MARKERS = (b'"model_completed"', b'"runtime.session.metadata"')


def default_paths(env: Mapping[str, str] = os.environ) -> list[Path]:
    roots = calls.env_paths(env, "MUSE_SESSIONS_DIR")
    if roots is None:
        roots = [calls.home(env) / ".local" / "share" / "muse" / "sessions"]
        if env.get("XDG_DATA_HOME"):
            roots.insert(0, Path(env["XDG_DATA_HOME"]) / "muse" / "sessions")
    return calls.existing(r for r in roots if r.is_dir())


def claims(name: str, parent: str) -> bool:
    return name == FILE and f"{os.sep}muse{os.sep}sessions{os.sep}" in parent + os.sep


def find_files(roots: Iterable[Path]) -> list[Path]:
    return calls.find_claimed(roots, lambda name, parent: name == FILE)


def _metadata(d: dict, state: dict) -> None:
    rec = calls.dig(d, "payload", "record")
    if not isinstance(rec, dict):
        return
    if isinstance(rec.get("workspace_root"), str) and rec["workspace_root"] and not state.get("cwd"):
        state["cwd"] = rec["workspace_root"]
    provider = rec.get("provider_id") if isinstance(rec.get("provider_id"), str) else None
    state["provider"] = (rec.get("model_id"), provider if provider not in (None, "", "unknown", "muse") else None)


def _visit(d: dict, state: dict, stats: ScanStats) -> list[list]:
    if d.get("payload_type") == "runtime.session.metadata":
        _metadata(d, state)
        return []
    event = calls.dig(d, "payload", "event")
    if d.get("payload_type") != "runtime.session" or not isinstance(event, dict) or event.get("kind") != "model_completed":
        return []
    usage = event.get("usage")
    if not isinstance(usage, dict):
        stats.malformed += 1
        return []
    inp, out = calls.count(usage.get("input_tokens")), calls.count(usage.get("output_tokens"))
    cached = min(calls.count(usage.get("cache_read_tokens")) or calls.count(usage.get("cached_tokens")), inp)
    cw = calls.count(usage.get("cache_write_tokens"))
    if not (inp or out or cw):
        return []
    ts = calls.stamp(stats, _micros(d.get("recorded_at")))
    if ts is None:
        return []
    model = event.get("model")
    meta_model, meta_provider = state.get("provider") or (None, None)
    provider = meta_provider if meta_provider and (meta_model is None or meta_model == model) else None
    stream = calls.dig(d, "stream", "id")
    sid = stream if isinstance(stream, str) and stream else state["session"]
    seq = d.get("sequence")
    key = f"{sid}:{seq}" if isinstance(seq, int) and type(seq) is not bool else None
    return [calls.record(NAME, ts, key, sid, model, provider=provider, input=inp - cached, output=out,
                         cache_read=cached, cache_write=cw, reasoning=min(calls.count(usage.get("reasoning_tokens")), out),
                         reported_input=inp, cwd=state.get("cwd"))]


def _micros(v):
    """`recorded_at` (epoch microseconds) as epoch milliseconds; other values as they are."""
    return v / 1000 if isinstance(v, (int, float)) and type(v) is not bool and v > 1e14 else v


def scan_file(path: Path, start: int = 0, state: dict | None = None) -> tuple[list[list], dict, int, ScanStats]:
    path = Path(path)
    state = dict(state) if state else {"session": path.parent.name, "cwd": None, "provider": None}
    return scan_json_lines(path, start, state, MARKERS, _visit)
