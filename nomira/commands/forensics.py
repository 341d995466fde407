"""`nomira forensics`: per-turn costs of a session, and waste signals across all of them."""
from __future__ import annotations

import json
import sys
from datetime import datetime

from nomira.cli import Run, UserError
from nomira.reports import forensics
from nomira.reports.aggregate import MONEY_COLUMN
from nomira.reports.render import fill, pct, session_matches, short_id, table, tokens, usd
from nomira.reports.money import stamp


def add_arguments(name, p) -> None:
    p.add_argument("--session", metavar="ID", help="show every call of this session (an id or its prefix)")
    p.add_argument("--top", type=int, default=None, help="how many cache rebuilds to list (default 10)")
    p.set_defaults(func=cmd_forensics)


def cmd_forensics(args) -> int:
    if args.session and args.top is not None:
        raise UserError("--top limits the cache rebuilds listed; --session lists every call of one session "
                        "(use one of them)")
    run = Run(args)
    events = run.collect().events
    if not events:
        run.no_usage()
    priced = list(run.priced(events))
    if args.session:
        sessions = forensics.by_session(priced)
        match = [k for k in sessions if session_matches(k[1], args.session)]
        if len(match) != 1:
            raise UserError(f"{'no' if not match else 'several'} sessions match {args.session!r}")
        rows = forensics.turn_rows(sessions[match[0]])
        if args.json:
            sys.stdout.write(json.dumps(stamp({"session_id": match[0][1], "project": match[0][2], "turns": rows}),
                                        indent=2) + "\n")
            return 0
        body = [[datetime.fromisoformat(r["at"]).astimezone(run.tz).strftime("%m-%d %H:%M:%S"), r["model"],
                 tokens(r["tokens"]["input"] + r["tokens"]["cache_read"] + r["tokens"]["cache_write_5m"]
                        + r["tokens"]["cache_write_1h"]), tokens(r["tokens"]["output"]), usd(r["cost_usd"]),
                 ",".join(r["flags"])] for r in rows]
        money = MONEY_COLUMN[run.regime([e for e, _c in sessions[match[0]]])]
        sys.stdout.write(table(["Time", "Model", "Prompt", "Output", money, "Flags"], body, "llrrrl",
                               style=run.style, shorten=(1,)) + "\n")
        return 0
    w = forensics.waste(priced, top=10 if args.top is None else args.top)
    if args.json:
        sys.stdout.write(json.dumps(stamp(w), indent=2) + "\n")
        return 0
    rb = w["cache_rebuilds"]
    out = [run.style.bold(fill(f"Cache rebuilds: {rb['count']} turns re-wrote an expired cache, "
                               f"{usd(rb['cache_write_usd'])} ({pct(rb['share_of_cost'])} of "
                               f"{usd(w['total_cost_usd'])})", run.style)),
           fill(f"Sub-agents (sidechains): {usd(w['sidechain']['cost_usd'])} "
                f"({pct(w['sidechain']['share_of_cost'])})", run.style)]
    if rb["top"]:
        out.append("")
        out.append(table(["When", "Session", "Idle", "Rewritten", "Write $", "Call $"], [
            [datetime.fromisoformat(r["at"]).astimezone(run.tz).strftime("%m-%d %H:%M"), short_id(r["session_id"]),
             f"{r['gap_minutes']:.0f} min", tokens(r["tokens"]["cache_write_5m"] + r["tokens"]["cache_write_1h"]),
             usd(r["cache_write_usd"]), usd(r["cost_usd"])] for r in rb["top"]], "llrrrr", style=run.style))
    sys.stdout.write("\n".join(out) + "\n")
    return 0
