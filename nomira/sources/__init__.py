"""Local agent log sources. Each module has `default_paths(env)`, `find_files(roots)`,
`scan_file(path, start, state) -> (records, state, end_offset, stats)` and
`events_from_files(per_file, stats)`; a new agent is one module and one line here."""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Mapping

from nomira.events import UsageEvent
from nomira.scan import ScanStats
from nomira.sources import claude_code, codex

SOURCES = {"claude": claude_code, "codex": codex}


@dataclass
class Collected:
    events: list[UsageEvent]
    stats: ScanStats
    states: dict[str, list[dict]] = field(default_factory=dict)


def classify(files: Iterable[Path]) -> dict[str, list[Path]]:
    """Split explicitly given files between sources by their on-disk naming."""
    out: dict[str, list[Path]] = {name: [] for name in SOURCES}
    for f in files:
        out["codex" if f.name.startswith("rollout-") else "claude"].append(f)
    return out


def discover(selected: Iterable[str], explicit: list[Path] | None, env: Mapping[str, str]) -> dict[str, list[Path]]:
    selected = list(selected)
    if explicit:
        missing = [p for p in explicit if not p.exists()]
        if missing:
            raise FileNotFoundError(f"no such file or directory: {missing[0]}")
        files = claude_code.find_files(explicit)
        by_source = classify(files)
    else:
        by_source = {name: SOURCES[name].find_files(SOURCES[name].default_paths(env)) for name in selected}
    return {name: by_source.get(name, []) for name in selected}


ScanFn = Callable[[str, list[Path]], list[tuple[Path, list, dict, ScanStats]]]


def scan_plain(source: str, files: list[Path]) -> list[tuple[Path, list, dict, ScanStats]]:
    mod = SOURCES[source]
    out = []
    for f in files:
        records, state, _end, stats = mod.scan_file(f)
        out.append((f, records, state, stats))
    return out


def collect(selected: Iterable[str] = ("claude", "codex"), explicit: list[Path] | None = None,
            env: Mapping[str, str] = os.environ, scan: ScanFn = scan_plain) -> Collected:
    stats = ScanStats()
    events: list[UsageEvent] = []
    states: dict[str, list[dict]] = {}
    for source, files in discover(selected, explicit, env).items():
        scanned = scan(source, files)
        for *_rest, st in scanned:
            stats.merge(st)
        states[source] = [state for _f, _r, state, _s in scanned]
        events.extend(SOURCES[source].events_from_files(((f, r, s) for f, r, s, _ in scanned), stats))
    events.sort(key=lambda e: e.occurred_at)
    return Collected(events, stats, states)
