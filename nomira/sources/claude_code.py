"""Claude Code transcripts: `<root>/projects/<encoded-cwd>/<session>.jsonl` (+ `subagents/`).

Usage sits on assistant lines as `message.usage`. One API call is logged as several
lines while it streams (same `message.id` + `requestId`, growing `output_tokens`),
and resumed sessions and sub-agent files copy lines: calls are deduplicated across
all files, keeping the most complete snapshot (see `Deduper`).
"""
from __future__ import annotations

import json
import os
import re
import sys
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Iterable, Iterator, Mapping

from nomira.sources import paths
from nomira.sources.project import label as project_label
from nomira.ledger.events import MAX_COUNT, TokenCounts, UsageEvent, parse_timestamp, provider_for_model, whole_count
from nomira.sources.scan import UNFINISHED, LineScan, ScanStats

NAME = "claude_code"
MARKERS = (b'"usage":',)
_SEMVER = re.compile(r"^\d+\.\d+\.\d")

# Record layout (a plain list so the incremental cache can store it as JSON).
TS, MSG_ID, REQ_ID, MODEL, IN, OUT, CR, CW5, CW1H, SIDECHAIN, SPEED, TIER, GEO, AGENT_COST = range(14)
ADVISOR = 14  # (only when the call consulted an advisor) [(model, input, output, cache read, 5m, 1h write)]


def default_paths(env: Mapping[str, str] = os.environ) -> list[Path]:
    return paths.claude_roots(env)


def find_files(roots: Iterable[Path]) -> list[str]:
    """Every transcript under `roots`, as sorted path strings (`paths.paths_under`)."""
    roots = list(roots)
    files: list[str] = []
    for root in roots:
        files.extend(paths.paths_under(root, _is_transcript))
    if len(roots) == 1:
        return files  # one walk is sorted and has no duplicates
    return sorted(set(files))


def _is_transcript(name: str, _parent: str) -> bool:
    return name.endswith(".jsonl")


@lru_cache(maxsize=1 << 16)  # asked once per file and partition group a file's calls fell in
def file_identity(path: str | Path) -> tuple[str, str]:
    """(session_id, project label) from the path; sub-agent files belong to their parent session."""
    parts = str(path).split(os.sep)
    stem = parts[-1][:-6] if parts[-1].endswith(".jsonl") else parts[-1]
    if len(parts) >= 3 and parts[-2] == "subagents":
        session, folder = parts[-3], parts[:-3]
    else:
        session, folder = stem, parts[:-1]
    if "projects" in parts:
        i = len(parts) - 1 - parts[::-1].index("projects")
        if i + 1 < len(parts) - 1:
            return session, parts[i + 1]
    return session, (folder[-1] if folder and folder[-1] else "unknown")


def file_session(path: str) -> str:
    """file_identity(path)[0], the session a file's calls belong to (a sub-agent file's: its parent
    session's), without splitting the whole path: asked for every file of a history at once."""
    sep = os.sep
    rest, _, name = str(path).rpartition(sep)
    above, found, folder = rest.rpartition(sep)
    if found and folder == "subagents":
        return above.rpartition(sep)[2]
    return name[:-6] if name.endswith(".jsonl") else name


def _str(value) -> str | None:
    return value if type(value) is str else None


_scan_once = json.JSONDecoder().scan_once


def _progress_entry(d: dict) -> tuple[dict, dict, dict] | None:
    """A sub-agent's assistant entry nested in a `progress` line (`data.message`), with its message
    and usage. When the sub-agent's own file is missing this is the only record of the call; when
    both exist they share message.id + requestId and count once. The nested entry carries its own
    timestamp (else the progress line's is its time), requestId and isSidechain, and no version or
    sessionId (as ccusage reads it)."""
    data = d.get("data")
    entry = data.get("message") if type(data) is dict else None
    msg = entry.get("message") if type(entry) is dict else None
    usage = msg.get("usage") if type(msg) is dict else None
    if type(usage) is not dict:
        return None
    if entry.get("timestamp") is None and d.get("timestamp") is not None:
        entry = dict(entry, timestamp=d["timestamp"])  # (the line that carried it dates a call that logged none)
    return entry, msg, usage


