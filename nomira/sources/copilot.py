"""GitHub Copilot CLI sessions: `~/.copilot/session-state/<id>/events.jsonl` (and flat `<id>.jsonl`).

Format (github/copilot-sdk `nodejs/src/generated/session-events.ts`, the schema of the
CLI's event log): `{type, data, id, timestamp, parentId}` per line. Per-call usage
(`assistant.usage`) is `ephemeral: true`, never written to disk. What is written is
`session.shutdown`, whose `data.modelMetrics` holds per-model totals for the run:
`{<model>: {requests {count, cost}, usage {inputTokens, outputTokens,
cacheReadTokens, cacheWriteTokens, reasoningTokens?}}}`. So Copilot CLI usage is
per session and model, dated at shutdown, not per call. A session that never shut
down cleanly (or a build before the metrics) has no token data: counted as
`no_token_data:copilot` (use the OTel file exporter, `COPILOT_OTEL_FILE_EXPORTER_PATH`,
or GitHub's Copilot usage metrics instead; not read here).

Token semantics (UNCONFIRMED, from Copilot's OpenAI-compatible API): `inputTokens` is
the prompt total including cache reads and writes; when it is at least their sum they
are subtracted, otherwise it is taken as uncached. `reasoningTokens` is part of
`outputTokens`. `requests.cost` counts premium requests (a multiplier, not dollars), so
there is no agent cost in USD.

Dedup: a resumed session appends a second shutdown to the same log. Successive
shutdowns of one model are diffed when every count grew (cumulative totals), and taken
whole when one shrank (a fresh run); a repeated total is not new usage. Key: (session,
shutdown event id, model). `COPILOT_HOME` moves `~/.copilot` (also read:
`$XDG_STATE_HOME/.copilot`). Project: `session.start` / `session.context_changed`
`context.cwd`.

Regime: subscription. Copilot CLI runs on a Copilot plan (Pro, Pro+, Business,
Enterprise) and draws premium requests from its allowance; the figures are
API-equivalent value (BYOK providers, `isByok`, are not distinguished in the totals).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable, Mapping

from nomira.sources.scan import ScanStats, scan_json_lines
from nomira.sources import calls
from nomira.sources.calls import events_from_files, merge_records, partition_key  # noqa: F401

NAME = "copilot_cli"
NO_TOKEN_DATA = ("Copilot CLI sessions without a clean shutdown keep no token counts; use its OTel file exporter "
                 "(COPILOT_OTEL_FILE_EXPORTER_PATH) or GitHub's Copilot usage metrics")
MARKERS = (b'"session.start"', b'"session.shutdown"', b'"session.context_changed"')
FIELDS = ("inputTokens", "outputTokens", "cacheReadTokens", "cacheWriteTokens", "reasoningTokens")


def default_paths(env: Mapping[str, str] = os.environ) -> list[Path]:
    homes = [Path(env["COPILOT_HOME"]).expanduser()] if env.get("COPILOT_HOME") else [calls.home(env) / ".copilot"]
    if env.get("XDG_STATE_HOME") and not env.get("COPILOT_HOME"):
        homes.append(Path(env["XDG_STATE_HOME"]) / ".copilot")
    return calls.existing(h / "session-state" for h in homes if (h / "session-state").is_dir())


def claims(name: str, parent: str) -> bool:
    """`session-state/<id>/events.jsonl` or flat `session-state/<id>.jsonl`."""
    if name == "events.jsonl":
        return os.path.basename(os.path.dirname(parent)) == "session-state"
    return name.endswith(".jsonl") and os.path.basename(parent) == "session-state"


def find_files(roots: Iterable[Path]) -> list[Path]:
    return calls.find_claimed(roots, claims)


def _usage(metric) -> list[int] | None:
    u = metric.get("usage") if isinstance(metric, dict) else None
    return [calls.count(u.get(f)) for f in FIELDS] if isinstance(u, dict) else None


def _shutdown(d: dict, state: dict, stats: ScanStats) -> list[list]:
    data = d.get("data") if isinstance(d.get("data"), dict) else {}
    metrics = data.get("modelMetrics")
    if not isinstance(metrics, dict):
        stats.skip("shutdown_without_metrics")
        return []
    ts = calls.stamp(stats, d.get("timestamp"))
    if ts is None:
        return []
    state["shutdowns"] += 1
    out = []
    session = state["session"] or state["stem"]
    for model, metric in metrics.items():
        now = _usage(metric)
        if now is None or not any(now):
            continue
        prev = state["prev"].get(model)
        state["prev"][model] = now
        if prev == now:
            stats.skip("repeated_total")
            continue
        grew = prev is not None and all(n >= p for n, p in zip(now, prev))
        inp, out_, cr, cw, reasoning = [n - p for n, p in zip(now, prev)] if grew else now
        if inp >= cr + cw:
            inp -= cr + cw
        out.append(calls.record(NAME, ts, f"{session}:{d.get('id')}:{model}", session, model, input=inp, output=out_,
                                cache_read=cr, cache_write=cw, reasoning=min(reasoning, out_),
                                reported_input=inp + cr + cw, cwd=state["cwd"], aggregated=True))
    return out


def _visit(d: dict, state: dict, stats: ScanStats) -> list[list] | None:
    kind = d.get("type")
    data = d.get("data") if isinstance(d.get("data"), dict) else {}
    if kind == "session.start":
        if isinstance(data.get("sessionId"), str) and data["sessionId"]:
            state["session"] = data["sessionId"]
        data = data.get("context") if isinstance(data.get("context"), dict) else {}
    if kind in ("session.start", "session.context_changed"):
        if isinstance(data.get("cwd"), str) and data["cwd"]:
            state["cwd"] = data["cwd"]
        return None
    return _shutdown(d, state, stats) if kind == "session.shutdown" else None


def scan_file(path: Path, start: int = 0, state: dict | None = None) -> tuple[list[list], dict, int, ScanStats]:
    path = Path(path)
    stem = path.parent.name if path.name == "events.jsonl" else path.stem
    state = dict(state) if state else {"stem": stem, "session": None, "cwd": None, "prev": {}, "shutdowns": 0}
    state["prev"] = dict(state["prev"])
    result = scan_json_lines(path, start, state, MARKERS, _visit)
    if start == 0 and not state["shutdowns"]:
        result[3].skip("no_token_data:copilot")
    return result
