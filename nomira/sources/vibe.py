"""Mistral Vibe sessions: `~/.vibe/logs/session/<prefix>_<time>_<id>/meta.json`.

Format (mistralai/mistral-vibe `vibe/core/session/session_logger.py` `persist_metadata`,
`vibe/core/types.py` `AgentStats`, `vibe/core/config` `ModelConfig`): `meta.json` is
rewritten whole after every turn: `{session_id, start_time, end_time, environment:
{working_directory}, stats: {steps, session_prompt_tokens, session_completion_tokens,
input_price_per_million, output_price_per_million, session_cost, ...}, config:
{active_model (an alias), models: [{name, provider, alias, input_price, output_price}]}}`.
`session_*_tokens` are the session's sums of the API's `prompt_tokens` /
`completion_tokens` (`agent_loop._update_stats`); there is no cache split, so input is
priced at the full rate (an upper bound when the provider cached). `session_cost` is
Vibe's own estimate at its configured prices, kept beside the computed one.

One `aggregated` event per session, dated at its `start_time`, for the model the active
alias names (`models[].name`; a model switched mid-session is not recorded: all of the
session goes to the last active one). Dedup key: `session_id` (a copy or a resumed
folder counts once, the most tokens winning). Locations: `$VIBE_HOME/logs/session`
(Vibe's own override), `~/.vibe/logs/session`. Project: `environment.working_directory`.

Regime: API. Vibe calls Mistral's API (or another provider) with the user's key.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable, Mapping

from nomira.sources.scan import ScanStats
from nomira.sources import calls
from nomira.sources.calls import events_from_files, merge_records, partition_key  # noqa: F401

NAME = "mistral_vibe"
META = "meta.json"


def default_paths(env: Mapping[str, str] = os.environ) -> list[Path]:
    base = Path(env["VIBE_HOME"]).expanduser() if env.get("VIBE_HOME") else calls.home(env) / ".vibe"
    return calls.existing(r for r in [base / "logs" / "session"] if r.is_dir())


def claims(name: str, parent: str) -> bool:
    return name == META and os.path.basename(os.path.dirname(parent)) == "session"


def find_files(roots: Iterable[Path]) -> list[Path]:
    return calls.find_claimed(roots, claims)


def _model(doc: dict) -> str | None:
    alias = calls.dig(doc, "config", "active_model")
    for m in calls.listed(calls.dig(doc, "config", "models")):
        if isinstance(m, dict) and m.get("alias") == alias and isinstance(m.get("name"), str):
            return m["name"]
    return alias if isinstance(alias, str) else doc.get("model")


def _parse(path: Path, stats: ScanStats) -> list[list]:
    doc = calls.read_json(path, stats)
    if doc is None:
        return []
    st = doc.get("stats") if isinstance(doc.get("stats"), dict) else {}
    inp, out = calls.count(st.get("session_prompt_tokens")), calls.count(st.get("session_completion_tokens"))
    if not (inp or out):
        return []
    ts = calls.stamp(stats, doc.get("start_time"), doc.get("end_time"))
    if ts is None:
        return []
    sid = doc.get("session_id") if isinstance(doc.get("session_id"), str) and doc["session_id"] else path.parent.name
    cwd = calls.dig(doc, "environment", "working_directory")
    return [calls.record(NAME, ts, sid, sid, _model(doc), input=inp, output=out, cwd=cwd,
                         agent_cost=calls.money(st.get("session_cost")), aggregated=True)]


def scan_file(path: Path, start: int = 0, state: dict | None = None) -> tuple[list[list], dict, int, ScanStats]:
    return calls.whole_file(path, _parse)
