"""QClaw: `~/.qclaw/agents/<agent>/sessions/<session id>.jsonl`, OpenClaw's (pi's) format (see `pi_family`).

QClaw is an OpenClaw build: the same `agents/<agent>/sessions` layout, a `session` header
with `cwd`, then `message` entries whose assistant `usage {input, output, cacheRead,
cacheWrite, cost {total}}` is pi-ai's, with `provider`/`model` on the message (agentsview
`internal/parser/qclaw.go`, `claw_provider.go`). Token semantics, dedup key and the
agent's own `cost.total` are pi's. `$QCLAW_DIR` (agentsview's) overrides.

Regime: API, as OpenClaw: the user's own provider keys.
"""
from __future__ import annotations

from nomira.sources import openclaw, pi_family
from nomira.sources.calls import events_from_files, merge_records, partition_key  # noqa: F401

NAME = "qclaw"
DIRS = (".qclaw/agents",)
PLACES = "$QCLAW_DIR, ~/.qclaw/agents"


def claims(name: str, parent: str) -> bool:
    """`.qclaw/agents/<agent>/sessions/<id>.jsonl` (OpenClaw's naming, inside a `.qclaw` folder)."""
    return openclaw.claims(name, parent) and ".qclaw" in parent


default_paths, find_files, scan_file = pi_family.functions(NAME, "QCLAW_DIR", DIRS, claims)
