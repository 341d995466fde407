"""One call record shared by the agents added after Claude Code, Codex and OpenCode.

Each of those adapters translates its agent's own format into `record(...)` at the edge
(provider semantics applied there: `input` is uncached input, `output` includes
reasoning) and keeps only `default_paths`, `find_files`, `claims` and `scan_file` of
its own. Deduplication, partitioning and the event are the same for all of them:

- a record's `key` says which call it is (the agent's message/entry id, made unique
  with the session where ids are per session); records sharing a key are one call,
  wherever they were seen, and the copy with the most tokens wins (agents re-write a
  message as it completes, resumed/forked sessions copy earlier messages). Records
  without a key cannot be matched and are all kept.
- `project_label(cwd)` is the one place a working directory becomes a project label.
"""
from __future__ import annotations

import os
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterable, Iterator, Mapping

from nomira.ledger.events import TokenCounts, UsageEvent, parse_timestamp, provider_for_model
from nomira.sources.scan import ScanStats
from nomira.sources import project

# Record layout (a plain list so the scan cache can store it with marshal).
(TS, KEY, SESSION, MODEL, PROVIDER, IN, OUT, CR, CW, REASONING, REPORTED, CWD, AGENT_COST, SOURCE, ASSUMED,
 AGGREGATED) = range(16)
CW1H = 16  # 1-hour cache writes: only in records of agents that log them apart (older cached records lack it)


def record(source: str, ts: str, key: str | None, session: str, model: str | None, *, provider: str | None = None,
           input: int = 0, output: int = 0, cache_read: int = 0, cache_write: int = 0, reasoning: int = 0,
           reported_input: int | None = None, cwd: str | None = None, agent_cost: float | None = None,
           model_assumed: bool = False, aggregated: bool = False, cache_write_1h: int = 0) -> list:
    """A call in canonical terms: `input` uncached, `output` including `reasoning`; `model_assumed`
    when the log does not say which model served the call (a configured default stands in);
    `aggregated` when the agent logs only a session/run total, not each request; `cache_write` is 5-minute
    writes, `cache_write_1h` the 1-hour writes of agents that log them apart."""
    model = model.strip() if isinstance(model, str) and model.strip() else "unknown"  # logs hold any JSON value
    provider = provider if isinstance(provider, str) and provider else provider_for_model(model)
    session = session if isinstance(session, str) else str(session)
    cwd = cwd if isinstance(cwd, str) else None
    rec = [ts, key, session, model, provider, input, output, cache_read,
           cache_write, reasoning, input if reported_input is None else reported_input, cwd, agent_cost, source,
           model_assumed, aggregated]
    if cache_write_1h:
        rec.append(cache_write_1h)
    return rec


def as_source(name: str, scanned: tuple) -> tuple:
    """Another module's scan_file result with its records under source `name` (an agent that
    keeps a parent agent's format in its own folders)."""
    for r in scanned[0]:
        r[SOURCE] = name
    return scanned


def project_label(cwd: str | None, labels: dict[str, str] | None = None) -> str:
    """The project label of a working directory: the history's label (`project.assign`), else its
    folder name, as for every other agent."""
    return project.label(cwd, labels)


def dig(obj, *keys):
    """obj[k1][k2]... where every level is a dict; None as soon as one is not (logs hold any JSON)."""
    for k in keys:
        if not isinstance(obj, dict):
            return None
        obj = obj.get(k)
    return obj


def listed(v) -> list:
    """v when it is a list, else no items."""
    return v if isinstance(v, list) else []


def count(v) -> int:
    """A token count as logged (int, float or numeric string); anything else is 0."""
    t = type(v)
    if t is int:  # the common case first: this runs for every count of every call
        return v if v > 0 else 0
    if v is None or t is bool:
        return 0
    if isinstance(v, str):
        try:
            v = float(v)
        except ValueError:
            return 0
    if isinstance(v, (int, float)) and 0 < v < float("inf"):  # NaN and infinity ("inf" parses) are not counts
        return int(v)
    return 0


def money(v) -> float | None:
    return float(v) if isinstance(v, (int, float)) and type(v) is not bool and 0 <= v < 1e12 else None


def iso_ms(ms) -> str | None:
    """Epoch milliseconds (or seconds, when too small to be ms) -> ISO UTC; None when not a time."""
    if isinstance(ms, str):
        try:
            ms = float(ms)
        except ValueError:
            return None
    if not isinstance(ms, (int, float)) or type(ms) is bool or ms <= 0:
        return None
    if ms < 1e11:  # seconds
        ms *= 1000
    try:
        return datetime.fromtimestamp(ms / 1000, timezone.utc).isoformat()
    except (OverflowError, OSError, ValueError):
        return None


def iso(ts, _fromiso=datetime.fromisoformat, _utc=timezone.utc) -> str | None:
    """An ISO-8601 string (or epoch number) -> ISO UTC string; None when unparseable.
    (parse_timestamp, inline: this runs for every call of every source.)"""
    if isinstance(ts, str):
        try:
            dt = _fromiso(ts.replace(" ", "T", 1) if len(ts) > 10 and ts[10] == " " else ts)
            return (dt.astimezone(_utc) if dt.tzinfo else dt.replace(tzinfo=_utc)).isoformat()
        except (TypeError, ValueError, OverflowError):
            pass
    return iso_ms(ts)


def iso_local(ts) -> str | None:
    """An ISO-8601 string as ISO UTC, a naive one read as this machine's local time (agents that
    log `datetime.now().isoformat()`); None when unparseable."""
    if not isinstance(ts, str):
        return None
    try:
        dt = datetime.fromisoformat(ts.replace(" ", "T", 1) if len(ts) > 10 and ts[10] == " " else ts)
        return (dt if dt.tzinfo else dt.astimezone()).astimezone(timezone.utc).isoformat()
    except (ValueError, OverflowError, OSError):
        return None


