"""`nomira optimize`: cost by tool and by file read, top sessions, and what to change."""
from __future__ import annotations

import json
import sys
from pathlib import Path

from nomira.cli import Run, UserError
from nomira.reports import forensics, optimizer
from nomira.reports.aggregate import MONEY_COLUMN
from nomira.reports.render import fill, pct, short_id, table, usd
from nomira.sources import claude_code


def add_arguments(name, p) -> None:
    p.add_argument("--project", metavar="LABEL", help="only this project (its label as shown in reports, e.g. shop)")
    p.add_argument("--top", type=int, default=10, help="rows per table (default 10)")
    p.set_defaults(func=cmd_optimize)


def tool_uses(files: list[Path]) -> dict:
    """(message.id, requestId) -> [(tool, path)], each tool_use counted once across streamed lines."""
    by_call: dict[tuple, dict] = {}
    for f in files:
        for msg_id, req_id, use_id, name, target in claude_code.iter_tool_uses(f):
            by_call.setdefault((msg_id, req_id), {})[use_id] = (name, target)
    return {k: list(v.values()) for k, v in by_call.items()}


SCOPE = "Claude Code only: Codex and OpenCode tool calls are not attributed yet"


def cmd_optimize(args) -> int:
    run = Run(args)
    events = [e for e in run.collect().events if e.source == "claude_code"]
    if args.project:
        known = sorted({e.project for e in events})
        events = [e for e in events if e.project == args.project]
        if not events and known:
            shown = ", ".join(known[:12]) + (", …" if len(known) > 12 else "")
            raise UserError(f"--project {args.project}: no Claude Code usage under that label; projects: {shown}")
    if not events:
        run.no_usage(what="Claude Code usage (optimize reads Claude Code only)")
        return 0
    priced = list(run.priced(events))
    result = optimizer.attribute(priced, tool_uses(run.found.get("claude", [])))
    waste = forensics.waste(priced)
    advice = optimizer.recommendations(result, waste)
    if args.json:
        sys.stdout.write(json.dumps({**result, "cache_rebuilds": waste["cache_rebuilds"],
                                     "recommendations": advice, "scope": SCOPE}, indent=2) + "\n")
        return 0
    top = args.top
    money = MONEY_COLUMN[run.regime(events)]  # Value on a subscription, Cost on API billing
    out = [run.style.bold(fill(f"{money} by tool (each call's share split across its tool uses), total "
                               f"{usd(result['total_cost_usd'])}", run.style)),
           table(["Tool", "Calls", "Uses", money, "Share"],
                 [[t["tool"], str(t["calls"]), str(t["uses"]), usd(t["cost_usd"]), pct(t["share_of_cost"])]
                  for t in result["tools"][:top]], "lrrrr", style=run.style), ""]
    if result["files"]:
        out += [run.style.bold("Files read most often"),
                table(["File", "Reads", "Sessions", money, "Saving*"],
                      [[f["path"], str(f["reads"]), str(f["sessions"]), usd(f["cost_usd"]),
                        usd(f["saving_estimate_usd"])] for f in result["files"][:top]], "lrrrr", style=run.style),
                run.style.dim(fill("* if each session read it once: per session, (n-1)/n of its attributed cost",
                                   run.style)), ""]
    out += [run.style.bold("Top sessions"),
            table(["Session", "Project", money], [[short_id(s["session_id"]), s["project"], usd(s["cost_usd"])]
                                                   for s in result["top_sessions"][:top]], "llr", style=run.style)]
    out += ["", run.style.dim(fill(f"({SCOPE})", run.style))]
    if result["unpriced_calls"]:
        out.append(run.style.warn(fill(f"! {result['unpriced_calls']} unpriced calls are not attributed (no rate "
                                       "for a token type they use; `nomira report` lists why)", run.style)))
    if advice:
        out += ["", run.style.bold("Recommendations")]
        out += [fill(a, run.style, initial_indent="- ", subsequent_indent="  ") for a in advice]
    sys.stdout.write("\n".join(out) + "\n")
    return 0
