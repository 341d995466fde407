"""`nomira limits`: subscription windows, time to reset, and when the current pace hits 100%."""
from __future__ import annotations

import json
import sys
from datetime import datetime, timezone

from nomira.cli import Run
from nomira.reports.money import stamp


def add_arguments(name, p) -> None:
    from pathlib import Path

    from nomira.cli import SOURCE_CHOICES
    from nomira.commands import shared_option
    shared_option(p, "--json", action="store_true", help="machine-readable output")
    shared_option(p, "--path", action="append", type=Path, metavar="PATH",
                  help="read these Codex rollouts instead of the default locations")
    shared_option(p, "--source", choices=sorted(SOURCE_CHOICES), default="all", help="which agents")
    shared_option(p, "--timezone", "-z", default=None, help="IANA timezone for the times shown (default: local)")
    shared_option(p, "--no-cache", action="store_true", help="read every file whole")
    p.add_argument("--fetch", action="store_true",
                   help="also ask each agent's own usage endpoint, with the login it saved locally "
                        "(sent only to that provider; never stored)")
    p.set_defaults(func=cmd_limits)


def codex_log_snapshots(run: Run) -> list:
    """The newest `rate_limits` any Codex rollout logged (through the scan cache)."""
    from nomira.ledger.limits import from_codex_states
    from nomira.sources.registry import collect
    files = run.found.get("codex") or []
    if not files:
        return []
    collected = collect(("codex",), env=run.env, cache=run.cache, found={"codex": files})
    return from_codex_states(collected.states.get("codex", []))


def gather(run: Run, fetch: bool, now: datetime) -> tuple[list, list[str], list[str]]:
    """(latest snapshot per window, fetch errors, notes): logs, the statusline's state file, endpoints.
    An agent without a saved login is a note, not an error, unless it was the one asked for."""
    from nomira.ledger import limits
    snaps = [*codex_log_snapshots(run), *(s for s in limits.load_state(run.env)
                                          if _agent_source(s.agent) in run.selected)]
    errors, notes = [], []
    if fetch:
        from nomira.sources.usage_endpoints import FETCHERS, FetchError, NoLogin
        names = [n for n in run.selected if n in FETCHERS]
        fetched = []
        for name in names:
            try:
                fetched += FETCHERS[name](run.env, now)
            except NoLogin as exc:
                (notes if len(names) > 1 else errors).append(str(exc))
            except FetchError as exc:
                errors.append(str(exc))
        limits.save_state(fetched, run.env)
        snaps += fetched
    return limits.latest(snaps), errors, notes


def _agent_source(agent: str) -> str:
    return {"claude_code": "claude"}.get(agent, agent)


def cmd_limits(args) -> int:
    from nomira.reports.limits import render_text, rows
    run = Run(args)
    now = datetime.now(timezone.utc)
    snaps, errors, notes = gather(run, args.fetch, now)
    if args.json:
        print(json.dumps(stamp({"limits": rows(snaps, now), "errors": errors, "skipped": notes}), indent=1))
    else:
        for e in [*notes, *errors]:
            print(f"nomira: {e}", file=sys.stderr)
        if snaps:
            sys.stdout.write(render_text(snaps, now, run.tz))
        else:
            print("nomira: no limit snapshot yet (Codex logs carry them; for Claude Code set up "
                  "`nomira statusline` or use --fetch)", file=sys.stderr)
    return 1 if errors else 0