def parse_line(line: bytes, stats: ScanStats, fromiso=datetime.fromisoformat) -> list | None:
    """One transcript line -> a usage record, or None (counted in `stats` when it is a skip)."""
    try:
        d = _scan_once(line.decode(), 0)[0]
    except (ValueError, StopIteration, RecursionError):
        d = _lenient(line)
        if d is None:
            stats.malformed += 1
            return None
    return _entry_record(d, stats, fromiso)


def _lenient(line: bytes):
    """A line the strict decode refused, read again: a byte-order mark or spaces before its `{`, or
    bytes that are not UTF-8 inside a string (a tool's output: the usage beside them is intact, and
    the call was billed). None when it is still not JSON (a line cut short, garbage)."""
    try:
        return _scan_once(line.decode(errors="replace").lstrip(" \t\r\ufeff"), 0)[0]
    except (ValueError, StopIteration, RecursionError):
        return None


def _entry_record(d, stats: ScanStats, fromiso) -> list | None:
    """The record of a decoded line: its message's usage, or a progress line's nested entry's."""
    try:
        msg = d["message"]
        usage = msg["usage"]
    except (KeyError, TypeError, IndexError):
        if type(d) is not dict:
            stats.malformed += 1
            return None
        nested = _progress_entry(d)
        if nested is None:
            return None  # "usage" appeared elsewhere in the line (e.g. a tool result)
        d, msg, usage = nested
    if type(usage) is not dict:
        return None
    return _record(d, msg, usage, stats, fromiso)


def _record(d: dict, msg: dict, usage: dict, stats: ScanStats, fromiso) -> list | None:
    ts = d.get("timestamp")
    if parse_timestamp(ts, fromiso) is None:  # (also a time of year 1 or 9999 that UTC cannot hold)
        stats.skip("no_timestamp")
        return None
    version = d.get("version")
    if version is not None and not _good_version(version):
        stats.skip("bad_version")
        return None
    msg_id, req_id, model = msg.get("id"), d.get("requestId"), msg.get("model")
    msg_id = msg_id if type(msg_id) is str else None
    req_id = req_id if type(req_id) is str and req_id else None  # ("": none logged, message.id alone names the call)
    model = model if type(model) is str else None
    if msg_id == "" or model == "" or d.get("sessionId") == "":
        stats.skip("empty_id")
        return None
    if model == "<synthetic>":
        stats.skip("synthetic")
        return None
    rec = _fields(ts, msg_id, req_id, model or "unknown", d, usage)
    if rec is None:
        stats.skip("bad_token_count")
    return rec


