"""Local agent log sources. Each module has `default_paths(env)`, `find_files(roots)`,
`scan_file(path, start, state) -> (records, state, end_offset, stats)` and
`events_from_files(per_file, stats)`; a new agent is one module and one line here."""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Mapping

from nomira.events import UsageEvent
from nomira.scan import Progress, ScanStats, iter_scan
from nomira.sources import claude_code, codex, opencode

SOURCES = {"claude": claude_code, "codex": codex, "opencode": opencode}


@dataclass
class Collected:
    events: list[UsageEvent]
    stats: ScanStats
    states: dict[str, list[dict]] = field(default_factory=dict)


def classify(files: Iterable[Path]) -> dict[str, list[Path]]:
    """Split explicitly given files between sources by their on-disk naming."""
    out: dict[str, list[Path]] = {name: [] for name in SOURCES}
    for f in files:
        if f.name.startswith("rollout-"):
            out["codex"].append(f)
        elif f.suffix == ".jsonl":
            out["claude"].append(f)
        elif f.name.startswith("opencode") and ".db" in f.name or "storage" in f.parts and f.suffix == ".json":
            out["opencode"].append(f)
    return out


def _walk_explicit(explicit: list[Path]) -> list[Path]:
    """Every file under the given paths that some source reads, in one walk."""
    from nomira import paths
    keep = lambda name, parent: name.endswith(".jsonl") or opencode._is_opencode_file(name, parent)  # noqa: E731
    files: list[Path] = []
    for p in explicit:
        files.extend([p] if p.is_file() else paths.walk_files(p, keep))
    return sorted(set(files), key=str)


def discover(selected: Iterable[str], explicit: list[Path] | None, env: Mapping[str, str]) -> dict[str, list[Path]]:
    selected = list(selected)
    if explicit:
        missing = [p for p in explicit if not p.exists()]
        if missing:
            raise FileNotFoundError(f"no such file or directory: {missing[0]}")
        by_source = classify(_walk_explicit(explicit))
    else:
        by_source = {name: SOURCES[name].find_files(SOURCES[name].default_paths(env)) for name in selected}
    return {name: by_source.get(name, []) for name in selected}


def collect(selected: Iterable[str] = ("claude", "codex"), explicit: list[Path] | None = None,
            env: Mapping[str, str] = os.environ, cache=None, workers: int = 1,
            progress: bool = False, found: dict[str, list[Path]] | None = None) -> Collected:
    """Scan every file of the selected sources (through `cache` when given) and emit events.

    Files stream from the scanner into each source's deduplication one at a time: only the
    events (and the dedup index) of the whole history are ever held, never its records.
    """
    stats = ScanStats()
    events: list[UsageEvent] = []
    states: dict[str, list[dict]] = {}
    if found is None:
        found = discover(selected, explicit, env)
    for source, files in found.items():
        mod = SOURCES[source]
        entries = cache.load(source) if cache is not None else None
        writer = cache.writer(source) if cache is not None else None
        states[source] = []

        def tap(scanned, kept_states=states[source]):
            for path, records, state, st in scanned:
                stats.merge(st)
                kept_states.append(state)
                yield path, records, state
        scanned = iter_scan(mod, files, entries, workers, Progress(f"scanning {source}") if progress else None,
                            writer)
        events.extend(mod.events_from_files(tap(scanned), stats))
        if writer is not None:
            writer.close()
    events.sort(key=lambda e: e.occurred_at)
    return Collected(events, stats, states)


def fingerprint(found: dict[str, list[Path]]) -> list[tuple]:
    """(source, path, size, mtime_ns) of every input file: what a cached output depends on."""
    out = []
    for source, files in found.items():
        for f in files:
            try:
                st = os.stat(f)
            except OSError:
                continue
            out.append((source, str(f), st.st_size, st.st_mtime_ns))
    return out
