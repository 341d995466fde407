"""OpenCode: `$XDG_DATA_HOME/opencode/opencode.db` (v1.2+) and legacy `storage/` JSON.

Assistant messages carry `tokens {input, output, reasoning, cache {read, write}}`;
`input` already excludes cache reads and writes. On multi-step (tool) messages the
message's `tokens` hold only the last step, so when a message has `step-finish`
parts (one per API request) those are the calls. `reasoning` comes from the AI
SDK's reasoningTokens, and whether `output` holds it depends on the release: up to
v1.3.15 it was part of `output` for Anthropic and OpenAI (billed once) and apart
from it for Google models; from v1.3.16 (anomalyco/opencode#21047) OpenCode stores
`output` without it for every provider, and bills it on top at the output rate.
`tokens.total` (input, cache and output as the provider counted them) tells the two
apart where it is logged, else the session's OpenCode version (`session.version`),
else the older rule (`reasoning_apart`). The database is opened read-only; its rows
win over legacy JSON copies of the same message. OpenCode 2.x writes `session_message`
instead (`_v2_messages`), beside the 1.x tables it keeps.
"""
from __future__ import annotations

import json
import os
import sqlite3
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterable, Iterator, Mapping

from nomira.sources import calls, paths, sqlite_ro
from nomira.sources.project import label as project_label
from nomira.ledger.events import TokenCounts, UsageEvent, usable_time, whole_count
from nomira.sources.scan import ScanStats

NAME = "opencode"
COUNTS_CHECKED = True  # (`_int`: scan.events_of need not check its events again)
# record: ts, message id, step id, model, provider, input, output, cache_read, cache_write, reasoning, session, cwd,
# whether the reasoning is apart from the output (`reasoning_apart`), OpenCode's own cost of the step (else of
# the message; None when it logged none)
TS, MSG, STEP, MODEL, PROVIDER, IN, OUT, CR, CW, REASONING, SESSION, PROJECT, APART, COST = range(14)
SEPARATE_FROM = (1, 3, 16)  # the first release that stores output without the reasoning (anomalyco/opencode#21047)
PROVIDERS = {"anthropic": "anthropic", "openai": "openai", "google": "google", "google-vertex": "google",
             "amazon-bedrock": "anthropic"}


def default_paths(env: Mapping[str, str] = os.environ) -> list[Path]:
    if env.get("OPENCODE_DATA_DIR"):
        roots = [Path(p.strip()).expanduser() for p in env["OPENCODE_DATA_DIR"].split(",") if p.strip()]
    else:
        base = Path(env["XDG_DATA_HOME"]) if env.get("XDG_DATA_HOME") else Path(env.get("HOME") or Path.home()) \
            / ".local" / "share"
        roots = [base / "opencode"]
    return [r for r in roots if r.is_dir()]


def _is_opencode_file(name: str, parent: str) -> bool:
    if name.startswith("opencode") and (name.endswith(".db") or name.endswith(".db-wal")):
        return True
    return name.endswith(".json") and os.path.basename(os.path.dirname(parent)) in ("message", "part") \
        and os.path.basename(os.path.dirname(os.path.dirname(parent))) == "storage"


def input_only(path: str) -> bool:
    """A legacy message's part file: read with its message (`_scan_legacy`), never alone, but an input
    of the report all the same, so that a cached report notices a new or rewritten step."""
    return os.path.basename(os.path.dirname(os.path.dirname(path))) == "part"


def find_files(roots: Iterable[Path]) -> list[Path]:
    """The database (with its -wal, so a cached report notices new rows) and legacy message files
    (with their part files, so it notices a new or rewritten step: `input_only`)."""
    out: list[Path] = []
    for root in roots:
        root = Path(root)
        if root.is_file():
            out.append(root)
            continue
        found = paths.walk_files(root, _is_opencode_file)
        by_dir: dict[Path, list[Path]] = {}
        for f in found:
            if f.name.startswith("opencode"):
                by_dir.setdefault(f.parent, []).append(f)
            else:
                out.append(f)
        for folder, dbs in by_dir.items():
            # every database: opencode.db (the latest, beta and prod channels) and each
            # opencode-<channel>.db (a dev or local build keeps a history of its own beside it; a call
            # in two of them counts once, `events_from_files`)
            names = {f.name for f in dbs}
            for name in sorted(n for n in names if n.endswith(".db")):
                out.append(folder / name)
                if name + "-wal" in names:
                    out.append(folder / (name + "-wal"))
    return sorted(out, key=str)


