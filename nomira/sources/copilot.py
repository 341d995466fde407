"""GitHub Copilot CLI sessions: `~/.copilot/session-state/<id>/events.jsonl` (and flat `<id>.jsonl`).

Format (github/copilot-sdk `nodejs/src/generated/session-events.ts`, the schema of the
CLI's event log): `{type, data, id, timestamp, parentId}` per line. Per-call usage
(`assistant.usage`) is `ephemeral: true`, never written to disk. What is written is
`session.shutdown`, whose `data.modelMetrics` holds per-model totals for the run:
`{<model>: {requests {count, cost}, usage {inputTokens, outputTokens,
cacheReadTokens, cacheWriteTokens, reasoningTokens?}}}`. So Copilot CLI usage is
per session and model, dated at shutdown, not per call. A session that never shut
down cleanly (or a build before the metrics) has no token data: counted as
`no_token_data:copilot` (use the OTel file exporter or GitHub's Copilot usage metrics instead).

The OTel file export (`$COPILOT_OTEL_FILE_EXPORTER_PATH`, `~/.copilot/otel/*.jsonl`;
`copilot_otel.py`) holds the same calls one `chat` span each. Where both exist, the spans win:
a shutdown total is dropped (counted `copilot_shutdown_covered_by_otel`) when a span of its
model lies in the run it totals (after the session's start or previous shutdown, up to this
shutdown) and belongs to its session (`gen_ai.conversation.id` equal to the session id) or to
no session the logs know. Runs exported without spans keep their totals; spans of a session
with no log stand alone.

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
from bisect import bisect_right
from pathlib import Path
from typing import Iterable, Mapping

from nomira.ledger.events import parse_timestamp
from nomira.sources.scan import ScanStats, scan_json_lines
from nomira.sources import calls, copilot_otel
from nomira.sources.calls import merge_records  # noqa: F401

NAME = "copilot_cli"
NO_TOKEN_DATA = ("Copilot CLI sessions without a clean shutdown keep no token counts; use its OTel file exporter "
                 "(COPILOT_OTEL_FILE_EXPORTER_PATH) or GitHub's Copilot usage metrics")
MARKERS = (b'"session.start"', b'"session.shutdown"', b'"session.context_changed"')
FIELDS = ("inputTokens", "outputTokens", "cacheReadTokens", "cacheWriteTokens", "reasoningTokens")


def default_paths(env: Mapping[str, str] = os.environ) -> list[Path]:
    homes = [Path(env["COPILOT_HOME"]).expanduser()] if env.get("COPILOT_HOME") else [calls.home(env) / ".copilot"]
    if env.get("XDG_STATE_HOME") and not env.get("COPILOT_HOME"):
        homes.append(Path(env["XDG_STATE_HOME"]) / ".copilot")
    roots = [h / sub for h in homes for sub in ("session-state", "otel") if (h / sub).is_dir()]
    exported = env.get("COPILOT_OTEL_FILE_EXPORTER_PATH")
    if exported and Path(exported).expanduser().is_file():
        roots.append(Path(exported).expanduser())
    return calls.existing(roots)


def _session_log(name: str, parent: str) -> bool:
    """`session-state/<id>/events.jsonl` or flat `session-state/<id>.jsonl`."""
    if name == "events.jsonl":
        return os.path.basename(os.path.dirname(parent)) == "session-state"
    return name.endswith(".jsonl") and os.path.basename(parent) == "session-state"


def claims(name: str, parent: str) -> bool:
    """A session log, or an OTel export in `.copilot/otel`."""
    return _session_log(name, parent) or (name.endswith(".jsonl") and parent.endswith(f".copilot{os.sep}otel"))


def find_files(roots: Iterable[Path]) -> list[Path]:
    return calls.find_claimed(roots, claims)


def partition_key(rec: list) -> str:
    """One partition: a session's spans and shutdown totals must meet to be reconciled."""
    return NAME


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
    since, state["since"] = state.get("since") or state.get("start"), ts  # the run this shutdown totals
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
        key = f"{session}:{d.get('id')}:{model}"
        state.setdefault("runs", {})[key] = since
        out.append(calls.record(NAME, ts, key, session, model, input=inp, output=out_,
                                cache_read=cr, cache_write=cw, reasoning=min(reasoning, out_),
                                reported_input=inp + cr + cw, cwd=state["cwd"], aggregated=True))
    return out