def _fields(ts: str, msg_id, req_id, model: str, d: dict, usage: dict) -> list | None:
    """The record of a call that passed the checks (scan_file's inline checks or _record's); None when
    a count is not one (`_whole`: a string, a fraction, a negative, past `MAX_COUNT`)."""
    g = usage.get
    # (inline, this runs for every call: the values fetched together first, then checked, 15% less than
    # a lookup inside each check; an absent or null count is 0; a label a str, else None)
    i, o, r, c = g("input_tokens"), g("output_tokens"), g("cache_read_input_tokens"), g("cache_creation_input_tokens")
    if not (type(i) is int and type(o) is int and type(r) is int and type(c) is int
            and 0 <= i <= MAX_COUNT and 0 <= o <= MAX_COUNT and 0 <= r <= MAX_COUNT and 0 <= c <= MAX_COUNT):
        counts = _whole(i, o, r, c)
        if counts is None:
            return None
        i, o, r, c = counts
    split = g("cache_creation")
    cache_total = c
    cw1h = 0
    if type(split) is dict:
        cw1h, cw5m = split.get("ephemeral_1h_input_tokens"), split.get("ephemeral_5m_input_tokens")
        if not (type(cw1h) is int and type(cw5m) is int and 0 <= cw1h <= MAX_COUNT and 0 <= cw5m <= MAX_COUNT):
            counts = _whole(cw1h, cw5m)
            if counts is None:
                return None
            cw1h, cw5m = counts
        if not cache_total:
            cache_total = cw1h + cw5m
        if cw1h > cache_total:
            cw1h = cache_total
    its = g("iterations")
    advisors = None
    if its.__class__ is list and its:  # (iterations billed beside the message's: compaction, an advisor)
        more = _other_iterations(its)
        if more is None:
            return None
        (mi, mo, mr, mc, mc1), advisors = more
        i, o, r, cache_total, cw1h = i + mi, o + mo, r + mr, cache_total + mc, cw1h + mc1
    speed, tier, geo, cost = g("speed"), g("service_tier"), g("inference_geo"), d.get("costUSD")
    rec = [
        ts, msg_id, req_id, model, i, o, r,
        cache_total - cw1h, cw1h, d.get("isSidechain") is True,
        speed if type(speed) is str else None,
        tier if type(tier) is str else None,
        geo if type(geo) is str else None,
        # older Claude Code logged its own estimate (`costUSD`, top level): kept beside, never the price
        None if cost is None else cost if type(cost) is float and cost - cost == 0  # (finite)
        else float(cost) if type(cost) is int and -MAX_COUNT <= cost <= MAX_COUNT else None,
    ]
    if advisors:
        rec.append(advisors)
    return rec


def _other_iterations(its: list) -> tuple | None:
    """((input, output, cache read, cache write, of it 1h) to add to the call, [the advisor calls]) of a
    request's sampling iterations other than its message, which the top-level counts are alone:
    - `compaction` (Anthropic's server-side compaction, "aggregate across usage.iterations"): billed as
      the call's model, added;
    - `advisor_message` (Claude Code's /advisor): billed at the advisor model's rates, a call of its own
      under that model (`ADVISOR`);
    - any other (`fallback_message`: the attempt the top level already is) left out.
    None when a count is not one a call can have."""
    add = [0, 0, 0, 0, 0]
    advisors = []
    for it in its:
        if type(it) is not dict:
            continue
        kind = it.get("type")
        if kind != "compaction" and kind != "advisor_message":
            continue
        g = it.get
        split = g("cache_creation") if type(g("cache_creation")) is dict else {}
        counts = _whole(g("input_tokens"), g("output_tokens"), g("cache_read_input_tokens"),
                        g("cache_creation_input_tokens"), split.get("ephemeral_1h_input_tokens"))
        if counts is None:
            return None
        i, o, r, c, hour = counts
        c1 = min(hour, c)
        if kind == "compaction":
            add = [add[0] + i, add[1] + o, add[2] + r, add[3] + c, add[4] + c1]
        else:
            model = g("model")
            advisors.append((model if type(model) is str and model else "unknown", i, o, r, c - c1, c1))
    return tuple(add), advisors


def _whole(*counts) -> tuple[int, ...] | None:
    """The counts as ints, an absent (None) one 0, a float of whole value its integer (`12.0`: ccusage
    drops such a line, the call was billed all the same); None when one is no count a call can have
    (a string, a fraction, a bool, a negative, past `MAX_COUNT`: the line is counted and skipped)."""
    out = []
    for v in counts:
        if v is None:
            out.append(0)
        elif (n := whole_count(v)) is None:
            return None
        else:
            out.append(n)
    return tuple(out)


EDGE_YEARS = ("000", "999")  # near datetime's first and last year: `parse_timestamp` decides (no log is there)

_VERSIONS: dict[str, bool] = {}  # a history has a few versions and many lines


def _good_version(version) -> bool:
    if type(version) is not str:
        return False
    ok = _VERSIONS.get(version)
    if ok is None:
        ok = _SEMVER.match(version) is not None
        if len(_VERSIONS) < 4096:
            _VERSIONS[version] = ok
    return ok