class BadCount(ValueError):
    """A token count no call can have (`MAX_COUNT`, a string, a fraction, a negative)."""


def _int(v) -> int:
    if v is None:
        return 0
    n = whole_count(v)
    if n is None:
        raise BadCount(v)
    return n


def _tokens(t) -> tuple[int, int, int, int, int] | None:
    if not isinstance(t, dict):
        return None
    cache = t.get("cache") if isinstance(t.get("cache"), dict) else {}
    return _int(t.get("input")), _int(t.get("output")), _int(cache.get("read")), _int(cache.get("write")), \
        _int(t.get("reasoning"))


def reasoning_apart(t: dict, counts: tuple, provider: str, model: str, version: tuple | None) -> bool:
    """Whether a step's `reasoning` is outside its `output` (then billed on top of it, at the output rate).
    The step's own `total` decides when it adds up one way or the other; else the session's OpenCode
    release, when it is v1.3.16 or later; else the older releases' rule: apart only for Google's models."""
    i, o, cr, cw, r = counts
    total = t.get("total")
    if r and type(total) is int:
        if total == i + o + cr + cw + r:
            return True
        if total == i + o + cr + cw:
            return False
    if version is not None and version >= SEPARATE_FROM:
        return True
    return PROVIDERS.get(provider) == "google" or "gemini" in model  # (not Claude on google-vertex-anthropic)


def billed_output(rec: list) -> int:
    """The output tokens a record's call was billed for: its `output`, and its reasoning when apart."""
    return rec[OUT] + rec[REASONING] if rec[APART] else rec[OUT]


def release(v) -> tuple | None:
    """An OpenCode version string ("1.3.16", "v1.18.31-beta") as numbers, None when it is none."""
    if type(v) is not str:
        return None
    nums = []
    for piece in v.lstrip("v").split("-")[0].split(".")[:3]:
        if not piece.isdigit():
            return None
        nums.append(int(piece))
    return tuple(nums) if len(nums) == 3 and any(nums) else None


def records_for(msg: dict, steps: list[tuple[str, dict]], session: str | None = None,
                stats: ScanStats | None = None, version: tuple | None = None) -> list[list]:
    """Usage records of one assistant message: one per step-finish part, else the message itself; none
    (counted in `stats`) when its time or a count is not one a message can have."""
    stats = stats if stats is not None else ScanStats()
    if msg.get("role") != "assistant" or not isinstance(msg.get("id"), str):
        return []
    created = msg.get("time").get("created") if isinstance(msg.get("time"), dict) else None
    if type(created) not in (int, float):
        return []
    try:
        when = datetime.fromtimestamp(created / 1000, timezone.utc)
    except (OverflowError, ValueError, OSError):  # (a time past the year 9999, or NaN)
        when = None
    if not usable_time(when):
        stats.skip("bad_timestamp")
        return []
    ts = when.isoformat()
    try:
        return _records(msg, steps, session, ts, version)
    except BadCount:
        stats.skip("bad_token_count")
        return []


def _text(v) -> str | None:
    return v if type(v) is str and v else None


def _records(msg: dict, steps: list[tuple[str, dict]], session: str | None, ts: str,
             version: tuple | None) -> list[list]:
    path = msg.get("path") if isinstance(msg.get("path"), dict) else {}
    cwd = _text(path.get("cwd")) or _text(path.get("root"))  # the directory; labelled across agents later
    model, provider = _text(msg.get("modelID")) or "unknown", _text(msg.get("providerID")) or "other"
    sid = session or _text(msg.get("sessionID")) or ""
    rows = []
    for step_id, holder in [*steps, (None, msg)]:
        if step_id is None and rows:
            break  # (the message's own tokens: only when it has no step with usage)
        t = _tokens(holder.get("tokens"))
        if t and any(t):
            apart = reasoning_apart(holder["tokens"], t, provider, model, version)
            rows.append([ts, msg["id"], step_id, model, provider, *t, sid, cwd, apart, calls.money(holder.get("cost"))])
    return rows


