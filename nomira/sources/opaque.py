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
    "junie": ("Junie", (".junie/sessions",),
              "closed source; whether inputTokens includes cacheInputTokens is not established",
              "JetBrains AI usage in the account"),
    "augment": ("Augment (Auggie)", (".augment",),
                "no public description of token counts in its local session files; usage is credits, server-side",
                "Augment's Analytics API (Enterprise) or the usage page"),
    "cherry_studio_chats": ("Cherry Studio (chats)", (".config/CherryStudio", "Library/Application Support/CherryStudio",
                                                      "AppData/Roaming/CherryStudio"),
                            "chat topics and messages (with their usage) live in the app's IndexedDB, a Chromium LevelDB "
                            "store the standard library cannot read (its Agent sessions are read: source `cherry`)",
                      "Cherry Studio's own backup export, or the provider's usage API"),
    "antigravity": ("Antigravity", (".gemini/antigravity", ".gemini/antigravity-cli"),
                    "conversations are AES-encrypted (.pb) with a key that is not in the data folder (the CLI's "
                    "decoded trajectory.json sidecars, where present, are read by the antigravity_cli source)",
                    "Google's usage console for the account"),
    # issue 27, second pass: formats read in agentsview's parsers (`internal/parser/<agent>.go`)
    "iflow": ("iFlow CLI", (".iflow/projects",),
              "transcripts (Claude-style JSONL) log every reply's usage as zeros (input_tokens 0, output_tokens 0)",
              "the model provider's usage console"),
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
    # s27d, from agentsview's list: formats whose token semantics cannot be established
    "piebald": ("Piebald", (".local/share/piebald", "Library/Application Support/piebald", "AppData/Roaming/piebald"),
                "closed source: app.db keeps per-reply input, output and cache columns, but nothing says whether input "
                "includes the cache and no total allows checking it (either reading could be off by the whole cache)",
                "the model provider's usage console"),
    "codebuddy_ide": ("CodeBuddy (IDE extension)", (".config/CodeBuddyExtension/Data",
                                                    "Library/Application Support/CodeBuddyExtension/Data",
                                                    "AppData/Local/CodeBuddyExtension/Data"),
                      "history messages keep only the last model step's tokens (extra.lastStepInputTokens, "
                      "lastStepOutputTokens, lastStepCachedInputTokens); earlier steps of a message are not logged",
                      "CodeBuddy's account usage (credits); the CLI's ~/.codebuddy/projects is read (codebuddy)"),
    "positron": ("Positron Assistant", (".config/Positron/User", "Library/Application Support/Positron/User",
                                        "AppData/Roaming/Positron/User"),
                 "chat sessions (VS Code's format) keep result.metadata.tokenUsage for the last model call of each "
                 "request only (tool rounds overwrite it), and for providers other than Anthropic the counts are "
                 "approximations",
                 "the model provider's usage console"),
    # issue 27, s27e: tokscale's `sessions/meept.rs`; bhodgens/meept `internal/metrics` (its `llm_calls` contract test)
    "meept": ("Meept", (".meept",),
              "metrics.db `llm_calls` keeps tokens_sent, tokens_cached and cache_creation_tokens per call, but Meept's "
              "source does not establish whether tokens_sent includes the cached tokens, and no total is kept to check "
              "it (reading them as disjoint, as tokscale does, may bill the cache twice)",
              "the model provider's usage console"),
    "octofriend": ("Octofriend (Synthetic)", (".local/share/octofriend",),
                   "sqlite.db keeps only the input history, no token counts (tokscale's `sessions/synthetic.rs`)",
                   "Synthetic's usage page"),
    "continue": ("Continue", (".continue/dev_data",),
                 "dev_data (tokensGenerated.jsonl, devdata.sqlite) keeps Continue's own tokenizer estimates of each prompt "
                 "and completion (core/llm/index.ts `_logEnd`: countTokens), not the provider's usage, and no cache split",
                 "the model provider's usage console"),
    "amazon_q": ("Amazon Q Developer CLI", (".local/share/amazon-q", "Library/Application Support/amazon-q"),
                 "conversations in data.sqlite3 carry no provider token counts: the CLI estimates context size with "
                 "its own counter (chat-cli `token_counter`); Kiro CLI, its successor, is listed above",
                 "the Amazon Q Developer usage in the AWS console"),
    "devin_desktop": ("Devin Desktop", ("Library/Application Support/Devin/User/acp-events",),
                      "the ACP event streams (acp-events/*.ndjson) do not reliably carry usage (tokscale's parser finds "
                      "it in few files) and no schema says where; per-request usage is not established",
                      "Devin's usage page (ACUs)"),
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
