"""WorkBuddy (Tencent): `~/.workbuddy/projects/<project>/<session>.jsonl` (+ `<session>/subagents/agent-*.jsonl`).

Format (two independent readers agree: YuLaiZ/token-usage `internal/collector/workbuddy.go` and its
tests, whose author measured real files; agentsview `internal/parser/codebuddy.go`, which reads
WorkBuddy's and CodeBuddy's folders alike): one OpenAI Agents SDK item per line, `{"id",
"timestamp" (epoch ms), "type": "message" | "function_call" | ..., "role", "content",
"sessionId", "cwd", "providerData": {"model", "requestModelName", "usage": {"inputTokens",
"outputTokens", "totalTokens"?, "inputTokensDetails": [{"cached_tokens"}],
"outputTokensDetails": [{"reasoning_tokens"}]}}}`. The usage is the Agents SDK's `Usage`
(OpenAI Responses terms): `inputTokens` includes the cached tokens, `outputTokens` includes
reasoning, `totalTokens` is input + output; where `totalTokens` is logged it decides
(`calls.split_by_total`), else the cache is taken out of input as the SDK defines it (as
token-usage does: fresh = input - cached). A cached count above the input cannot be a part of
it: read as disjoint and counted `workbuddy_cache_outside_input`.

Which line carries a response's usage: token-usage reads assistant messages, agentsview and
tokscale (`crates/tokscale-core/src/sessions/tencent_buddy.rs`) also function-call items. Both
are read; items still streaming (`status` other than `completed`) are skipped. A response's usage
seen on several of its items counts once: the dedup key is (session, `providerData.messageId`,
else `traceId`), else (session, the usage's counts), which differ between a session's calls
(the context grows). Other key spellings (`message.usage` with `input_tokens` /
`cache_read_input_tokens` / `total_tokens`, `providerData.rawUsage` with `prompt_tokens` /
`prompt_cache_hit_tokens`) are CodeBuddy's (`codebuddy.py`) and read by the same rule. Model: `providerData.model` (the short id), else `requestModelName`.
Locations: `$WORKBUDDY_PROJECTS_DIR` (agentsview's; comma list), `~/.workbuddy/projects` (a
home-relative folder on every OS). Project: the line's `cwd`.

Regime: not established: WorkBuddy's plans bill credits through Tencent's gateway, and its
`models.json` also holds custom models with the user's own API keys; priced at API rates
(`--regime subscription` to read it as plan value).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable, Mapping

from nomira.sources.scan import ScanStats, scan_json_lines
from nomira.sources import calls
from nomira.sources.calls import events_from_files, merge_records, partition_key  # noqa: F401

NAME = "workbuddy"
PLACES = "$WORKBUDDY_PROJECTS_DIR, ~/.workbuddy/projects"
MARKERS = (b'"usage"', b'"rawUsage"')


def default_paths(env: Mapping[str, str] = os.environ) -> list[Path]:
    roots = calls.env_paths(env, "WORKBUDDY_PROJECTS_DIR")
    if roots is None:
        roots = [calls.home(env) / ".workbuddy" / "projects"]
    return calls.existing(r for r in roots if r.is_dir())


def claims(name: str, parent: str) -> bool:
    return name.endswith(".jsonl") and f"{os.sep}.workbuddy{os.sep}projects{os.sep}" in f"{parent}{os.sep}"


def find_files(roots: Iterable[Path]) -> list[Path]:
    return calls.find_claimed(roots, lambda name, parent: name.endswith(".jsonl"))


def _first(details) -> dict:
    """The first element of an Agents SDK `*TokensDetails` list (a dict in some serialisations)."""
    if isinstance(details, list) and details and isinstance(details[0], dict):
        return details[0]
    return details if isinstance(details, dict) else {}


def _pick(u: dict, *keys) -> int:
    """The first of `keys` holding a count (a loop, not a generator: several per call)."""
    for k in keys:
        v = u.get(k)
        if v is not None and (n := calls.count(v)):
            return n
    return 0


def _usage(d: dict) -> dict | None:
    """The response's usage: `message.usage` (CodeBuddy), else `providerData.usage` (Agents SDK), else
    `providerData.rawUsage` (the provider's own)."""
    pd = d.get("providerData") if isinstance(d.get("providerData"), dict) else {}
    for u in (calls.dig(d, "message", "usage"), pd.get("usage"), pd.get("rawUsage")):
        if isinstance(u, dict):
            return u
    return None


def _counts(u: dict) -> tuple[int, int, int, int, int, int]:
    """(input, output, cache read, cache write, reasoning, total) under any of the key spellings seen."""
    return (_pick(u, "inputTokens", "input_tokens", "prompt_tokens"),
            _pick(u, "outputTokens", "output_tokens", "completion_tokens"),
            calls.count(_first(u.get("inputTokensDetails")).get("cached_tokens"))
            or _pick(u, "cache_read_input_tokens", "cacheReadInputTokens", "prompt_cache_hit_tokens", "cached_tokens"),
            _pick(u, "cache_creation_input_tokens", "cacheCreationInputTokens", "prompt_cache_write_tokens"),
            calls.count(_first(u.get("outputTokensDetails")).get("reasoning_tokens"))
            or _pick(u, "completion_thinking_tokens", "reasoningTokens"),
            _pick(u, "totalTokens", "total_tokens"))


def _visit(d: dict, state: dict, stats: ScanStats) -> list[list]:
    u = _usage(d)
    if u is None or d.get("status") not in (None, "completed"):  # a streaming item's partial usage
        return []
    inp, out, cr, cw, reasoning, total = _counts(u)
    if not (inp or out):
        return []
    ts = calls.stamp(stats, d.get("timestamp"))
    if ts is None:
        return []
    name = state.get("name", NAME)
    if total:
        fresh, out_, matched = calls.split_by_total(inp, out, cr, cw, reasoning, total)
        if not matched:
            stats.skip(f"{name}_total_unmatched")
    elif cr + cw > inp:
        fresh, out_ = inp, out
        stats.skip(f"{name}_cache_outside_input")
    else:
        fresh, out_ = inp - cr - cw, out
    pd = d.get("providerData") if isinstance(d.get("providerData"), dict) else {}
    model = next((m for m in (pd.get("model"), pd.get("requestModelId"), pd.get("requestModelName"),
                              calls.dig(d, "message", "model")) if isinstance(m, str) and m.strip()), None)
    cwd = d.get("cwd") if isinstance(d.get("cwd"), str) and d.get("cwd") else state.get("cwd")
    state["cwd"] = cwd
    rid = next((r for r in (pd.get("messageId"), pd.get("traceId")) if isinstance(r, str) and r), None)
    key = f"{state['session']}:{rid}" if rid else f"{state['session']}:{inp}:{out}:{cr}:{cw}:{reasoning}"
    return [calls.record(name, ts, key, state["session"], model, input=fresh, output=out_, cache_read=cr,
                         cache_write=cw, reasoning=min(reasoning, out_), reported_input=inp, cwd=cwd)]


def scan_file(path: Path, start: int = 0, state: dict | None = None, name: str = NAME) -> tuple[list[list], dict, int,
                                                                                            ScanStats]:
    path = Path(path)
    if not state:
        session = path.parent.parent.name if path.parent.name == "subagents" else path.stem
        state = {"session": session, "cwd": None, "name": name}
    return scan_json_lines(path, start, dict(state), MARKERS, _visit)
