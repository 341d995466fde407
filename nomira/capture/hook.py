"""`nomira hook claude|codex|flush`: what an agent runs at the end of a turn.

It ships just that session's new calls (the scan cache reads only the bytes added since the
last run; the ship ledger skips calls the destination already has) and returns at once: a
remote collector is never waited for here, the batch goes to the spool and a detached
`nomira hook flush` delivers it. A hook never fails or blocks its agent: whatever happens it
exits 0 and writes errors to `$XDG_STATE_HOME/nomira/hook.log`.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import traceback
from contextlib import redirect_stderr
from pathlib import Path
from typing import Mapping

from nomira import dirs
from nomira.sources import paths
from nomira.capture import destination
from nomira.capture.convert import with_channel

MAX_PAYLOAD = 1 << 20  # a hook payload is a few hundred bytes; never read an unbounded stdin
LOG_MAX = 1 << 20


def log_path(env: Mapping[str, str] = os.environ) -> Path:
    return dirs.state_home(env) / "hook.log"


def log(line: str, env: Mapping[str, str] = os.environ) -> None:
    """One line to hook.log (rotated to hook.log.1 past 1 MB); never raises."""
    try:
        path = log_path(env)
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.exists() and path.stat().st_size > LOG_MAX:
            os.replace(path, path.with_suffix(".log.1"))
        with open(path, "a") as fh:
            fh.write(f"{time.strftime('%Y-%m-%dT%H:%M:%S%z')} {line.rstrip()}\n")
    except OSError:
        pass


def ship_args(dest: dict, files: list[Path] | None = None, source: str = "claude") -> argparse.Namespace:
    """The options `nomira ship` would have had, for `Run`, `wire_events` and `deliver`."""
    return argparse.Namespace(
        command="hook", path=files, source=source, since=None, until=None, timezone=None, regime="auto",
        demo=False, no_cache=False, json=False, no_color=True, wide=True,
        remote=dest.get("remote"), token=dest.get("token"),
        db=Path(dest["db"]).expanduser() if dest.get("db") else None,
        developer=dest.get("developer"), tenant=dest.get("tenant"), tag=[])


def ship_files(files: list[Path], source: str, env: Mapping[str, str] = os.environ) -> tuple[dict, list[dict]]:
    """Ship the new calls of these files to the configured destination (queued when remote);
    (delivery result, every wire event of the files)."""
    from nomira.cli import Run
    from nomira.commands.ship import _remote, _tags, open_ledger, pin_labels, wire_events
    args = ship_args(destination.load(env), files, source)
    ledger, dest, _db = open_ledger(args, _remote(args), flush=False)
    events, limits = [], []

    def new_only(wire: list[dict]) -> list[dict]:  # a long session: check only what was not sent yet
        events.extend(wire)
        return with_channel(ledger.new_events(dest, wire), "hook")
    run = Run(args, env)
    shipped = wire_events(run, _tags(args), new_only, limits)
    result = deliver_queued(args, shipped, env, limits)
    pin_labels(run)
    return result, events


def deliver_queued(args, events: list[dict], env: Mapping[str, str] = os.environ, limits: list[dict] = ()) -> dict:
    """`deliver` without waiting for a collector; a detached flusher sends what was queued."""
    from nomira.commands.ship import day_zone, deliver
    result = deliver(args, events, flush=False, limits=limits, zone=day_zone(args, env, strict=False))
    if result.get("queued"):
        spawn_flush(env)
    return result


def spawn_flush(env: Mapping[str, str] = os.environ) -> None:
    """`nomira hook flush` in its own session, output to the hook log: the agent never waits for it."""
    import nomira
    root = str(Path(nomira.__file__).resolve().parent.parent)
    child_env = dict(env, PYTHONPATH=os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p))
    path = log_path(env)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as out:
        subprocess.Popen([sys.executable, "-m", "nomira", "hook", "flush"], stdin=subprocess.DEVNULL,
                         stdout=out, stderr=out, env=child_env, start_new_session=True, close_fds=True)


def flush(env: Mapping[str, str] = os.environ) -> dict:
    """Send what the hooks queued. One flusher at a time (hooks fire close together): a second one
    waits for the first, then sends whatever is still pending."""
    from nomira.commands.ship import deliver
    args = ship_args(destination.load(env))
    if not args.remote:
        return {"destination": None, "delivered": 0, "error": None}
    lock_path = dirs.state_home(env) / "hook-flush.lock"
    with open(lock_path, "a") as lock:
        try:
            import fcntl
            fcntl.flock(lock, fcntl.LOCK_EX)
        except ImportError:  # Windows: no flock; a second flusher only re-sends (the collector dedups)
            pass
        return deliver(args, [])


# --- payloads ---

def claude_files(payload: dict) -> list[Path]:
    """The session's transcript and its sub-agents' folder (`<session>/subagents/`), as they exist."""
    out: list[Path] = []
    for key in ("transcript_path", "agent_transcript_path"):
        value = payload.get(key)
        if isinstance(value, str) and value.endswith(".jsonl"):
            p = Path(value).expanduser()
            if p.is_file() and p not in out:
                out.append(p)
    if out:
        sub = out[0].with_suffix("") / "subagents"
        if sub.is_dir():
            out.append(sub)
    return out


def codex_payload(argv: list[str]) -> dict:
    """Codex appends the notify JSON as the last argument (kebab-case keys)."""
    if not argv:
        raise ValueError("no notify payload (Codex passes it as the last argument)")
    doc = json.loads(argv[-1])
    if not isinstance(doc, dict):
        raise ValueError("notify payload is not a JSON object")
    return doc


def codex_rollout(thread_id: str, env: Mapping[str, str] = os.environ) -> Path | None:
    """The rollout file of a thread: `rollout-<stamp>-<thread id>.jsonl`, newest day folder first."""
    if not thread_id or not all(c.isalnum() or c == "-" for c in thread_id):
        return None
    for root in paths.codex_roots(env):
        days = sorted(root.glob("*/*/*"), reverse=True) + [root]
        for day in days:
            hits = sorted(day.glob(f"rollout-*-{thread_id}.jsonl"))
            if hits:
                return hits[-1]
    return None


def turn_window(rollout: Path, turn_id: str) -> tuple[str | None, str | None]:
    """(started, completed) timestamps of a turn: its `task_started` / `task_complete` event_msg lines."""
    from nomira.sources.scan import LineScan
    started = completed = None
    for line in LineScan(rollout, (b'"task_started"', b'"task_complete"')):
        try:
            d = json.loads(line)
            p = d["payload"]
        except (ValueError, KeyError, TypeError):
            continue
        if not isinstance(p, dict) or p.get("turn_id") != turn_id:
            continue
        if p.get("type") == "task_started":
            started = d.get("timestamp")
        elif p.get("type") == "task_complete":
            completed = d.get("timestamp")
    return started, completed


def run_codex(payload: dict, env: Mapping[str, str] = os.environ) -> dict:
    thread, turn = payload.get("thread-id"), payload.get("turn-id")
    rollout = codex_rollout(thread if isinstance(thread, str) else "", env)
    if rollout is None:
        return {"shipped": 0, "note": f"no rollout found for thread {thread!r}"}
    result, events = ship_files([rollout], "codex", env)
    started, completed = turn_window(rollout, turn) if isinstance(turn, str) else (None, None)
    return dict(result, rollout=rollout.name, turn_id=turn, turn_started=started, turn_completed=completed,
                turn_calls=_calls_between(events, started, completed))


def _calls_between(events: list[dict], started: str | None, completed: str | None) -> int | None:
    """How many of the rollout's calls the turn made (its token_count lines between the turn's
    task_started and task_complete); None when the rollout does not log the turn's bounds."""
    from nomira.ledger.events import parse_timestamp
    lo, hi = parse_timestamp(started or ""), parse_timestamp(completed or "")
    if lo is None:
        return None
    return sum(1 for e in events if lo <= parse_timestamp(e["occurred_at"]) and (hi is None or
                                                                               parse_timestamp(e["occurred_at"]) <= hi))