def _cwd(line: bytes, key: bytes = b'"cwd":"') -> str | None:
    """The working directory a line logged (its top-level `cwd`: the first one on the line), or the
    string value of another top-level `key` (`gitBranch`)."""
    i = line.find(key)
    if i < 0:
        return None
    try:
        value = _scan_once(line[i + len(key) - 1:].decode(), 0)[0]
    except (ValueError, StopIteration, UnicodeDecodeError):
        return None
    return value if type(value) is str and value else None


def scan_file(path: Path, start: int = 0, state: dict | None = None) -> tuple[list[list], dict, int, ScanStats]:
    """Records from `path` starting at byte `start`. Claude lines are independent: the only
    state is the session's working directory (`cwd`), for its project label.

    The fast path of the scan: `parse_line` and `merge_records` fused into one loop (a line
    decoded once, the record of an ordinary assistant line made inline, merged with the call's
    earlier snapshots as it is read, no second pass); anything unusual (no `message.usage` dict,
    a skip, the unfinished last line) takes the plain functions. Equal to them on every
    fixture, randomized history and damaged line (tests/test_fast_path.py)."""
    state = dict(state) if state else {}
    stats = ScanStats(files=1)
    records: list[list] = []
    index: dict[tuple, list] = {}  # (message.id, requestId) -> [position in records, its usage total]
    candidates = malformed = duplicates = 0
    need_cwd, need_branch = "cwd" not in state, "branch" not in state
    fromiso, scan_once, versions = datetime.fromisoformat, _scan_once, _VERSIONS
    scan = LineScan(path, MARKERS, start)
    end = None
    for line in scan:
        candidates += 1
        if scan.tail_start is not None:  # a last line without its newline
            tail = ScanStats()
            rec = parse_line(line, tail, fromiso)
            if tail.malformed:  # the writer is mid-line: resume here next time
                end = scan.tail_start
                stats.skip(UNFINISHED)
                continue
            stats.merge(tail)
        else:
            try:
                d = scan_once(line.decode(), 0)[0]
            except (ValueError, StopIteration, RecursionError):  # (nesting deeper than the decoder goes)
                d = _lenient(line)
                if d is None:
                    malformed += 1
                    continue
            try:
                msg = d["message"]
                usage = msg["usage"]
            except (KeyError, TypeError, IndexError):
                usage = None
            rec = None
            if type(usage) is dict and type(msg) is dict:
                # _record, inline, for the line that is an ordinary call; any doubt or skip goes
                # through _record itself (same checks, same counts)
                g = d.get
                ts, version, req_id, msg_id, model = (g("timestamp"), g("version"), g("requestId"),
                                                      msg.get("id"), msg.get("model"))
                if (type(ts) is str and type(msg_id) is str and msg_id and type(req_id) is str and req_id
                        and type(model) is str and model and model != "<synthetic>"
                        and (version is None or type(version) is str and versions.get(version) is True)
                        and g("sessionId") != ""):
                    try:
                        fromiso(ts)
                    except ValueError:
                        ts = None
                    if ts is not None and ts[:3] in EDGE_YEARS:  # (years 0001-0009, 9990-9999: _record's check)
                        ts = None
                    if ts is not None:
                        rec = _fields(ts, msg_id, req_id, model, d, usage)
            if rec is None:
                rec = _entry_record(d, stats, fromiso)
        if rec is None:
            continue
        if need_cwd and (cwd := _cwd(line)):
            state["cwd"] = cwd
            need_cwd = False
        if need_branch and (branch := _cwd(line, b'"gitBranch":"')):
            state["branch"] = branch  # the session's first logged branch (attribution, issue 28)
            need_branch = False
        if rec[MSG_ID] is None:
            records.append(rec)
            continue
        key = (rec[MSG_ID], rec[REQ_ID])
        total = rec[IN] + rec[OUT] + rec[CR] + rec[CW5] + rec[CW1H]
        seen = index.get(key)
        if seen is None:
            index[key] = [len(records), total]
            records.append(rec)
            continue
        duplicates += 1
        i, old_total = seen
        old = records[i]  # _should_replace, inline: the most tokens, then the parent's line, then `speed`
        if total > old_total or total == old_total and (
                old[SIDECHAIN] and not rec[SIDECHAIN]
                or rec[SIDECHAIN] is old[SIDECHAIN] and rec[SPEED] is not None and old[SPEED] is None):
            if old[SIDECHAIN] is not rec[SIDECHAIN]:
                rec[SIDECHAIN] = False  # (a copy outside the sidechain: the call is the parent's, `_merged`)
            records[i] = rec
            seen[1] = total
        elif rec[SIDECHAIN] is not old[SIDECHAIN]:
            old[SIDECHAIN] = False
    stats.candidates += candidates
    stats.malformed += malformed
    if duplicates:
        stats.skip("duplicate_call", duplicates)
    if end is None:
        end = scan.end_offset + (0 if scan.tail_start is None else _tail_len(path, scan.tail_start))
    stats.bytes = end - start
    return records, state, end, stats


