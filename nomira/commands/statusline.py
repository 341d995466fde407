"""`nomira statusline`: one line for Claude Code's status bar, from the JSON it pipes on stdin.

    Opus 4.6 · session $1.23 · today $4.56 · block $3.10, $1.20/h, 2 h 10 min left · 5h 42% · 7d 18%

- session: Nomira's own pricing of the session's transcript (and its sub-agent files), not
  Claude Code's estimate; Claude's `cost.total_cost_usd` is shown beside it only when the two
  differ by more than 1 cent and 1%, so a mismatch is visible without cluttering the usual case.
- today: every Claude Code call of the local day. block: the active 5-hour block and its burn
  rate (as `nomira blocks`), over the calls of the last 10 hours.
- 5h / 7d: `rate_limits` from the payload (Claude Code >= 2.1.80, subscribers only), which are
  also recorded for `nomira limits`.

Speed: it reads only the session's files and the transcripts written since the start of the
window above (a file not modified since then holds no call after it), through the scan cache,
and keeps its last line keyed by those files' sizes and mtimes. Imports are lazy; installed,
the `nomira-statusline` entry point skips the general CLI. Anything wrong (empty or malformed
stdin, unreadable files) prints a short neutral line and exits 0: a status line never fails.
"""
from __future__ import annotations

import json
import os
import sys
from datetime import datetime, timedelta, timezone
from collections.abc import Mapping

NEUTRAL = "nomira: no session data"
RECENT = timedelta(hours=10)
EXTEND_MAX = 16  # looks back this many times (twice as far each time) for the start of a run of calls without a 5-hour gap
RESULT_FILE = "statusline.json"
LIMITS_SEEN = "statusline_limits.json"  # the last render's rate-limit figures and parts
PERSIST_BYTES = 1 << 20
BUSY_MS = 100
LIMITS_REFRESH = timedelta(minutes=5)


def add_arguments(name, p) -> None:
    p.set_defaults(func=cmd_statusline)


def cmd_statusline(args) -> int:
    return main()


def main(stdin=None, out=None, env: Mapping[str, str] = os.environ, now: datetime | None = None) -> int:
    stdin = stdin if stdin is not None else sys.stdin.buffer
    out = out if out is not None else sys.stdout
    try:
        line = render(stdin.read(), env, now or datetime.now(timezone.utc))
    except Exception:  # noqa: BLE001 - a status line shows a neutral line, never a traceback
        line = NEUTRAL
    out.write(line + "\n")
    out.flush()
    return 0


def _payload(raw: bytes) -> dict | None:
    try:
        doc = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return None
    return doc if isinstance(doc, dict) else None


def render(raw: bytes, env: Mapping[str, str], now: datetime) -> str:
    doc = _payload(raw)
    if doc is None:
        return NEUTRAL
    limits_part = _limits(doc.get("rate_limits"), env, now)
    transcript = doc.get("transcript_path")
    model = doc.get("model") if isinstance(doc.get("model"), dict) else {}
    name = model.get("display_name") if isinstance(model.get("display_name"), str) else None
    claude_cost = (doc.get("cost") or {}).get("total_cost_usd") if isinstance(doc.get("cost"), dict) else None
    name = "".join(ch for ch in name if ch.isprintable()) if name else None  # (no escape reaches the terminal)
    parts = [name[:40]] if name else []
    if isinstance(transcript, str) and os.path.isfile(transcript):
        parts += _usage_parts(transcript, claude_cost, env, now)
    parts += limits_part + budget_segment(env, now)
    return " · ".join(parts) if parts else NEUTRAL


def budget_segment(env, now: datetime) -> list[str]:
    """The budget furthest past a threshold, from the last `nomira budget check|list` or report
    (one small file read: the status line never evaluates budgets itself)."""
    from nomira.dirs import state_home
    try:
        rows = json.loads((state_home(env) / "budgets_status.json").read_text())
        live = [r for r in rows if r.get("crossed") and r.get("end") and datetime.fromisoformat(r["end"]) > now]
    except (OSError, ValueError, TypeError, AttributeError):
        return []
    if not live:
        return []
    top = max(live, key=lambda r: r["percent"])
    return [f"budget {str(top['name'])[:20]} {top['percent']:.0f}%"]