def step_parts(db: sqlite3.Connection, stats: ScanStats) -> dict[str, list[tuple[str, dict]]]:
    """message id -> its (part id, step-finish part) rows: one per API request (Kilo CLI's store too)."""
    steps: dict[str, list] = {}
    for pid, mid, data in db.execute("SELECT id, message_id, data FROM part ORDER BY id"):
        if not isinstance(data, str) or '"step-finish"' not in data:
            continue
        try:
            part = json.loads(data)
        except ValueError:
            stats.malformed += 1
            continue
        if isinstance(part, dict) and part.get("type") == "step-finish":
            steps.setdefault(mid, []).append((pid, part))
        elif not isinstance(part, dict):
            stats.malformed += 1
    return steps


def _scan_db(path: Path, stats: ScanStats) -> list[list]:
    with sqlite_ro.connect(path) as db:
        steps = step_parts(db, stats)
        versions = session_versions(db)
        out = []
        ids, prints = set(), set()  # the 1.x messages, for OpenCode 2.x's copies of them (`_v2_messages`)
        for mid, sid, data in db.execute("SELECT id, session_id, data FROM message ORDER BY id"):
            msg = _row_json(data, stats)
            if msg is None:
                continue
            msg["id"] = mid
            ids.add(mid)
            if msg.get("role") == "assistant":
                prints.add(_fingerprint(sid, msg))
            out += records_for(msg, steps.get(mid, []), sid, stats, versions.get(sid))
        tables = _tables(db)
        if "session_message" in tables:
            out += _v2_messages(db, tables, ids, prints, stats)
        return out


def _row_json(data, stats: ScanStats) -> dict | None:
    """A message row's JSON object; None (counted malformed) when it is not one."""
    stats.candidates += 1
    try:
        msg = json.loads(data)
    except (ValueError, TypeError, RecursionError):
        msg = None
    if not isinstance(msg, dict):
        stats.malformed += 1
        return None
    return msg


V2 = (2, 0, 0)  # (OpenCode 2.x: output without the reasoning, billed on top, as since v1.3.16)


def _tables(db: sqlite3.Connection) -> set[str]:
    return {name for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}


def _fingerprint(sid, msg: dict) -> tuple:
    """What a copy of a 1.x message made under another id shares with it: session, time, tokens."""
    t = msg.get("tokens") if isinstance(msg.get("tokens"), dict) else {}
    cache = t.get("cache") if isinstance(t.get("cache"), dict) else {}
    created = msg.get("time").get("created") if isinstance(msg.get("time"), dict) else None
    return (sid, created, t.get("input"), t.get("output"), t.get("reasoning"), cache.get("read"), cache.get("write"))


def _v2_messages(db: sqlite3.Connection, tables: set[str], ids: set, prints: set, stats: ScanStats) -> list[list]:
    """OpenCode 2.x's store: `session_message` rows of type `assistant`, one API request each
    (`data`: `model {id, providerID}`, `tokens`, `cost`, `time {created, completed}`; no role, no
    path: the session's `session_v2.directory` is its cwd). On its first start 2.x copies the 1.x
    messages into it and keeps them: a copy under the same id, or under a new id with the same
    session, time and tokens, is counted once, from the 1.x rows (their step parts are the finer
    record; ccusage counts a copy under a new id twice)."""
    cols = sqlite_ro.columns(db, "session_message")
    created_col = "time_created" if "time_created" in cols else "NULL"
    rows = db.execute(f"SELECT id, session_id, data, {created_col} FROM session_message "  # noqa: S608 - a column name
                      "WHERE type = 'assistant' ORDER BY id")
    dirs = {}
    if "session_v2" in tables and "directory" in sqlite_ro.columns(db, "session_v2"):
        dirs = dict(db.execute("SELECT id, directory FROM session_v2"))
    out = []
    for mid, sid, data, created in rows:
        msg = _row_json(data, stats)
        if msg is None:
            continue
        model = msg.get("model") if isinstance(msg.get("model"), dict) else {}
        when = msg.get("time") if isinstance(msg.get("time"), dict) else {}
        if when.get("created") is None and created is not None:
            when = dict(when, created=created)
        v1 = {"role": "assistant", "id": mid, "time": when, "tokens": msg.get("tokens"),
              "modelID": model.get("id") or model.get("modelID") or msg.get("modelID"),
              "providerID": model.get("providerID") or msg.get("providerID"),
              "path": {"cwd": dirs.get(sid)}, "cost": msg.get("cost")}
        if mid in ids or _fingerprint(sid, v1) in prints:
            stats.skip("duplicate_call")
            continue
        out += records_for(v1, [], sid, stats, V2)
    return out


