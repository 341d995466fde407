"""Agents built on pi that keep pi's session files under their own folders: one parser (`pi`),
each agent its own module (`openclaw`, `oh_my_pi`, `prime_agent`: source name and locations).

- OpenClaw: `~/.openclaw/agents/<agent>/sessions/<session id>.jsonl` (agentsview
  `internal/parser/openclaw.go`, tokscale `sessions/openclaw.rs`: a `session` header with
  `cwd`, then pi `message` entries whose assistant `usage {input, output, cacheRead,
  cacheWrite, totalTokens, cost}` is pi-ai's, plus `model_change` entries). Also Kimi's
  OpenClaw build (`~/.kimi_openclaw/agents`). `$OPENCLAW_DIR` (agentsview's) overrides.
- Oh My Pi: `~/.omp/agent/sessions` (`$OMP_DIR`), and Prime Agent: `~/.prime/agent/sessions`
  (`$PRIME_AGENT_SESSION_DIR`), pi's own layout (agentsview `types.go`).

Token semantics, dedup key (entry id + message timestamp: a fork's copied entries count
once), project (the header's `cwd`) and the agent's own `cost.total` are pi's (see
`nomira/sources/pi.py`). Given explicitly (`--path`), Oh My Pi and Prime Agent files are
named like pi's and are counted under `pi`.

Regime: API, as pi: the user's own provider keys.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable, Mapping

from nomira.sources.scan import ScanStats
from nomira.sources import calls, pi


def roots(env: Mapping[str, str], var: str, dirs: tuple[str, ...]) -> list[Path]:
    """`var` (comma list) when set, else `dirs` under the home directory; those that exist."""
    found = calls.env_paths(env, var)
    if found is None:
        found = [calls.home(env) / d for d in dirs]
    return calls.existing(r for r in found if r.is_dir())


def scan_as(name: str, path: Path, start: int = 0, state: dict | None = None) -> tuple[list[list], dict, int,
                                                                                        ScanStats]:
    """pi's scan_file, the records under the agent's own source name."""
    return calls.as_source(name, pi.scan_file(path, start, state))


def under(marker: str):
    """pi's file naming, inside a `marker` folder."""
    def claims(name: str, parent: str) -> bool:
        return marker in parent and pi.claims(name, parent) and f"{os.sep}{marker}{os.sep}" in f"{parent}{os.sep}"
    return claims


def functions(name: str, var: str, dirs: tuple[str, ...], claims):
    """(default_paths, find_files, scan_file) of a pi-format agent."""
    def default_paths(env: Mapping[str, str] = os.environ) -> list[Path]:
        return roots(env, var, dirs)

    def find_files(found: Iterable[Path]) -> list[Path]:
        return calls.find_claimed(found, claims)

    def scan_file(path: Path, start: int = 0, state: dict | None = None) -> tuple[list[list], dict, int, ScanStats]:
        return scan_as(name, path, start, state)
    return default_paths, find_files, scan_file
