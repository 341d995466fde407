"""`nomira optimize`: cost by tool and by file read, top sessions, and what to change."""
from __future__ import annotations

import json
import sys

from nomira.cli import Run, UserError
from nomira.reports import forensics, optimizer
from nomira.reports.aggregate import MONEY_COLUMN
from nomira.reports.dimensions import DIMENSIONS, breakdown
from nomira.reports.render import fill, pct, short_id, table, usd
from nomira.sources.tool_calls import tool_uses


def add_arguments(name, p) -> None:
    p.add_argument("--project", metavar="LABEL", help="only this project (its label as shown in reports, e.g. shop)")
    p.add_argument("--top", type=int, default=10, help="rows per table (default 10)")
    p.add_argument("--by", choices=tuple(DIMENSIONS), help="only the attributed cost by MCP server (from "
                   "mcp__<server>__<tool> names), skill (Skill uses) or sub-agent type (Task/Agent subagent_type)")
    p.set_defaults(func=cmd_optimize)


SCOPE = ("Claude Code and Codex; OpenCode tool calls are not attributed yet. Codex shell commands that only print "
         "a file count as reads of it")
SOURCES = ("claude_code", "codex")


def cmd_optimize(args) -> int:
    run = Run(args)
    events = [e for e in run.collect().events if e.source in SOURCES]
    if args.project:
        known = sorted({e.project for e in events})
        events = [e for e in events if e.project == args.project]
        if not events and known:
            shown = ", ".join(known[:12]) + (", …" if len(known) > 12 else "")
            raise UserError(f"--project {args.project}: no Claude Code or Codex usage under that label; "
                            f"projects: {shown}")
    if not events:
        run.no_usage(what="Claude Code or Codex usage (optimize reads those two)")
        return 0
    priced = list(run.priced(events))
    if args.by:
        return _by(run, args, events, breakdown(priced, *tool_uses(run.found), args.by))
    result = optimizer.attribute(priced, *tool_uses(run.found))
    waste = forensics.waste(priced)
    advice = optimizer.recommendations(result, waste)
    if args.json:
        from nomira.reports.money import stamp
        sys.stdout.write(json.dumps(stamp({**result, "cache_rebuilds": waste["cache_rebuilds"],
                                           "recommendations": advice, "scope": SCOPE}), indent=2) + "\n")
        return 0
    top = args.top
    money = MONEY_COLUMN[run.regime(events)]  # Value on a subscription, Cost on API billing
    out = [run.style.bold(fill(f"{money} by tool (by what each put into the context), total "
                               f"{usd(result['total_cost_usd'])}", run.style)),
           table(["Tool", "Calls", "Uses", money, "Share"],
                 [[t["tool"], str(t["calls"]), str(t["uses"]), usd(t["cost_usd"]), pct(t["share_of_cost"])]
                  for t in result["tools"][:top]], "lrrrr", style=run.style), ""]
    if result["files"]:
        out += [run.style.bold("Files by attributed cost"),
                table(["File", "Reads", "Sessions", money, "Pin saves*"],
                      [[f["path"], str(f["reads"]), str(f["sessions"]), usd(f["cost_usd"]),
                        usd(f["saving_estimate_usd"])] for f in result["files"][:top]], "lrrrr", style=run.style),
                run.style.dim(fill("* if each session read it once: the cost of its repeat reads (ignoring it saves "
                                   "all of its cost)",
                                   run.style)), ""]
    out += [run.style.bold("Top sessions"),
            table(["Session", "Project", money], [[short_id(s["session_id"]), s["project"], usd(s["cost_usd"])]
                                                   for s in result["top_sessions"][:top]], "llr", style=run.style)]
    out += ["", run.style.dim(fill(f"({SCOPE})", run.style))]
    out += _unpriced(run, result)
    if advice:
        out += ["", run.style.bold("Recommendations")]
        out += [fill(a, run.style, initial_indent="- ", subsequent_indent="  ") for a in advice]
    sys.stdout.write("\n".join(out) + "\n")
    return 0


HEADS = {"mcp-server": "MCP server", "skill": "Skill", "subagent": "Sub-agent type"}
TITLES = {"mcp-server": "MCP server", "skill": "skill", "subagent": "sub-agent type"}


def _by(run, args, events, result: dict) -> int:
    if args.json:
        from nomira.reports.money import stamp
        sys.stdout.write(json.dumps(stamp({**result, "scope": SCOPE}), indent=2) + "\n")
        return 0
    money = MONEY_COLUMN[run.regime(events)]
    out = [run.style.bold(fill(f"{money} by {TITLES[args.by]} (by what each put into the context), total "
                               f"{usd(result['total_cost_usd'])}", run.style)),
           table([HEADS[args.by], "Calls", "Uses", money, "Share"],
                 [[r["name"], str(r["calls"]), str(r["uses"]), usd(r["cost_usd"]), pct(r["share_of_cost"])]
                  for r in result["rows"][:args.top]], "lrrrr", style=run.style)]
    if len(result["rows"]) > args.top:
        out.append(run.style.dim(f"({len(result['rows']) - args.top} more rows: --top N)"))
    out += ["", run.style.dim(fill(f"({SCOPE})", run.style))]
    out += _unpriced(run, result)
    sys.stdout.write("\n".join(out) + "\n")
    return 0


def _unpriced(run, result: dict) -> list[str]:
    n = result["unpriced_calls"]
    return [run.style.warn(fill(f"! {n} unpriced calls are not attributed (no rate for a token type they use; "
                                "`nomira report` lists why)", run.style))] if n else []
