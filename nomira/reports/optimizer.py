"""Where the money went by tool, and which files cost the most to keep in the context.

A call's cost is attributed by what put its tokens there. Within a session the prompt is a
prefix-cached stack of layers: what the first call sent (system prompt, the user's words),
then, turn by turn, what the previous call's tool results added (the growth of the prompt,
split across that call's tool uses by the size of their results, equally when unknown).
Each call's prompt is priced along that stack: the first `cache_read` tokens at the call's
cache-read cost per token, the rest (input and cache writes) at its uncached cost per token,
so a file read into a huge, long-lived context pays for every later call that carries it,
and a call's shares sum to its cost. Output goes to the call's own tool uses (it wrote their
inputs), or to "(no tool)". A sub-agent's calls (sidechain) go whole to the Task that
spawned them. A shorter prompt than the stack (compaction) keeps the oldest layers.

Savings: pinning a file (read once per session) saves the cost of its repeat reads;
ignoring it saves all of its cost. Paths and tool inputs come from the local transcripts,
are shown only here, and never enter an event.
"""
from __future__ import annotations

from collections import defaultdict
from typing import Iterable, Iterator, NamedTuple

from nomira.ledger.events import UsageEvent
from nomira.pricing.engine import Cost

READ_TOOLS = {"Read", "NotebookRead", "Read (shell)"}
SUBAGENT_TOOLS = {"Task", "Agent"}


def call_key(event: UsageEvent) -> tuple:
    """How `uses` names a call: (message.id, requestId), or (session, time) where no id is logged (Codex)."""
    return (event.message_id, event.request_id) if event.message_id else (event.session_id, event.occurred_at)


class Owner(NamedTuple):
    """What a slice of cost is attributed to: one tool use, or the rest (use_id "")."""
    use_id: str
    tool: str
    target: str | None = None


NO_TOOL = Owner("", "(no tool)")
SUBAGENT = Owner("", "Task (sub-agent)")


def split_calls(priced: Iterable[tuple[UsageEvent, Cost | None]], uses: dict, sizes: dict | None = None
                ) -> Iterator[tuple[UsageEvent, float, dict[Owner, float]]]:
    """(event, cost, {owner: share}) per priced call, shares summing to the cost.

    `uses`: `call_key` -> [(tool, target)] or [(use_id, tool, target)];
    `sizes`: use_id -> size of its result (characters), the weight within one turn."""
    sizes = sizes or {}
    sessions: dict[tuple, list] = defaultdict(list)
    for event, cost in priced:
        if cost is not None:
            sessions[(event.session_id, event.project)].append((event, cost))
    for calls in sessions.values():
        calls.sort(key=lambda ec: ec[0].occurred_at)
        layers: list[list] = []  # [owner, tokens], oldest first
        pending: list[tuple[Owner, float | None]] = []
        spawner = SUBAGENT
        for event, cost in calls:
            usd = cost.total_usd
            if event.is_sidechain:
                yield event, usd, {spawner: usd}
                continue
            call_uses = named_uses(uses, event)
            t = event.tokens
            prompt = t.input + t.cache_read + t.cache_write_5m + t.cache_write_1h
            known = sum(n for _, n in layers)
            while layers and known > prompt:  # compacted: the oldest layers stay (prefix)
                cut = min(layers[-1][1], known - prompt)
                layers[-1][1] -= cut
                known -= cut
                if not layers[-1][1]:
                    layers.pop()
            _grow(layers, prompt - known, pending)
            split: dict[Owner, float] = defaultdict(float)
            read_rate = cost.cache_read_usd / t.cache_read if t.cache_read else 0.0
            uncached = prompt - t.cache_read
            rate = (cost.input_usd + cost.cache_write_5m_usd + cost.cache_write_1h_usd) / uncached if uncached else 0.0
            pos = 0.0
            for owner, n in layers:
                cached = max(0.0, min(pos + n, t.cache_read) - pos)
                split[owner] += cached * read_rate + (n - cached) * rate
                pos += n
            for owner in call_uses or (NO_TOOL,):
                split[owner] += cost.output_usd / (len(call_uses) or 1)
            pending = [(o, sizes.get(o.use_id)) for o in call_uses]
            spawner = next((o for o in reversed(call_uses) if o.tool in SUBAGENT_TOOLS), spawner)
            yield event, usd, dict(split)


def named_uses(uses: dict, event: UsageEvent) -> list[Owner]:
    """The tool uses a call made, as owners of its cost."""
    return [_owner(i, u) for i, u in enumerate(uses.get(call_key(event)) or ())]


