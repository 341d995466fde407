"""Agents whose local data Nomira finds but cannot price, and why: `nomira sources` names them
when their folders exist, so "no usage found" is never a mystery.

Each entry: (display name, folders relative to the home directory (Linux, macOS, Windows),
reason, what to use instead). The facts are the agents' on-disk formats as the open-source
trackers that looked at them document them (agentsview `internal/parser/types.go` marks
Windsurf and Trae `NoPerMessageTokenData`; `antigravity_crypto.go`:
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
    "kiro": ("Kiro CLI / IDE", (".kiro", ".local/share/kiro-cli", "Library/Application Support/kiro-cli"),
             "the session files and data.sqlite3 keep turn metadata whose token counts are zero (tokscale estimates "
             "from context percentage and response size; Nomira does not guess)",
             "Kiro's usage page (credits)"),
    "codebuff": ("Codebuff / Freebuff", (".config/manicode", ".config/manicode-dev"),
                 "chats keep the credits a run used (run-state.json), not per-call token counts",
                 "Codebuff's usage page (credits)"),
    "forge": ("Forge", (".forge",),
              "usage is stored per message, but prompt/cached token semantics differ per provider adapter "
              "(OpenAI-style: cached inside prompt; Bedrock: reads and writes outside it) and the message does not "
              "say which adapter served it",
              "the provider's usage API"),
    "commandcode": ("Command Code", (".commandcode/projects",),
                    "transcripts hold no token usage at all (trackers estimate from text length)",
                    "Command Code's account usage"),
    "junie": ("Junie", (".junie/sessions",),
              "closed source; whether inputTokens includes cacheInputTokens is not established",
              "JetBrains AI usage in the account"),
    "augment": ("Augment (Auggie)", (".augment",),
                "no public description of token counts in its local session files; usage is credits, server-side",
                "Augment's Analytics API (Enterprise) or the usage page"),
    "cherry_studio": ("Cherry Studio", (".config/CherryStudio", "Library/Application Support/CherryStudio",
                                        "AppData/Roaming/CherryStudio"),
                      "topics and messages (with their usage) live in the app's IndexedDB, a Chromium LevelDB store "
                      "the standard library cannot read",
                      "Cherry Studio's own backup export, or the provider's usage API"),
    "antigravity": ("Antigravity", (".gemini/antigravity", ".gemini/antigravity-cli"),
                    "conversations are AES-encrypted (.pb) with a key that is not in the data folder (the CLI's "
                    "decoded trajectory.json sidecars, where present, are read by the antigravity_cli source)",
                    "Google's usage console for the account"),
    # issue 27, second pass: formats read in agentsview's parsers (`internal/parser/<agent>.go`)
    "iflow": ("iFlow CLI", (".iflow/projects",),
              "transcripts (Claude-style JSONL) log every reply's usage as zeros (input_tokens 0, output_tokens 0)",
              "the model provider's usage console"),
    "reasonix": ("Reasonix", (".reasonix", "AppData/Roaming/reasonix"),
                 "session transcripts (.jsonl with a .meta sidecar) keep messages and the model, no token usage",
                 "the DeepSeek platform's usage page"),
    "deepseek_tui": ("DeepSeek TUI", (".deepseek/sessions", ".codewhale/sessions"),
                     "session JSON keeps metadata and messages, no per-request token usage",
                     "the DeepSeek platform's usage page"),
    "warp": ("Warp", (".local/state/warp-terminal", "AppData/Local/warp/Warp/data",
                      "Library/Group Containers/2BBY89MBSN.dev.warp/Library/Application Support/dev.warp.Warp-Stable"),
             "conversations keep only Warp/BYOK token totals (token_usage warp_tokens, byok_tokens): no input/output "
             "split and no model per request",
             "Warp's billing page (AI requests)"),
    "devin": ("Devin CLI", ("Library/Application Support/devin", ".local/share/devin"),
              "transcripts keep final session metrics in varying shapes (peak context, output total), not per-request "
              "usage; billing is in ACUs",
              "Devin's usage page (ACUs)"),
    "zencoder": ("Zencoder", (".zencoder/sessions",), "session files keep messages without token usage",
                 "Zencoder's account usage page"),
    "cortex": ("Snowflake Cortex Code", (".snowflake/cortex/conversations",),
               "conversation files keep messages without token usage",
               "Snowflake's credit usage views (CORTEX_*_USAGE_HISTORY)"),
    "omnigent": ("Omnigent", (".omnigent",),
                 "a meta-harness: the usage in its chat.db is its child agents' (Claude Code, Codex, OpenCode), which "
                 "their own sources read; counting both would double-count",
                 "the child agents' own sources (already read)"),
    "qwenpaw": ("QwenPaw", (".copaw/workspaces",), "session JSON keeps messages without token usage",
                "the model provider's usage console"),
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


def known(env: Mapping[str, str]) -> list[dict]:
    """Every agent Nomira knows it cannot price: where it looked, whether it was seen, and why."""
    home = calls.home(env)
    return [{"source": key, "name": name, "looked_in": [str(Path(home, r)) for r in rel],
             "seen": any((home / r).is_dir() for r in rel), "reason": reason, "use_instead": instead}
            for key, (name, rel, reason, instead) in OPAQUE.items()]
