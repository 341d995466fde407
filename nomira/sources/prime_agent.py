"""Prime Agent: `~/.prime/agent/sessions`, pi's format and layout (see `pi_family`)."""
from __future__ import annotations

from nomira.sources import pi_family
from nomira.sources.calls import events_from_files, merge_records, partition_key  # noqa: F401

NAME = "prime_agent"
DIRS = (".prime/agent/sessions",)
PLACES = "$PRIME_AGENT_SESSION_DIR, " + ", ".join(f"~/{d}" for d in DIRS)

claims = pi_family.under(".prime")

default_paths, find_files, scan_file = pi_family.functions(NAME, "PRIME_AGENT_SESSION_DIR", DIRS, claims)
