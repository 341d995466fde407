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

Which line carries a response's usage: token-usage reads assistant messages, agentsview also
function-call items. Both are read, and a response's usage seen on several of its items counts
once: the dedup key is (session, the usage's counts), which differ between a session's calls
(the context grows). Model: `providerData.model` (the short id), else `requestModelName`.
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
MARKERS = (b'"usage"',)


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


def _visit(d: dict, state: dict, stats: ScanStats) -> list[list]:
    pd = d.get("providerData")
    u = pd.get("usage") if isinstance(pd, dict) else None
    if not isinstance(u, dict):
        return []
    inp, out = calls.count(u.get("inputTokens")), calls.count(u.get("outputTokens"))
    cached = calls.count(_first(u.get("inputTokensDetails")).get("cached_tokens"))
    reasoning = calls.count(_first(u.get("outputTokensDetails")).get("reasoning_tokens"))
    if not (inp or out):
        return []
    ts = calls.stamp(stats, d.get("timestamp"))
    if ts is None:
        return []
    total = calls.count(u.get("totalTokens"))
    if total:
        fresh, out_, matched = calls.split_by_total(inp, out, cached, 0, reasoning, total)
        if not matched:
            stats.skip("workbuddy_total_unmatched")
    elif cached > inp:
        fresh, out_ = inp, out
        stats.skip("workbuddy_cache_outside_input")
    else:
        fresh, out_ = inp - cached, out
    model = next((m for m in (pd.get("model"), pd.get("requestModelName")) if isinstance(m, str) and m.strip()), None)
    cwd = d.get("cwd") if isinstance(d.get("cwd"), str) and d.get("cwd") else state.get("cwd")
    state["cwd"] = cwd
    key = f"{state['session']}:{inp}:{out}:{cached}:{reasoning}"
    return [calls.record(NAME, ts, key, state["session"], model, input=fresh, output=out_, cache_read=cached,
                         reasoning=min(reasoning, out_), reported_input=inp, cwd=cwd)]


def scan_file(path: Path, start: int = 0, state: dict | None = None) -> tuple[list[list], dict, int, ScanStats]:
    path = Path(path)
    if not state:
        session = path.parent.parent.name if path.parent.name == "subagents" else path.stem
        state = {"session": session, "cwd": None}
    return scan_json_lines(path, start, dict(state), MARKERS, _visit)