def _limits(rate_limits, env, now) -> list[str]:
    """The 5h / 7d parts, and the figures recorded for `nomira limits` when they changed or were last
    written over LIMITS_REFRESH ago. A subscriber's every render sends them: while the figures and the
    state file are as the last render left them, its parts are reused without the snapshots' module."""
    if not isinstance(rate_limits, dict):
        return []
    from nomira.dirs import limits_state, state_home
    seen_path = state_home(env) / LIMITS_SEEN
    figures = json.dumps(rate_limits, sort_keys=True, default=str)
    try:
        seen = json.loads(seen_path.read_text())
        if (seen["figures"] == figures and seen["state"] == _stamp(limits_state(env))
                and timedelta(0) <= now - datetime.fromisoformat(seen["written"]) <= LIMITS_REFRESH):
            return seen["parts"]
    except (OSError, ValueError, TypeError, KeyError, AttributeError):
        pass
    from nomira.ledger import limits
    snaps = limits.from_claude_windows(rate_limits, now, "statusline")
    written = now
    if snaps:
        known = {(s.window, s.used_percent, s.resets_at): s.observed_at for s in limits.load_state(env)
                 if s.agent == "claude_code" and s.source == "statusline"}
        ages = [known.get((s.window, s.used_percent, s.resets_at), now - 2 * LIMITS_REFRESH) for s in snaps]
        if any(now - at > LIMITS_REFRESH for at in ages):  # a change, or the same figures written over 5 minutes ago
            try:
                limits.save_state(snaps, env)
            except OSError:
                return _limit_parts(snaps)  # the line still shows them; `nomira limits` will not
        else:
            written = min(ages)
    parts = _limit_parts(snaps)
    _write_json(seen_path, {"figures": figures, "state": _stamp(limits_state(env)),
                            "written": written.isoformat(), "parts": parts})
    return parts


def _limit_parts(snaps) -> list[str]:
    label = {"five_hour": "5h", "seven_day": "7d"}
    return [f"{label[s.window]} {_percent(s.used_percent)}%" for s in snaps if s.window in label]


def _percent(used: float) -> str:
    """Rounded as Claude Code shows it, except that under 100 it never reads 100 (99.5% is not the limit)."""
    return f"{min(used, 99.0) if used < 100 else used:.0f}"