COUNTS_CHECKED = True  # (`_fields`: scan.events_of need not check its events again)
MERGED = True  # scan_file's records are already merged (scan._job skips merge_records)
STATED_BY_SCAN = True  # scan_file opens the file with a LineScan, which states it before reading (scan._job)


def merge_records(old: list[list], new: list[list]) -> list[list]:
    """Collapse a file's records with the same (message.id, requestId) to the preferred one.

    Done in the scanning worker so streaming snapshots never cross to the parent; the
    preference is a consistent order, so the cross-file `Deduper` ends with the same calls.
    """
    out: list[list] = []
    index: dict[tuple, int] = {}
    for records in (old, new):
        for rec in records:
            if rec[MSG_ID] is None:
                out.append(rec)
                continue
            key = (rec[MSG_ID], rec[REQ_ID])
            i = index.get(key)
            if i is None:
                index[key] = len(out)
                out.append(rec)
            elif _should_replace(rec, out[i]):
                out[i] = rec
    return out


def _tail_len(path: Path, tail_start: int) -> int:
    return os.path.getsize(path) - tail_start


def _usage_total(r: list) -> int:
    return r[IN] + r[OUT] + r[CR] + r[CW5] + r[CW1H]


def _rank(sidechain: bool, total: int, logged_speed: bool, same_request: bool = True) -> tuple:
    """Which copy of one call to keep. Copies of one request (same message.id and requestId: streaming
    snapshots, a sub-agent's line and its `progress` copy): the final snapshot (most tokens), then the
    parent's line, then the line that logged `speed`. A sidechain replay under a new requestId: the
    parent's line first (ccusage ranks every copy so; it keeps a `progress` copy's early snapshot over
    the sub-agent file's final one)."""
    return (total, not sidechain, logged_speed) if same_request else (not sidechain, total, logged_speed)


def _record_rank(r: list, same_request: bool = True) -> tuple:
    return _rank(r[SIDECHAIN], _usage_total(r), r[SPEED] is not None, same_request)


def _should_replace(new: list, old: list) -> bool:
    """For copies of one request; the kept one is a sidechain's only when every copy was (`_merged`)."""
    replace = _record_rank(new) > _record_rank(old)
    if new[SIDECHAIN] is not old[SIDECHAIN]:
        new[SIDECHAIN] = old[SIDECHAIN] = False
    return replace


