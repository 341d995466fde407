"""MiMo Code (Xiaomi): `~/.local/share/mimocode/mimocode.db`, OpenCode's SQLite store (see `opencode_family`).

MiMo Code is an OpenCode fork that keeps OpenCode's tables under its own name (agentsview
`internal/parser/mimocode.go`: "MiMoCode uses OpenCode's storage format", `mimoFmt{dbName:
"mimocode.db"}`). Per step (`step-finish` parts, else the message): OpenCode's token
semantics, model, MiMo Code's own cost beside. Dedup key: (message id, step id).
Locations: `$MIMOCODE_DIR` (agentsview's; comma list), `$XDG_DATA_HOME/mimocode`,
`%LOCALAPPDATA%/mimocode`. The legacy JSON `storage/` tree is not read. Project: the
message's `path.cwd`.

Regime: API: MiMo Code calls Xiaomi's (or another provider's) API with the user's key.
MiMo models are not in the bundled table (unpriced, MiMo's own cost shown beside).
"""
from __future__ import annotations

from nomira.sources import opencode_family
from nomira.sources.calls import events_from_files, merge_records, partition_key  # noqa: F401

NAME = "mimocode"
DB = "mimocode.db"
PLACES = "$MIMOCODE_DIR, $XDG_DATA_HOME/mimocode (~/.local/share/mimocode), %LOCALAPPDATA%/mimocode: mimocode.db"

default_paths, claims, find_files, scan_file = opencode_family.functions(NAME, "MIMOCODE_DIR", "mimocode", DB)
