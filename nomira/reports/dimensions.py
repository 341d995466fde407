"""Attributed cost by MCP server, skill or sub-agent type: the optimizer's split, regrouped.

Each tool use's share of the cost (optimizer.split_calls) goes to the value its tool names:
the MCP server of `mcp__<server>__<tool>` (Claude Code's name for an MCP tool, and the name
Codex gives the model for one: codex-rs `MCP_TOOL_NAME_PREFIX` "mcp" + delimiter "__"), the
skill a `Skill` use invoked (its input `skill`), the `subagent_type` of a `Task`/`Agent` use
(a sub-agent's own calls go whole to the Task that spawned it). Everything else goes to a
"(no ...)" bucket, so each table sums to the attributed total. Read locally; names, never
inputs or skill contents, and nothing of it enters an event or a store.
"""
from __future__ import annotations

from collections import defaultdict
from typing import Iterable

from nomira.ledger.events import UsageEvent
from nomira.pricing.engine import Cost
from nomira.reports.optimizer import SUBAGENT, SUBAGENT_TOOLS, Owner, named_uses, split_calls

DIMENSIONS = {"mcp-server": "(no MCP server)", "skill": "(no skill)", "subagent": "(no sub-agent)"}
UNNAMED = "(type not logged)"  # a Task without `subagent_type`, or a sub-agent whose Task is not in the logs


def mcp_server(tool: str) -> str | None:
    """`mcp__github__create_issue` -> "github"; None for a built-in tool."""
    if not tool.startswith("mcp__"):
        return None
    server, sep, name = tool[5:].partition("__")
    return server if server and sep and name else None


def value(dimension: str, owner: Owner) -> str | None:
    """The dimension value a slice of cost belongs to, or None (the "(no ...)" bucket)."""
    if dimension == "mcp-server":
        return mcp_server(owner.tool)
    if dimension == "skill":
        return (owner.target or UNNAMED) if owner.tool == "Skill" else None
    if dimension == "subagent":
        return (owner.target or UNNAMED) if owner.tool in SUBAGENT_TOOLS or owner == SUBAGENT else None
    raise ValueError(f"unknown dimension {dimension!r}")


def breakdown(priced: Iterable[tuple[UsageEvent, Cost | None]], uses: dict, sizes: dict | None,
              dimension: str) -> dict:
    """Rows of attributed cost per value, "(no ...)" included; `calls` counts the main-thread calls
    that made such a use (a call using two servers counts in each) and a sub-agent's own calls."""
    return breakdowns(priced, uses, sizes, (dimension,))[dimension]


def breakdowns(priced: Iterable[tuple[UsageEvent, Cost | None]], uses: dict, sizes: dict | None,
               dimensions: Iterable[str]) -> dict[str, dict]:
    """`breakdown` for several dimensions from one split of the calls (the dashboard shows all three)."""
    dimensions = tuple(dimensions)
    rows = {dim: defaultdict(lambda: {"calls": 0, "uses": 0, "cost_usd": 0.0}) for dim in dimensions}
    total = 0.0
    priced = list(priced)
    for event, usd, split in split_calls(priced, uses, sizes):
        total += usd
        named = None if event.is_sidechain else named_uses(uses, event)
        for dim in dimensions:
            none, acc = DIMENSIONS[dim], rows[dim]
            for owner, share in split.items():
                acc[value(dim, owner) or none]["cost_usd"] += share
            if named is None:
                for owner in split:
                    acc[value(dim, owner) or none]["calls"] += 1
                continue
            for v in {value(dim, o) for o in named} - {None} or {none}:
                acc[v]["calls"] += 1
            for o in named:
                acc[value(dim, o) or none]["uses"] += 1
    unpriced = sum(1 for _e, cost in priced if cost is None)
    out = {}
    for dim in dimensions:
        none = DIMENSIONS[dim]
        table = [{"name": k, **v, "share_of_cost": v["cost_usd"] / total if total else 0.0}
                 for k, v in rows[dim].items()]
        table.sort(key=lambda r: (r["name"] == none, -r["cost_usd"], r["name"]))
        out[dim] = {"dimension": dim, "total_cost_usd": total, "rows": table, "unpriced_calls": unpriced}
    return out