class Deduper:
    """One API call counts once across every file.

    Key: (message.id, requestId). A sidechain line that repeats a parent's
    message.id under a new requestId is the same call (sub-agent / `/btw` replay).
    Lines without message.id cannot be matched and are all kept. What is kept is the
    event (and whether its line logged a `speed` field, the last tie-break), never the
    record, so memory holds one compact event per distinct call.
    """

    def __init__(self) -> None:
        self.kept: list[tuple[UsageEvent, bool]] = []
        self._by_msg: dict[str, int | list[int]] = {}  # message.id -> index, or indexes (several requestIds)
        self.duplicates = 0

    def add(self, rec: list, session: str, project: str) -> None:
        if len(rec) > ADVISOR:  # (its advisor's calls: each a call of the advisor's model, its own id)
            for k, (model, i, o, r, c5, c1) in enumerate(rec[ADVISOR]):
                mid = None if rec[MSG_ID] is None else f"{rec[MSG_ID]}:advisor:{k}"
                self.add([rec[TS], mid, rec[REQ_ID], model, i, o, r, c5, c1, rec[SIDECHAIN], None, None, None, None],
                         session, project)
            rec = rec[:ADVISOR]
        msg_id = rec[MSG_ID]
        kept = self.kept
        if msg_id is not None:
            found = self._by_msg.get(msg_id)
            if found is not None:
                candidates = (found,) if type(found) is int else found
                idx = next((j for j in candidates if kept[j][0].request_id == rec[REQ_ID]), None)
                if idx is None:
                    idx = next((j for j in candidates if rec[SIDECHAIN] or kept[j][0].is_sidechain), None)
                if idx is not None:
                    self.duplicates += 1
                    event, logged_speed = kept[idx]
                    same = event.request_id == rec[REQ_ID]
                    merged = same and event.is_sidechain is not rec[SIDECHAIN]
                    if _prefer(rec, event, logged_speed, same):
                        event = to_event(rec, session, project)  # (the record itself left as it is: cached)
                        kept[idx] = (event, rec[SPEED] is not None)
                    if merged:  # (`_should_replace`'s merge: a sidechain's only when every copy was)
                        event.is_sidechain = False
                    return
                self._by_msg[msg_id] = [*candidates, len(kept)]
            else:
                self._by_msg[msg_id] = len(kept)
        kept.append((to_event(rec, session, project), rec[SPEED] is not None))

    def name_apart(self) -> None:
        """Calls kept apart under one message.id (several requestIds, none a sidechain copy) get message
        ids of their own beyond the first (by time, then requestId): `message.id:requestId`. A collector
        deduplicates on the message id (`wire.dedup_key`); it then keeps what this report counts, and
        the first call's id, which an earlier ship may have sent alone, stays what it was."""
        for msg_id, found in self._by_msg.items():
            if type(found) is int:
                continue
            events = sorted((self.kept[j][0] for j in found), key=lambda e: (e.occurred_at, e.request_id or ""))
            for e in events[1:]:
                e.message_id = f"{msg_id}:{e.request_id or ''}"[:128]  # (wire.MAX_ID)


def _prefer(rec: list, event: UsageEvent, logged_speed: bool, same_request: bool) -> bool:
    """`_rank` for a record against an already kept event."""
    t = event.tokens
    kept = _rank(event.is_sidechain, t.input + t.output + t.cache_read + t.cache_write_5m + t.cache_write_1h,
                 logged_speed, same_request)
    return _record_rank(rec, same_request) > kept


_PLAIN = {None, "", "standard", "standard_only", "global", "not_available"}


def _modifiers(rec: list) -> tuple:
    if rec[SPEED] in _PLAIN and rec[TIER] in _PLAIN and rec[GEO] in _PLAIN:
        return ()
    mods = []
    if rec[SPEED] not in _PLAIN:
        mods.append(("speed", rec[SPEED]))
    if rec[TIER] not in _PLAIN:
        mods.append(("service_tier", rec[TIER]))
    if rec[GEO] not in _PLAIN:
        mods.append(("inference_geo", rec[GEO]))
    return tuple(mods)


def to_event(rec: list, session: str, project: str) -> UsageEvent:
    model = sys.intern(rec[MODEL])  # one copy of each model name, however many calls
    return UsageEvent(
        NAME, provider_for_model(model), model, parse_timestamp(rec[TS]), session, project,
        TokenCounts(rec[IN], rec[OUT], rec[CR], rec[CW5], rec[CW1H], 0, rec[IN]),
        rec[MSG_ID], rec[REQ_ID], rec[SIDECHAIN], False, _modifiers(rec),
        agent_cost_usd=rec[AGENT_COST],
    )


