"""Cherry Studio's pi agent sessions: pi's session files under `<Cherry Studio data>/Data/Agents/.pi/sessions`.

Cherry Studio v2 runs pi (pi-mono) in-process through its SDK for Agents set to the pi runtime,
with `PI_CODING_AGENT_DIR` = `feature.agents.pi.root` (`<userData>/Data/Agents/.pi`) and
`PI_CODING_AGENT_SESSION_DIR` = `feature.agents.pi.sessions` (`<userData>/Data/Agents/.pi/sessions`)
(CherryHQ/cherry-studio `PiRuntimeDriver`, `pathRegistry.test.ts`; its design notes: "reopen resolves
it by scanning this directory for `*_<id>.jsonl`"). The files are pi's own v3 JSONL session tree,
written by pi's `SessionManager`: pi's parser, token semantics, dedup key and project (see
`nomira/sources/pi.py`, `pi_family`) apply as they are; events carry the source name
`cherry_studio_pi`. `userData` as for Cherry Studio's Claude Code agents (`cherry_studio.py`).
`$CHERRY_STUDIO_PI_DIR` (Nomira's, comma list) points elsewhere. Given by `--path`, the files are
counted here under a `CherryStudio` folder, elsewhere as pi's.

Regime: API: Cherry Studio injects the user's own provider key.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable, Mapping

from nomira.sources import calls, cherry_studio, pi, pi_family
from nomira.sources.calls import events_from_files, merge_records, partition_key  # noqa: F401

NAME = "cherry_studio_pi"
SESSIONS = "Data/Agents/.pi/sessions"
PLACES = "$CHERRY_STUDIO_PI_DIR, Cherry Studio's app data (~/.config/CherryStudio, …): Data/Agents/.pi/sessions"


def default_paths(env: Mapping[str, str] = os.environ) -> list[Path]:
    roots = calls.env_paths(env, "CHERRY_STUDIO_PI_DIR")
    if roots is None:
        roots = [a / SESSIONS for a in cherry_studio.app_dirs(env)]
    return calls.existing(r for r in roots if r.is_dir())


def claims(name: str, parent: str) -> bool:
    return "CherryStudio" in parent and pi.claims(name, parent) and f"{os.sep}CherryStudio{os.sep}" in f"{parent}{os.sep}"


def find_files(roots: Iterable[Path]) -> list[Path]:
    return calls.find_claimed(roots, pi.claims)


def scan_file(path, start: int = 0, state: dict | None = None):
    return pi_family.scan_as(NAME, path, start, state)
