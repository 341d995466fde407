"""OpenClaw: `~/.openclaw/agents/<agent>/sessions/<session id>.jsonl`, pi's format (see `pi_family`)."""
from __future__ import annotations

import os

from nomira.sources import pi_family
from nomira.sources.calls import events_from_files, merge_records, partition_key  # noqa: F401

NAME = "openclaw"
DIRS = (".openclaw/agents", ".kimi_openclaw/agents")
PLACES = "$OPENCLAW_DIR, " + ", ".join(f"~/{d}" for d in DIRS)


def claims(name: str, parent: str) -> bool:
    """`agents/<agent>/sessions/<id>.jsonl`."""
    return name.endswith(".jsonl") and "agents" in parent and os.path.basename(parent) == "sessions" \
        and os.path.basename(os.path.dirname(os.path.dirname(parent))) == "agents"


default_paths, find_files, scan_file = pi_family.functions(NAME, "OPENCLAW_DIR", DIRS, claims)
