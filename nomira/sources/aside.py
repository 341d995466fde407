"""Aside (the AI browser): `~/.aside/u/<account>/sessions/<session>/messages.jsonl`, flat per-response records.

Format (closed source; as tokscale reads it: `crates/tokscale-core/src/sessions/aside.rs` and its
integration tests `aside.rs`): one JSON object per line, `{role, timestamp (epoch ms or ISO),
model, provider, responseId, usage {input, output, cacheRead, cacheWrite, reasoning, cost
{total}}}`; an `assistant` line with usage is one model response. Buckets as tokscale reads them:
`input` without the cache, cache reads and writes apart, `output` with the reasoning inside
(UNCONFIRMED beyond that reader). `cost.total`, when positive, is Aside's own figure, kept beside
the computed one. A `provider` of `aside` or `unknown` is a routing marker, not the provider (pi-ai's
provider ids map as for pi; any other, the model names the provider).

Dedup key: (provider, responseId): a response repeated in a transcript or seen under another
account counts once; lines without a responseId cannot be matched and all count. Time: the line's
`timestamp` (no fallback to the file's mtime: such lines are counted `no_timestamp`). Session:
`<account>/<session>`. Project: none (a browser). Locations: `$ASIDE_DIR` (Nomira's override, a
comma list of `.aside` folders), else `~/.aside` on every OS.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable, Mapping

from nomira.sources.scan import ScanStats, scan_json_lines
from nomira.sources import calls, pi
from nomira.sources.calls import events_from_files, merge_records, partition_key  # noqa: F401

NAME = "aside"
FILE = "messages.jsonl"
PLACES = "$ASIDE_DIR, ~/.aside: u/<account>/sessions/<session>/messages.jsonl"
MARKERS = (b'"usage"',)
ROUTING = ("aside", "unknown", "")


def default_paths(env: Mapping[str, str] = os.environ) -> list[Path]:
    roots = calls.env_paths(env, "ASIDE_DIR") or [calls.home(env) / ".aside"]
    return calls.existing(r / "u" for r in roots if (r / "u").is_dir())


def claims(name: str, parent: str) -> bool:
    """`u/<account>/sessions/<session>/messages.jsonl`."""
    if name != FILE:  # (the name first: every file of a --path walk is asked)
        return False
    up = Path(parent).parts
    return len(up) >= 4 and up[-2] == "sessions" and up[-4] == "u"


def find_files(roots: Iterable[Path]) -> list[Path]:
    return calls.find_claimed(roots, claims)


def _visit(d: dict, state: dict, stats: ScanStats) -> list[list] | None:
    u = d.get("usage")
    if d.get("role") != "assistant" or not isinstance(u, dict):
        return None
    inp, out = calls.count(u.get("input")), calls.count(u.get("output"))
    cr, cw = calls.count(u.get("cacheRead")), calls.count(u.get("cacheWrite"))
    cost = calls.money(calls.dig(u, "cost", "total"))
    if not (inp or out or cr or cw):
        return None
    ts = calls.stamp(stats, d.get("timestamp"))
    if ts is None:
        return None
    model = d.get("model") if isinstance(d.get("model"), str) else None
    provider = d.get("provider").strip() if isinstance(d.get("provider"), str) else ""
    provider = None if provider.lower() in ROUTING else provider
    rid = d.get("responseId")
    key = f"{provider or '?'}:{rid.strip()}" if isinstance(rid, str) and rid.strip() else None
    return [calls.record(NAME, ts, key, state["session"], model, provider=pi.PROVIDERS.get(provider), input=inp,
                         output=out, cache_read=cr, cache_write=cw, reasoning=min(calls.count(u.get("reasoning")), out),
                         agent_cost=cost if cost else None)]


def scan_file(path: Path, start: int = 0, state: dict | None = None) -> tuple[list[list], dict, int, ScanStats]:
    path = Path(path)
    state = dict(state) if state else {"session": f"{path.parent.parent.parent.name}/{path.parent.name}"}
    return scan_json_lines(path, start, state, MARKERS, _visit)