def run_claude(payload: dict, env: Mapping[str, str] = os.environ) -> dict:
    files = claude_files(payload)
    if not files:
        return {"shipped": 0, "note": "no transcript_path in the hook payload"}
    result, _events = ship_files(files, "claude", env)
    return dict(result, event=payload.get("hook_event_name"), session=payload.get("session_id"))


def then(argv: list[str], payload_arg: str) -> None:
    """The user's own notify program (chained at install), with the payload, detached."""
    try:
        subprocess.Popen([*argv, payload_arg], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL, start_new_session=True, close_fds=True)
    except OSError as exc:
        log(f"codex: chained notify program {argv[0]!r} failed to start: {exc}")


def main(agent: str, argv: list[str], env: Mapping[str, str] = os.environ) -> int:
    """Run one hook; always 0. What happened (or went wrong) goes to hook.log, never to the agent."""
    t0 = time.perf_counter()
    try:
        log_file = log_path(env)
        log_file.parent.mkdir(parents=True, exist_ok=True)
        with open(log_file, "a") as err, redirect_stderr(err):
            if agent == "claude":
                result = run_claude(_stdin_json(), env)
            elif agent == "codex":
                rest = argv
                if "--then" in argv:
                    i = argv.index("--then")
                    rest, chained = argv[:i] + argv[-1:], argv[i + 1:-1]
                    if chained:
                        then(chained, argv[-1])
                result = run_codex(codex_payload(rest), env)
            elif agent == "flush":
                result = flush(env)
            else:
                raise ValueError(f"unknown agent {agent!r}")
        log(f"{agent}: {json.dumps(result, default=str)} in {time.perf_counter() - t0:.3f} s", env)
    except BaseException as exc:  # noqa: BLE001 - a hook must never fail its agent
        where = traceback.extract_tb(exc.__traceback__)[-1:] if exc.__traceback__ else []
        log(f"{agent}: error {type(exc).__name__}: {exc} " + "".join(
            f"({f.filename}:{f.lineno})" for f in where), env)
    return 0


def _stdin_json() -> dict:
    data = sys.stdin.buffer.read(MAX_PAYLOAD + 1) if sys.stdin is not None else b""
    if len(data) > MAX_PAYLOAD:
        raise ValueError("hook payload larger than 1 MB")
    doc = json.loads(data or b"{}")
    if not isinstance(doc, dict):
        raise ValueError("hook payload is not a JSON object")
    return doc
