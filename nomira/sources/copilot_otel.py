"""GitHub Copilot CLI's OpenTelemetry file export: one JSON record per line, per-call `chat` spans.

Format (the Copilot runtime's OTel export, docs.github.com "OpenTelemetry monitoring" reference;
`COPILOT_OTEL_FILE_EXPORTER_PATH` names the file, `~/.copilot/otel/*.jsonl` where trackers find
it; tokscale `crates/tokscale-core/src/sessions/copilot.rs` reads the same lines): `{"type":
"span", "traceId", "spanId", "name": "chat <model>", "startTime": [s, ns], "endTime": [s, ns],
"attributes": {...}}` beside `metric` records. The span tree per agent turn is `invoke_agent`
(the turn's total: never read, it would count its calls twice) over one `chat` span per model
call and `execute_tool` spans. A `chat` span (`gen_ai.operation.name` = `chat`) carries the OTel
GenAI usage attributes: `gen_ai.usage.input_tokens`, `.output_tokens`,
`.cache_read.input_tokens`, `.cache_creation.input_tokens` (or `.cache_write.input_tokens`),
`.reasoning.output_tokens` (legacy `.reasoning_tokens`), the model (`gen_ai.response.model`,
else `.request.model`) and the session (`gen_ai.conversation.id`).

Semantics (OTel GenAI semantic conventions): `input_tokens` includes all input, cached reads and
cache writes; reasoning is part of `output_tokens`. So cache reads and writes are taken out of
input; a cache write above what is left is read as beside the input (counted
`copilot_otel_cache_outside_input`), never subtracted into a negative.

Dedup key: (traceId, spanId): a span exported twice (a copied file) counts once. How these
per-call records and the session log's shutdown totals are reconciled is `copilot.py`'s.
"""
from __future__ import annotations

from pathlib import Path

from nomira.sources.scan import ScanStats, scan_json_lines
from nomira.sources import calls

MARKERS = (b'"chat',)
READ = "gen_ai.usage.cache_read.input_tokens"
WRITES = ("gen_ai.usage.cache_creation.input_tokens", "gen_ai.usage.cache_write.input_tokens")
REASONING = ("gen_ai.usage.reasoning.output_tokens", "gen_ai.usage.reasoning_tokens")


def _first(attrs: dict, keys) -> int:
    return next((n for n in (calls.count(attrs.get(k)) for k in keys) if n), 0)


def _time(v) -> str | None:
    """An OTel HrTime `[seconds, nanoseconds]` (or epoch number) as ISO UTC."""
    if isinstance(v, list) and len(v) == 2 and all(isinstance(x, (int, float)) for x in v):
        return calls.iso_ms(v[0] * 1000 + v[1] / 1e6)
    return calls.iso_ms(v)


def is_chat_span(d: dict, attrs: dict) -> bool:
    if d.get("type") not in (None, "span"):
        return False
    name = d.get("name")
    return attrs.get("gen_ai.operation.name") == "chat" or (isinstance(name, str) and name.startswith("chat "))


def _visit(d: dict, state: dict, stats: ScanStats) -> list[list]:
    attrs = d.get("attributes")
    if not isinstance(attrs, dict) or not is_chat_span(d, attrs):
        return []
    inp, out = calls.count(attrs.get("gen_ai.usage.input_tokens")), calls.count(attrs.get("gen_ai.usage.output_tokens"))
    cr, cw = calls.count(attrs.get(READ)), _first(attrs, WRITES)
    if not (inp or out or cr or cw):
        return []
    ts = _time(d.get("endTime")) or _time(d.get("startTime"))
    if ts is None:
        stats.skip("no_timestamp")
        return []
    fresh = inp - cr - cw
    if fresh < 0:
        fresh = max(inp - cr, 0) if inp >= cr else inp
        stats.skip("copilot_otel_cache_outside_input")
    model = next((m for m in (attrs.get("gen_ai.response.model"), attrs.get("gen_ai.request.model"))
                  if isinstance(m, str) and m.strip()), None)
    trace, span = d.get("traceId"), d.get("spanId")
    session = attrs.get("gen_ai.conversation.id")
    session = session if isinstance(session, str) and session else (trace if isinstance(trace, str) else state["stem"])
    key = f"otel:{trace}:{span}" if isinstance(trace, str) and isinstance(span, str) else None
    return [calls.record("copilot_cli", ts, key, session, model, input=fresh, output=out, cache_read=cr,
                         cache_write=cw, reasoning=min(_first(attrs, REASONING), out), reported_input=inp)]


def scan_file(path: Path, start: int = 0, state: dict | None = None) -> tuple[list[list], dict, int, ScanStats]:
    path = Path(path)
    state = dict(state) if state else {"otel": True, "stem": path.stem}
    return scan_json_lines(path, start, state, MARKERS, _visit)
