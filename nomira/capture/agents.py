"""Usage from the machine-readable output of a non-interactive agent run, line by line.

Formats read (each line of the command's stdout is offered; anything else is passed over):

- `claude -p --output-format json|stream-json`: the final `{"type":"result", ...}` object carries
  `session_id`, `total_cost_usd`, `usage` (the main model's counts, with `cache_creation`'s 5m/1h
  split) and `modelUsage` (per model: `inputTokens`, `outputTokens`, `cacheReadInputTokens`,
  `cacheCreationInputTokens`, `costUSD`). One event per model of `modelUsage`. `modelUsage` does not
  split cache writes by TTL: the split of `usage.cache_creation` is applied to the model whose
  cache-write count it matches, other models' writes are 5-minute writes (Claude Code's default TTL).
  Without token fields in `modelUsage`, `usage` is the run's usage, for the model the stream-json
  `system`/`init` line named (else the single `modelUsage` key; else unknown: unpriced).
- `codex exec --json`: `{"type":"thread.started","thread_id"}` then one `{"type":"turn.completed",
  "usage":{"input_tokens","cached_input_tokens","output_tokens"}}` per turn (codex-rs
  exec/src/exec_events.rs); `input_tokens` includes the cached part, as in rollouts. The stream
  does not name the model: it is taken from the command line (`-m`/`--model`/`-c model=`) or
  `$CODEX_HOME/config.toml`, else it is unknown and the run is unpriced.
- `gemini -p ... --output-format json`: one indented JSON document (gemini-cli
  packages/core/src/output/json-formatter.ts, `JSON.stringify(output, null, 2)`) with `session_id`
  and `stats.models.<model>.tokens` {prompt (includes cached), cached, candidates, thoughts, tool}
  (telemetry/uiTelemetry.ts SessionMetrics): one event per model, counted as the Gemini CLI source
  counts its chat files. Its `stream-json` result carries only totals without thinking tokens
  (stream-json-formatter.ts), so it is not read.
- `opencode run`: its output format is not confirmed here, so nothing is read from it (the run
  passes through; `capture` says no usage was recorded).
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone

from nomira.ledger.events import TokenCounts, UsageEvent

_CONTEXT_SUFFIX = re.compile(r"\[[0-9a-z]+\]$")  # `claude-opus-4-6[1m]`: the 1M-context variant's key


def _int(v) -> int:
    return v if isinstance(v, int) and not isinstance(v, bool) and v >= 0 else 0


@dataclass
class Capture:
    """What one run's output said, fed a line at a time (pure: the caller does the I/O)."""

    codex_model: str | None = None
    project: str = ""
    events: list[UsageEvent] = field(default_factory=list)
    malformed: int = 0  # lines that looked like JSON and were not
    _claude_model: str | None = None
    _thread: str = ""
    _turns: int = 0

    _doc: list[bytes] | None = None  # an indented JSON document (gemini -o json), kept to the end
    _doc_bytes: int = 0

    def feed(self, line: bytes, now: datetime | None = None) -> None:
        if self._doc is None and line.rstrip() == b"{" and not self.events:
            self._doc = []
        if self._doc is not None and self._doc_bytes <= MAX_DOCUMENT:
            self._doc.append(line)
            self._doc_bytes += len(line) + 1
        s = line.strip()
        if not s.startswith(b"{"):
            return
        try:
            doc = json.loads(s)
        except (ValueError, UnicodeDecodeError):
            self.malformed += 1
            return
        if not isinstance(doc, dict):
            return
        now = now or datetime.now(timezone.utc)
        kind = doc.get("type")
        if kind == "system" and doc.get("subtype") == "init" and isinstance(doc.get("model"), str):
            self._claude_model = doc["model"]
        elif kind == "result" and ("usage" in doc or "modelUsage" in doc):
            self.events += claude_result(doc, self._claude_model, self.project, now)
        elif kind == "thread.started" and isinstance(doc.get("thread_id"), str):
            self._thread = doc["thread_id"]
        elif kind == "turn.completed" and isinstance(doc.get("usage"), dict):
            self._turns += 1
            self.events.append(codex_turn(doc["usage"], self.codex_model, self._thread, self._turns,
                                          self.project, now))


    def finish(self, now: datetime | None = None) -> None:
        """End of output: a whole-document format (gemini -o json) is read now."""
        if not self._doc or self._doc_bytes > MAX_DOCUMENT:
            return
        try:
            doc = json.loads(b"\n".join(self._doc))
        except (ValueError, UnicodeDecodeError):
            self.malformed += 1
            return
        stats = doc.get("stats") if isinstance(doc, dict) else None
        if isinstance(stats, dict) and isinstance(stats.get("models"), dict):
            session = doc.get("session_id") if isinstance(doc.get("session_id"), str) else ""
            self.events += gemini_models(stats["models"], session, self.project, now or datetime.now(timezone.utc))


MAX_DOCUMENT = 64 << 20


