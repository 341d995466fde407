"""Kimi Work (the Kimi desktop app): `<app data>/kimi-desktop/daimon-share/daimon/runtime/kimi-code/home/sessions`.

The desktop app's "daimon" runtime runs a kimi-code kernel whose home keeps Kimi CLI's
session layout and wire protocol: `sessions/<work dir hash>/<session>/wire.jsonl`, byte-
identical to what the `kimi` source reads (agentsview `internal/parser/kimi_work_provider.go`).
Format, token semantics (`StatusUpdate` `token_usage`), dedup key (session, message_id),
the assumed model from the home's `config.toml` and the project from its `kimi.json` are
Kimi CLI's (`nomira/sources/kimi.py`). User conversations are the `conv-*` sessions; the
runtime's own sessions beside them (title generation, skill summaries, dev loops) are
calls too and are counted. Locations: `$KIMI_WORK_DIR` (agentsview's; comma list of
sessions folders), else the app data folder on macOS, Linux (`~/.config`, `~/.local/share`)
and Windows (`%APPDATA%`). Given by `--path`, its files are named like Kimi CLI's and are
counted under `kimi`.

Regime: subscription by default, as Kimi CLI (a Kimi membership's quota).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable, Mapping

from nomira.sources.scan import ScanStats
from nomira.sources import calls, kimi
from nomira.sources.calls import events_from_files, merge_records, partition_key  # noqa: F401

NAME = "kimi_work"
RUNTIME = "kimi-desktop/daimon-share/daimon/runtime/kimi-code/home/sessions"
APP_DIRS = ("Library/Application Support", ".config", ".local/share", "AppData/Roaming")
PLACES = "$KIMI_WORK_DIR, the Kimi desktop app data: kimi-desktop/…/kimi-code/home/sessions"


def default_paths(env: Mapping[str, str] = os.environ) -> list[Path]:
    roots = calls.env_paths(env, "KIMI_WORK_DIR")
    if roots is None:
        home = calls.home(env)
        roots = [home / d / RUNTIME for d in APP_DIRS]
        if env.get("APPDATA"):
            roots.append(Path(env["APPDATA"]) / RUNTIME)
    return calls.existing(r for r in roots if r.is_dir())


claims = kimi.claims


def find_files(roots: Iterable[Path]) -> list[Path]:
    return calls.find_claimed(roots, claims)


def scan_file(path: Path, start: int = 0, state: dict | None = None) -> tuple[list[list], dict, int, ScanStats]:
    return calls.as_source(NAME, kimi.scan_file(path, start, state))