def _owner(i: int, use: tuple) -> Owner:
    if len(use) == 3:
        return Owner(use[0] or f"#{i}", use[1], use[2])
    return Owner(f"#{i}", use[0], use[1])  # no id known: position in the call


def _grow(layers: list[list], new: float, pending: list[tuple[Owner, float | None]]) -> None:
    """Add the prompt's growth as layers owned by the previous call's tool uses (by result size)."""
    if new <= 0:
        return
    if not pending:
        layers.append([NO_TOOL, new])
        return
    weights = [w for _, w in pending]
    if any(w is None or w <= 0 for w in weights):
        weights = [1.0] * len(pending)
    total = sum(weights)
    for (owner, _), w in zip(pending, weights):
        layers.append([owner, new * w / total])


def attribute(priced: Iterable[tuple[UsageEvent, Cost | None]], uses: dict, sizes: dict | None = None) -> dict:
    tools: dict[str, dict] = defaultdict(lambda: {"calls": 0, "uses": 0, "cost_usd": 0.0})
    owners: dict[tuple, float] = defaultdict(float)
    reads: dict[str, list[tuple]] = defaultdict(list)  # path -> [(session, owner key)] in time order
    sessions: dict[tuple, float] = defaultdict(float)
    total = side = 0.0
    priced = list(priced)
    unpriced = sum(1 for _e, cost in priced if cost is None)  # not attributed, and said (never a $0 share)
    for event, usd, split in split_calls(priced, uses, sizes):
        total += usd
        sessions[(event.session_id, event.project)] += usd
        if event.is_sidechain:
            side += usd
        for owner, share in split.items():
            tools[_label(owner.tool)]["cost_usd"] += share
            if owner.use_id:
                owners[(event.session_id, owner)] += share
        if not event.is_sidechain:
            named = named_uses(uses, event)
            for name in {o.tool for o in named} or {NO_TOOL.tool}:
                tools[_label(name)]["calls"] += 1
            for o in named:
                tools[_label(o.tool)]["uses"] += 1
                if o.tool in READ_TOOLS and o.target:
                    reads[o.target].append((event.session_id, o))
    file_rows = []
    for path, seen in reads.items():
        cost = saving = 0.0
        first: set = set()
        for session, o in seen:
            share = owners.get((session, o), 0.0)
            cost += share
            if session in first:
                saving += share
            first.add(session)
        file_rows.append({"path": path, "reads": len(seen), "sessions": len(first), "cost_usd": cost,
                          "usd_per_read": cost / len(seen), "saving_estimate_usd": saving,
                          "saving_if_ignored_usd": cost})
    file_rows.sort(key=lambda r: (-r["cost_usd"], -r["reads"], r["path"]))
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
    """Advice derived only from the figures above, each naming its saving in dollars."""
    out = []
    total = result["total_cost_usd"]
    for f in result["files"][:3]:
        if f["reads"] >= 2 and f["saving_estimate_usd"] >= 0.01:
            out.append(f"{f['path']} was read {f['reads']} times in {f['sessions']} session(s), "
                       f"${f['cost_usd']:.2f} attributed: pinning it (read once per session, or a summary in "
                       f"CLAUDE.md) would save about ${f['saving_estimate_usd']:.2f}; ignoring it, "
                       f"${f['saving_if_ignored_usd']:.2f}.")
    rb = waste["cache_rebuilds"]
    if rb["count"] and rb["share_of_cost"] >= 0.05:
        out.append(f"{rb['count']} cache rebuilds after idle gaps cost ${rb['cache_write_usd']:.2f} "
                   f"({rb['share_of_cost']:.0%} of the total): finishing or /compacting a session before a break, "
                   f"or the 1-hour cache for long pauses, would save most of that ${rb['cache_write_usd']:.2f}.")
    if total and result["sidechain_cost_usd"] / total >= 0.25:
        out.append(f"Sub-agents cost ${result['sidechain_cost_usd']:.2f} "
                   f"({result['sidechain_cost_usd'] / total:.0%}): give them narrower tasks or a cheaper model.")
    top_tool = next((t for t in result["tools"] if t["tool"] != NO_TOOL.tool), None)
    if top_tool and top_tool["share_of_cost"] >= 0.3:
        out.append(f"{top_tool['tool']} calls carry {top_tool['share_of_cost']:.0%} of the cost "
                   f"(${top_tool['cost_usd']:.2f} over {top_tool['uses']} uses).")
    return out
