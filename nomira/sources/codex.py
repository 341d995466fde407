"""Codex CLI rollouts: `$CODEX_HOME/sessions/YYYY/MM/DD/rollout-*.jsonl`.

`token_count` events carry *cumulative* `total_token_usage`, re-emitted unchanged
on UI or rate-limit refreshes. Per-call usage is the delta between successive
totals; an unchanged total is not a new call. When the total restarts (it goes
backwards, or grows by less than the last call alone) or is missing,
`last_token_usage` is the call. `input_tokens`
includes `cached_input_tokens` and `cache_write_input_tokens` (models that bill
writing the cache: gpt-5.6 on), and `output_tokens` includes reasoning.
Forked / sub-agent files copy the parent's token lines, stamped with the time they
were copied: a line of a file whose `session_meta` names its parent (`forked_from_id`,
a thread_spawn's `parent_thread_id`) is a copy when the parent's file holds a line
of the same usage (cumulative and last: no two calls share both); identical
(timestamp, model, usage) calls are counted once across files (archived copies).
"""
from __future__ import annotations

import itertools
import json
import os
from datetime import timedelta
from pathlib import Path
from typing import Iterable, Iterator, Mapping

from nomira.sources import compressed, paths
from nomira.sources.project import label as project_label
from nomira.ledger.events import Allowance, TokenCounts, UsageEvent, parse_timestamp, provider_for_model, whole_count
from nomira.sources.scan import LineScan, ScanStats, scan_compressed_lines, scan_json_lines

NAME = "codex"
MARKERS = (b'"token_count"', b'"turn_context"', b'"session_meta"')
COUNTS_CHECKED = True  # (`_usage_tuple`: scan.events_of need not check its events again)
FALLBACK_MODEL = "gpt-5"  # builds from Sept 2025 logged no turn_context; flagged as assumed
USAGE_FIELDS = ("input_tokens", "cached_input_tokens", "output_tokens", "reasoning_output_tokens", "total_tokens",
                "cache_write_input_tokens")

# Record layout: ts, model, model_is_fallback, input (incl. cached and written), cached, output, reasoning,
# total, allowance, cache written, the line's usage (cumulative, last: what a copy of it shares)
TS, MODEL, FALLBACK, IN, CACHED, OUT, REASONING, TOTAL, ALLOW, WRITTEN, USAGE = range(11)


def default_paths(env: Mapping[str, str] = os.environ) -> list[Path]:
    return paths.codex_roots(env)


def find_files(roots: Iterable[Path]) -> list[Path]:
    """Rollout files, plain or compressed (`.jsonl.zst`: Codex compresses a rollout a week on); a file
    present in both sessions/ and archived_sessions/ counts from sessions/, a rollout present both
    plain and compressed (caught mid-compression) counts from the plain one."""
    seen: dict[str, Path] = {}
    for root in roots:
        for p in paths.files_under(root, is_rollout):
            key = p.name.removesuffix(".zst")
            if key not in seen or seen[key].name.endswith(".zst") and not p.name.endswith(".zst"):
                seen[key] = p
    return sorted(seen.values(), key=str)


def is_rollout(name: str, _parent: str = "") -> bool:
    return name.endswith(".jsonl") or name.endswith(".jsonl.zst")


BAD = ()  # a usage with a count no call can have (`_usage_tuple`)


def _usage_tuple(u) -> tuple[int, ...] | None:
    """The usage's counts; None without a usage, BAD when a count is a string, a fraction, negative or
    past `MAX_COUNT` (the line is counted and skipped)."""
    if not isinstance(u, dict):
        return None
    vals = []
    for f in USAGE_FIELDS:
        v = u.get(f)
        if v is None:
            v = 0
        else:
            v = whole_count(v)  # (a float of whole value is its integer: `12.0` is 12)
            if v is None:
                return BAD
        vals.append(v)
    if not vals[4]:
        vals[4] = vals[0] + vals[2]
    return tuple(vals)


def _number(v, kind):
    """v as `kind` when it is a finite JSON number of a sane size, else None."""
    if type(v) not in (int, float) or not -1e15 < v < 1e15:  # (also NaN, which compares false)
        return None
    return kind(v)


