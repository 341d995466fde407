"""Nomira's own directories (XDG cache, state, config, data; NOMIRA_HOME) and the default store.

Every stage writes somewhere (the scan cache, the spool, the price feeds, the store), so this sits
at the root, below all of them; where the agents keep their logs is `sources/paths.py`.
"""
from __future__ import annotations

import os
from pathlib import Path
from collections.abc import Mapping


def _home(env: Mapping[str, str]) -> Path:
    return Path(env.get("HOME") or Path.home())


def xdg(env: Mapping[str, str], var: str, default: str) -> Path:
    if env.get("NOMIRA_HOME"):
        return Path(env["NOMIRA_HOME"]) / var.split("_")[1].lower()
    value = env.get(var)
    return Path(value) if value else _home(env) / default


def cache_home(env: Mapping[str, str] = os.environ) -> Path:
    return xdg(env, "XDG_CACHE_HOME", ".cache") / "nomira"


def state_home(env: Mapping[str, str] = os.environ) -> Path:
    return xdg(env, "XDG_STATE_HOME", ".local/state") / "nomira"


def limits_state(env: Mapping[str, str] = os.environ) -> Path:
    """The latest subscription-limit snapshots (`ledger.limits`), which the status line also checks
    for changes without importing that module."""
    return state_home(env) / "limits.json"


def pinned_labels(env: Mapping[str, str] = os.environ) -> Path:
    """The project labels shipped so far (`sources.project.pinned`), which every report keeps."""
    return state_home(env) / "labels.json"


def config_home(env: Mapping[str, str] = os.environ) -> Path:
    return xdg(env, "XDG_CONFIG_HOME", ".config") / "nomira"


def data_home(env: Mapping[str, str] = os.environ) -> Path:
    return xdg(env, "XDG_DATA_HOME", ".local/share") / "nomira"


def default_db(env: Mapping[str, str] = os.environ) -> Path | str:
    """$NOMIRA_DB (a path, sqlite:///path or postgresql:// URL), else the data dir's nomira.db."""
    if env.get("NOMIRA_DB"):
        from nomira.ledger.engine import db_arg
        return db_arg(env["NOMIRA_DB"])
    return data_home(env) / "nomira.db"


def write_atomic(path: Path, text: str) -> None:
    """`text` to `path` whole or not at all (a temporary file beside it, then a rename): a reader never
    sees half a state file. Raises OSError."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)
