"""Factory Droid sessions: `~/.factory/sessions/<encoded cwd>/<uuid>.settings.json`.

Droid is closed source; the format is read from its session files as third-party
readers document them (ccusage `adapter/droid`, tokscale's droid parser): beside each
`<uuid>.jsonl` transcript, `<uuid>.settings.json` holds the session's running totals,
rewritten as it grows: `{model, providerLock, providerLockTimestamp, tokenUsage
{inputTokens, outputTokens, cacheCreationTokens, cacheReadTokens, thinkingTokens}}`.
So Droid usage is per session, dated at `providerLockTimestamp` (else the file's
mtime). `inputTokens` is uncached input (cache reads are counted apart, often 50x the
input); `thinkingTokens` is counted on top of output, as ccusage does (UNCONFIRMED).
`custom:<name>-[Provider]` models (bring-your-own-key) lose the prefix and the bracket.

Dedup key: the session uuid (a copied settings file counts once). Project: the
transcript's first line when it is a `session_start` with a `cwd`, else the encoded
folder name (`/` written as `-`, as Claude Code's project folders are).
`FACTORY_HOME_OVERRIDE` moves `~/.factory` (Droid's own); `DROID_SESSIONS_DIR`
(ccusage's) names sessions folders directly.

Regime: subscription. Droid runs on a Factory plan's monthly Standard Token allowance;
BYOK `custom:` models are billed by the user's provider (`--regime api` for those).
"""
from __future__ import annotations

import json
import os
import re
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterable, Mapping

from nomira.sources.scan import ScanStats
from nomira.sources import calls
from nomira.sources.calls import events_from_files, merge_records, partition_key  # noqa: F401

NAME = "droid"
SUFFIX = ".settings.json"


def default_paths(env: Mapping[str, str] = os.environ) -> list[Path]:
    roots = calls.env_paths(env, "DROID_SESSIONS_DIR")
    if roots is None:
        base = Path(env["FACTORY_HOME_OVERRIDE"]).expanduser() if env.get("FACTORY_HOME_OVERRIDE") else calls.home(env)
        roots = [base / ".factory" / "sessions"]
    return [r for r in roots if r.is_dir()]


def claims(name: str, parent: str) -> bool:
    return name.endswith(SUFFIX) and "sessions" in parent


def find_files(roots: Iterable[Path]) -> list[Path]:
    return calls.find_claimed(roots, claims)


def model_name(raw: str) -> str:
    """`custom:GLM-4.6-[Fireworks]` -> `GLM-4.6`: the model, without Droid's BYOK decoration."""
    name = raw[len("custom:"):] if raw.startswith("custom:") else raw
    return re.sub(r"\[[^\]]*\]", "", name).strip().rstrip("-").strip() or raw


def _cwd(path: Path, session: str) -> str | None:
    try:
        with open(path.with_name(session + ".jsonl"), "rb") as fh:
            first = json.loads(fh.readline() or b"{}")
        if isinstance(first, dict) and first.get("type") == "session_start" and isinstance(first.get("cwd"), str):
            return first["cwd"]
    except (OSError, ValueError):
        pass
    return None if path.parent.name == "sessions" else path.parent.name  # legacy flat layout: no folder


def _parse(path: Path, stats: ScanStats) -> list[list]:
    doc = calls.read_json(path, stats)
    if doc is None:
        return []
    u = doc.get("tokenUsage")
    if not isinstance(u, dict):
        return []
    inp, out = calls.count(u.get("inputTokens")), calls.count(u.get("outputTokens"))
    cw, cr = calls.count(u.get("cacheCreationTokens")), calls.count(u.get("cacheReadTokens"))
    thinking = calls.count(u.get("thinkingTokens"))
    if not (inp or out or cw or cr or thinking):
        return []
    ts = calls.iso(doc.get("providerLockTimestamp")) or \
        datetime.fromtimestamp(os.path.getmtime(path), timezone.utc).isoformat()
    session = path.name[:-len(SUFFIX)]
    model = doc.get("model") if isinstance(doc.get("model"), str) and doc["model"] else None
    if model is None:
        stats.skip("model_unknown")
    return [calls.record(NAME, ts, session, session, model_name(model) if model else None, input=inp,
                         output=out + thinking, cache_read=cr, cache_write=cw, reasoning=thinking,
                         cwd=_cwd(path, session), aggregated=True)]


def scan_file(path: Path, start: int = 0, state: dict | None = None) -> tuple[list[list], dict, int, ScanStats]:
    return calls.whole_file(path, _parse)