def session_versions(db: sqlite3.Connection) -> dict[str, tuple]:
    """session id -> the OpenCode release that made it (`session.version`), for `reasoning_apart`; empty
    for a store without the column."""
    try:
        rows = db.execute("SELECT id, version FROM session").fetchall()
    except sqlite3.Error:
        return {}
    return {sid: v for sid, raw in rows if (v := release(raw)) is not None}


def _scan_legacy(path: Path, stats: ScanStats) -> list[list]:
    stats.candidates += 1
    try:
        msg = json.loads(path.read_bytes())
    except (ValueError, RecursionError):
        msg = None
    if not isinstance(msg, dict):
        stats.malformed += 1
        return []
    msg.setdefault("id", path.stem)
    if not isinstance(msg["id"], str) or not msg["id"] or "/" in msg["id"] or msg["id"] in (".", ".."):
        stats.malformed += 1
        return []
    parts_dir = path.parents[2] / "part" / msg["id"]
    steps = []
    for p in sorted(parts_dir.glob("*.json")) if parts_dir.is_dir() else []:
        try:
            part = json.loads(p.read_bytes())
        except IsADirectoryError:  # (a folder named like a part: none)
            continue
        except (ValueError, RecursionError):
            part = None
        if not isinstance(part, dict):
            stats.malformed += 1
            continue
        if part.get("type") == "step-finish":
            steps.append((part.get("id") or p.stem, part))
    session = msg.get("sessionID") if isinstance(msg.get("sessionID"), str) else None
    return records_for(msg, steps, session or path.parent.name, stats)


def scan_file(path: Path, start: int = 0, state: dict | None = None) -> tuple[list[list], dict, int, ScanStats]:
    """Not line-based: read whole each time (end offset 0 means 'never resume')."""
    path = Path(path)
    stats = ScanStats(files=1, bytes=path.stat().st_size)
    if path.name.endswith(("-wal", "-shm")) or input_only(str(path)):
        return [], {}, 0, stats
    try:
        records = _scan_db(path, stats) if path.suffix == ".db" else _scan_legacy(path, stats)
    except sqlite3.Error as exc:
        stats.skip(f"unreadable_db:{type(exc).__name__}")
        records = []
    cwds = sorted({r[PROJECT] for r in records if r[PROJECT]})
    return records, {"db": path.suffix == ".db", "cwds": cwds}, 0, stats


def merge_records(old: list[list], new: list[list]) -> list[list]:
    return old + new


def partition_key(rec: list) -> str | None:
    """What every copy of a call shares (its message id, part of the dedup key below)."""
    return rec[MSG]


def events_from_files(per_file: Iterable[tuple[Path, list[list], dict]], stats: ScanStats) -> Iterator[UsageEvent]:
    """Database rows first, so they win over legacy JSON copies of the same message: by its id, for a
    legacy copy whose step parts are missing is keyed by the message alone, a database row by its step."""
    seen: set[tuple] = set()
    in_db: set[str] = set()
    ordered = sorted(per_file, key=lambda f: not f[2].get("db"))  # OpenCode stores are small
    for _path, records, state in ordered:
        labels = state.get("labels")
        db = state.get("db")
        for r in records:
            key = (r[MSG], r[STEP])
            if key in seen or (not db and r[MSG] in in_db):
                stats.skip("duplicate_call")
                continue
            seen.add(key)
            if db:
                in_db.add(r[MSG])
            yield UsageEvent(
                source=NAME, provider=PROVIDERS.get(r[PROVIDER], r[PROVIDER]), model=r[MODEL],
                occurred_at=datetime.fromisoformat(r[TS]), session_id=r[SESSION],
                project=project_label(r[PROJECT], labels),
                tokens=TokenCounts(input=r[IN], output=billed_output(r), cache_read=r[CR],
                                   cache_write_5m=r[CW], reasoning=r[REASONING], reported_input=r[IN] + r[CR]),
                # each step is its own API call: the step's id joins the message's, so a store keyed
                # by message id keeps every step (as the OpenCode-format agents' records do)
                message_id=r[MSG] if r[STEP] is None else f"{r[MSG]}:{r[STEP]}", request_id=r[STEP],
                agent_cost_usd=r[COST],
            )
