"""Kilo CLI (and the Kilo Code extension since its OpenCode core): `~/.local/share/kilo/kilo.db`.

Format: Kilo CLI is built on OpenCode and keeps OpenCode's SQLite store under its own
name (tokscale `sessions/kilo.rs`, agentsview `internal/parser/kilo.go`: "Kilo uses
OpenCode's storage format"): tables `message(id, session_id, data)` and `part(id,
message_id, data)`, `data` JSON as OpenCode writes it: assistant messages `{role,
modelID, providerID, time {created}, path {cwd}, tokens {input, output, reasoning,
cache {read, write}}, cost}`, and one `step-finish` part per API request with its own
`tokens` and `cost`. Token semantics, the step-over-message rule and the record are
OpenCode's (`opencode.records_for`, one definition); Kilo's own `cost` (of the step,
else of the message) is kept beside the computed one.

Dedup key: (message id, step id): a database reached twice counts once. Locations:
`$KILO_DIR` (agentsview's; comma list), `$XDG_DATA_HOME/kilo` (`~/.local/share/kilo`),
`%LOCALAPPDATA%/kilo`. Opened read-only (`sqlite_ro`). The pre-OpenCode Kilo Code
extension's task folders are read by the `cline` source. Project: the message's `path.cwd`.

Regime: API. Kilo bills its gateway credits per request at provider cost (or the user's
own key): the figures are the bill.
"""
from __future__ import annotations

from nomira.sources import opencode_family
from nomira.sources.calls import events_from_files, merge_records, partition_key  # noqa: F401

NAME = "kilo_cli"
PLACES = "$KILO_DIR, $XDG_DATA_HOME/kilo (~/.local/share/kilo), %LOCALAPPDATA%/kilo: kilo.db"
DB = "kilo.db"

default_paths, claims, find_files, scan_file = opencode_family.functions(NAME, "KILO_DIR", "kilo", DB)
