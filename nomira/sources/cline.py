"""Cline, Roo Code and Kilo Code task history: `<editor>/User/globalStorage/<extension>/tasks/<id>/ui_messages.json`.

Format (cline/cline `src/shared/ExtensionMessage.ts` `ClineMessage`, and its forks Roo
Code and Kilo Code): `ui_messages.json` is the task's UI message list, rewritten
whole: `[{ts (epoch ms), type: "say"|"ask", say?, text?, modelInfo?}, ...]`. Each API
request is a `say: "api_req_started"` message whose `text` is JSON `{request?,
tokensIn, tokensOut, cacheWrites, cacheReads, cost, apiProtocol?, ...}`, filled in when
the response completes. When Cline trims old context it replaces requests by one
`say: "deleted_api_reqs"` message carrying their summed usage (counted as one
aggregated event). `cost` is the extension's own dollar figure, kept beside the
computed one.

Token semantics (UNCONFIRMED per provider): with `apiProtocol: "openai"` (Roo, Kilo)
or an OpenAI-style provider, `tokensIn` is the prompt total including cache reads,
which are subtracted; otherwise (Anthropic protocol, Bedrock, Vertex) it is uncached.
Model: the message's `modelInfo.modelId` (newer Cline), else the latest
`task_metadata.json` `model_usage` entry at or before the request; Roo logs none, so
its calls are `unknown` (unpriced) with Roo's own cost beside. Project: Cline's
`state/taskHistory.json` `cwdOnTaskInitialization`, Roo/Kilo's `history_item.json`
`workspace`.

Dedup key: (task id, request ts). Locations: the extension folders under each VS Code
family editor's globalStorage (Code, Code - Insiders, Cursor, Windsurf, VSCodium,
Code - OSS; `$XDG_CONFIG_HOME` or `~/.config` on Linux, `~/Library/Application Support`
on macOS, `%APPDATA%` on Windows, `~/.vscode-server/data`), and the Cline CLI's
`CLINE_DATA_DIR`, `CLINE_DIR/data` or `~/.cline/data`.

Regime: API. Each extension calls the provider with the user's key (or prepaid Cline /
Kilo credits, charged per request at cost): the figures are the bill.
"""
from __future__ import annotations

import json
import os
from functools import lru_cache
from pathlib import Path
from typing import Iterable, Mapping

from nomira.sources.scan import ScanStats
from nomira.sources import calls
from nomira.sources.calls import events_from_files, merge_records, partition_key  # noqa: F401

NAME = "cline"
EXTENSIONS = {"saoudrizwan.claude-dev": "cline", "rooveterinaryinc.roo-cline": "roo_code",
              "kilocode.kilo-code": "kilo_code"}
EXTENSIONS["zoocodeorganization.zoo-code"] = "zoo_code"  # issue 27: Roo Code's community fork, Roo's task format
EDITORS = ("Code", "Code - Insiders", "Cursor", "Windsurf", "VSCodium", "Code - OSS")
UI = "ui_messages.json"
OPENAI_STYLE = {"openai", "openai-native", "deepseek", "xai", "openrouter", "requesty", "together", "fireworks",
                "groq", "mistral", "qwen", "doubao", "moonshot", "litellm", "ollama", "lmstudio"}


def _user_dirs(env: Mapping[str, str]) -> list[Path]:
    home = calls.home(env)
    bases = [Path(env["XDG_CONFIG_HOME"]) if env.get("XDG_CONFIG_HOME") else home / ".config",
             home / "Library" / "Application Support"]
    if env.get("APPDATA"):
        bases.append(Path(env["APPDATA"]))
    out = [base / app / "User" for base in bases if base.is_dir() for app in EDITORS]
    return out + [home / ".vscode-server" / "data" / "User"]


user_dirs = _user_dirs  # the VS Code family's User folders, shared with vscode_copilot


def default_paths(env: Mapping[str, str] = os.environ) -> list[Path]:
    roots = [u / "globalStorage" / ext / "tasks" for u in _user_dirs(env) if (u / "globalStorage").is_dir()
             for ext in EXTENSIONS]
    cli = env.get("CLINE_DATA_DIR") or (str(Path(env["CLINE_DIR"]) / "data") if env.get("CLINE_DIR") else None)
    roots.append((Path(cli).expanduser() if cli else calls.home(env) / ".cline" / "data") / "tasks")
    return calls.existing(r for r in roots if r.is_dir())


