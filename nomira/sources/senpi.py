"""Senpi: a pi fork keeping pi's v3 session files under `~/.senpi/agent/sessions` (see `pi_family`).

Format and locations as the ccstats tracker documents them (its data-source guide: "Senpi uses Pi
v3's usage carriers and the same branch-copy entry ids"; `SENPI_CODING_AGENT_SESSION_DIR`, then
`SENPI_CODING_AGENT_DIR`'s `sessions/`, then `~/.senpi/agent/sessions`), and Senpi's own source
(its agent home is `$SENPI_CODING_AGENT_DIR` or `~/.senpi/agent`). Not read: a project-level
`.senpi/agent` found by walking up from the current directory, and a `sessionDir` set in Senpi's
`settings.json(c)` (point `$SENPI_CODING_AGENT_SESSION_DIR` at it). Given by `--path`, Senpi files
under a `.senpi` folder are counted as Senpi's, elsewhere as pi's.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Mapping

from nomira.sources import calls, pi_family
from nomira.sources.calls import events_from_files, merge_records, partition_key  # noqa: F401

NAME = "senpi"
DIRS = (".senpi/agent/sessions",)
PLACES = "$SENPI_CODING_AGENT_SESSION_DIR, $SENPI_CODING_AGENT_DIR/sessions, ~/.senpi/agent/sessions"

claims = pi_family.under(".senpi")

_default_paths, find_files, scan_file = pi_family.functions(NAME, "SENPI_CODING_AGENT_SESSION_DIR", DIRS, claims)


def default_paths(env: Mapping[str, str] = os.environ) -> list[Path]:
    if not env.get("SENPI_CODING_AGENT_SESSION_DIR") and env.get("SENPI_CODING_AGENT_DIR"):
        return calls.existing(p for p in [Path(env["SENPI_CODING_AGENT_DIR"]).expanduser() / "sessions"] if p.is_dir())
    return _default_paths(env)
