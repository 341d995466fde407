"""Amp threads: `$XDG_DATA_HOME/amp/threads/T-<uuid>.json` (default `~/.local/share/amp`).

Amp is closed source; the format is read from its thread files as third-party readers
document them (ccusage `adapter/amp`, agentsview `internal/parser/amp.go`): one JSON
document per thread, rewritten whole as the thread grows: `{id, created (epoch ms),
messages: [...], env: {initial: {trees: [{displayName, uri}]}}, usageLedger?: {events}}`.
Assistant messages carry `messageId` (an integer, per thread) and `usage {model,
timestamp, inputTokens, outputTokens, cacheCreationInputTokens, cacheReadInputTokens,
totalTokens?, credits?}` in Anthropic terms (`inputTokens` is uncached input). Older
threads keep `usageLedger.events[] {id, timestamp, model, credits, tokens {input,
output, total?}, toMessageId}`: an event whose message has `usage` only adds its
credits; one without is a call of its own (no cache split known).

Dedup key: (thread id, messageId). The agent's own figure is `credits`, kept beside the
computed cost (Amp bills credits at model cost; 1 credit = US$1 per Amp's pricing page,
UNCONFIRMED). Builds after 2026-03-31 keep threads on the server only: no local file.
`AMP_DATA_DIR` (ccusage's) overrides the data folder. Project: the first workspace
tree's `file://` uri.

Regime: API. Amp charges usage credits per call at the model's price (or shows ads on
Amp Free); there is no flat subscription whose value the figures would measure.
"""
from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Iterable, Mapping
from urllib.parse import unquote, urlparse

from nomira.sources.scan import ScanStats
from nomira.sources import calls
from nomira.sources.calls import events_from_files, merge_records, partition_key  # noqa: F401

NAME = "amp"
_THREAD = re.compile(r"^T-[0-9A-Za-z-]+\.json$")


def default_paths(env: Mapping[str, str] = os.environ) -> list[Path]:
    roots = calls.env_paths(env, "AMP_DATA_DIR")
    if roots is None:
        data = Path(env["XDG_DATA_HOME"]) if env.get("XDG_DATA_HOME") else calls.home(env) / ".local" / "share"
        roots = [data / "amp"]
    return [r / "threads" for r in roots if (r / "threads").is_dir()]


def claims(name: str, parent: str) -> bool:
    return bool(_THREAD.match(name))


def find_files(roots: Iterable[Path]) -> list[Path]:
    return calls.find_claimed(roots, claims)


def _cwd(doc: dict) -> str | None:
    trees = calls.listed(calls.dig(doc, "env", "initial", "trees"))
    if not trees or not isinstance(trees[0], dict):
        return None
    uri = trees[0].get("uri")
    if isinstance(uri, str) and uri.startswith("file:"):
        return unquote(urlparse(uri).path) or None
    name = trees[0].get("displayName")
    return name if isinstance(name, str) else None


def _message_calls(doc: dict, thread: str, cwd: str | None, fallback_ts: str | None) -> dict[str, list]:
    out: dict[str, list] = {}
    for i, m in enumerate(calls.listed(doc.get("messages"))):
        if not isinstance(m, dict) or m.get("role") != "assistant" or not isinstance(m.get("usage"), dict):
            continue
        u = m["usage"]
        ts = calls.iso(u.get("timestamp")) or calls.iso(m.get("timestamp")) or fallback_ts
        inp, out_ = calls.count(u.get("inputTokens")), calls.count(u.get("outputTokens"))
        cw, cr = calls.count(u.get("cacheCreationInputTokens")), calls.count(u.get("cacheReadInputTokens"))
        if not (inp or out_ or cw or cr) and calls.count(u.get("totalTokens")):
            out_ = calls.count(u.get("totalTokens"))  # only a total: counted as output, as ccusage does
        if ts is None or not (inp or out_ or cw or cr):
            continue
        mid = m.get("messageId", i)
        out[str(mid)] = calls.record(NAME, ts, f"{thread}:{mid}", thread, u.get("model") or m.get("model"),
                                     input=inp, output=out_, cache_read=cr, cache_write=cw, cwd=cwd,
                                     agent_cost=calls.money(u.get("credits")))
    return out


def _parse(path: Path, stats: ScanStats) -> list[list]:
    doc = calls.read_json(path, stats)
    if doc is None:
        return []
    thread = doc.get("id") if isinstance(doc.get("id"), str) and doc["id"] else path.stem
    cwd = _cwd(doc)
    by_msg = _message_calls(doc, thread, cwd, calls.iso_ms(doc.get("created")))
    for ev in calls.listed(calls.dig(doc, "usageLedger", "events")):
        if not isinstance(ev, dict):
            continue
        target = str(ev.get("toMessageId"))
        rec = by_msg.get(target)
        if rec is not None:
            credits = calls.money(ev.get("credits"))
            if credits is not None:
                rec[calls.AGENT_COST] = (rec[calls.AGENT_COST] or 0.0) + credits
            continue
        t = ev.get("tokens") if isinstance(ev.get("tokens"), dict) else {}
        ts = calls.iso(ev.get("timestamp"))
        inp, out_ = calls.count(t.get("input")), calls.count(t.get("output"))
        if ts is None or not (inp or out_):
            continue
        key = f"{thread}:{target}" if ev.get("toMessageId") is not None else f"{thread}:ledger:{ev.get('id')}"
        by_msg[key] = calls.record(NAME, ts, key, thread, ev.get("model"), input=inp, output=out_, cwd=cwd,
                                   agent_cost=calls.money(ev.get("credits")))
    return list(by_msg.values())


def scan_file(path: Path, start: int = 0, state: dict | None = None) -> tuple[list[list], dict, int, ScanStats]:
    return calls.whole_file(path, _parse)
