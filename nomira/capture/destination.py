"""Where live capture ships: `NOMIRA_REMOTE`/`NOMIRA_TOKEN`/`NOMIRA_DB`, else the small
`$XDG_CONFIG_HOME/nomira/ship.toml` that `nomira hooks install --remote|--db` writes.

A hook runs inside the agent with no command line of ours, so its destination must come from
somewhere durable; the token file is written owner-only (0600)."""
from __future__ import annotations

import json
import os
import tomllib
from pathlib import Path
from typing import Mapping

from nomira import dirs

KEYS = ("remote", "token", "db", "developer", "tenant")


def config_path(env: Mapping[str, str] = os.environ) -> Path:
    return dirs.config_home(env) / "ship.toml"


def load(env: Mapping[str, str] = os.environ) -> dict:
    """The destination settings: environment over ship.toml; unknown keys ignored."""
    out: dict = {}
    try:
        doc = tomllib.loads(config_path(env).read_text())
    except (OSError, ValueError, UnicodeDecodeError):
        doc = {}
    for k in KEYS:
        if isinstance(doc.get(k), str) and doc[k]:
            out[k] = doc[k]
    for k in ("remote", "token", "db"):
        if env.get(f"NOMIRA_{k.upper()}"):
            out[k] = env[f"NOMIRA_{k.upper()}"]
    return out


def save(settings: dict, env: Mapping[str, str] = os.environ) -> Path:
    """Write ship.toml (only the known, non-empty keys), owner-only, atomically."""
    path = config_path(env)
    path.parent.mkdir(parents=True, exist_ok=True)
    # JSON string escapes are valid TOML basic strings (ensure_ascii keeps them to \uXXXX)
    text = "".join(f"{k} = {json.dumps(str(settings[k]))}\n" for k in KEYS if settings.get(k))
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write("# written by `nomira hooks install`; read by `nomira hook ...`\n" + text)
    os.replace(tmp, path)
    return path
