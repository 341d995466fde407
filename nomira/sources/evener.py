"""Evener (Prime Radiant): `~/.local/state/evener/projects/<project>/sessions/<id>.transcript.jsonl`.

Format (prime-radiant-inc/evener, `agent/transcript/transcript.go` `Header`/`Entry`,
`agent/schema/turn.go` `Turn`, `llm/types.go` `Usage`; agentsview `internal/parser/evener.go`
reads the same): semantic transcript v2, one JSON record per line, appended. The first is the
header `{"kind": "header", "format_version": 2, "session_id", "created_at", "profile_id",
"model", "working_dir", ...}`; then `{"kind": "entry", "seq", "turn": {"kind", "timestamp",
"usage", "response_id", "response_provider", "response_model", ...}}`. Only `ASSISTANT` turns
carry usage: `{input_tokens, output_tokens, total_tokens, reasoning_tokens?,
cache_read_tokens?, cache_write_tokens?, cache_write_1h_tokens?}` in Evener's normalised
terms, documented on `llm.Usage`: input is "new input tokens billed at the full input rate",
neither cache reads nor writes (every adapter subtracts them); cache writes 5-minute and
1-hour apart; reasoning is "NOT added to OutputTokens for billing" because output already
holds it. So the counts map as they are.

Model: the turn's `response_model` (the provider's answer), else `response_request_model`,
else the header's model (the session's at creation), flagged assumed.

Dedup key: the provider's `response_id` (a fork replays its parent's turns verbatim into the
child's transcript, `agent/fork.go`), else (turn timestamp, its counts): a fork's copies and a
re-read file count once. Locations: `$EVENER_STATE_DIR` (Evener's own per-invocation state
bucket override: `sessions/` directly under it), `$XDG_STATE_HOME/evener/projects`,
`~/.local/state/evener/projects` (the XDG state home on every OS, `agent/runtime_dir.go`).
Project: the header's `working_dir`.

Regime: API: Evener calls the provider profile the user configured (its own keys or OAuth).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable, Mapping

from nomira.sources.scan import ScanStats, scan_json_lines
from nomira.sources import calls
from nomira.sources.calls import events_from_files, merge_records, partition_key  # noqa: F401

NAME = "evener"
PLACES = "$EVENER_STATE_DIR, $XDG_STATE_HOME/evener/projects, ~/.local/state/evener/projects"
SUFFIX = ".transcript.jsonl"
MARKERS = (b'"header"', b'"ASSISTANT"')


def default_paths(env: Mapping[str, str] = os.environ) -> list[Path]:
    roots = calls.env_paths(env, "EVENER_STATE_DIR")
    if roots is None:
        state = Path(env["XDG_STATE_HOME"]).expanduser() if env.get("XDG_STATE_HOME") else \
            calls.home(env) / ".local" / "state"
        roots = [state / "evener" / "projects", calls.home(env) / ".local" / "state" / "evener" / "projects"]
    return calls.existing(r for r in roots if r.is_dir())


def claims(name: str, parent: str) -> bool:
    return name.endswith(SUFFIX) and os.path.basename(parent) == "sessions"


def find_files(roots: Iterable[Path]) -> list[Path]:
    return calls.find_claimed(roots, claims)


def _header(d: dict, state: dict, stats: ScanStats) -> list:
    if d.get("format_version") != 2:
        stats.skip("evener_unsupported_format")
        state["unsupported"] = True
        return []
    for key, field in (("session", "session_id"), ("model", "model"), ("cwd", "working_dir")):
        if isinstance(d.get(field), str) and d[field]:
            state[key] = d[field]
    return []


def _visit(d: dict, state: dict, stats: ScanStats) -> list[list]:
    if d.get("kind") == "header":
        return _header(d, state, stats)
    turn = d.get("turn")
    if d.get("kind") != "entry" or not isinstance(turn, dict) or turn.get("kind") != "ASSISTANT" \
            or state.get("unsupported"):
        return []
    u = turn.get("usage")
    if not isinstance(u, dict):
        return []
    inp, out = calls.count(u.get("input_tokens")), calls.count(u.get("output_tokens"))
    cr, cw, cw1h = (calls.count(u.get(k)) for k in ("cache_read_tokens", "cache_write_tokens",
                                                   "cache_write_1h_tokens"))
    if not (inp or out or cr or cw or cw1h):
        return []
    ts = calls.stamp(stats, turn.get("timestamp"))
    if ts is None:
        return []
    model = next((m for m in (turn.get("response_model"), turn.get("response_request_model"))
                  if isinstance(m, str) and m.strip()), None)
    rid = turn.get("response_id")
    key = f"evener:{rid}" if isinstance(rid, str) and rid else f"evener:{ts}:{inp}:{out}:{cr}:{cw}:{cw1h}"
    return [calls.record(NAME, ts, key, state["session"], model or state.get("model"), input=inp, output=out,
                         cache_read=cr, cache_write=cw, cache_write_1h=cw1h,
                         reasoning=min(calls.count(u.get("reasoning_tokens")), out), cwd=state.get("cwd"),
                         model_assumed=model is None)]


def scan_file(path: Path, start: int = 0, state: dict | None = None) -> tuple[list[list], dict, int, ScanStats]:
    path = Path(path)
    if not state:
        state = {"session": path.name[:-len(SUFFIX)] if path.name.endswith(SUFFIX) else path.stem}
    return scan_json_lines(path, start, dict(state), MARKERS, _visit)
