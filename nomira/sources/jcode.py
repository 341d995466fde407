"""Jcode: `~/.jcode/sessions/session_<id>.json` snapshots and their `session_<id>.journal.jsonl` append logs.

Format (1jehuang/jcode, read at commit 6da6124: `crates/jcode-base/src/session.rs` `Session`,
`session/journal.rs`, `session/storage_paths.rs`, `crates/jcode-session-types` `StoredMessage`;
also tokscale `sessions/jcode.rs`): a snapshot is one JSON `Session {id, created_at,
updated_at, provider_key, model, working_dir, messages: [StoredMessage {id, role, timestamp?,
token_usage? {input_tokens, output_tokens, cache_read_input_tokens?,
cache_creation_input_tokens?}}]}`, rewritten whole at each checkpoint. Between checkpoints
Jcode appends to the journal one line per save: `{meta: {provider_key, model, working_dir,
updated_at, ...}, append_messages: [StoredMessage ...]}` (every line carries the whole meta).

Token semantics are the provider's as streamed (`StreamEvent::TokenUsage`, not normalised):
Anthropic's runtime (`provider_key` `claude`/`anthropic`) reports input without the cache;
the OpenAI, OpenRouter, Copilot and other OpenAI-compatible runtimes report `input_tokens`
(prompt_tokens) with the cached tokens inside, so those are taken out (a row whose cache
exceeds its input is read as disjoint and counted `jcode_cache_above_input`).

Dedup key: (session id, message id): the snapshot and the journal repeat messages, a
checkpoint rewrites them all; the copy with the most tokens wins. Time: the message's
`timestamp`, else the session's `created_at` (snapshot) or the line's `meta.updated_at`.
Model: the session's (a message does not record it: a mid-session switch is attributed to
the model current at the save). Project: `working_dir`. Location: `$JCODE_HOME` (Jcode's
own override), else `~/.jcode` on every OS; `sessions/` under it.

Regime: API (the user's provider keys or OAuth plans: `--regime`).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable, Mapping

from nomira.sources.scan import ScanStats, scan_json_lines
from nomira.sources import calls
from nomira.sources.calls import events_from_files, merge_records, partition_key  # noqa: F401

NAME = "jcode"
PLACES = "$JCODE_HOME/sessions, ~/.jcode/sessions: session_*.json (+ .journal.jsonl)"
JOURNAL = ".journal.jsonl"
ANTHROPIC = ("claude", "anthropic")  # derive_session_provider_key: Anthropic's own usage terms
MARKERS = (b'"token_usage"',)


def default_paths(env: Mapping[str, str] = os.environ) -> list[Path]:
    base = Path(env["JCODE_HOME"]).expanduser() if env.get("JCODE_HOME") else calls.home(env) / ".jcode"
    return calls.existing(p for p in [base / "sessions"] if p.is_dir())


def claims(name: str, parent: str) -> bool:
    return name.startswith("session_") and (name.endswith(JOURNAL) or name.endswith(".json")) \
        and os.path.basename(parent) == "sessions"


def find_files(roots: Iterable[Path]) -> list[Path]:
    return calls.find_claimed(roots, claims)


def _records(messages, session: str, ctx: dict, fallback, stats: ScanStats) -> list[list]:
    out = []
    provider_key = ctx.get("provider_key") if isinstance(ctx.get("provider_key"), str) else ""
    for m in calls.listed(messages):
        u = calls.dig(m, "token_usage")
        if not isinstance(u, dict):
            continue
        inp, out_ = calls.count(u.get("input_tokens")), calls.count(u.get("output_tokens"))
        cr, cw = calls.count(u.get("cache_read_input_tokens")), calls.count(u.get("cache_creation_input_tokens"))
        if not (inp or out_ or cr or cw):
            continue
        if provider_key.lower() not in ANTHROPIC:
            if cr + cw <= inp:
                inp -= cr + cw
            else:
                stats.skip("jcode_cache_above_input")
        ts = calls.stamp(stats, m.get("timestamp"), fallback)
        if ts is None:
            continue
        mid = m.get("id")
        key = f"{session}#{mid}" if isinstance(mid, str) and mid else None
        out.append(calls.record(NAME, ts, key, session, ctx.get("model"), input=inp, output=out_, cache_read=cr,
                                cache_write=cw, cwd=ctx.get("working_dir")))
    return out


def _snapshot(path: Path, stats: ScanStats) -> list[list]:
    doc = calls.read_json(path, stats)
    if doc is None:
        return []
    session = doc.get("id") if isinstance(doc.get("id"), str) and doc["id"] else path.stem
    return _records(doc.get("messages"), session, doc, doc.get("created_at"), stats)


def _journal_line(d: dict, state: dict, stats: ScanStats) -> list[list]:
    meta = d.get("meta") if isinstance(d.get("meta"), dict) else {}
    return _records(d.get("append_messages"), state["session"], meta, meta.get("updated_at"), stats)


def scan_file(path: Path, start: int = 0, state: dict | None = None) -> tuple[list[list], dict, int, ScanStats]:
    path = Path(path)
    if path.name.endswith(JOURNAL):
        state = dict(state) if state else {"session": path.name[:-len(JOURNAL)]}
        return scan_json_lines(path, start, state, MARKERS, _journal_line)
    return calls.whole_file(path, _snapshot)
