"""Pi coding agent sessions: `~/.pi/agent/sessions/--<encoded cwd>--/<timestamp>_<id>.jsonl`.

Format (earendil-works/pi, formerly badlogic/pi-mono, `packages/coding-agent` session
manager and `packages/ai` `Usage`): a header line `{type: "session", version?, id,
timestamp, cwd}`, then entries; `{type: "message", id?, parentId?, timestamp, message}`
where an assistant `message` has `provider`, `model` and `usage {input, output,
cacheRead, cacheWrite, totalTokens, cost {input, output, cacheRead, cacheWrite,
total}}`. pi-ai normalises every provider to these terms: `input` is cache-miss input,
`output` includes reasoning; `cost.total` is pi's own dollar figure, kept beside the
computed cost.

Dedup key: (entry id, message timestamp) for v2+ entries (a forked session copies its
parent's entries under the same ids); v1 entries have no id and are keyed by
(timestamp, model, token counts). Locations: `PI_CODING_AGENT_SESSION_DIR`, else
`PI_CODING_AGENT_DIR/sessions` (pi's own overrides), else `~/.pi/agent/sessions` and
the pre-0.7.29 `~/.coding-agent/sessions`; `PI_AGENT_DIR` (ccusage's) names sessions
folders directly. Project: the header's `cwd`.

Regime: API. Pi calls providers with the user's own key by default (it can also sign
in to a Claude or ChatGPT plan; such usage is value, not a bill: `--regime`).
"""
from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Iterable, Mapping

from nomira.sources.scan import ScanStats, scan_json_lines
from nomira.sources import calls
from nomira.sources.calls import events_from_files, merge_records, partition_key  # noqa: F401

NAME = "pi"
MARKERS = (b'"usage"', b'"session"')
_FILE = re.compile(r"^\d{4}-\d{2}-\d{2}T[0-9-]+Z?_[^/\\]+\.jsonl$")
PROVIDERS = {"anthropic": "anthropic", "openai": "openai", "google": "google", "google-vertex": "google",
             "amazon-bedrock": "anthropic", "google-gemini-cli": "google", "openai-codex": "openai"}


def default_paths(env: Mapping[str, str] = os.environ) -> list[Path]:
    roots = calls.env_paths(env, "PI_AGENT_DIR")
    if roots is None:
        if env.get("PI_CODING_AGENT_SESSION_DIR"):
            roots = [Path(env["PI_CODING_AGENT_SESSION_DIR"]).expanduser()]
        elif env.get("PI_CODING_AGENT_DIR"):
            roots = [Path(env["PI_CODING_AGENT_DIR"]).expanduser() / "sessions"]
        else:
            home = calls.home(env)
            roots = [home / ".pi" / "agent" / "sessions", home / ".coding-agent" / "sessions"]
    return [r for r in roots if r.is_dir()]


def claims(name: str, parent: str) -> bool:
    """`<ISO timestamp>_<session id>.jsonl` (the timestamp with `-` for `:` and `.`)."""
    return bool(_FILE.match(name))


def find_files(roots: Iterable[Path]) -> list[Path]:
    return calls.find_claimed(roots, claims)


def _visit(d: dict, state: dict, stats: ScanStats) -> list[list] | None:
    if d.get("type") == "session":
        if isinstance(d.get("cwd"), str):
            state["cwd"] = d["cwd"]
        if isinstance(d.get("id"), str) and d["id"]:
            state["session"] = d["id"]
        return None
    msg = d.get("message")
    if d.get("type", "message") != "message" or not isinstance(msg, dict) or msg.get("role") != "assistant":
        return None
    u = msg.get("usage")
    if not isinstance(u, dict):
        return None
    ts = calls.stamp(stats, d.get("timestamp"), msg.get("timestamp"))
    if ts is None:
        return None
    inp, out = calls.count(u.get("input")), calls.count(u.get("output"))
    cr, cw = calls.count(u.get("cacheRead")), calls.count(u.get("cacheWrite"))
    if not (inp or out or cr or cw):
        return None
    model = msg.get("model") if isinstance(msg.get("model"), str) else None
    cost = u.get("cost") if isinstance(u.get("cost"), dict) else {}
    eid = d.get("id")
    key = f"{eid}:{msg.get('timestamp', ts)}" if isinstance(eid, str) and eid else f"{ts}:{model}:{inp}:{out}:{cr}:{cw}"
    provider = PROVIDERS.get(msg.get("provider")) if isinstance(msg.get("provider"), str) else None
    reasoning = calls.count(u.get("reasoning"))
    return [calls.record(NAME, ts, key, state["session"], model, provider=provider, input=inp, output=out,
                         cache_read=cr, cache_write=cw, reasoning=min(reasoning, out), cwd=state["cwd"],
                         agent_cost=calls.money(cost.get("total")))]


def scan_file(path: Path, start: int = 0, state: dict | None = None) -> tuple[list[list], dict, int, ScanStats]:
    path = Path(path)
    state = dict(state) if state else {"session": path.stem.split("_", 1)[-1], "cwd": None}
    return scan_json_lines(path, start, state, MARKERS, _visit)