def env_paths(env: Mapping[str, str], var: str) -> list[Path] | None:
    """A comma-separated path list from `var`, or None when unset."""
    raw = env.get(var, "")
    paths = [Path(p.strip()).expanduser() for p in raw.split(",") if p.strip()]
    return paths or None


def home(env: Mapping[str, str]) -> Path:
    """$HOME, else Windows' %USERPROFILE% (an env given without HOME), else the account's home."""
    return Path(env.get("HOME") or env.get("USERPROFILE") or Path.home())


def existing(paths: Iterable[Path]) -> list[Path]:
    out: list[Path] = []
    for p in paths:
        if p.exists() and p not in out:
            out.append(p)
    return out


def split_by_total(inp: int, out: int, cr: int, cw: int, reasoning: int, total: int) -> tuple[int, int, bool]:
    """(uncached input, output incl. reasoning, matched) for an agent that logs a request's total
    beside its counts but not whether its input includes the cache: the total says which reading
    holds (input + output + cache, or input + output with the cache inside input; reasoning inside
    output or beside it). Unmatched (no total, or neither reading): the counts as disjoint."""
    for r in (0, reasoning):
        if total == inp + out + r + cr + cw:
            return inp, out + r, True
        if total == inp + out + r and cr + cw <= inp:
            return inp - cr - cw, out + r, True
    return inp, out, False


def _cw1h(rec: list) -> int:
    return rec[CW1H] if len(rec) > CW1H else 0


def total(rec: list) -> int:
    return rec[IN] + rec[OUT] + rec[CR] + rec[CW] + _cw1h(rec)


def _keep_most_complete(records: Iterable[list]) -> tuple[list[list], int]:
    """(records with one copy per key, the most complete (first seen on a tie); copies dropped)."""
    kept: list[list] = []
    index: dict[str, int] = {}
    dropped = 0
    for rec in records:
        k = rec[KEY]
        if k is None:
            kept.append(rec)
            continue
        i = index.get(k)
        if i is None:
            index[k] = len(kept)
            kept.append(rec)
            continue
        dropped += 1
        if total(rec) > total(kept[i]):
            kept[i] = rec
    return kept, dropped


def merge_records(old: list[list], new: list[list]) -> list[list]:
    """A file's records with one copy per key (scan.py counts what was dropped)."""
    return _keep_most_complete([*old, *new])[0]


def partition_key(rec: list) -> str | None:
    """What every copy of a call shares (its key), so all copies meet in one partition."""
    return rec[KEY]


def to_event(rec: list, labels: dict[str, str] | None = None, project: str | None = None) -> UsageEvent:
    """The event of a record; `project`: its cwd's label when the caller already has it."""
    model = sys.intern(rec[MODEL])
    return UsageEvent(
        rec[SOURCE], rec[PROVIDER], model, parse_timestamp(rec[TS]), rec[SESSION],
        project_label(rec[CWD], labels) if project is None else project,
        TokenCounts(rec[IN], rec[OUT], rec[CR], rec[CW], _cw1h(rec), rec[REASONING], rec[REPORTED]),
        message_id=rec[KEY], model_is_fallback=rec[ASSUMED], agent_cost_usd=rec[AGENT_COST],
        aggregated=rec[AGGREGATED],
    )


def events_from_files(per_file: Iterable[tuple[str, list[list], dict]], stats: ScanStats) -> Iterator[UsageEvent]:
    """Every call once across all files: the copy with the most tokens, first seen on a tie."""
    labels: dict[str, str] = {}

    def records():
        for _path, recs, state in per_file:
            labels.update(state.get("labels") or {})
            yield from recs
    kept, duplicates = _keep_most_complete(records())
    if duplicates:
        stats.skip("duplicate_call", duplicates)
    projects: dict = {}  # cwd -> label: a history has a few directories and many calls
    for rec in kept:
        cwd = rec[CWD]
        project = projects.get(cwd)
        if project is None:
            project = projects[cwd] = project_label(cwd, labels)
        yield to_event(rec, labels, project)


def read_json(path: Path, stats: ScanStats, kind: type = dict):
    """A whole-file JSON document of type `kind`, or None (counted malformed) when it is not one."""
    import json
    stats.candidates += 1
    try:
        doc = json.loads(Path(path).read_bytes())
    except (ValueError, UnicodeDecodeError):
        doc = None
    if not isinstance(doc, kind):
        stats.malformed += 1
        return None
    return doc


def stamp(stats: ScanStats, *values) -> str | None:
    """The first of `values` that is a time, as ISO UTC; None (counted) when none is."""
    for v in values:
        ts = iso(v)
        if ts is not None:
            return ts
    stats.skip("no_timestamp")
    return None


def find_claimed(roots: Iterable[Path], claims) -> list[Path]:
    """Files under `roots` that a source's `claims(name, parent)` accepts, once each, sorted."""
    from nomira.sources import paths
    files: list[Path] = []
    for root in roots:
        files.extend(paths.files_under(root, claims))
    return sorted(set(files), key=str)


def whole_file(path: Path, parse, state: dict | None = None) -> tuple[list[list], dict, int, ScanStats]:
    """scan_file for a JSON document the agent rewrites whole. The end offset is the file's size,
    so an unchanged file (same size and mtime) is served from the scan cache; a changed one is
    parsed again whole (a rewritten document is never resumed part-way: `parse` reads it all)."""
    stats = ScanStats(files=1, bytes=os.path.getsize(path))
    return parse(Path(path), stats), {}, stats.bytes, stats
