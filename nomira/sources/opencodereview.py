"""Open Code Review (alibaba/open-code-review, `ocr`): `~/.opencodereview/sessions/<encoded repo>/<session>.jsonl`.

Format (alibaba/open-code-review `internal/session/persist.go` `jsonlWriter`; agentsview
`internal/parser/opencodereview.go` reads the same): one JSON record per line, each with
`uuid`, `parentUuid`, `type`, `sessionId`, `timestamp` (RFC 3339). `session_start` carries
`cwd` (the repository) and `model`; every answered request is an `llm_response` record with
its `model` and `usage: {prompt_tokens, completion_tokens, cache_read_tokens,
cache_write_tokens}`. The prompt count includes the cache: the Anthropic client stores
`InputTokens + CacheReadInputTokens + CacheCreationInputTokens` as `PromptTokens`
(`internal/llm/client.go` `mapAnthropicResponse`), and OpenAI-style `prompt_tokens`
include cached tokens by definition; so input = prompt - cache read - cache write. A cache
above the prompt cannot be inside it: read as disjoint and counted
`opencodereview_cache_outside_prompt`. Completion tokens include reasoning (both APIs).
`~/.opencodereview/raw/` (opt-in raw HTTP captures of the same requests) is not read: it
would count every call again.

Dedup key: the record's `uuid`: a copied or re-read session counts once. Locations:
`$OPENCODEREVIEW_DIR` (agentsview's; comma list), `~/.opencodereview/sessions` (under the
home directory on every OS, `os.UserHomeDir`). Project: `session_start`'s `cwd`.

Regime: API: reviews call the provider configured with the user's key (or a coding plan,
priced at API rates as its value).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable, Mapping

from nomira.sources.scan import ScanStats, scan_json_lines
from nomira.sources import calls
from nomira.sources.calls import events_from_files, merge_records, partition_key  # noqa: F401

NAME = "opencodereview"
PLACES = "$OPENCODEREVIEW_DIR, ~/.opencodereview/sessions"
MARKERS = (b'"session_start"', b'"llm_response"')


def default_paths(env: Mapping[str, str] = os.environ) -> list[Path]:
    roots = calls.env_paths(env, "OPENCODEREVIEW_DIR")
    if roots is None:
        roots = [calls.home(env) / ".opencodereview" / "sessions"]
    return calls.existing(r for r in roots if r.is_dir())


def claims(name: str, parent: str) -> bool:
    """Anything under `.opencodereview` (given by `--path`, its raw captures are claimed too, and yield nothing)."""
    return name.endswith(".jsonl") and f"{os.sep}.opencodereview{os.sep}" in f"{parent}{os.sep}"


def find_files(roots: Iterable[Path]) -> list[Path]:
    return calls.find_claimed(roots, lambda name, parent: name.endswith(".jsonl"))


def _visit(d: dict, state: dict, stats: ScanStats) -> list[list]:
    kind = d.get("type")
    if kind == "session_start":
        for key, field in (("cwd", "cwd"), ("model", "model"), ("session", "sessionId")):
            if isinstance(d.get(field), str) and d[field]:
                state[key] = d[field]
        return []
    if kind != "llm_response" or not isinstance(d.get("usage"), dict):
        return []
    u = d["usage"]
    prompt, out = calls.count(u.get("prompt_tokens")), calls.count(u.get("completion_tokens"))
    cr, cw = calls.count(u.get("cache_read_tokens")), calls.count(u.get("cache_write_tokens"))
    if not (prompt or out or cr or cw):
        return []
    ts = calls.stamp(stats, d.get("timestamp"))
    if ts is None:
        return []
    if cr + cw > prompt:
        inp = prompt
        stats.skip("opencodereview_cache_outside_prompt")
    else:
        inp = prompt - cr - cw
    uuid = d.get("uuid")
    key = f"ocr:{uuid}" if isinstance(uuid, str) and uuid else None
    model = d.get("model") if isinstance(d.get("model"), str) and d.get("model") else state.get("model")
    session = d.get("sessionId") if isinstance(d.get("sessionId"), str) and d.get("sessionId") else state["session"]
    return [calls.record(NAME, ts, key, session, model, input=inp, output=out, cache_read=cr, cache_write=cw,
                         reported_input=prompt, cwd=state.get("cwd"))]


def scan_file(path: Path, start: int = 0, state: dict | None = None) -> tuple[list[list], dict, int, ScanStats]:
    path = Path(path)
    if not state:
        state = {"session": path.stem}
    return scan_json_lines(path, start, dict(state), MARKERS, _visit)
