"""Agents that write Claude Code's or Codex's own record layout in their own folders (OpenClaude, Qoder,
Claude Cowork, TraeX): the parent module scans and deduplicates, the events carry the agent's
own source name. The parent's modules stay untouched; only the name changes, at the edge."""
from __future__ import annotations

from typing import Callable, Iterable, Iterator

from nomira.ledger.events import UsageEvent
from nomira.sources.scan import ScanStats


def events_as(name: str, events_from_files: Callable) -> Callable:
    """The parent's `events_from_files`, each event under source `name`."""
    def renamed(per_file: Iterable[tuple], stats: ScanStats) -> Iterator[UsageEvent]:
        for e in events_from_files(per_file, stats):
            e.source = name
            yield e
    return renamed
