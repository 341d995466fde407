"""Where the money went by tool, and which files cost the most to keep re-reading.

Each call's cost is shared equally across the tool uses it made (a call without a
tool use is "(no tool)"); a file's attributed cost is the sum of the shares of the
Read calls on it. The saving estimate assumes a file read n times in one session could
have been read once in it: the sum over sessions of (n-1)/n of that session's cost for it. Paths and tool inputs come from the local
transcripts, are shown only here, and never enter an event.
"""
from __future__ import annotations

from collections import defaultdict
from typing import Iterable

from nomira.events import UsageEvent
from nomira.pricing.engine import Cost

READ_TOOLS = {"Read", "NotebookRead"}
SUBAGENT_TOOLS = {"Task", "Agent"}


def attribute(priced: Iterable[tuple[UsageEvent, Cost | None]],
              uses: dict[tuple[str, str | None], list[tuple[str, str | None]]]) -> dict:
    tools: dict[str, dict] = defaultdict(lambda: {"calls": 0, "uses": 0, "cost_usd": 0.0})
    files: dict[str, dict] = defaultdict(lambda: {"reads": 0, "cost_usd": 0.0, "sessions": defaultdict(
        lambda: [0, 0.0])})
    sessions: dict[tuple, float] = defaultdict(float)
    total = side = 0.0
    unpriced = 0
    for event, cost in priced:
        if cost is None:
            unpriced += 1  # not attributed, and said (never a $0 share)
            continue
        usd = cost.total_usd
        total += usd
        sessions[(event.session_id, event.project)] += usd
        if event.is_sidechain:
            side += usd
        call_uses = uses.get((event.message_id, event.request_id)) or []
        if not call_uses:
            t = tools["(no tool)"]
            t["calls"] += 1
            t["cost_usd"] += usd
            continue
        share = usd / len(call_uses)
        for name in {n for n, _ in call_uses}:
            tools[_label(name)]["calls"] += 1
        for name, target in call_uses:
            t = tools[_label(name)]
            t["uses"] += 1
            t["cost_usd"] += share
            if name in READ_TOOLS and target:
                f = files[target]
                f["reads"] += 1
                f["cost_usd"] += share
                per_session = f["sessions"][event.session_id]
                per_session[0] += 1
                per_session[1] += share
    file_rows = [{"path": p, "reads": f["reads"], "sessions": len(f["sessions"]), "cost_usd": f["cost_usd"],
                  "saving_estimate_usd": sum(c * (n - 1) / n for n, c in f["sessions"].values())}
                 for p, f in files.items()]
    file_rows.sort(key=lambda r: (-r["reads"], -r["cost_usd"], r["path"]))
    tool_rows = [{"tool": k, **v, "share_of_cost": v["cost_usd"] / total if total else 0.0}
                 for k, v in tools.items()]
    tool_rows.sort(key=lambda r: -r["cost_usd"])
    top_sessions = sorted(({"session_id": s, "project": p, "cost_usd": c} for (s, p), c in sessions.items()),
                          key=lambda r: -r["cost_usd"])
    return {"total_cost_usd": total, "sidechain_cost_usd": side, "tools": tool_rows, "files": file_rows,
            "top_sessions": top_sessions, "unpriced_calls": unpriced}


def _label(tool: str) -> str:
    return f"{tool} (sub-agent)" if tool in SUBAGENT_TOOLS else tool


def recommendations(result: dict, waste: dict) -> list[str]:
    """Advice derived only from the figures above; nothing generic."""
    out = []
    total = result["total_cost_usd"]
    for f in result["files"][:3]:
        if f["reads"] >= 3 and f["saving_estimate_usd"] >= 0.01:
            out.append(f"{f['path']} was read {f['reads']} times in {f['sessions']} session(s), "
                       f"${f['cost_usd']:.2f} attributed; reading it once per session (or summarising it in "
                       f"CLAUDE.md) could save about ${f['saving_estimate_usd']:.2f}.")
    rb = waste["cache_rebuilds"]
    if rb["count"] and rb["share_of_cost"] >= 0.05:
        out.append(f"{rb['count']} cache rebuilds after idle gaps cost ${rb['cache_write_usd']:.2f} "
                   f"({rb['share_of_cost']:.0%} of the total): finish or /compact a session before a break, "
                   f"or use the 1-hour cache for long pauses.")
    if total and result["sidechain_cost_usd"] / total >= 0.25:
        out.append(f"Sub-agents cost ${result['sidechain_cost_usd']:.2f} "
                   f"({result['sidechain_cost_usd'] / total:.0%}): give them narrower tasks or a cheaper model.")
    top_tool = next((t for t in result["tools"] if t["tool"] != "(no tool)"), None)
    if top_tool and top_tool["share_of_cost"] >= 0.3:
        out.append(f"{top_tool['tool']} calls carry {top_tool['share_of_cost']:.0%} of the cost "
                   f"(${top_tool['cost_usd']:.2f} over {top_tool['uses']} uses).")
    return out
