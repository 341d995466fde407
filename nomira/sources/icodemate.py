"""IcodeMate: `~/.local/share/icodemate/icodemate.db`, OpenCode's SQLite store (see `opencode_family`).

IcodeMate is built on OpenCode and keeps OpenCode's tables under its own name (agentsview
`internal/parser/icodemate.go`: "uses OpenCode's storage format", `icodemateFmt{dbName:
"icodemate.db"}`). Per step (`step-finish` parts, else the message): OpenCode's token
semantics, model, IcodeMate's own cost beside. Dedup key: (message id, step id).
Locations: `$ICODEMATE_DIR` (agentsview's; comma list), `$XDG_DATA_HOME/icodemate`,
`%LOCALAPPDATA%/icodemate`. The legacy JSON `storage/` tree is not read. Project: the
message's `path.cwd`.

Regime: API: the user's own provider keys, as OpenCode.
"""
from __future__ import annotations

from nomira.sources import opencode_family
from nomira.sources.calls import events_from_files, merge_records, partition_key  # noqa: F401

NAME = "icodemate"
DB = "icodemate.db"
PLACES = "$ICODEMATE_DIR, $XDG_DATA_HOME/icodemate (~/.local/share/icodemate), %LOCALAPPDATA%/icodemate: icodemate.db"

default_paths, claims, find_files, scan_file = opencode_family.functions(NAME, "ICODEMATE_DIR", "icodemate", DB)