def _stamp(path) -> list | None:
    """[size, mtime_ns] of a file the line depends on (as JSON keeps it), None when it is not there."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return [st.st_size, st.st_mtime_ns]


def _write_json(path, doc) -> None:
    from nomira.dirs import write_atomic
    try:
        write_atomic(path, json.dumps(doc))
    except OSError:
        pass  # a status line never fails on its own files


# --- usage: session, today, block -------------------------------------------------

def _recent_files(env, cutoff: float) -> dict[str, tuple[int, int]]:
    """Claude transcripts modified since `cutoff` (epoch s), the only ones that can hold later calls,
    with their (size, mtime_ns): every transcript of the history is stated on every render, once (the
    stat that picks a file is the one its fingerprint keeps)."""
    from nomira.sources.paths import claude_roots, walk_paths
    stat = os.stat
    recent = {}
    for root in claude_roots(env):
        for f in walk_paths(root, _transcript_name):
            try:
                st = stat(f)
            except OSError:
                continue
            if st.st_mtime >= cutoff:
                recent[f] = (st.st_size, st.st_mtime_ns)
    return recent


def _transcript_name(name: str, _parent: str) -> bool:
    return name.endswith(".jsonl")


def _session_files(transcript: str) -> list[str]:
    files = [transcript]
    sub = os.path.join(transcript[:-6] if transcript.endswith(".jsonl") else transcript, "subagents")
    try:
        files += [e.path for e in os.scandir(sub) if e.name.endswith(".jsonl")]
    except OSError:
        pass
    return files


def _fingerprint(files: list[str], stated: dict[str, tuple[int, int]]) -> list[tuple]:
    """(path, size, mtime_ns) of each of `files` that is there (`stated`: those already stated)."""
    return [(f, *st) for f in files if (st := stated.get(f) or _stamp(f)) is not None]


def _digest(fp: list[tuple]) -> str:
    """The fingerprint as a short key: a history touched today has thousands of files, and their JSON
    in the kept result would be written, read and compared on every render."""
    from nomira.digests import sha1
    text = "\n".join(f"{f}\0{size}\0{mtime}" for f, size, mtime in fp)
    return sha1()(text.encode("utf-8", "surrogateescape")).hexdigest()


def _usage_parts(transcript: str, claude_cost, env, now: datetime) -> list[str]:
    local_now = now.astimezone()
    # (the offset in force at midnight, not now's: on the day clocks go back they differ by an hour)
    midnight = datetime.combine(local_now.date(), datetime.min.time()).astimezone()
    cutoff = min(midnight, local_now - RECENT)
    recent = _recent_files(env, cutoff.timestamp())
    files = sorted(set(_session_files(transcript)) | recent.keys())
    fp = _fingerprint(files, recent)
    from nomira.dirs import state_home
    result_path = state_home(env) / RESULT_FILE
    key = json.dumps([transcript, claude_cost, f"{local_now:%Y-%m-%d %H:%M}", _digest(fp), _prices_stamp(env)])
    try:
        cached = json.loads(result_path.read_text())
        if cached.get("key") == key:
            return cached["parts"]
    except (OSError, ValueError, AttributeError, KeyError):
        pass
    files = [f for f, _s, _m in fp]
    parts, run_start = _compute(transcript, files, claude_cost, env, now, cutoff)
    from nomira.reports.periods import BLOCK  # (imported by the computation)
    for _ in range(EXTEND_MAX):  # (the active block's window is fixed by where its run of calls began)
        if run_start is None or run_start - cutoff >= BLOCK:
            break
        # (a file with a call since then was written since then; twice as far back each time: a run of
        # calls days long, an hourly job, is found in a few passes)
        cutoff = run_start - max(BLOCK, now - run_start)
        files = sorted(set(files) | _recent_files(env, cutoff.timestamp()).keys())
        parts, run_start = _compute(transcript, files, claude_cost, env, now, cutoff)
    _write_json(result_path, {"key": key, "parts": parts})
    return parts


def _prices_stamp(env) -> list:
    """What the rates in force depend on besides the code: override and feed files (size, mtime)."""
    from nomira.pricing.stamp import price_files
    return [_stamp(p) for p in price_files(env)]


def _unscanned_bytes(files: list[str], entries: dict) -> int:
    """Bytes the scan cache has not seen yet: below PERSIST_BYTES, re-reading them next time is
    cheaper than writing the cache (a commit and a WAL checkpoint) on every render."""
    n = 0
    for f in files:
        try:
            size = os.stat(f).st_size
        except OSError:
            continue
        e = entries.get(f)
        n += size - (e.offset if e is not None and e.offset <= size else 0)
    return n


def load_events(files: list[str], env) -> list:
    """Deduplicated Claude Code events of `files`, through the scan cache (which is updated for
    these files only: the other files' entries are kept, not pruned)."""
    from nomira.sources import scancache
    from nomira.sources.scan import ScanStats, iter_scan
    from nomira.sources import claude_code
    import sqlite3

    def scan(entries, writer):
        return [(p, recs, st) for p, recs, st, _stats in iter_scan(claude_code, files, entries, 1, None, writer)]
    cache = writer = entries = None
    try:
        cache = scancache.ScanCache(scancache.default_path(env))
        cache.db.execute(f"PRAGMA busy_timeout={BUSY_MS}")  # a long `nomira` run may hold the write lock
        entries = cache.load("claude")
        if _unscanned_bytes(files, entries) >= PERSIST_BYTES:
            writer = cache.writer("claude")
        per_file = scan(entries, writer)
        if writer is not None:
            writer.commit()
    except (sqlite3.Error, OSError, scancache.CacheDamaged) as exc:  # read the files whole, write nothing
        if isinstance(exc, scancache.CacheDamaged):  # (not when there is no cache, or it is busy)
            cache.drop()  # the next render makes a new one
            cache = None
        per_file = scan(None, None)
    finally:
        if cache is not None:
            cache.close()
    return list(claude_code.events_from_files(per_file, ScanStats()))


def _compute(transcript: str, files: list[str], claude_cost, env, now: datetime,
             cutoff: datetime) -> tuple[list[str], datetime | None]:
    """(the usage parts, the first call of the run of calls still going on: no gap of 5 hours between them
    and none since the last, None without one), over the calls since `cutoff` for the block."""
    from nomira.pricing.engine import Pricer
    from nomira.pricing.feed import resolved
    from nomira.reports.periods import BLOCK, blocks
    from nomira.reports.render import usd
    from nomira.sources.claude_code import file_identity
    events = load_events(files, env)
    pricer = Pricer(resolved(env))
    session = file_identity(transcript)[0]
    today = now.astimezone().date()
    totals = {"session": [0.0, ""], "today": [0.0, ""]}  # USD, "*" when a call is unpriced
    recent = []
    for e in events:
        cost = pricer(e)
        for scope, hit in (("session", e.session_id == session),
                           ("today", e.occurred_at.astimezone().date() == today)):
            if hit:
                totals[scope][0] += cost.total_usd if cost is not None else 0.0
                totals[scope][1] = totals[scope][1] or ("*" if cost is None else "")
        if e.occurred_at >= cutoff:
            recent.append((e, cost))
    session_usd = totals["session"][0]
    parts = [f"session {usd(session_usd)}{totals['session'][1]}"]
    if isinstance(claude_cost, (int, float)) and not isinstance(claude_cost, bool):
        if abs(claude_cost - session_usd) > max(0.01, 0.01 * session_usd):
            parts[0] += f" (Claude says {usd(claude_cost)})"
    parts.append(f"today {usd(totals['today'][0])}{totals['today'][1]}")
    times = sorted(e.occurred_at for e, _c in recent)
    run_start = None
    if times and now - times[-1] < BLOCK:
        run_start = times[-1]
        for at in reversed(times):
            if run_start - at >= BLOCK:
                break
            run_start = at
    active = [b for b in blocks(recent, timezone.utc) if b.is_active(now)]
    if active:
        from nomira.reports.limits import duration
        b = active[-1]
        burn = b.burn(now)
        rate = "" if burn is None else f", {usd(burn['cost_per_hour_usd'])}/h"  # (one call: no rate yet)
        left = b.minutes_left(now)
        parts.append(f"block {usd(b.tally.total_usd)}{rate}, {duration(timedelta(minutes=left))} left")
    return parts, run_start


if __name__ == "__main__":
    sys.exit(main())