def _allowance(rl) -> list | None:
    if not isinstance(rl, dict):
        return None
    out: list = []
    for key in ("primary", "secondary"):  # (a value of another type than the protocol's is left out)
        w = rl.get(key) if isinstance(rl.get(key), dict) else {}
        out += [_number(w.get("used_percent"), float), _number(w.get("window_minutes"), int),
                _number(w.get("resets_at"), int)]
    plan = rl.get("plan_type")
    out.append(plan if isinstance(plan, str) else None)
    return out if any(v is not None for v in out) else None


def merge_records(old: list[list], new: list[list]) -> list[list]:
    return old + new


def new_state(path: Path) -> dict:
    return {"prev": None, "model": None, "session": None, "cwd": None, "replay": None, "allowance": None,
            "parent": None, "meta_seen": False, "made": None}


def _parent_of(meta: dict) -> str | None:
    """The session a fork or a sub-agent was made from (its `session_meta` says), else None."""
    if isinstance(meta.get("forked_from_id"), str) and meta["forked_from_id"]:
        return meta["forked_from_id"]
    source = meta.get("source")
    spawn = source.get("subagent") if isinstance(source, dict) else None
    spawn = spawn.get("thread_spawn") if isinstance(spawn, dict) else None
    parent = spawn.get("parent_thread_id") if isinstance(spawn, dict) else None
    return parent if isinstance(parent, str) and parent else None


def _subagent_replay_second(path: Path) -> tuple[str | None, bool]:
    """A thread_spawn sub-agent file starts with a burst of the parent's token lines, stamped as they
    were copied; return (the burst's first time, so lines up to `BURST` after it are skipped, whether
    the file decides it yet). A burst is its first token lines within `BURST` of the first one: two or
    more of them (ccusage 20.0.24's rule, measured on its binary: a copy 70 ms into the next clock
    second is still the burst), or a single one in the second of the file's `session_meta` (the spawn
    itself: a parent with one call before the spawn replays one line, and no call of the sub-agent's
    own is answered within the second it was spawned). A line repeating the first one's total is a
    refresh of it (a rate-limit update), not a second line of a burst. The copy is written as the
    sub-agent is spawned: a burst must start within `SPAWN_WINDOW` of the `session_meta` line (the
    sub-agent's own first calls, minutes later and under a second apart, are not a copy: ccusage 20.0.24
    drops them). A sub-agent file holding no token line yet, or a single one outside the spawn second,
    does not decide it: the next line may make a burst of it."""
    if compressed.is_compressed(str(path)):
        return _compressed_replay_second(path)
    with open(path, "rb") as fh:
        if b"thread_spawn" not in fh.read(HEAD):
            return None, True
    return _replay_second(LineScan(path, REPLAY_MARKERS))


BURST = timedelta(seconds=1)
SPAWN_WINDOW = timedelta(seconds=5)


def in_burst(ts: str, first: str) -> bool:
    """Whether a token line stamped `ts` is within `BURST` of a replay burst's first line."""
    t, f = parse_timestamp(ts), parse_timestamp(first)
    return t is not None and f is not None and timedelta(0) <= t - f <= BURST


HEAD = 16 * 1024  # (where a sub-agent's session_meta names its thread_spawn)
REPLAY_MARKERS = (b'"token_count"', b'"session_meta"')


def _compressed_replay_second(path: Path) -> tuple[str | None, bool]:
    lines = compressed.lines(path)
    if lines is None:
        return None, True
    try:
        head, kept = b"", []
        for line in lines:
            kept.append(line)
            head += line[:HEAD]
            if len(head) >= HEAD:
                break
        if b"thread_spawn" not in head[:HEAD]:
            return None, True
        marked = (line for line in itertools.chain(kept, lines) if any(m in line for m in REPLAY_MARKERS))
        return _replay_second(marked)
    except Exception:  # noqa: BLE001 - a damaged frame: the scan counts the file (scan_compressed_lines)
        return None, True


def _near_spawn(first: str, spawned_at: str | None) -> bool:
    """Whether a burst starting at `first` began as the sub-agent was spawned (no spawn time logged: yes)."""
    t, s = parse_timestamp(first), parse_timestamp(spawned_at) if spawned_at else None
    return s is None or t is None or abs(t - s) <= SPAWN_WINDOW