def partition_key(rec: list) -> str | None:
    """What every copy of a call shares (its message.id), so all copies meet in one partition."""
    return rec[MSG_ID]


PREFOLD = True  # a file whose calls meet no other record's keeps its own events: foldable where it is read


def file_project(path: str, state: dict) -> str:
    """The project label of a file's calls (the encoded folder name only when no line logged cwd)."""
    return project_label(state.get("cwd"), state.get("labels"), file_identity(path)[1])


def events_from_files(per_file: Iterable[tuple[Path, list[list], dict]], stats: ScanStats) -> Iterator[UsageEvent]:
    """Deduplicate the calls of every file (a file may come in several runs), then emit the kept events."""
    dedup = Deduper()
    identities: dict[str, tuple[str, str]] = {}
    branches: dict[str, str] = {}
    for path, records, state in per_file:
        ident = identities.get(path)
        if ident is None:
            ident = identities[path] = (file_identity(path)[0], file_project(path, state))
        session, project = ident
        if state.get("branch"):
            branches.setdefault(session, state["branch"])
        for rec in records:
            dedup.add(rec, session, project)
    if dedup.duplicates:
        stats.skip("duplicate_call", dedup.duplicates)
    dedup.name_apart()
    for event, _logged_speed in dedup.kept:
        event.branch = branches.get(event.session_id)
        yield event


TOOL_MARKERS = (b'"tool_use"',)


LABEL_INPUTS = {"Skill": "skill", "Task": "subagent_type", "Agent": "subagent_type"}  # the name, not the prompt


def iter_tool_uses(path: Path) -> Iterator[tuple[str, str | None, str, str, str | None]]:
    """(message.id, requestId, tool_use id, tool name, target) for each tool call in a transcript:
    the target is the file path, or a Skill's skill name, or a Task/Agent's `subagent_type`.

    For the local optimizer only: tool inputs and paths never enter a UsageEvent.
    """
    for line in LineScan(path, TOOL_MARKERS):
        try:
            d = json.loads(line)
            msg = d["message"]
            content = msg["content"]
        except (ValueError, KeyError, TypeError, RecursionError):
            continue
        if not isinstance(content, list) or not isinstance(msg.get("id"), str):
            continue
        for block in content:
            if isinstance(block, dict) and block.get("type") == "tool_use":
                inp = block.get("input") if isinstance(block.get("input"), dict) else {}
                name = str(block.get("name", "?"))
                named = LABEL_INPUTS.get(name)
                target = inp.get(named) if named else (inp.get("file_path") or inp.get("notebook_path")
                                                      or inp.get("path"))
                yield (msg["id"], _str(d.get("requestId")), str(block.get("id", "")),
                       name, target if isinstance(target, str) else None)


RESULT_MARKERS = (b'"tool_result"',)


def iter_tool_results(path: Path) -> Iterator[tuple[str, int]]:
    """(tool_use id, characters of its result) for each tool result in a transcript: how much
    each tool use put into the next call's context. For the local optimizer only."""
    for line in LineScan(path, RESULT_MARKERS):
        try:
            content = json.loads(line)["message"]["content"]
        except (ValueError, KeyError, TypeError, RecursionError):
            continue
        if not isinstance(content, list):
            continue
        for block in content:
            if isinstance(block, dict) and block.get("type") == "tool_result" and isinstance(
                    block.get("tool_use_id"), str):
                yield block["tool_use_id"], _result_chars(block.get("content"))


def _result_chars(content) -> int:
    if isinstance(content, str):
        return len(content)
    if isinstance(content, list):
        return sum(len(b["text"]) for b in content if isinstance(b, dict) and isinstance(b.get("text"), str))
    return 0
