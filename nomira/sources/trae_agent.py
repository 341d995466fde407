"""Trae Agent (bytedance/trae-agent, `trae-cli run`): `trajectories/trajectory_YYYYMMDD_HHMMSS.json` (opt-in).

Format (bytedance/trae-agent `trae_agent/utils/trajectory_recorder.py`): one JSON document per run,
rewritten whole (`json.dump(..., indent=2)`) after every call: `{"task", "start_time", "end_time",
"provider", "model", "max_steps", "llm_interactions": [{"timestamp", "provider", "model",
"input_messages", "response": {"content", "model", "finish_reason", "usage": {input_tokens,
output_tokens, cache_creation_input_tokens, cache_read_input_tokens, reasoning_tokens}, "tool_calls"},
"tools_available"}], "agent_steps", "success", "final_result", "execution_time"}`. Times are
`datetime.now().isoformat()`: naive local time, read as this machine's.

Token semantics depend on the client that recorded the call (`provider`, `trae_agent/utils/llm_clients/`):
`anthropic` (Messages API: input is uncached, cache writes and reads apart); `openai` (Responses API:
`input_tokens` includes `input_tokens_details.cached_tokens`, recorded as the cache read, taken out of
input; output includes reasoning); `google` (`prompt_token_count` includes `cached_content_token_count`,
taken out; output is `candidates_token_count`, thoughts not recorded: a lower bound); `azure`,
`openrouter`, `doubao` (`openai_compatible_base`: `prompt_tokens` and `completion_tokens` only, the
cached part not recorded: the whole prompt at the input rate, an upper bound); `ollama` records no usage.
The model is the response's `model`, else the interaction's configured one.

Trajectories land in `trajectories/` under the directory `trae-cli` ran in (or wherever
`--trajectory-file` points): there is no home-wide location to discover, so the source reads nothing
unasked. `$NOMIRA_TRAE_AGENT_PATHS` (comma list of folders, walked) or `--path` name them. Project: the
folder holding `trajectories/`; session: the trajectory file's name. Dedup key: (run start_time, interaction timestamp, position): a copied
trajectory counts once, a rewritten one replaces its calls.

Regime: API: Trae Agent calls the providers with the user's own keys.
"""
from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Iterable, Mapping

from nomira.sources.scan import ScanStats
from nomira.sources import calls
from nomira.sources.calls import events_from_files, merge_records, partition_key  # noqa: F401

NAME = "trae_agent"
PLACES = "$NOMIRA_TRAE_AGENT_PATHS (opt-in: folders holding trajectories/trajectory_*.json)"
FILE = re.compile(r"trajectory_\d{8}_\d{6}\.json")
CACHE_INSIDE_INPUT = ("openai", "google")  # clients whose input count includes the cached read


def default_paths(env: Mapping[str, str] = os.environ) -> list[Path]:
    return calls.existing(calls.env_paths(env, "NOMIRA_TRAE_AGENT_PATHS") or [])


def claims(name: str, parent: str) -> bool:
    return FILE.fullmatch(name) is not None and os.path.basename(parent) == "trajectories"


def find_files(roots: Iterable[Path]) -> list[Path]:
    return calls.find_claimed(roots, claims)


def _call(run: dict, i: int, x: dict, session: str, cwd: str, stats: ScanStats) -> list | None:
    resp = x.get("response")
    usage = resp.get("usage") if isinstance(resp, dict) else None
    if not isinstance(usage, dict):
        stats.malformed += 1
        return None
    inp, out, cw, cr = (calls.count(usage.get(k)) for k in ("input_tokens", "output_tokens",
                                                             "cache_creation_input_tokens", "cache_read_input_tokens"))
    if not (inp or out or cw or cr):
        return None
    ts = calls.iso_local(x.get("timestamp")) or calls.iso_local(run.get("start_time"))
    if ts is None:
        stats.skip("no_timestamp")
        return None
    provider = x.get("provider") if isinstance(x.get("provider"), str) else run.get("provider")
    uncached = max(inp - cr, 0) if provider in CACHE_INSIDE_INPUT else inp
    model = resp.get("model") if isinstance(resp.get("model"), str) and resp["model"] else x.get("model")
    key = f"{run.get('start_time')}|{x.get('timestamp')}|{i}"
    return calls.record(NAME, ts, key, session, model, input=uncached, output=out,
                        cache_read=cr, cache_write=cw, reasoning=min(calls.count(usage.get("reasoning_tokens")), out),
                        reported_input=inp, cwd=cwd)


def _parse(path: Path, stats: ScanStats) -> list[list]:
    run = calls.read_json(path, stats)
    if run is None:
        return []
    interactions = run.get("llm_interactions")
    if not isinstance(interactions, list):
        stats.malformed += 1
        return []
    cwd = str(path.parent.parent)
    out = []
    for i, x in enumerate(interactions):
        rec = _call(run, i, x, path.stem, cwd, stats) if isinstance(x, dict) else None
        if rec is not None:
            out.append(rec)
        elif not isinstance(x, dict):
            stats.malformed += 1
    return out


def scan_file(path: Path, start: int = 0, state: dict | None = None) -> tuple[list[list], dict, int, ScanStats]:
    return calls.whole_file(path, _parse)
