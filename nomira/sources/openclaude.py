"""OpenClaude: `~/.openclaude/projects/<encoded cwd>/<session>.jsonl`, Claude Code's transcript format.

OpenClaude (Gitlawb/openclaude) is a Claude Code fork that also talks to OpenAI-compatible,
Gemini, Codex and local providers. It keeps Claude Code's JSONL transcripts under its own
config folder (agentsview `internal/parser/types.go`: `.openclaude/projects`,
`$OPENCLAUDE_PROJECTS_DIR`, root `$OPENCLAUDE_CONFIG_DIR`; `openclaude.go` reads
`message.model` and `message.usage` as Claude's). Its provider shims rewrite every
provider's usage into Anthropic terms before it is logged (`src/services/api/cacheMetrics.ts`
`buildAnthropicUsageFromRawUsage`: `input_tokens` fresh only, the provider's cached
tokens subtracted into `cache_read_input_tokens`, `cache_creation_input_tokens` 0 outside
Anthropic), so Claude Code's parser, token semantics and dedup key (message.id,
requestId) apply as they are (`nomira/sources/claude_code.py`); events carry the source
name `openclaude`. Given by `--path`, its files are counted under `claude` unless they lie
under a `.openclaude` folder.

Regime: API: OpenClaude is used with the user's own provider keys (or local models,
unpriced unless the table has them).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Mapping

from nomira.sources import calls, claude_code, relabel
from nomira.sources.claude_code import find_files, merge_records, partition_key, scan_file  # noqa: F401

NAME = "openclaude"
PLACES = "$OPENCLAUDE_PROJECTS_DIR, $OPENCLAUDE_CONFIG_DIR/projects, ~/.openclaude/projects"


def default_paths(env: Mapping[str, str] = os.environ) -> list[Path]:
    roots = calls.env_paths(env, "OPENCLAUDE_PROJECTS_DIR")
    if roots is None:
        base = Path(env["OPENCLAUDE_CONFIG_DIR"]).expanduser() if env.get("OPENCLAUDE_CONFIG_DIR") \
            else calls.home(env) / ".openclaude"
        roots = [base / "projects"]
    return calls.existing(r for r in roots if r.is_dir())


def claims(name: str, parent: str) -> bool:
    return name.endswith(".jsonl") and f"{os.sep}.openclaude{os.sep}" in f"{parent}{os.sep}"


events_from_files = relabel.events_as(NAME, claude_code.events_from_files)
