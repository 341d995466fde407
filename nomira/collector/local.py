"""What only the machine that has the transcripts knows: full project paths and the optimizer.

A collector serving one laptop (bound to loopback) reads this machine's Claude Code and Codex
transcripts on demand, never through the store: a path or a tool input shown on a page comes
from here and is never written anywhere. A team collector has no LocalHistory and says so.
"""
from __future__ import annotations

import getpass
import os
import sqlite3
import threading
import time
from pathlib import Path

from nomira.reports import forensics, optimizer
from nomira.reports.dimensions import breakdowns

SOURCES = ("claude", "codex")
OPTIMIZED = ("claude_code", "codex")
# optimize --by dimension -> the key of its rows in the optimizer section (pages.DIMENSION_TABLES)
DASHBOARD_DIMENSIONS = {"mcp-server": "mcp_servers", "skill": "skills", "subagent": "subagents"}


class LocalHistory:
    def __init__(self, paths: list[Path] | None = None, user: str | None = None, env=os.environ,
                 ttl: float = 300.0):
        self.roots, self.env, self.ttl = paths, env, ttl
        self.user = user or _login()
        self._lock = threading.Lock()
        self._at = -1e18
        self._data: dict | None = None

    def _load(self) -> dict:
        """Scan once per `ttl` (a page view never rescans a big history on every click)."""
        with self._lock:
            if self._data is not None and time.monotonic() - self._at < self.ttl:
                return self._data
            from nomira.sources import scancache
            from nomira.pricing.engine import Pricer
            from nomira.pricing.feed import resolved
            from nomira.sources.registry import collect, discover
            from nomira.sources.tool_calls import tool_uses
            try:
                cache = scancache.ScanCache(scancache.default_path(self.env))
            except (OSError, sqlite3.Error):  # no cache: every file is read, still right
                cache = None
            from nomira.sources.project import pinned
            try:
                found = discover(SOURCES, self.roots, self.env)
                pins = pinned(self.env)  # (the labels the reports show: those shipped keep their names)
                try:
                    collected = collect(SOURCES, None, self.env, cache=cache, found=found, pins=pins)
                except scancache.CacheDamaged:  # removed (the next scan makes a new one); every file read
                    cache.drop()
                    cache = None
                    collected = collect(SOURCES, None, self.env, cache=None, found=found, pins=pins)
                events = [e for e in collected.events if e.source in OPTIMIZED]
                pricer = Pricer(resolved(self.env))
                priced = [(e, pricer(e)) for e in events]
                uses, sizes = tool_uses(found)
            except (OSError, ValueError):
                priced, uses, sizes, collected = [], {}, {}, None
            finally:
                if cache is not None:
                    cache.close()
            paths: dict[str, str] = {}
            for states in (collected.states.values() if collected else ()):
                for st in states:
                    for cwd, label in (st.get("labels") or {}).items():
                        paths.setdefault(label, cwd)
            self._data = {"priced": priced, "uses": uses, "sizes": sizes, "paths": paths}
            self._at = time.monotonic()
            return self._data

    def project_paths(self) -> dict[str, str]:
        """Project label -> the full working directory it stands for, on this machine."""
        return self._load()["paths"]

    def optimizer(self, project: str | None = None, developer: str | None = None, since: str | None = None,
                  until: str | None = None) -> dict | None:
        """The optimizer's result for one project (or all of this machine's usage), None when this
        machine has no transcripts for it, or for a developer who is not this machine's user. Days
        are UTC, as the store's."""
        if developer is not None and developer != self.user:
            return None
        data = self._load()
        priced = [(e, c) for e, c in data["priced"] if (project is None or e.project == project)
                  and (since is None or e.occurred_at.date().isoformat() >= since)
                  and (until is None or e.occurred_at.date().isoformat() <= until)]
        if not priced:
            return None
        result = optimizer.attribute(priced, data["uses"], data["sizes"])
        waste = forensics.waste(priced)
        by = breakdowns(priced, data["uses"], data["sizes"], DASHBOARD_DIMENSIONS)
        return {**result, "cache_rebuilds": waste["cache_rebuilds"],
                **{key: by[dim]["rows"] for dim, key in DASHBOARD_DIMENSIONS.items()},
                "recommendations": optimizer.recommendations(result, waste)}


def _login() -> str:
    try:
        return getpass.getuser()
    except (OSError, KeyError):
        return ""
