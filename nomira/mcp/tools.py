"""The read-only tools: each runs the matching `nomira ... --json` in-process and returns its JSON,
so a tool's figures are the command's figures (one definition of every number)."""
from __future__ import annotations

import contextlib
import gc
import io
import json

from nomira.mcp.protocol import ToolError

DAY = {"type": "string", "pattern": "^[0-9]{8}$", "description": "YYYYMMDD"}
RANGE = {"since": {**DAY, "description": "only usage on or after this day (YYYYMMDD)"},
         "until": {**DAY, "description": "only usage on or before this day (YYYYMMDD)"}}
GROUPS = {"total": ["report"], "day": ["daily"], "month": ["monthly"], "session": ["session"],
          "project": ["report", "--compare", "--by-project"], "model": ["report"]}


def run_json(argv: list[str]) -> dict:
    """`nomira <argv> --json` in this process: its stdout parsed, its one-line error as a ToolError."""
    from nomira.cli import main
    out, err = io.StringIO(), io.StringIO()
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            status = main([*argv, "--json"])
    finally:
        gc.enable()  # main() turns the cyclic collector off for a one-shot run; a server lives on
    text = out.getvalue()
    if status != 0 or not text.strip():
        lines = [ln for ln in err.getvalue().splitlines() if ln.startswith("nomira:")]
        raise ToolError(lines[-1] if lines else f"nomira {' '.join(argv)} found nothing")
    return json.loads(text)


def make_tools(base: list[str], db=None) -> dict:
    """Tools over the inputs `base` names (--path/--source/... as given to `nomira mcp`)."""

    def window(args) -> list[str]:
        out = []
        for k in ("since", "until"):
            if args.get(k) is not None:
                out += [f"--{k}", str(args[k])]
        return out

    def usage(args):
        by = args.get("group_by", "total")
        if by not in GROUPS:
            raise ToolError(f"group_by must be one of {', '.join(GROUPS)}")
        doc = run_json([*GROUPS[by], *base, *window(args)])
        if by == "total":
            return {k: doc[k] for k in ("regime", "value_label", "sources", "totals") if k in doc}
        if by == "model":
            return {"regime": doc["regime"], "value_label": doc["value_label"], "models": doc["models"]}
        return doc

    def top_sessions(args):
        limit = args.get("limit", 10)
        if not isinstance(limit, int) or not 1 <= limit <= 200:
            raise ToolError("limit must be an integer from 1 to 200")
        doc = run_json(["report", *base, *window(args)])
        rows = sorted(doc["sessions"], key=lambda r: -r["cost_usd"])[:limit]
        return {"value_label": doc["value_label"], "sessions": rows}

    def recommendations(args):
        extra = ["--project", args["project"]] if args.get("project") else []
        doc = run_json(["optimize", *base, *extra])
        return {k: doc[k] for k in ("recommendations", "total_cost_usd", "scope") if k in doc} | {
            "tools": doc.get("tools", [])[:10], "cache_rebuilds": doc.get("cache_rebuilds")}

    def limits(args):
        keep = [a for a in base if not a.startswith(("--since", "--until", "--regime"))]
        return run_json(["limits", *_only(keep, ("--path", "--source", "--timezone", "--no-cache"))])

    tools = {
        "usage": ("Token usage and cost (API-equivalent value on a subscription) from local agent logs, "
                  "grouped by total, day, month, session, project or model.",
                  {"type": "object", "properties": {"group_by": {"type": "string", "enum": list(GROUPS)}, **RANGE},
                   "additionalProperties": False}, usage),
        "top_sessions": ("The most expensive sessions, most expensive first.",
                         {"type": "object", "properties": {"limit": {"type": "integer", "minimum": 1,
                                                                     "maximum": 200}, **RANGE},
                          "additionalProperties": False}, top_sessions),
        "recommendations": ("What to change to spend less: the optimizer's advice from cost by tool and "
                            "by file read (Claude Code).",
                            {"type": "object", "properties": {"project": {"type": "string"}},
                             "additionalProperties": False}, recommendations),
        "limits": ("Subscription limit windows: used %, time to reset, when this pace reaches 100%.",
                   {"type": "object", "properties": {}, "additionalProperties": False}, limits),
    }
    if db is not None:
        tools["team_usage"] = team_usage_tool(db)
    return tools


def _only(argv: list[str], flags: tuple[str, ...]) -> list[str]:
    """The `flags` (and their values) of an argv of --flag value pairs."""
    out, i = [], 0
    while i < len(argv):
        flag = argv[i].split("=", 1)[0]
        takes = "=" not in argv[i] and flag != "--no-cache"
        if flag in flags:
            out += argv[i:i + 1 + takes]
        i += 1 + takes
    return out


def team_usage_tool(db_path=None, tenant: str | None = None, connection=None):
    """Usage by developer/project/model/day from a store (what the team dashboard shows), of one
    tenant when `tenant` is given (the collector's /mcp: the viewer's own). `connection`: a function
    returning an open connection to use instead of opening `db_path`."""
    from nomira.ledger import rollups

    def team_usage(args):
        by, period = args.get("group_by", "developer"), args.get("period", "30d")
        if by not in ("developer", "project", "model", "day") or period not in rollups.PERIODS:
            raise ToolError(f"group_by: developer|project|model|day; period: {'|'.join(rollups.PERIODS)}")
        from nomira.ledger import store
        db = connection() if connection else store.open_db(db_path)
        try:
            since = rollups.since_day(period)
            return {"period": period, "since": since, "tenant": tenant, "totals": rollups.totals(db, tenant, since),
                    "rows": rollups.by(db, by, tenant, since)}
        finally:
            if not connection:
                db.close()
    return ("Team usage from the store: by developer, project, model or day over today, 7d, 30d or all.",
            {"type": "object", "properties": {"group_by": {"type": "string",
                                                           "enum": ["developer", "project", "model", "day"]},
                                              "period": {"type": "string", "enum": ["today", "7d", "30d", "all"]}},
             "additionalProperties": False}, team_usage)