def claims(name: str, parent: str) -> bool:
    return name == UI


def find_files(roots: Iterable[Path]) -> list[Path]:
    return calls.find_claimed(roots, claims)


def _source(path: Path) -> str:
    return next((EXTENSIONS[p] for p in path.parts if p in EXTENSIONS), NAME)


@lru_cache(maxsize=8)
def _cline_history(state_file: str, _mtime: int) -> dict[str, str]:
    try:
        items = json.loads(Path(state_file).read_bytes())
    except (OSError, ValueError):
        return {}
    return {i["id"]: i["cwdOnTaskInitialization"] for i in items if isinstance(i, dict)
            and isinstance(i.get("id"), str) and isinstance(i.get("cwdOnTaskInitialization"), str)} \
        if isinstance(items, list) else {}


def _cwd(task_dir: Path) -> str | None:
    try:
        item = json.loads((task_dir / "history_item.json").read_bytes())
        if isinstance(item, dict) and isinstance(item.get("workspace"), str):
            return item["workspace"]
    except (OSError, ValueError):
        pass
    state = task_dir.parent.parent / "state" / "taskHistory.json"
    try:
        mtime = os.stat(state).st_mtime_ns
    except OSError:
        return None
    return _cline_history(str(state), mtime).get(task_dir.name)


def _models(task_dir: Path) -> list[tuple[float, str, str]]:
    """(ts, model id, provider id) from task_metadata.json's model_usage, in time order."""
    try:
        meta = json.loads((task_dir / "task_metadata.json").read_bytes())
    except (OSError, ValueError):
        return []
    return sorted((u["ts"], u["model_id"], str(u.get("model_provider_id") or ""))
                  for u in calls.listed(calls.dig(meta, "model_usage"))
                  if isinstance(u, dict) and isinstance(u.get("ts"), (int, float))
                  and isinstance(u.get("model_id"), str))


def _model_at(msg: dict, models: list, ts: float) -> tuple[str | None, str]:
    info = msg.get("modelInfo")
    if isinstance(info, dict) and isinstance(info.get("modelId"), str):
        return info["modelId"], str(info.get("providerId") or "")
    found = None
    for entry in models:
        if entry[0] > ts:
            break
        found = entry
    found = found or (models[0] if models else None)
    return (found[1], found[2]) if found else (None, "")


def _parse(path: Path, stats: ScanStats) -> list[list]:
    doc = calls.read_json(path, stats, list)
    if doc is None:
        return []
    source, task_dir = _source(path), path.parent
    cwd, models, out = _cwd(task_dir), _models(task_dir), []
    for msg in doc:
        if not isinstance(msg, dict) or msg.get("say") not in ("api_req_started", "deleted_api_reqs"):
            continue
        try:
            info = json.loads(msg.get("text") or "{}")
        except (TypeError, ValueError):
            stats.malformed += 1
            continue
        when = msg.get("ts")
        ts = calls.iso_ms(when) if isinstance(when, (int, float)) else None
        if not isinstance(info, dict) or ts is None:
            stats.malformed += 1
            continue
        inp, out_ = calls.count(info.get("tokensIn")), calls.count(info.get("tokensOut"))
        cw, cr = calls.count(info.get("cacheWrites")), calls.count(info.get("cacheReads"))
        if not (inp or out_ or cw or cr):
            continue
        model, provider = _model_at(msg, models, when)
        protocol = info.get("apiProtocol")
        if (protocol == "openai" or (protocol is None and provider in OPENAI_STYLE)) and inp >= cr:
            inp -= cr
        out.append(calls.record(source, ts, f"{task_dir.name}:{when}", task_dir.name, model, input=inp,
                                output=out_, cache_read=cr, cache_write=cw,
                                reported_input=calls.count(info.get("tokensIn")), cwd=cwd,
                                agent_cost=calls.money(info.get("cost")),
                                aggregated=msg.get("say") == "deleted_api_reqs"))
    return out


def scan_file(path: Path, start: int = 0, state: dict | None = None) -> tuple[list[list], dict, int, ScanStats]:
    return calls.whole_file(path, _parse)
