"""Visual Studio (not VS Code) Copilot: OpenTelemetry trace files `*_VSGitHubCopilot_traces.jsonl`.

Format (agentsview `internal/parser/visualstudio_copilot.go`, `docs/internal/visual-studio-copilot-
traces.md` and its redacted samples under `testdata/visualstudio-copilot/`): each line is an OTLP
JSON envelope `{resourceSpans: [{resource, scopeSpans: [{scope, spans: [{traceId, spanId, name,
startTimeUnixNano, endTimeUnixNano, attributes: [{key, value {stringValue|intValue}}]}]}]}]}`. A
chat span (`gen_ai.operation.name` "chat", or a name `chat <model>`) is one LLM call: its
`gen_ai.usage.input_tokens` and `gen_ai.usage.output_tokens`, `gen_ai.response.model` (else
`gen_ai.request.model`) and `gen_ai.conversation.id`. Tool and agent spans carry no usage.

Dedup key: (traceId, spanId): Visual Studio flushes a streaming chat span to several trace files
(rotated siblings) with growing counts; the copy with the most tokens wins, so each call counts
once and in full (agentsview keeps the richest flush the same way). Spans without ids are keyed by
(conversation, end time, model).

Limits: no cache split is logged (the whole prompt at the input rate: an upper bound, as VS Code
Copilot); subscription regime (Copilot premium requests, `--regime`); Copilot-internal model ids
unpriced; no project (the spans carry no working directory). Locations: `$VISUALSTUDIO_COPILOT_DIR`
(agentsview's), `%LOCALAPPDATA%/Temp/VSGitHubCopilotLogs/traces` (Windows),
`~/Library/Caches/VSGitHubCopilotLogs/traces` (macOS), `~/.cache/VSGitHubCopilotLogs/traces` (Linux).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable, Mapping

from nomira.sources.scan import ScanStats, scan_json_lines
from nomira.sources import calls
from nomira.sources.calls import events_from_files, merge_records, partition_key  # noqa: F401

NAME = "visualstudio_copilot"
MARK = "_VSGitHubCopilot_traces"
PLACES = ("$VISUALSTUDIO_COPILOT_DIR, %LOCALAPPDATA%/Temp, ~/Library/Caches, ~/.cache: "
          "VSGitHubCopilotLogs/traces/*_VSGitHubCopilot_traces.jsonl")
MARKERS = (b'"gen_ai.usage.',)


def default_paths(env: Mapping[str, str] = os.environ) -> list[Path]:
    roots = calls.env_paths(env, "VISUALSTUDIO_COPILOT_DIR")
    if roots is None:
        home = calls.home(env)
        local = Path(env["LOCALAPPDATA"]) if env.get("LOCALAPPDATA") else home / "AppData" / "Local"
        roots = [local / "Temp", home / "Library" / "Caches", home / ".cache"]
        roots = [r / "VSGitHubCopilotLogs" / "traces" for r in roots]
    return calls.existing(r for r in roots if r.is_dir())


def claims(name: str, parent: str) -> bool:
    return name.endswith(".jsonl") and MARK in name


def find_files(roots: Iterable[Path]) -> list[Path]:
    return calls.find_claimed(roots, claims)


def _attrs(span: dict) -> dict:
    out = {}
    for a in calls.listed(span.get("attributes")):
        v = calls.dig(a, "value")
        if isinstance(a, dict) and isinstance(a.get("key"), str) and isinstance(v, dict):
            out[a["key"]] = next((v[k] for k in ("stringValue", "intValue", "doubleValue") if k in v), None)
    return out


def _record(span: dict, stats: ScanStats) -> list | None:
    a = _attrs(span)
    if "gen_ai.usage.input_tokens" not in a and "gen_ai.usage.output_tokens" not in a:
        return None
    if a.get("gen_ai.operation.name") != "chat" and not str(span.get("name", "")).startswith("chat "):
        return None
    inp, out = calls.count(a.get("gen_ai.usage.input_tokens")), calls.count(a.get("gen_ai.usage.output_tokens"))
    if not (inp or out):
        return None
    end = span.get("endTimeUnixNano") or span.get("startTimeUnixNano")
    nanos = calls.count(end)
    ts = calls.iso_ms(nanos / 1e6) if nanos else None
    if ts is None:
        stats.skip("no_timestamp")
        return None
    model = a.get("gen_ai.response.model") or a.get("gen_ai.request.model")
    model = model if isinstance(model, str) else None
    conv = a.get("gen_ai.conversation.id")
    conv = conv.lower() if isinstance(conv, str) and conv else "unknown"
    tid, sid = span.get("traceId"), span.get("spanId")
    key = f"{tid}:{sid}" if isinstance(tid, str) and isinstance(sid, str) and (tid or sid) else f"{conv}:{end}:{model}"
    return calls.record(NAME, ts, key, conv, model, input=inp, output=out)


def _visit(d: dict, state: dict, stats: ScanStats) -> list[list]:
    out = []
    for rs in calls.listed(d.get("resourceSpans")):
        for ss in calls.listed(calls.dig(rs, "scopeSpans")):
            for span in calls.listed(calls.dig(ss, "spans")):
                if isinstance(span, dict):
                    rec = _record(span, stats)
                    if rec is not None:
                        out.append(rec)
    return out


def scan_file(path: Path, start: int = 0, state: dict | None = None) -> tuple[list[list], dict, int, ScanStats]:
    return scan_json_lines(Path(path), start, dict(state or {}), MARKERS, _visit)
