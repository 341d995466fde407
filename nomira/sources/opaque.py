"""Agents whose local data Nomira finds but cannot price, and why: `nomira sources` names them
when their folders exist, so "no usage found" is never a mystery.

Each entry: (display name, folders relative to the home directory (Linux, macOS, Windows),
reason, what to use instead). The facts are the agents' on-disk formats as the open-source
trackers that looked at them document them (agentsview `internal/parser/types.go` marks
Windsurf, Trae and VS Code Copilot `NoPerMessageTokenData`; `antigravity_crypto.go`:
Antigravity conversations are AES-encrypted with a key kept outside the data folder).
"""
from __future__ import annotations

from pathlib import Path
from typing import Mapping

from nomira.sources import calls

OPAQUE = {
    "cursor_local": ("Cursor (local)", (".cursor", ".config/Cursor", "Library/Application Support/Cursor",
                                        "AppData/Roaming/Cursor"),
                     "Cursor's local state (state.vscdb) holds chats but no per-request token counts",
                     "`nomira cursor fetch` (Cursor's Admin API: tokens and charged cost)"),
    "windsurf": ("Windsurf", (".codeium/windsurf", ".config/Windsurf", "Library/Application Support/Windsurf",
                              "AppData/Roaming/Windsurf"),
                 "Cascade conversations are stored as opaque protobuf and carry no token counts locally "
                 "(usage is in prompt credits, server-side)",
                 "the Windsurf team analytics (credits per user)"),
    "trae_ide": ("Trae IDE", (".config/Trae", "Library/Application Support/Trae", "AppData/Roaming/Trae"),
                 "the IDE keeps its sessions as encrypted state with no token counts",
                 "Trae's account usage page"),
    "antigravity": ("Antigravity", (".gemini/antigravity", ".gemini/antigravity-cli"),
                    "conversations are AES-encrypted (.pb) with a key that is not in the data folder",
                    "Google's usage console for the account"),
}


def seen(env: Mapping[str, str]) -> list[dict]:
    """The opaque agents present in this home: where, why they cannot be read, what to use instead."""
    home = calls.home(env)
    out = []
    for key, (name, rel, reason, instead) in OPAQUE.items():
        where = [str(home / r) for r in rel if (home / r).is_dir()]
        if where:
            out.append({"source": key, "name": name, "where": where, "reason": reason, "use_instead": instead})
    return out


def looked(env: Mapping[str, str]) -> dict[str, list[str]]:
    home = calls.home(env)
    return {key: [str(Path(home, r)) for r in rel] for key, (_n, rel, _r, _i) in OPAQUE.items()}