def _replay_second(lines: Iterable[bytes]) -> tuple[str | None, bool]:
    spawned_at, first, first_total = None, None, None  # (the spawn second: spawned_at[:19])
    for line in lines:
        try:
            d = json.loads(line)
        except ValueError:
            continue
        payload = d.get("payload") if isinstance(d, dict) else None
        ts = d.get("timestamp") if isinstance(d, dict) else None
        if not isinstance(payload, dict) or not isinstance(ts, str) or len(ts) < 19:
            continue
        if d.get("type") == "session_meta":
            spawned_at = spawned_at or ts
            continue
        if not isinstance(payload.get("info"), dict):
            continue
        total = payload["info"].get("total_token_usage")
        if first is not None:
            if total is not None and total == first_total:
                continue  # (the same total again: a rate-limit refresh of the first call, no burst)
            burst = in_burst(ts, first) and _near_spawn(first, spawned_at)
            return (first if burst or first[:19] == (spawned_at or "")[:19] else None), True
        first, first_total = ts, total
    if first is not None and first[:19] == (spawned_at or "")[:19]:
        return first, True
    return None, False


def scan_file(path: Path, start: int = 0, state: dict | None = None) -> tuple[list[list], dict, int, ScanStats]:
    if compressed.is_compressed(str(path)):  # (a rollout Codex compressed a week on: read whole)
        state = new_state(path)
        state["replay"] = _subagent_replay_second(path)[0]
        return scan_compressed_lines(path, state, MARKERS, _visit_line)
    state = dict(state) if state else new_state(path)
    decided = True
    if start == 0:
        state["replay"], decided = _subagent_replay_second(path)
    records, state, end, stats = scan_json_lines(path, start, state, MARKERS, _visit_line)
    if not decided:  # (counted as it is now; read whole again, not resumed, until its first lines decide it)
        end = 0
    return records, state, end, stats


def _visit_line(d: dict, state: dict, stats: ScanStats) -> list[list] | None:
    if not isinstance(d.get("payload"), dict):
        stats.malformed += 1
        return None
    rec = _visit(d, state, stats)
    return [rec] if rec is not None else None


def _model_of(payload: dict) -> str | None:
    for holder in (payload, payload.get("info") if isinstance(payload.get("info"), dict) else {}):
        for key in ("model", "model_name"):
            if isinstance(holder.get(key), str) and holder[key]:
                return holder[key]
    return None


def _visit(d: dict, state: dict, stats: ScanStats) -> list | None:
    kind, payload, ts = d.get("type"), d["payload"], d.get("timestamp")
    if kind == "session_meta":  # the file's own, its first: a fork or sub-agent copies its parent's after it
        if state["session"] is None and isinstance(payload.get("id"), str):
            state["session"] = payload["id"]
        if state["cwd"] is None and isinstance(payload.get("cwd"), str):
            state["cwd"] = payload["cwd"]
        if not state.get("meta_seen"):
            state["meta_seen"] = True
            state["parent"] = _parent_of(payload)
            state["made"] = ts if isinstance(ts, str) else None  # (when it was forked or spawned)
        return None
    if kind == "turn_context":
        state["model"] = _model_of(payload) or state["model"]
        if isinstance(payload.get("cwd"), str) and not state["cwd"]:
            state["cwd"] = payload["cwd"]
        return None
    if kind != "event_msg" or payload.get("type") != "token_count":
        return None
    if not isinstance(ts, str) or parse_timestamp(ts) is None:
        stats.skip("no_timestamp")
        return None
    allowance = _allowance(payload.get("rate_limits"))
    if allowance is not None:
        state["allowance"] = [ts, allowance]
    info = payload.get("info")
    if not isinstance(info, dict):
        return None
    total, last = _usage_tuple(info.get("total_token_usage")), _usage_tuple(info.get("last_token_usage"))
    if total is BAD or last is BAD:
        stats.skip("bad_token_count")
        return None
    prev = tuple(state["prev"]) if state["prev"] is not None else None
    if state["replay"] is not None:
        if in_burst(ts, state["replay"]):
            if total is not None:
                state["prev"] = list(total)
                # (what a fork of this sub-agent copies again: `events_from_files`)
                state["replayed"] = [*(state.get("replayed") or ()), (ts, total, last)]
            else:
                _advance(state, prev, last)
            stats.skip("subagent_replay")
            return None
        state["replay"] = None
    if total is not None:
        state["prev"] = list(total)
        if prev is None:
            delta = last or total
        elif total == prev:
            stats.skip("repeated_total")
            return None
        else:
            delta = tuple(t - p for t, p in zip(total, prev))
            # A real delta contains the last call; one that went negative or is smaller than the
            # last call means the counter restarted, and then last_token_usage is the call.
            if any(d < 0 for d in delta) or (last is not None and any(d < x for d, x in zip(delta, last))):
                stats.skip("counter_reset_uses_last")
                delta = last or total
    else:
        delta = last
        _advance(state, prev, last)
    if delta is None or not any(delta[:4]):
        return None
    model = _model_of(payload) or state["model"]
    inp = delta[0]
    cached = min(delta[1], inp)
    written = min(delta[5], inp - cached)
    return [ts, model or FALLBACK_MODEL, model is None, inp, cached, delta[2], delta[3], delta[4], allowance, written,
            (total, last)]