def gemini_models(models: dict, session: str, project: str, now: datetime) -> list[UsageEvent]:
    out = []
    for name, m in models.items():
        t = m.get("tokens") if isinstance(m, dict) else None
        if not isinstance(t, dict):
            continue
        prompt, cached, tool = _int(t.get("prompt")), _int(t.get("cached")), _int(t.get("tool"))
        cand, thoughts = _int(t.get("candidates")), _int(t.get("thoughts"))
        if not (prompt or cached or tool or cand or thoughts):
            continue
        # as nomira/sources/gemini.py counts a chat file's tokens: prompt includes cached, tool is extra input
        tokens = TokenCounts(input=max(prompt - cached, 0) + tool, output=cand + thoughts, cache_read=cached,
                             reasoning=thoughts, reported_input=prompt)
        out.append(UsageEvent(source="gemini_cli", provider="google", model=name, occurred_at=now, session_id=session,
                              project=project, tokens=tokens, request_id=f"{session}.{len(out)}" if session else None,
                              aggregated=True))
    return out


def claude_result(doc: dict, init_model: str | None, project: str, now: datetime) -> list[UsageEvent]:
    session = doc.get("session_id") if isinstance(doc.get("session_id"), str) else ""
    usage = doc.get("usage") if isinstance(doc.get("usage"), dict) else {}
    per_model = doc.get("modelUsage") if isinstance(doc.get("modelUsage"), dict) else {}
    split = usage.get("cache_creation") if isinstance(usage.get("cache_creation"), dict) else {}
    w5, w1 = _int(split.get("ephemeral_5m_input_tokens")), _int(split.get("ephemeral_1h_input_tokens"))
    rows = [(k, v) for k, v in per_model.items() if isinstance(v, dict) and any(
        f in v for f in ("inputTokens", "outputTokens", "cacheReadInputTokens", "cacheCreationInputTokens"))]
    if not rows:
        names = [k for k in per_model if isinstance(k, str)]
        model = init_model or (names[0] if len(names) == 1 else "unknown")
        rows = [(model, {"inputTokens": usage.get("input_tokens"), "outputTokens": usage.get("output_tokens"),
                         "cacheReadInputTokens": usage.get("cache_read_input_tokens"),
                         "cacheCreationInputTokens": usage.get("cache_creation_input_tokens")})]
    out = []
    split_used = False
    for key, m in rows:
        name = m.get("canonicalModel") if isinstance(m.get("canonicalModel"), str) else _CONTEXT_SUFFIX.sub("", key)
        written = _int(m.get("cacheCreationInputTokens"))
        if not split_used and written and w5 + w1 == written:
            c5, c1, split_used = w5, w1, True
        else:
            c5, c1 = written, 0
        inp = _int(m.get("inputTokens"))
        tokens = TokenCounts(input=inp, output=_int(m.get("outputTokens")),
                             cache_read=_int(m.get("cacheReadInputTokens")), cache_write_5m=c5,
                             cache_write_1h=c1, reported_input=inp)
        cost = m.get("costUSD")
        out.append(UsageEvent(
            source="claude_code", provider="anthropic", model=name, occurred_at=now, session_id=session,
            project=project, tokens=tokens, request_id=f"{session}.{len(out)}" if session else None,
            agent_cost_usd=float(cost) if isinstance(cost, (int, float)) and not isinstance(cost, bool) else None,
            aggregated=True))
    return out


def codex_turn(usage: dict, model: str | None, thread: str, n: int, project: str, now: datetime) -> UsageEvent:
    total_in, cached = _int(usage.get("input_tokens")), _int(usage.get("cached_input_tokens"))
    cached = min(cached, total_in)
    reasoning = _int(usage.get("reasoning_output_tokens"))
    tokens = TokenCounts(input=total_in - cached, output=_int(usage.get("output_tokens")), cache_read=cached,
                         reasoning=reasoning, reported_input=total_in)
    return UsageEvent(source="codex", provider="openai", model=model or "unknown", occurred_at=now,
                      session_id=thread, project=project, tokens=tokens,
                      request_id=f"{thread}.{n}" if thread else None, model_is_fallback=model is None,
                      aggregated=True)


def codex_model(argv: list[str], env) -> str | None:
    """The model a `codex exec` command line runs: its -m/--model/-c model= flag, else config.toml."""
    for i, a in enumerate(argv):
        nxt = argv[i + 1] if i + 1 < len(argv) else None
        if a in ("-m", "--model") and nxt:
            return nxt
        if a.startswith("--model="):
            return a.split("=", 1)[1]
        if a in ("-c", "--config") and nxt and nxt.replace(" ", "").startswith("model="):
            return nxt.split("=", 1)[1].strip().strip("\"'")
    import os
    import tomllib
    from pathlib import Path
    home = Path(env.get("CODEX_HOME") or Path(env.get("HOME") or os.path.expanduser("~")) / ".codex")
    try:
        with open(home / "config.toml", "rb") as fh:
            model = tomllib.load(fh).get("model")
    except (OSError, ValueError):
        return None
    return model if isinstance(model, str) and model else None