def _visit(d: dict, state: dict, stats: ScanStats) -> list[list] | None:
    kind = d.get("type")
    data = d.get("data") if isinstance(d.get("data"), dict) else {}
    if kind == "session.start":
        if isinstance(data.get("sessionId"), str) and data["sessionId"]:
            state["session"] = data["sessionId"]
        state["start"] = calls.iso(d.get("timestamp"))
        data = data.get("context") if isinstance(data.get("context"), dict) else {}
    if kind in ("session.start", "session.context_changed"):
        if isinstance(data.get("cwd"), str) and data["cwd"]:
            state["cwd"] = data["cwd"]
        return None
    return _shutdown(d, state, stats) if kind == "session.shutdown" else None


def scan_file(path: Path, start: int = 0, state: dict | None = None) -> tuple[list[list], dict, int, ScanStats]:
    path = Path(path)
    if not _session_log(path.name, str(path.parent)):
        return copilot_otel.scan_file(path, start, state)
    stem = path.parent.name if path.name == "events.jsonl" else path.stem
    state = dict(state) if state else {"stem": stem, "session": None, "cwd": None, "prev": {}, "shutdowns": 0}
    state["prev"] = dict(state["prev"])
    state["runs"] = dict(state.get("runs") or {})
    result = scan_json_lines(path, start, state, MARKERS, _visit)
    if start == 0 and not state["shutdowns"]:
        result[3].skip("no_token_data:copilot")
    return result


def _covered(rec: list, since, spans: dict, known: set[str]) -> bool:
    """Whether an OTel span of this shutdown's model lies in the run it totals, in its session or in none known.
    `spans`: (times, sessions) by model, sorted by time, so each shutdown looks only at its run's spans
    (not at every span of the export: shutdowns x spans grows with the history)."""
    times, sessions = spans.get(rec[calls.MODEL], ((), ()))
    end = parse_timestamp(rec[calls.TS])
    start = parse_timestamp(since) if since else None
    lo = 0 if start is None else bisect_right(times, start)
    for i in range(lo, bisect_right(times, end)):
        if sessions[i] == rec[calls.SESSION] or sessions[i] not in known:
            return True
    return False


def _by_model(spans: list[tuple]) -> dict:
    """(session, time, model) spans as (times, sessions) by model, sorted by time."""
    out: dict = {}
    for session, ts, model in sorted(spans, key=lambda s: s[1]):
        times, sessions = out.setdefault(model, ([], []))
        times.append(ts)
        sessions.append(session)
    return out


def events_from_files(per_file: Iterable[tuple[str, list[list], dict]], stats: ScanStats):
    """Every call once; a shutdown total dropped where the OTel export holds the run's calls one by one."""
    items = list(per_file)
    spans = [(r[calls.SESSION], parse_timestamp(r[calls.TS]), r[calls.MODEL])
             for _path, recs, st in items if st.get("otel") for r in recs]
    if spans:
        known = {r[calls.SESSION] for _path, recs, st in items if not st.get("otel") for r in recs}
        spans = _by_model(spans)
        kept = []
        for path, recs, st in items:
            if not st.get("otel"):
                runs = st.get("runs") or {}
                keep = [r for r in recs if not _covered(r, runs.get(r[calls.KEY]), spans, known)]
                if len(keep) < len(recs):
                    stats.skip("copilot_shutdown_covered_by_otel", len(recs) - len(keep))
                recs = keep
            kept.append((path, recs, st))
        items = kept
    yield from calls.events_from_files(items, stats)