def _advance(state: dict, prev: tuple | None, last: tuple | None) -> None:
    """A line without a running total moves it on by its call: the next total holds that call, which
    is not to be counted again."""
    if prev is not None and last is not None:
        state["prev"] = [p + x for p, x in zip(prev, last)]


def _to_allowance(a: list | None) -> Allowance | None:
    if not a:
        return None
    return Allowance(*a)


def session_of(path: Path, state: dict) -> str:
    return state.get("session") or _file_session(path)


def _file_session(path) -> str:
    return os.path.basename(path).removesuffix(".zst").removesuffix(".jsonl")


def project_of(state: dict) -> str:
    return project_label(state.get("cwd"), state.get("labels"))


def partition_key(rec: list) -> str | None:
    """What every copy of a call shares: its usage where the line has a running total (a fork's copy is
    stamped anew), else its timestamp (part of the dedup key below)."""
    return rec[TS] if rec[USAGE][0] is None else repr(rec[USAGE])


def events_from_files(per_file: Iterable[tuple[Path, list[list], dict]], stats: ScanStats) -> Iterator[UsageEvent]:
    per_file = list(per_file)
    held_by: dict[tuple, dict[str, list[str]]] = {}  # a line's usage -> session -> times its files hold it
    for path, records, state in per_file:
        session = session_of(path, state)
        for r in records:
            if r[USAGE][0] is not None:
                held_by.setdefault(r[USAGE], {}).setdefault(session, []).append(r[TS])
        for ts, total, last in state.get("replayed") or ():  # (a sub-agent's copies of its parent's lines)
            held_by.setdefault((total, last), {}).setdefault(session, []).append(ts)
    seen: set[tuple] = set()
    for path, records, state in per_file:
        session, project, parent = session_of(path, state), project_of(state), state.get("parent")
        made = parse_timestamp(state["made"]) if parent is not None and state.get("made") else None
        for r in records:
            if parent is not None and r[USAGE][0] is not None and _copied(held_by[r[USAGE]].get(parent), made):
                stats.skip("copied_from_parent")  # (a fork's or a sub-agent's copy of its parent's call)
                continue
            key = (r[TS], r[MODEL], r[IN], r[CACHED], r[OUT], r[REASONING], r[TOTAL], r[WRITTEN])
            if key in seen:
                stats.skip("duplicate_call")
                continue
            seen.add(key)
            yield UsageEvent(
                source=NAME, provider=provider_for_model(r[MODEL], default="openai"), model=r[MODEL],
                occurred_at=parse_timestamp(r[TS]), session_id=session, project=project,
                tokens=TokenCounts(input=r[IN] - r[CACHED] - r[WRITTEN], output=r[OUT], cache_read=r[CACHED],
                                   cache_write_5m=r[WRITTEN], reasoning=r[REASONING], reported_input=r[IN]),
                model_is_fallback=r[FALLBACK], allowance=_to_allowance(r[ALLOW]),
            )


