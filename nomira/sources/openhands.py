"""OpenHands CLI conversations: `~/.openhands/conversations/<id>/base_state.json` (+ `events/*.json`).

Format (OpenHands/software-agent-sdk `conversation/state.py`, `conversation_stats.py`,
`llm/utils/metrics.py`, `llm/utils/telemetry.py`): `base_state.json` is the conversation
state, rewritten whole (`model_dump_json`) whenever a field changes: `{id, agent: {llm:
{model}}, workspace: {working_dir}, stats: {usage_to_metrics: {<usage id>: {model_name,
accumulated_cost, costs: [{model, cost, timestamp}], token_usages: [{model,
prompt_tokens, completion_tokens, cache_read_tokens, cache_write_tokens,
reasoning_tokens, context_window, per_turn_token, response_id}]}}}}`: one
`token_usages` entry per LLM call, for every LLM of the conversation (the agent's, the
condenser's...). Token semantics are LiteLLM's (OpenAI-style): `prompt_tokens` INCLUDES
cache reads and, for Anthropic, cache writes (litellm `anthropic/chat/transformation.py`
adds both), so uncached input is `prompt - cache_read - cache_write`;
`completion_tokens` includes reasoning.

Time: a usage entry has none; the event the response produced (`events/event-*.json`,
`{id, timestamp, kind, llm_response_id}`, written naive local time by the SDK, read as
this machine's local time) dates it; else its `costs` entry when there is one per call; else the
conversation's first event. OpenHands' own cost (LiteLLM's, or the proxy's
`x-litellm-response-cost`) is recorded in `costs` only when positive, so it is kept
beside the computed one only when every call has one (then the lists align).

Dedup key: the provider's `response_id` (a fork copies the parent's metrics: counted
once), else (conversation, usage id, index). Locations: `$OPENHANDS_CONVERSATIONS_DIR`,
`$OPENHANDS_PERSISTENCE_DIR/conversations`, `~/.openhands/conversations`.
Project: `workspace.working_dir`.

Regime: API. OpenHands calls the provider (or the OpenHands LLM proxy) with the user's
key: the figures are the bill.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Iterable, Mapping

from nomira.sources.scan import ScanStats
from nomira.sources import calls
from nomira.sources.calls import events_from_files, merge_records, partition_key  # noqa: F401

NAME = "openhands"
STATE = "base_state.json"


def default_paths(env: Mapping[str, str] = os.environ) -> list[Path]:
    roots = calls.env_paths(env, "OPENHANDS_CONVERSATIONS_DIR")
    if roots is None:
        base = Path(env["OPENHANDS_PERSISTENCE_DIR"]).expanduser() if env.get("OPENHANDS_PERSISTENCE_DIR") \
            else calls.home(env) / ".openhands"
        roots = [base / "conversations"]
    return calls.existing(r for r in roots if r.is_dir())


def claims(name: str, parent: str) -> bool:
    return name == STATE


def find_files(roots: Iterable[Path]) -> list[Path]:
    return calls.find_claimed(roots, claims)


def _event_times(conv: Path) -> tuple[dict[str, str], str | None]:
    """(llm_response_id -> first event time, the conversation's first event time)."""
    times: dict[str, str] = {}
    first = None
    try:
        names = sorted(n for n in os.listdir(conv / "events") if n.endswith(".json"))
    except OSError:
        return times, None
    for n in names:
        try:
            ev = json.loads((conv / "events" / n).read_bytes())
        except (OSError, ValueError):
            continue
        ts = calls.iso_local(ev.get("timestamp")) if isinstance(ev, dict) else None
        if ts is None:
            continue
        first = first or ts
        rid = ev.get("llm_response_id")
        if isinstance(rid, str) and rid and rid not in times:
            times[rid] = ts
    return times, first


def _cwd(doc: dict) -> str | None:
    for k in ("working_dir", "cwd", "path"):
        v = calls.dig(doc, "workspace", k)
        if isinstance(v, str) and v:
            return v
    return None


def _parse(path: Path, stats: ScanStats) -> list[list]:
    doc = calls.read_json(path, stats)
    if doc is None:
        return []
    conv = path.parent
    cid = doc.get("id") if isinstance(doc.get("id"), str) and doc["id"] else conv.name
    cwd, default_model = _cwd(doc), calls.dig(doc, "agent", "llm", "model")
    metrics = calls.dig(doc, "stats", "usage_to_metrics")
    times = None
    out = []
    for usage_id, m in metrics.items() if isinstance(metrics, dict) else ():
        usages = calls.listed(calls.dig(m, "token_usages"))
        costs = calls.listed(calls.dig(m, "costs"))
        aligned = len(costs) == len(usages)
        for i, u in enumerate(usages):
            if not isinstance(u, dict):
                stats.malformed += 1
                continue
            stats.candidates += 1
            prompt, cr, cw = (calls.count(u.get(k)) for k in ("prompt_tokens", "cache_read_tokens",
                                                               "cache_write_tokens"))
            out_, reasoning = calls.count(u.get("completion_tokens")), calls.count(u.get("reasoning_tokens"))
            if not (prompt or out_):
                continue
            if times is None:
                times = _event_times(conv)
            rid = u.get("response_id") if isinstance(u.get("response_id"), str) and u["response_id"] else None
            cost = costs[i] if aligned and isinstance(costs[i], dict) else {}
            ts = calls.stamp(stats, times[0].get(rid) if rid else None, cost.get("timestamp"), times[1])
            if ts is None:
                continue
            out.append(calls.record(
                NAME, ts, f"openhands:{rid}" if rid else f"{cid}:{usage_id}:{i}", cid,
                u.get("model") or calls.dig(m, "model_name") or default_model,
                input=max(prompt - cr - cw, 0), output=out_, cache_read=cr, cache_write=cw, reasoning=reasoning,
                reported_input=prompt, cwd=cwd, agent_cost=calls.money(cost.get("cost"))))
    return out


def scan_file(path: Path, start: int = 0, state: dict | None = None) -> tuple[list[list], dict, int, ScanStats]:
    return calls.whole_file(path, _parse)