def _copied(times: list[str] | None, made) -> bool:
    """Whether a line of a fork (or a forked sub-agent) made at `made` copies its parent's line of the
    same usage, which the parent's file holds at `times`: a copy is of a call made before the fork (the
    fork's own call that happens to equal the parent's next one, same prompt, same total, is not)."""
    if not times:
        return False
    if made is None:
        return True
    return any((t := parse_timestamp(ts)) is not None and t <= made for ts in times)


def latest_allowance(states: Iterable[dict]) -> tuple[str, Allowance] | None:
    best = None
    for st in states:
        a = st.get("allowance")
        if a and (best is None or a[0] > best[0]):
            best = a
    return (best[0], Allowance(*best[1])) if best else None


TOOL_MARKERS = (b'"function_call', b'"custom_tool_call', b'"token_count"', b'"session_meta"')
READERS = {"cat", "sed", "head", "tail", "nl", "bat", "less", "more"}
SHELL_READ = "Read (shell)"


def iter_tool_calls(path: Path) -> Iterator[tuple]:
    """For the local optimizer only (tool inputs and paths never enter a UsageEvent):
    ("use", session, call time, call_id, tool, file) for each tool call a response made, its
    time the `token_count` that closed the response (the event's time); ("result", call_id,
    characters of its output) for each output. A shell command that only reads a file
    (`cat`, `sed -n`, `head`, `nl` ...) is the tool "Read (shell)" on that file."""
    session = _file_session(path)
    buffered: list[tuple] = []
    for line in _marked_lines(path, TOOL_MARKERS):
        try:
            d = json.loads(line)
            kind, payload = d.get("type"), d["payload"]
            ptype = payload.get("type")
        except (ValueError, KeyError, TypeError, AttributeError, RecursionError):
            continue
        if kind == "session_meta" and isinstance(payload.get("id"), str):
            session = payload["id"]
        elif ptype in ("function_call", "custom_tool_call") and isinstance(payload.get("call_id"), str):
            name = payload.get("name") if isinstance(payload.get("name"), str) else "?"
            target = _read_target(payload.get("arguments")) if ptype == "function_call" else None
            buffered.append((payload["call_id"], SHELL_READ if target else name, target))
        elif ptype in ("function_call_output", "custom_tool_call_output") and isinstance(payload.get("call_id"), str):
            out = payload.get("output")
            yield "result", payload["call_id"], len(out) if isinstance(out, str) else len(json.dumps(out))
        elif ptype == "token_count" and isinstance(payload.get("info"), dict) and buffered:
            when = parse_timestamp(d.get("timestamp")) if isinstance(d.get("timestamp"), str) else None
            for call_id, name, target in buffered:
                yield "use", session, when, call_id, name, target
            buffered = []


def _marked_lines(path: Path, markers: tuple[bytes, ...]) -> Iterator[bytes]:
    """The lines holding a marker, of a plain or a compressed rollout (none when it cannot be decoded)."""
    if not compressed.is_compressed(str(path)):
        yield from LineScan(path, markers)
        return
    try:
        for line in compressed.lines(path) or ():
            if any(m in line for m in markers):
                yield line
    except Exception:  # noqa: BLE001 - a damaged frame: the calls before it were given
        return


def _read_target(arguments) -> str | None:
    """The file a read-only shell command prints, else None (anything piped or chained is not a read)."""
    import shlex
    try:
        args = json.loads(arguments) if isinstance(arguments, str) else None
    except (ValueError, RecursionError):
        return None
    cmd = (args or {}).get("command", (args or {}).get("cmd")) if isinstance(args, dict) else None
    if isinstance(cmd, list) and len(cmd) == 3 and cmd[1] in ("-lc", "-c") and isinstance(cmd[2], str):
        cmd = cmd[2]
    if isinstance(cmd, list):
        cmd = " ".join(str(c) for c in cmd)
    if not isinstance(cmd, str) or any(c in cmd for c in "|;&><`$"):
        return None
    try:
        words = shlex.split(cmd)
    except ValueError:
        return None
    if len(words) < 2 or words[0] not in READERS:
        return None
    last = words[-1]
    if last.startswith("-") or (words[0] == "sed" and len(words) == 2):
        return None
    return last
